"""Wake phrases, the follow-up window, push-to-talk, and screen routing by transcript (pure)."""

from __future__ import annotations

import pytest

from assistant.activation import Activation
from assistant.config import load_settings
from assistant.routing import mentions_screen
from assistant.text_match import match_prefix, normalize


@pytest.fixture(scope="module")
def settings():
    return load_settings()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("What's on my screen?", "what is on my screen"),
        ("ＨＥＹ　Assistant，what time is it？", "hey assistant what time is it"),
        ("屏幕上是什么？", "屏幕上是什么"),
        ("It\u2019s late.", "it is late"),
    ],
)
def test_normalize(text, expected):
    assert normalize(text) == expected


@pytest.mark.parametrize(
    ("transcript", "question"),
    [
        ("Hey assistant, what's the capital of Peru?", "what is the capital of peru"),
        ("hey assistance what's the capital of Peru", "what is the capital of peru"),  # misheard
        ("Um, hey assistant what time is it", "what time is it"),  # a filler word first
        ("Hey, assistant! How do I say thank you in Japanese?", "how do i say thank you in japanese"),
        ("OK assistant read me this", "read me this"),
        ("你好助手，秘鲁的首都是什么？", "秘鲁的首都是什么"),
        ("你好主手，今天几号", "今天几号"),  # one character misheard
    ],
)
def test_wake_phrases_are_found_despite_recognition_errors(settings, transcript, question):
    activation = Activation("wake_phrase", settings.activation.wake_phrases, 8.0)
    decision = activation.decide(transcript, at=0.0)
    assert decision.accepted and decision.reason == "wake_phrase"
    assert decision.question == question


@pytest.mark.parametrize(
    "transcript",
    ["What's the capital of Peru?", "I told my assistant about it", "hey there", "他是我的助理", ""],
)
def test_no_wake_phrase_no_request(settings, transcript):
    activation = Activation("wake_phrase", settings.activation.wake_phrases, 8.0)
    assert not activation.decide(transcript, at=0.0).accepted


def test_follow_up_window():
    activation = Activation("wake_phrase", ("hey assistant",), follow_up_s=8.0)
    activation.answered(at=100.0)
    assert activation.decide("and what about Chile?", at=105.0).reason == "follow_up"
    assert not activation.decide("and what about Bolivia?", at=108.5).accepted
    activation = Activation("wake_phrase", ("hey assistant",), follow_up_s=0.0)
    activation.answered(at=100.0)
    assert not activation.decide("and what about Chile?", at=100.5).accepted


def test_push_to_talk_and_always():
    activation = Activation("push_to_talk", ("hey assistant",), 0.0)
    assert not activation.decide("what time is it", at=1.0).accepted
    activation.push_to_talk()
    assert activation.decide("what time is it", at=2.0).reason == "push_to_talk"
    assert not activation.decide("and now?", at=3.0).accepted  # armed for one utterance only
    always = Activation("always", (), 0.0)
    assert always.decide("what time is it", at=0.0).accepted
    assert not always.decide("   ", at=0.0).accepted


def test_match_prefix_is_not_a_substring_search():
    assert match_prefix("the weather hey assistant", "hey assistant") is None


@pytest.mark.parametrize(
    "transcript",
    [
        "What's on my screen?",
        "what is on the screen right now",
        "Can you summarise this window",
        "What am I looking at?",
        "Read me the numbers in this table on my screen",
        "屏幕上是什么？",
        "帮我看看这个窗口",
        "What does this error on my screen mean",
    ],
)
def test_screen_requests_route_to_the_screen(settings, transcript):
    assert mentions_screen(transcript, settings.routing.screen_phrases)


@pytest.mark.parametrize(
    "transcript",
    [
        "What's the capital of Peru?",
        "Is sunscreen good for children?",
        "How do I fix a screen door?",
        "I love window shopping",
        "How do I clean the windows of my car",
        "Look at the stars tonight",
        "屏风是什么",  # a folding screen, not the display
        "Tell me about the movie Windows",
    ],
)
def test_near_misses_do_not_route_to_the_screen(settings, transcript):
    assert not mentions_screen(transcript, settings.routing.screen_phrases)
