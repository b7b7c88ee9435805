"""webrtcvad over 16 kHz mono int16 audio in 30 ms frames, and utterances cut out of a stream.

webrtcvad costs a few microseconds per frame, so an idle listener costs about nothing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .endpointing import Endpointer, EndpointEvent, EndpointSettings

SAMPLE_RATE = 16000
FRAME_SAMPLES = SAMPLE_RATE * 30 // 1000  # 480


def to_int16(audio: np.ndarray) -> np.ndarray:
    """float32 in [-1, 1] (or int16 already) as int16 samples."""
    if audio.dtype == np.int16:
        return audio
    return (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)


def frames_of(audio: np.ndarray) -> Iterator[np.ndarray]:
    """Consecutive whole 30 ms frames (a trailing partial frame is dropped)."""
    samples = to_int16(audio)
    for i in range(0, len(samples) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        yield samples[i : i + FRAME_SAMPLES]


class SpeechDetector:
    def __init__(self, aggressiveness: int = 2):
        import webrtcvad

        self._vad = webrtcvad.Vad(aggressiveness)

    def is_speech(self, frame: np.ndarray) -> bool:
        return self._vad.is_speech(frame.tobytes(), SAMPLE_RATE)


@dataclass(frozen=True)
class Utterance:
    audio: np.ndarray  # int16, pre-roll included
    start: float  # seconds, first speech frame (stream time)
    end: float  # seconds, end of the last speech frame
    reason: str


class UtteranceCutter:
    """Frames in, utterances out: VAD + endpointer + a pre-roll buffer, for one stream."""

    def __init__(self, settings: EndpointSettings | None = None, aggressiveness: int = 2):
        self.settings = settings or EndpointSettings()
        self.detector = SpeechDetector(aggressiveness)
        self.endpointer = Endpointer(self.settings)
        # Enough frames for the pre-roll and the speech run that triggered the start.
        held = self.settings.frames(self.settings.pre_roll_ms) + self.settings.frames(self.settings.speech_start_ms) + 2
        self._pre_roll: deque[tuple[float, np.ndarray]] = deque(maxlen=held)
        self._recording: list[np.ndarray] = []
        self._recording_from = 0.0
        self.t = 0.0

    def feed(self, frame: np.ndarray) -> list[EndpointEvent | Utterance]:
        """One 30 ms int16 frame; returns endpoint events and finished utterances."""
        t = self.t
        self.t += FRAME_SAMPLES / SAMPLE_RATE
        events = self.endpointer.process(t, self.detector.is_speech(frame))
        out: list[EndpointEvent | Utterance] = []
        if self.endpointer.in_speech or any(e.kind != "speech_start" for e in events):
            self._recording.append(frame)
        else:
            self._pre_roll.append((t, frame))
        for event in events:
            out.append(event)
            if event.kind == "speech_start":
                # Frames of the start run plus the pre-roll before it.
                keep = [(ft, f) for (ft, f) in self._pre_roll if ft >= event.start - self.settings.pre_roll_ms / 1000]
                self._recording_from = keep[0][0] if keep else t
                self._recording = [f for _, f in keep] + [frame]
                self._pre_roll.clear()
            else:
                if event.kind == "speech_end":
                    out.append(self._utterance(event))
                self._recording = []
        return out

    def speech_so_far(self) -> tuple[float, np.ndarray] | None:
        """(start, int16 audio from the pre-roll on) of the utterance in progress, or None between utterances."""
        start = self.endpointer.utterance_start
        if start is None or not self._recording:
            return None
        return start, np.concatenate(self._recording)

    def skip(self) -> None:
        """One frame that is not listened to (muted): time goes on, speech in progress is dropped."""
        self.t += FRAME_SAMPLES / SAMPLE_RATE
        self.endpointer.reset()
        self._recording = []
        self._pre_roll.clear()

    def flush(self) -> list[EndpointEvent | Utterance]:
        out: list[EndpointEvent | Utterance] = []
        for event in self.endpointer.flush():
            out.append(event)
            if event.kind == "speech_end":
                out.append(self._utterance(event))
        self._recording = []
        return out

    def _utterance(self, event: EndpointEvent) -> Utterance:
        audio = np.concatenate(self._recording) if self._recording else np.zeros(0, np.int16)
        # Keep from the pre-roll to a little after the last speech frame.
        last = int((event.end - self._recording_from) * SAMPLE_RATE) + 3 * FRAME_SAMPLES
        return Utterance(audio[: max(0, last)], event.start, float(event.end), event.reason)
