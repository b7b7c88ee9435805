"""The voice conversation's history: bounded in turns and in seconds of speech (pure logic)."""

from __future__ import annotations

import numpy as np

from assistant.daemon.conversation import HISTORY_AUDIO_S, HISTORY_TURNS, Conversation
from assistant.models.transcript import SAMPLE_RATE


def clip(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), np.float32)


def kept_seconds(conversation: Conversation) -> list[float]:
    return [len(c) / SAMPLE_RATE for c in conversation.clips]


def test_short_turns_are_kept_up_to_the_turn_limit():
    conversation = Conversation()
    for i in range(HISTORY_TURNS + 2):
        conversation.remember(clip(3), f"answer {i}")
    assert kept_seconds(conversation) == [3.0] * HISTORY_TURNS
    assert conversation.answers == [f"answer {i}" for i in range(2, HISTORY_TURNS + 2)]


def test_long_turns_are_forgotten_beyond_60_s_of_speech_oldest_first():
    assert HISTORY_AUDIO_S == 60
    conversation = Conversation()
    for seconds in (10, 10, 10, 30):
        conversation.remember(clip(seconds), "ok")
    assert kept_seconds(conversation) == [10, 10, 10, 30]  # 60 s: all of it
    conversation.remember(clip(30), "ok")
    assert kept_seconds(conversation) == [30, 30]
    assert len(conversation.answers) == 2


def test_the_latest_turn_is_kept_even_when_it_is_longer_than_the_limit():
    conversation = Conversation(max_audio_s=5)
    conversation.remember(clip(3), "first")
    conversation.remember(clip(20), "second")
    assert kept_seconds(conversation) == [20] and conversation.answers == ["second"]
