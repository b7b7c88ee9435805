"""Speech recognition with Qwen2-Audio's own prompt, and the pure parts around it.

Qwen2-Audio hears at most 30 s per clip: longer audio is split into consecutive clips
(never cut off), each one an "Audio N" part of the same user turn.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from .preprocess.audio import audio_token_count

SAMPLE_RATE = 16000
CLIP_SECONDS = 30
ASR_PROMPT = "Detect the language and recognize the speech:"


# The transcript's token budget follows the clip's length: fast speech is ~3 words (~4 tokens) per
# second in English and ~5 characters (~6 tokens) in Chinese; 10 tokens per second leaves room for
# both, and a fixed part covers the language tag and very short clips. A 3 s question then may take
# 50 tokens, not 200: a model that fails to stop (or random weights) costs 4x less.
TRANSCRIPT_TOKENS_PER_SECOND = 10
TRANSCRIPT_TOKENS_FIXED = 20


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str | None  # ISO 639-1 code, e.g. "en", "zh"; None when it cannot be told
    tokens: int = 0  # new tokens generated for it
    stopped_early: bool = False  # cut short once it could no longer start with a wake phrase


def transcript_token_budget(seconds: float) -> int:
    """Most new tokens a transcript of `seconds` of speech may need (see TRANSCRIPT_TOKENS_PER_SECOND)."""
    return TRANSCRIPT_TOKENS_FIXED + int(TRANSCRIPT_TOKENS_PER_SECOND * max(0.0, seconds) + 0.999)


def split_clips(audio: np.ndarray, seconds: int = CLIP_SECONDS) -> list[np.ndarray]:
    """Audio longer than one clip becomes consecutive clips, so nothing is cut off."""
    size = seconds * SAMPLE_RATE
    clips = [audio[i : i + size] for i in range(0, max(len(audio), 1), size)]
    if len(clips) > 1 and audio_token_count(len(clips[-1])) == 0:
        clips.pop()  # a tail too short for one audio token (< 0.03 s): the model would hear nothing of it
    return clips


def audio_prompt(pre: Any, clips: list[np.ndarray], question: str | None) -> dict[str, np.ndarray]:
    """The processor inputs of one user turn: every clip (Audio 1, Audio 2, ...) and an optional question."""
    content: list[dict[str, Any]] = [{"type": "audio", "audio_url": f"clip-{i}"} for i in range(len(clips))]
    if question:
        content.append({"type": "text", "text": question})
    prompt = pre.apply_chat_template([{"role": "user", "content": content}])
    return pre(prompt, audio=clips)


def parse_transcript(raw: str) -> tuple[str, str | None]:
    """Strip special tokens; a leading language tag such as <|en|> names the language."""
    match = re.match(r"\s*<\|([a-z]{2,3})\|>", raw)
    tag = match.group(1) if match else None
    return re.sub(r"<\|[^|>]*\|>", "", raw).strip(), tag


def guess_language(text: str) -> str | None:
    """Script-based guess when the model gave no tag: CJK scripts, else Latin text as English."""
    if not text:
        return None
    if any("\u4e00" <= ch <= "\u9fff" for ch in text):
        return "zh"
    if any("\u3040" <= ch <= "\u30ff" for ch in text):
        return "ja"
    if any("\uac00" <= ch <= "\ud7af" for ch in text):
        return "ko"
    return "en" if all(ord(ch) < 0x250 for ch in text) else None
