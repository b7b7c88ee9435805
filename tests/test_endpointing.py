"""Endpointing: the pure state machine on synthetic frame sequences, then webrtcvad on real
speech (espeak-ng) placed in silence and in noise, with known boundaries."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.audio.endpointing import Endpointer, EndpointSettings
from assistant.audio.vad import SAMPLE_RATE, Utterance, UtteranceCutter, frames_of

from speech import spoken

FRAME = 0.03


def run(pattern: list[tuple[bool, int]], settings: EndpointSettings | None = None):
    """Feed runs of (is_speech, number of 30 ms frames); return all events."""
    endpointer = Endpointer(settings)
    events, t = [], 0.0
    for is_speech, frames in pattern:
        for _ in range(frames):
            events += endpointer.process(t, is_speech)
            t += FRAME
    return events + endpointer.flush()


def test_one_utterance_with_exact_boundaries():
    events = run([(False, 33), (True, 40), (False, 50)])
    assert [e.kind for e in events] == ["speech_start", "speech_end"]
    assert events[0].start == pytest.approx(33 * FRAME)
    assert events[1].end == pytest.approx(73 * FRAME) and events[1].reason == "silence"


def test_clicks_do_not_start_and_short_pauses_do_not_end():
    assert run([(False, 33), (True, 3), (False, 33), (True, 2), (False, 33)]) == []  # 90 ms and 60 ms
    events = run([(True, 20), (False, 17), (True, 20), (False, 33)])  # a 510 ms pause inside
    assert [e.kind for e in events] == ["speech_start", "speech_end"]
    assert events[1].end == pytest.approx(57 * FRAME)


def test_one_stray_frame_inside_a_start_run_is_tolerated():
    events = run([(True, 3), (False, 1), (True, 3), (False, 33)])
    assert events and events[0].kind == "speech_start" and events[0].start == 0.0


def test_too_short_is_discarded_and_too_long_is_cut():
    settings = EndpointSettings(min_utterance_ms=400, max_utterance_s=2.0)
    short = run([(True, 10), (False, 33)], settings)
    assert [(e.kind, e.reason) for e in short] == [("speech_start", ""), ("discarded", "too_short")]
    long = run([(True, 167), (False, 33)], settings)  # 5 s
    ends = [e for e in long if e.kind == "speech_end"]
    assert ends[0].reason == "max_length" and 2.0 <= ends[0].end - ends[0].start <= 2.0 + FRAME
    assert len(ends) == 3  # the speech goes on: each 2 s piece is an utterance of its own


def test_end_of_input_ends_an_utterance_in_progress():
    events = run([(True, 33)])
    assert events[-1].kind == "speech_end" and events[-1].reason == "end_of_input"


# -- real audio ---------------------------------------------------------------------------------


def speech_bounds(audio: np.ndarray, threshold: float = 0.02) -> tuple[float, float]:
    """Where espeak-ng's own output has sound (it pads with silence)."""
    loud = np.flatnonzero(np.abs(audio) > threshold)
    return loud[0] / SAMPLE_RATE, (loud[-1] + 1) / SAMPLE_RATE


def place(parts: list[np.ndarray | float], noise_dbfs: float | None = None, seed: int = 0):
    """Concatenate speech arrays and silences (seconds); add white noise; return audio and true bounds."""
    pieces, truths, t = [], [], 0.0
    for part in parts:
        if isinstance(part, float):
            pieces.append(np.zeros(int(part * SAMPLE_RATE), np.float32))
            t += part
        else:
            a, b = speech_bounds(part)
            truths.append((t + a, t + b))
            pieces.append(part)
            t += len(part) / SAMPLE_RATE
    audio = np.concatenate(pieces)
    if noise_dbfs is not None:
        rng = np.random.default_rng(seed)
        audio = audio + rng.standard_normal(len(audio)).astype(np.float32) * 10 ** (noise_dbfs / 20)
    return audio, truths


def cut(audio: np.ndarray, aggressiveness: int = 2) -> list[Utterance]:
    cutter = UtteranceCutter(EndpointSettings(), aggressiveness)
    found = []
    for frame in frames_of(audio):
        found += [x for x in cutter.feed(frame) if isinstance(x, Utterance)]
    return found + [x for x in cutter.flush() if isinstance(x, Utterance)]


@pytest.mark.parametrize("noise", [None, -45.0, -35.0])
def test_real_speech_boundaries_within_150_ms(noise):
    first = spoken("What is the capital of Peru?")
    second = spoken("And how do I say thank you in Japanese?")
    audio, truths = place([1.5, first, 2.0, second, 1.5], noise_dbfs=noise)
    utterances = cut(audio)
    assert len(utterances) == 2, [(u.start, u.end) for u in utterances]
    for utterance, (start, end) in zip(utterances, truths, strict=True):
        assert abs(utterance.start - start) <= 0.15, (utterance.start, start)
        assert abs(utterance.end - end) <= 0.15, (utterance.end, end)
        # The cut-out audio holds the pre-roll and the whole of the speech.
        assert len(utterance.audio) / SAMPLE_RATE >= (end - start) + 0.4


@pytest.mark.parametrize("noise", [None, -35.0, -30.0])
def test_a_minute_of_silence_or_background_noise_yields_nothing(noise):
    audio, _ = place([60.0], noise_dbfs=noise, seed=3)
    assert cut(audio) == []
