"""Which model answers a request, decided from what the request carries (pure logic)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Route(enum.StrEnum):
    VOICE = "voice"  # Qwen2-Audio: the spoken request is the whole user turn
    ANALYSIS = "analysis"  # Qwen2-Audio: audio plus a text question about it
    TEXT = "text"  # Qwen2-VL's language model: a typed question with nothing attached
    IMAGE = "image"  # Qwen2-VL with images
    VIDEO = "video"  # Qwen2-VL with a video
    SCREEN = "screen"  # Qwen2-VL with a screenshot

    @property
    def uses_vision_model(self) -> bool:
        return self in (Route.TEXT, Route.IMAGE, Route.VIDEO, Route.SCREEN)


@dataclass(frozen=True)
class RequestShape:
    audio: bool = False
    text: bool = False
    images: int = 0
    videos: int = 0
    screen: bool = False


def choose_route(shape: RequestShape) -> Route:
    """Audio alone: voice chat; audio + text: analysis; anything visual: Qwen2-VL.

    With something visual and audio but no text, the audio's transcript becomes the question.
    """
    if shape.screen:
        return Route.SCREEN
    if shape.videos:
        return Route.VIDEO
    if shape.images:
        return Route.IMAGE
    if shape.audio:
        return Route.ANALYSIS if shape.text else Route.VOICE
    if shape.text:
        return Route.TEXT
    raise ValueError("nothing to ask: give --audio, --text, --image, --video or --screen")


def mentions_screen(transcript: str, screen_phrases: tuple[str, ...]) -> bool:
    """A spoken request about the screen ("what's on my screen", "this window", "屏幕上")."""
    from .text_match import contains_phrase

    return any(contains_phrase(transcript, phrase) for phrase in screen_phrases)


# Said after the wake phrase while an answer is being spoken: stop talking, answer nothing.
STOP_PHRASES = (
    *("stop", "stop talking", "be quiet", "quiet", "cancel", "never mind", "shut up"),
    *("停", "停止", "别说了", "安静"),
)


def is_stop_command(question: str) -> bool:
    """ "Hey assistant, stop": the whole request is one of the stop phrases."""
    from .text_match import normalize

    return normalize(question) in {normalize(p) for p in STOP_PHRASES}
