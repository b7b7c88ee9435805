"""`assistant run` on a real (virtual) desktop, end to end: a PulseAudio microphone and speaker, Xvfb
with a system tray and a session bus, a known picture on the screen. Spoken requests go into the
microphone; the event log, the saved screenshot and a recording of the speaker tell what happened.

The audio model is the scripted tiny checkpoint (it hears "what is on my screen" in any speech), so
the request really takes the screen route through real VAD, transcription, capture and Qwen2-VL.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from cli_runner import headless_env
from facilities import click_tray_menu_item, picture_on_screen, pulse_virtual_mic, require, session_bus, tray_host, xvfb
from speech import SAMPLE_RATE, spoken

pytestmark = pytest.mark.slow

MENU = {"talk": 0, "mute": 1, "screen": 2, "stop": 3}


@pytest.fixture(scope="module")
def scripted_audio(tmp_path_factory):
    from assistant.models import convert_qwen2audio_model
    from assistant.testing import build_scripted_qwen2audio

    root = tmp_path_factory.mktemp("scripted")
    out = root / "audio-f32"
    convert_qwen2audio_model(build_scripted_qwen2audio(root / "checkpoint"), out, None, full_precision=True)
    return out


@pytest.fixture(scope="module")
def picture(tmp_path_factory) -> Path:
    from PIL import Image

    rng = np.random.default_rng(7)
    path = tmp_path_factory.mktemp("picture") / "known.png"
    Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def desktop(tmp_path, picture):
    """Everything a logged-in desktop has, started here and stopped by PID (the assistant first)."""
    require("xdotool", "xwininfo", "paplay", "parecord")
    with (
        pulse_virtual_mic(speaker="speaker") as pulse,
        xvfb() as display,
        session_bus() as bus,
        tray_host(display),
        picture_on_screen(display, picture, x=100, y=80),
    ):
        env = headless_env(tmp_path, **pulse.env(), DISPLAY=display, DBUS_SESSION_BUS_ADDRESS=bus)
        yield {"pulse": pulse, "display": display, "env": env}


class Assistant:
    """`assistant run` in the background with its event log in a file."""

    def __init__(self, config: Path, env: dict[str, str], events: Path, *args: str):
        self.events_path = events
        # stderr goes to a file: a pipe nobody reads until the end would block the service once full.
        self.stderr_path = events.with_suffix(".stderr")
        with self.stderr_path.open("w") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "assistant", "run", "--config", str(config), "--events", str(events), *args],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def events(self) -> list[dict]:
        if not self.events_path.exists():
            return []
        return [json.loads(line) for line in self.events_path.read_text().splitlines() if line.strip()]

    def wait_for(self, predicate, timeout: float, what: str) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.events()
            if predicate(events):
                return events
            if self.proc.poll() is not None:
                raise AssertionError(f"assistant exited ({self.proc.returncode}): {self.stderr()}")
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; events: {[e['event'] for e in self.events()]}")

    def count(self, name: str) -> int:
        return sum(e["event"] == name for e in self.events())

    def stop(self) -> tuple[float, str]:
        sent = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=15)
        return time.monotonic() - sent, self.stderr()


def write_config(tmp_path: Path, audio_dir: Path, vl_dir: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[models]\naudio_dir = "{audio_dir}"\nvl_dir = "{vl_dir}"\n[runtime]\ninference_precision = "f32"\n'
        f'[generation]\nmax_new_tokens = 12\nsampling = "config"\ntemperature = 0.0\n[activation]\nmode = "always"\n'
        f'[screen]\nmonitor = 1\nsave_dir = "{tmp_path / "shots"}"\n[tray]\nenabled = true\n'
    )
    return path


def request_wav(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "request.wav"
    silence = np.zeros(int(1.0 * SAMPLE_RATE), np.float32)
    soundfile.write(path, np.concatenate([silence, spoken(text), silence]), SAMPLE_RATE)
    return path


def speech_seconds(wav: Path) -> float:
    """How much of a recording webrtcvad calls speech."""
    from assistant.audio.vad import SpeechDetector, frames_of

    audio, rate = soundfile.read(wav, dtype="float32")
    assert rate == SAMPLE_RATE
    detector = SpeechDetector(3)
    return 0.03 * sum(detector.is_speech(frame) for frame in frames_of(audio))


def test_a_spoken_screen_question_is_answered_out_loud_from_the_screenshot(
    desktop, scripted_audio, vl_f32, picture, tmp_path
):
    from PIL import Image

    assistant = Assistant(write_config(tmp_path, scripted_audio, vl_f32), desktop["env"], tmp_path / "events.jsonl")
    try:
        assistant.wait_for(lambda ev: any(e["event"] == "listening" for e in ev), 120, "listening")
        recording = tmp_path / "speaker.wav"
        with desktop["pulse"].recording_speaker(recording):
            desktop["pulse"].play_into_microphone(request_wav(tmp_path, "What is on my screen?"))
            events = assistant.wait_for(
                lambda ev: any(e["event"] in ("speak_end", "error") for e in ev), 180, "the answer to be spoken"
            )
        names = [e["event"] for e in events]
        assert "error" not in names, events
        for name in ("speech_start", "speech_end", "transcript", "route", "screenshot", "answer", "speak_start"):
            assert name in names, names
        transcript = next(e for e in events if e["event"] == "transcript")
        assert transcript["text"] == "what is on my screen"
        assert next(e for e in events if e["event"] == "route")["route"] == "screen"
        end = next(e for e in events if e["event"] == "speech_end")
        assert end["end"] > end["start"] and not end["while_speaking"]
        # The screenshot Qwen2-VL was given holds the picture, pixel for pixel.
        shots = sorted((tmp_path / "shots").glob("*.png"))
        assert len(shots) == 1
        shot = Image.open(shots[0]).convert("RGB")
        assert shot.size == (1280, 720)
        known = Image.open(picture).convert("RGB")
        region = shot.crop((100, 80, 100 + known.width, 80 + known.height))
        assert np.array_equal(np.asarray(region), np.asarray(known))
        # And the answer was heard on the speaker.
        assert speech_seconds(recording) > 0.3

        # The tray's menu: Mute stops listening (a request then goes unheard), Unmute brings it back.
        click_tray_menu_item(MENU["mute"], display=desktop["display"])
        events = assistant.wait_for(lambda ev: any(e["event"] == "muted" for e in ev), 10, "muted")
        assert [e["state"] for e in events if e["event"] == "state"][-1] == "muted"
        heard = assistant.count("speech_start")
        desktop["pulse"].play_into_microphone(request_wav(tmp_path, "Is anyone listening?"))
        time.sleep(1.0)
        assert assistant.count("speech_start") == heard
        click_tray_menu_item(MENU["mute"], display=desktop["display"])
        assistant.wait_for(lambda ev: any(e["event"] == "unmuted" for e in ev), 10, "unmuted")

        took, err = assistant.stop()
        assert assistant.proc.returncode == 0, err
        assert took < 2.0, took
        assert assistant.events()[-1]["event"] == "stopped"
        assert "tray icon shown (gtk backend" in err
    finally:
        if assistant.proc.poll() is None:
            assistant.proc.kill()
            assistant.proc.wait()


def test_a_microphone_that_goes_away_is_retried_until_it_is_back(tmp_path, scripted_audio, vl_f32):
    with pulse_virtual_mic() as pulse:
        config = write_config(tmp_path, scripted_audio, vl_f32)
        env = headless_env(tmp_path, **pulse.env())
        assistant = Assistant(config, env, tmp_path / "events.jsonl", "--no-tray")
        try:
            assistant.wait_for(lambda ev: any(e["event"] == "listening" for e in ev), 120, "listening")
            pulse.stop_daemon()  # the sound server crashes: the microphone is gone
            events = assistant.wait_for(lambda ev: any(e["event"] == "error" for e in ev), 15, "the loss noticed")
            message = next(e for e in events if e["event"] == "error")["message"]
            assert "microphone" in message
            assert [e["state"] for e in events if e["event"] == "state"][-1] == "error"
            time.sleep(2.0)  # a few failed attempts while it is away
            pulse.start_daemon()
            events = assistant.wait_for(
                lambda ev: any(e["event"] == "microphone_back" for e in ev), 60, "the microphone back"
            )
            assert [e["state"] for e in events if e["event"] == "state"][-1] != "error"
            assert assistant.proc.poll() is None  # it stayed up all along
            took, err = assistant.stop()
            assert assistant.proc.returncode == 0 and took < 2.0, (took, err)
        finally:
            if assistant.proc.poll() is None:
                assistant.proc.kill()
                assistant.proc.wait()


@pytest.fixture(scope="module")
def scripted_voice_answer(tmp_path_factory):
    """A scripted audio model that hears and answers "The capital of Peru is Lima." (the voice route)."""
    from assistant.models import convert_qwen2audio_model
    from assistant.testing import build_scripted_qwen2audio

    root = tmp_path_factory.mktemp("scripted-voice")
    out = root / "audio-f32"
    checkpoint = build_scripted_qwen2audio(root / "checkpoint", "The capital of Peru is Lima.")
    convert_qwen2audio_model(checkpoint, out, None, full_precision=True)
    return out


def test_it_never_answers_its_own_voice(tmp_path, scripted_voice_answer, vl_f32):
    """The speaker plays into the very sink the microphone listens to, with every utterance a request
    ("always"): the answer comes back through the microphone while it is being said, and must be
    recognised as heard-while-speaking and ignored — one question, one answer, no loop."""
    with pulse_virtual_mic() as pulse:  # one sink: the default output is what the microphone hears
        config = write_config(tmp_path, scripted_voice_answer, vl_f32)
        env = headless_env(tmp_path, **pulse.env())
        assistant = Assistant(config, env, tmp_path / "events.jsonl", "--no-tray")
        try:
            assistant.wait_for(lambda ev: any(e["event"] == "warmed_up" for e in ev), 120, "warmed up")
            pulse.play_into_microphone(request_wav(tmp_path, "What is the capital of Peru?"))
            assistant.wait_for(lambda ev: any(e["event"] == "speak_end" for e in ev), 120, "the answer spoken")
            time.sleep(3.0)  # long enough for the echo of the answer to be heard and judged
            events = assistant.events()
            names = [e["event"] for e in events]
            assert names.count("answer") == 1, names
            assert next(e for e in events if e["event"] == "answer")["text"] == "The capital of Peru is Lima."
            echoes = [e for e in events if e["event"] == "speech_end" and e["while_speaking"]]
            assert echoes, "the microphone did not hear the answer; the test proves nothing"
            ignored = [e["reason"] for e in events if e["event"] == "ignored"]
            assert ignored.count("heard while speaking") == len(echoes), events
            _took, err = assistant.stop()
            assert assistant.proc.returncode == 0, err
        finally:
            if assistant.proc.poll() is None:
                assistant.proc.kill()
                assistant.proc.wait()
