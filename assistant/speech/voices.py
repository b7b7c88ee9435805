"""The text-to-speech voices pyttsx3 offers on this machine."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

from ..errors import AssistantError


class SpeechUnavailable(AssistantError):
    """No speech engine can start."""


@dataclass(frozen=True)
class Voice:
    id: str
    name: str
    languages: tuple[str, ...]


def list_voices() -> list[Voice]:
    try:
        # pyttsx3 prints driver chatter to stdout; keep the command line's output clean.
        with contextlib.redirect_stdout(io.StringIO()):
            import pyttsx3

            engine = pyttsx3.init()
            raw = engine.getProperty("voices") or []
            with contextlib.suppress(Exception):
                engine.stop()
    except Exception as exc:  # pyttsx3 raises plain errors (OSError, RuntimeError, KeyError) per driver
        raise SpeechUnavailable(
            f"no speech engine ({type(exc).__name__}: {exc}); on Linux: sudo apt-get install espeak-ng"
        ) from None
    voices = []
    for v in raw:
        langs = tuple(
            lang.decode(errors="replace").lstrip("\x05") if isinstance(lang, bytes) else str(lang)
            for lang in (getattr(v, "languages", None) or [])
        )
        voices.append(Voice(id=str(v.id), name=str(v.name), languages=langs))
    return voices
