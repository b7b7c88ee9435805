"""`assistant doctor` and `assistant devices`, headless and on a real (virtual) desktop."""

from __future__ import annotations

import os

import pytest

from assistant.doctor import Status, check_models, check_python

from cli_runner import headless_env, run_cli
from facilities import pulse_virtual_mic, tray_host, xvfb
from model_folders import make_folder


def lines_by_topic(stdout: str) -> dict[str, str]:
    found = {}
    for line in stdout.splitlines():
        parts = line.split(None, 2)
        if len(parts) >= 2 and parts[0] in ("ok", "warning", "problem"):
            rest = line[len(parts[0]) :].strip()
            for topic in (
                "microphone",
                "speaker",
                "display",
                "screenshot",
                "tray",
                "voices",
                "memory",
                "models",
                "model qwen2-audio",
                "model qwen2-vl",
                "openvino devices",
                "python",
                "config",
            ):
                if rest.startswith(topic + " ") or rest == topic:
                    found[topic] = line
    return found


def test_headless_machine_reports_each_item_and_exits_1(tmp_path):
    result = run_cli("doctor", env=headless_env(tmp_path))
    assert result.returncode == 1, result.stdout + result.stderr
    topics = lines_by_topic(result.stdout)
    assert topics["display"].startswith("warning") and "no display" in topics["display"]
    assert topics["tray"].startswith("warning")
    assert topics["microphone"].startswith("problem") and "no audio input device" in topics["microphone"]
    # A fresh install: one finding for both models, with the one command that converts them.
    assert topics["models"].startswith("problem") and "no converted models yet" in topics["models"]
    assert "model qwen2-audio" not in topics and "model qwen2-vl" not in topics
    assert result.stdout.count("assistant convert") == 1
    assert "-> run: assistant convert all\n" in result.stdout
    assert topics["openvino devices"].startswith("ok") and "CPU" in topics["openvino devices"]
    assert topics["python"].startswith("ok")
    assert "memory" in topics and "voices" in topics
    assert "Not ready." in result.stdout
    assert result.stderr == ""  # native ALSA/espeak chatter stays hidden


def test_devices_headless_says_there_is_no_audio_device(tmp_path):
    result = run_cli("devices", env=headless_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "Audio devices:\n  (none" in result.stdout
    assert "OpenVINO devices:\n  CPU:" in result.stdout


def test_model_folders_are_checked_and_sized(tmp_path):
    from assistant.config import load_settings

    make_folder(tmp_path / "a", kind="qwen2-audio", size=1000)
    (tmp_path / "cfg.toml").write_text(f'[models]\naudio_dir = "{tmp_path / "a"}"\nvl_dir = "{tmp_path / "v"}"\n')
    findings, needed = check_models(load_settings(tmp_path / "cfg.toml"))
    audio, vl = findings
    assert audio.status is Status.OK and str(tmp_path / "a") in audio.detail
    assert vl.status is Status.PROBLEM and "assistant convert vl" in vl.fix
    assert needed > 4000


def test_no_model_converted_yet_is_one_finding_naming_convert_all(tmp_path):
    from assistant.config import load_settings

    (tmp_path / "models" / "a").mkdir(parents=True)  # an empty folder counts as not converted yet
    config = tmp_path / "cfg.toml"
    config.write_text(f'[models]\naudio_dir = "{tmp_path / "models" / "a"}"\nvl_dir = "{tmp_path / "models" / "v"}"\n')
    findings, needed = check_models(load_settings(config))
    assert [(f.topic, f.status) for f in findings] == [("models", Status.PROBLEM)]
    assert findings[0].detail == f"no converted models yet in {tmp_path / 'models'} (a, v)"
    assert findings[0].fix == f"run: assistant convert all --config {config}"
    assert needed > 8 * 2**30  # both real models' nominal size, for the memory check


def test_python_check_sees_the_tested_package_ranges():
    findings = check_python()
    names = {f.topic for f in findings}
    assert {"package openvino", "package transformers", "package torch", "package torchvision"} <= names
    bad = [f for f in findings if f.status is not Status.OK]
    assert not bad, bad


@pytest.mark.slow
def test_full_virtual_desktop_is_ready(tmp_path):
    """Xvfb + trayer + a PulseAudio virtual microphone + converted-model folders: doctor says ready."""
    make_folder(tmp_path / "audio", kind="qwen2-audio")
    make_folder(tmp_path / "vl", kind="qwen2-vl")
    config = tmp_path / "config.toml"
    config.write_text(f'[models]\naudio_dir = "{tmp_path / "audio"}"\nvl_dir = "{tmp_path / "vl"}"\n')
    with xvfb(1024, 768) as display, tray_host(display), pulse_virtual_mic() as pulse:
        env = headless_env(tmp_path, DISPLAY=display, **pulse.env())
        result = run_cli("doctor", "--config", str(config), env=env)
        devices = run_cli("devices", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    topics = lines_by_topic(result.stdout)
    for topic in (
        "microphone",
        "speaker",
        "display",
        "screenshot",
        "tray",
        "voices",
        "model qwen2-audio",
        "model qwen2-vl",
        "memory",
    ):
        assert topics[topic].startswith("ok"), topics[topic]
    assert f"x11 {display}" in topics["display"]
    assert "1024x768 captured" in topics["screenshot"]
    assert "Ready." in result.stdout
    assert devices.returncode == 0
    assert "default" in devices.stdout and "in " in devices.stdout and "out " in devices.stdout


def test_headless_env_really_has_no_display(tmp_path):
    env = headless_env(tmp_path)
    assert "DISPLAY" not in env and "WAYLAND_DISPLAY" not in env
    assert os.environ.get("HOME") != env["HOME"]
