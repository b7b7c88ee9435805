"""Spoken replies: sentences cut from streamed text, and the speaker thread that says them one by one,
stops mid-reply and tells the microphone when to ignore what it hears (pure logic and fakes)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from assistant.speech.sentences import SentenceSplitter
from assistant.speech.speaker import ReplyCallbacks, Speaker
from assistant.speech.synthesis import Speech


def split_stream(text: str, piece: int = 3, **kw) -> list[str]:
    splitter = SentenceSplitter(**kw)
    out = []
    for i in range(0, len(text), piece):
        out += splitter.feed(text[i : i + piece])
    return out + splitter.flush()


def test_sentences_come_out_as_soon_as_they_end():
    splitter = SentenceSplitter()
    assert splitter.feed("Lima is the capital") == []
    assert splitter.feed(" of Peru. It lies") == ["Lima is the capital of Peru."]
    assert splitter.feed(" on the coast") == []
    assert splitter.flush() == ["It lies on the coast"]


@pytest.mark.parametrize(
    ("pieces", "at_once"),
    [
        (["Lima is the city you mean", "."], ["Lima is the city you mean."]),  # no wait for " Need"
        (["Need help", "!"], ["Need help!"]),
        (["It costs 3", "."], []),  # 3.5 may follow
        (["Use e", "."], []),  # e.g. may follow
        (["Ask Dr", "."], []),
        (["The U.S", "."], []),
    ],
)
def test_a_sentence_whose_end_is_certain_is_not_held_back_for_the_next_token(pieces, at_once):
    splitter = SentenceSplitter()
    out = []
    for piece in pieces:
        out += splitter.feed(piece)
    assert out == at_once


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("Pi is 3.14 or so. Yes!", ["Pi is 3.14 or so.", "Yes!"]),
        ("Use e.g. a fork. Or not?", ["Use e.g. a fork.", "Or not?"]),
        ("The answer is 42. Next one.", ["The answer is 42.", "Next one."]),
        ("Steps:\n1. Open it\n2. Close it", ["Steps:", "1. Open it", "2. Close it"]),
        ("秘鲁的首都是利马。它在海边！", ["秘鲁的首都是利马。", "它在海边！"]),
        ("...", []),
        ("Wait... what?! Really.", ["Wait...", "what?!", "Really."]),
        ("", []),
    ],
)
def test_sentence_boundaries(text, sentences):
    assert split_stream(text) == sentences


def test_a_sentence_without_an_end_is_cut_at_a_comma_after_max_chars():
    text = "one, two, three, four, five, six, seven, eight, nine, ten, eleven, twelve"
    pieces = split_stream(text, max_chars=30)
    assert all(len(p) <= 30 for p in pieces) and " ".join(pieces) == text
    assert pieces[0].endswith(",")


class FakePlayer:
    """Plays for `seconds` per sentence unless stopped; records what it played."""

    def __init__(self, seconds: float = 0.0):
        self.seconds = seconds
        self.played: list[int] = []
        self._stop = threading.Event()

    def play(self, speech: Speech) -> bool:
        self._stop.clear()
        stopped = self._stop.wait(self.seconds)
        if not stopped:
            self.played.append(len(speech.samples))
        return not stopped

    def stop(self) -> None:
        self._stop.set()


def fake_voice(text: str) -> Speech:
    return Speech(np.zeros(len(text), np.float32), 16000)


def test_a_reply_is_spoken_in_order_with_start_and_end():
    player = FakePlayer()
    speaker = Speaker(fake_voice, player, tail_s=0.0)
    seen = []
    reply = speaker.begin(
        ReplyCallbacks(
            on_start=lambda t, synthesis_s: seen.append("start"), on_end=lambda i, e: seen.append(("end", i, e))
        )
    )
    for sentence in ("One.", "Three.", "Five five."):
        reply.say(sentence)
    reply.close()
    assert reply.finished.wait(5)
    assert player.played == [4, 6, 10]
    assert seen == ["start", ("end", False, None)]
    speaker.shutdown()


def test_stop_cuts_the_reply_and_drops_the_rest_but_not_the_next_reply():
    player = FakePlayer(seconds=5.0)
    speaker = Speaker(fake_voice, player, tail_s=0.0)
    ends = []
    reply = speaker.begin(ReplyCallbacks(on_end=lambda i, e: ends.append(i)))
    reply.say("A long first sentence.")
    reply.say("Never said.")
    reply.close()
    time.sleep(0.2)
    assert speaker.speaking and speaker.busy()
    started = time.monotonic()
    assert speaker.stop()
    assert reply.finished.wait(2) and time.monotonic() - started < 1.0
    assert ends == [True] and player.played == []
    player.seconds = 0.0
    second = speaker.begin()
    second.say("Heard.")
    second.close()
    assert second.finished.wait(2) and player.played == [6]
    speaker.shutdown()


def test_the_microphone_is_ignored_for_a_tail_after_speaking():
    speaker = Speaker(fake_voice, FakePlayer(), tail_s=0.5)
    assert not speaker.busy()
    reply = speaker.begin()
    reply.say("Hi.")
    reply.close()
    reply.finished.wait(2)
    now = time.monotonic()
    assert not speaker.speaking and speaker.busy(now) and not speaker.busy(now + 0.6)
    speaker.shutdown()


def test_a_voice_failure_ends_the_reply_with_the_error():
    def broken(text: str) -> Speech:
        raise RuntimeError("espeak-ng is missing")

    speaker = Speaker(broken, FakePlayer(), tail_s=0.0)
    ends = []
    reply = speaker.begin(ReplyCallbacks(on_end=lambda i, e: ends.append(e)))
    reply.say("Hello.")
    reply.say("Again.")
    reply.close()
    assert reply.finished.wait(2)
    assert ends == ["espeak-ng is missing"]
    speaker.shutdown()
