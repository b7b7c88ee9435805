"""Audio device choice (pure) and a real device list from a PulseAudio virtual microphone."""

from __future__ import annotations

import os

import pytest

from assistant.audio.devices import AudioDevice, find_device

from facilities import pulse_virtual_mic


def dev(index, name, inputs, outputs, default_in=False, default_out=False):
    return AudioDevice(index, name, "ALSA", inputs, outputs, 48000.0, default_in, default_out)


DEVICES = [dev(0, "HDA Intel PCH: ALC257", 2, 2), dev(1, "USB Headset", 1, 2), dev(2, "default", 32, 32, True, True)]


def test_default_follows_the_desktop():
    assert find_device(DEVICES, "", kind="input").index == 2
    assert find_device(DEVICES, "", kind="output").index == 2


def test_by_index_or_name_part():
    assert find_device(DEVICES, 1, kind="input").name == "USB Headset"
    assert find_device(DEVICES, "usb", kind="output").index == 1
    assert find_device(DEVICES, "nothing like it", kind="input") is None
    assert find_device([dev(0, "speaker only", 0, 2)], "", kind="input") is None


@pytest.mark.slow
def test_virtual_microphone_is_listed_as_the_default_input():
    import subprocess
    import sys

    with pulse_virtual_mic() as pulse:
        code = (
            "from assistant.audio.devices import list_audio_devices, find_device\n"
            "d = list_audio_devices()\n"
            "i = find_device(d, '', kind='input'); o = find_device(d, '', kind='output')\n"
            "print(i.name, i.max_input_channels > 0, o.name, o.max_output_channels > 0)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], env={**os.environ, **pulse.env()}, capture_output=True, text=True, timeout=60
        )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[1] == "True" and out.stdout.split()[3] == "True"
