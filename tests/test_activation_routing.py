"""Wake phrases, the follow-up window, push-to-talk, and screen routing by transcript (pure)."""

from __future__ import annotations

import pytest

from assistant.activation import Activation
from assistant.config import load_settings
from assistant.models.transcript import transcript_token_budget
from assistant.routing import mentions_screen
from assistant.text_match import match_prefix, may_start_with, normalize

ADDRESSED = [
    ("Hey assistant, what's the capital of Peru?", "what is the capital of peru"),
    ("hey assistance what's the capital of Peru", "what is the capital of peru"),  # misheard
    ("Um, hey assistant what time is it", "what time is it"),  # a filler word first
    ("Hey, assistant! How do I say thank you in Japanese?", "how do i say thank you in japanese"),
    ("OK assistant read me this", "read me this"),
    ("你好助手，秘鲁的首都是什么？", "秘鲁的首都是什么"),
    ("你好主手，今天几号", "今天几号"),  # one character misheard
]


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


@pytest.mark.parametrize(("transcript", "question"), ADDRESSED)
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


def test_a_push_is_for_speech_that_starts_after_it_not_for_a_remark_still_being_transcribed():
    activation = Activation("wake_phrase", ("hey assistant",), 0.0)
    activation.push_to_talk(at=10.0)
    assert activation.only_wake_phrase_counts(at=4.0)  # the remark began before the push
    assert activation.decide("we should meet at noon", at=4.0).reason == "no wake phrase"
    assert not activation.only_wake_phrase_counts(at=9.5)  # began while the click was on its way
    assert activation.decide("what is the capital of Peru", at=10.5).reason == "push_to_talk"
    assert not activation.decide("and now?", at=12.0).accepted
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


@pytest.mark.parametrize(("transcript", "question"), ADDRESSED)
def test_a_transcript_that_starts_with_a_wake_phrase_is_never_cut_short(settings, transcript, question):
    """Every text the transcript passes through on its way (token by token is a subset of character by
    character) may still start with a wake phrase: stopping early never loses a request."""
    activation = Activation("wake_phrase", settings.activation.wake_phrases, 8.0)
    for end in range(len(transcript) + 1):
        assert activation.may_be_addressed(transcript[:end]), transcript[:end]


@pytest.mark.parametrize(
    ("transcript", "decided_after"),
    [
        ("What's the capital of Peru?", "What's "),
        ("The meeting moved to Thursday.", "The meeting moved "),  # "the" resembles "hey": one window more
        ("Um, what did you say?", "Um, what "),
        ("今天天气怎么样", "今天"),
        ("hey there, how are you doing today", "hey there, how are you "),
    ],
)
def test_speech_not_for_the_assistant_is_recognised_after_a_few_words(settings, transcript, decided_after):
    activation = Activation("wake_phrase", settings.activation.wake_phrases, 8.0)
    assert transcript.startswith(decided_after)
    first_no = next(end for end in range(len(transcript) + 1) if not activation.may_be_addressed(transcript[:end]))
    assert first_no <= len(decided_after), transcript[:first_no]
    assert not activation.decide(transcript, at=0.0).accepted


@pytest.mark.parametrize("head", ["Hey ass.", "Hey, assis.", "hey assist", "Ok, as", "Um, hey."])
def test_a_wake_phrase_clipped_by_the_head_check_still_may_be_addressed(settings, head):
    """The head check hears the first HEAD_CHECK_S of speech: a wake phrase cut there, even with the model's
    final period, must not end the utterance as unaddressed."""
    activation = Activation("wake_phrase", settings.activation.wake_phrases, 8.0)
    assert activation.may_be_addressed(head)


def test_a_lone_filler_is_no_wake_phrase():
    assert match_prefix("um", "hey assistant") is None  # used to raise IndexError
    assert may_start_with("um", "hey assistant") and not may_start_with("um", "hey assistant", final=True)


def test_only_a_wake_phrase_counts_outside_follow_ups_pushes_and_other_modes():
    activation = Activation("wake_phrase", ("hey assistant",), follow_up_s=8.0)
    assert activation.only_wake_phrase_counts(at=1.0)
    activation.answered(at=10.0)
    assert not activation.only_wake_phrase_counts(at=12.0)  # a follow-up needs no wake phrase
    assert activation.only_wake_phrase_counts(at=19.0)
    activation.push_to_talk()
    assert not activation.only_wake_phrase_counts(at=20.0)
    always = Activation("always", ("hey assistant",), follow_up_s=8.0)
    assert not always.only_wake_phrase_counts(at=1.0)
    assert always.only_wake_phrase_counts(at=1.0, while_speaking=True)  # only a wake phrase interrupts


def test_the_transcript_budget_follows_the_utterance():
    assert transcript_token_budget(3.0) == 50
    assert transcript_token_budget(6.0) == 80
    assert transcript_token_budget(0.0) == 20
    assert transcript_token_budget(30.0) == 320  # a full clip of fast Chinese speech still fits
