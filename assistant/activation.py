"""Whether an utterance is a request: wake phrase, push-to-talk or always, plus the follow-up
window after an answer in which no wake phrase is needed (pure logic; times in seconds)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .text_match import match_prefix, may_start_with

Mode = Literal["wake_phrase", "push_to_talk", "always"]


@dataclass(frozen=True)
class Decision:
    accepted: bool
    question: str  # the transcript without the wake phrase
    reason: str  # "wake_phrase", "follow_up", "push_to_talk", "always", or why not


# A push counts for speech that began up to this long before it (one starts talking while clicking).
PUSH_LEAD_S = 1.0


class Activation:
    def __init__(self, mode: Mode, wake_phrases: tuple[str, ...], follow_up_s: float):
        self.mode = mode
        self.wake_phrases = wake_phrases
        self.follow_up_s = follow_up_s
        self._follow_up_until = float("-inf")
        self._armed_at: float | None = None  # push-to-talk pressed then, waiting for the next utterance

    def push_to_talk(self, at: float = float("-inf")) -> None:
        """The tray's "Ask" (or a command) at `at`: accept the next utterance that starts after it (or at
        most PUSH_LEAD_S before it), whatever the mode. Speech that ended before the push, still being
        transcribed, is not taken for it."""
        self._armed_at = at

    def _pushed_for(self, at: float) -> bool:
        return self._armed_at is not None and at >= self._armed_at - PUSH_LEAD_S

    def answered(self, at: float) -> None:
        """An answer finished at `at`: a follow-up until `at + follow_up_s` needs no wake phrase."""
        self._follow_up_until = at + self.follow_up_s

    def only_wake_phrase_counts(self, at: float, while_speaking: bool = False) -> bool:
        """Whether an utterance that started at `at` is a request only if it starts with a wake phrase
        (then its transcript can stop as soon as it cannot): wake-phrase mode outside a follow-up and
        without a push, or any mode while the assistant speaks."""
        if while_speaking:
            return True
        return self.mode == "wake_phrase" and not self._pushed_for(at) and at > self._follow_up_until

    def may_be_addressed(self, transcript_so_far: str) -> bool:
        """Whether a transcript that so far reads this can still start with one of the wake phrases."""
        return any(may_start_with(transcript_so_far, phrase) for phrase in self.wake_phrases)

    def decide(self, transcript: str, at: float) -> Decision:
        """`at` is when the utterance started."""
        text = transcript.strip()
        for phrase in self.wake_phrases:
            rest = match_prefix(text, phrase)
            if rest is not None:  # a wake phrase always works, and is removed from the question
                if self._pushed_for(at):
                    self._armed_at = None
                return Decision(True, rest, "wake_phrase")
        if self._pushed_for(at):
            self._armed_at = None
            return Decision(True, text, "push_to_talk")
        if self.mode == "always":
            return Decision(bool(text), text, "always" if text else "empty")
        if at <= self._follow_up_until and text:
            return Decision(True, text, "follow_up")
        if self.mode == "push_to_talk":
            return Decision(False, text, "not armed")
        return Decision(False, text, "no wake phrase")
