"""Where an utterance starts and ends, from per-frame speech decisions (pure logic, no audio).

A state machine over `(time, is_speech)` of fixed-length frames, as Home Assistant's VAD
does: speech lasting `speech_start_ms` starts an utterance (dated from the first speech
frame of that run), `end_silence_ms` of silence ends it (dated at the end of the last speech
frame), utterances shorter than `min_utterance_ms` are dropped, and one that reaches
`max_utterance_s` is ended there. A single non-speech frame inside a start run is tolerated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FRAME_MS = 30


@dataclass(frozen=True)
class EndpointSettings:
    speech_start_ms: int = 150
    end_silence_ms: int = 700
    pre_roll_ms: int = 500
    min_utterance_ms: int = 300
    max_utterance_s: float = 30.0
    frame_ms: int = FRAME_MS

    @classmethod
    def from_audio(cls, audio) -> EndpointSettings:
        """From the configuration's [audio] section."""
        return cls(
            audio.speech_start_ms,
            audio.end_silence_ms,
            audio.pre_roll_ms,
            audio.min_utterance_ms,
            audio.max_utterance_s,
        )

    def frames(self, ms: float) -> int:
        return max(1, round(ms / self.frame_ms))


@dataclass(frozen=True)
class EndpointEvent:
    kind: Literal["speech_start", "speech_end", "discarded"]
    start: float  # seconds: first speech frame
    end: float | None = None  # seconds: end of the last speech frame (speech_end, discarded)
    reason: str = ""  # why an utterance ended or was dropped: "silence", "max_length", "too_short"


class Endpointer:
    """Feed one decision per frame; get events when an utterance starts, ends or is dropped."""

    def __init__(self, settings: EndpointSettings | None = None):
        self.settings = settings or EndpointSettings()
        self._start_needed = self.settings.frames(self.settings.speech_start_ms)
        self._end_needed = self.settings.frames(self.settings.end_silence_ms)
        self.reset()

    def reset(self) -> None:
        self.in_speech = False
        self._run_start: float | None = None  # first frame of the current speech run (before a start)
        self._run_frames = 0
        self._gap_frames = 0
        self._utterance_start = 0.0
        self._last_speech_end = 0.0
        self._silence_frames = 0

    @property
    def utterance_start(self) -> float | None:
        """When the utterance in progress started (its first speech frame), or None between utterances."""
        return self._utterance_start if self.in_speech else None

    def process(self, t: float, is_speech: bool) -> list[EndpointEvent]:
        """`t` is the frame's start time in seconds."""
        frame = self.settings.frame_ms / 1000
        if not self.in_speech:
            return self._waiting(t, is_speech, frame)
        events: list[EndpointEvent] = []
        if is_speech:
            self._silence_frames = 0
            self._last_speech_end = t + frame
        else:
            self._silence_frames += 1
        if self._silence_frames >= self._end_needed:
            events.append(self._finish("silence"))
        elif t + frame - self._utterance_start >= self.settings.max_utterance_s - 1e-9:
            if is_speech:
                self._last_speech_end = t + frame
            events.append(self._finish("max_length"))
        return events

    def flush(self) -> list[EndpointEvent]:
        """The input ended: end an utterance in progress."""
        return [self._finish("end_of_input")] if self.in_speech else []

    def _waiting(self, t: float, is_speech: bool, frame: float) -> list[EndpointEvent]:
        if is_speech:
            if self._run_start is None:
                self._run_start = t
            self._run_frames += 1
            self._gap_frames = 0
        elif self._run_start is not None:
            self._gap_frames += 1
            if self._gap_frames > 1:  # one stray frame is tolerated, two end the run
                self._run_start, self._run_frames, self._gap_frames = None, 0, 0
        if self._run_start is not None and self._run_frames >= self._start_needed:
            self.in_speech = True
            self._utterance_start = self._run_start
            self._last_speech_end = t + frame
            self._silence_frames = 0
            self._run_start, self._run_frames, self._gap_frames = None, 0, 0
            return [EndpointEvent("speech_start", self._utterance_start)]
        return []

    def _finish(self, reason: str) -> EndpointEvent:
        start, end = self._utterance_start, self._last_speech_end
        self.reset()
        if (end - start) * 1000 < self.settings.min_utterance_ms:
            return EndpointEvent("discarded", start, end, "too_short")
        return EndpointEvent("speech_end", start, end, reason)
