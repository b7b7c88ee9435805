"""What the service is doing, as the tray icon shows it (pure logic).

Several things can be true at once (muted while still speaking an answer, a lost
microphone while thinking); the icon shows the one that matters most to the user.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace


class State(enum.StrEnum):
    IDLE = "idle"  # waiting for speech
    LISTENING = "listening"  # hearing someone speak
    THINKING = "thinking"  # a model is working on a request
    SPEAKING = "speaking"  # saying an answer
    MUTED = "muted"  # the microphone is ignored on purpose
    ERROR = "error"  # the microphone is gone (being retried)


@dataclass(frozen=True)
class Activity:
    hearing: bool = False
    thinking: bool = False
    speaking: bool = False
    muted: bool = False
    microphone_lost: bool = False

    def with_(self, **changes: bool) -> Activity:
        return replace(self, **changes)

    @property
    def state(self) -> State:
        if self.microphone_lost:
            return State.ERROR
        if self.speaking:  # an answer being said is the first thing to know (and to stop)
            return State.SPEAKING
        if self.muted:
            return State.MUTED
        if self.thinking:
            return State.THINKING
        if self.hearing:
            return State.LISTENING
        return State.IDLE
