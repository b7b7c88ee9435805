"""Text to speech samples with pyttsx3 (espeak-ng on Linux), and playback that can be stopped.

pyttsx3's runAndWait() may return before the file is written, so synthesis waits for the
engine's finished-utterance callback; it allows one save_to_file per run. Synthesising to a
wav and playing it through sounddevice (instead of pyttsx3's own playback) makes a reply
stoppable mid-sentence.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .voices import SpeechUnavailable

log = logging.getLogger(__name__)

_engine_lock = threading.Lock()  # pyttsx3 engines are not safe to drive from two threads at once


@dataclass(frozen=True)
class Speech:
    samples: np.ndarray  # float32 mono
    sample_rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate


def synthesize(text: str, voice: str = "", rate: int = 175, timeout: float = 60.0) -> Speech:
    """Speak `text` into samples. Raises SpeechUnavailable when no engine can."""
    import soundfile

    with tempfile.TemporaryDirectory(prefix="assistant-tts-") as tmp, _engine_lock:
        path = Path(tmp) / "speech.wav"
        done = threading.Event()
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                import pyttsx3

                engine = pyttsx3.init()
                if voice:
                    engine.setProperty("voice", voice)
                engine.setProperty("rate", rate)
                engine.connect("finished-utterance", lambda name, completed: done.set())
                engine.save_to_file(text, str(path))
                engine.runAndWait()
        except Exception as exc:  # pyttsx3 raises whatever its driver raises
            raise SpeechUnavailable(f"speech synthesis failed ({type(exc).__name__}: {exc})") from None
        deadline = time.monotonic() + timeout
        while not (done.is_set() and path.exists() and path.stat().st_size > 44):
            if time.monotonic() > deadline:
                raise SpeechUnavailable("speech synthesis produced no audio; check espeak-ng")
            time.sleep(0.01)
        samples, sample_rate = soundfile.read(path, dtype="float32", always_2d=True)
    return Speech(samples.mean(axis=1), int(sample_rate))


class Player:
    """Plays speech on an output device; `stop()` from any thread cuts it off."""

    def __init__(self, device: str | int | None = None):
        self.device = None if device in ("", None) else device
        self._stopped = threading.Event()

    def play(self, speech: Speech) -> bool:
        """Block until played; False when stopped early."""
        from ..audio.devices import load_sounddevice

        sd = load_sounddevice()
        self._stopped.clear()
        try:
            sd.play(speech.samples, speech.sample_rate, device=self.device)
            end = time.monotonic() + speech.seconds + 1.0
            while time.monotonic() < end:
                if self._stopped.wait(0.02):
                    sd.stop()
                    return False
                stream = sd.get_stream()
                if not stream.active:
                    break
            sd.wait()
        except Exception as exc:  # PortAudio errors are plain exceptions
            raise SpeechUnavailable(
                f"cannot play audio ({exc}); check the speaker or set [tts] enabled = false"
            ) from None
        return True

    def stop(self) -> None:
        self._stopped.set()
