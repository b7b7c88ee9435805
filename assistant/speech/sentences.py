"""Streamed answer text cut into sentences, so the voice can start before the answer is finished.

Pure logic: `feed` takes text pieces as the model streams them and returns the sentences
they completed; `flush` returns the rest at the end. A sentence ends at . ! ? or ;
followed by a space, at a newline, or at CJK end punctuation (no space follows in Chinese
or Japanese). Numbers ("3.5") and common abbreviations ("e.g.") do not end a sentence.
Where the end is certain from the text so far ("you mean." — a word, then the period), it
ends there without waiting for the next piece: with the model's tokens carrying their
leading space, that wait would cost one more token before the voice could start. A
sentence that runs on without punctuation is cut at a comma or a space after `max_chars`,
so the first audio never waits for a very long sentence.
"""

from __future__ import annotations

import re

_CJK_END = "。！？；\n"
_LATIN_END = ".!?;"
_ABBREVIATIONS = frozenset({"e.g.", "i.e.", "etc.", "vs.", "mr.", "mrs.", "ms.", "dr.", "st.", "no."})


class SentenceSplitter:
    def __init__(self, max_chars: int = 200):
        self.max_chars = max_chars
        self._pending = ""

    def feed(self, text: str) -> list[str]:
        self._pending += text
        out = []
        while True:
            cut = self._find_end(self._pending)
            if cut is None:
                break
            sentence, self._pending = self._pending[:cut].strip(), self._pending[cut:]
            if _speakable(sentence):
                out.append(sentence)
        return out

    def flush(self) -> list[str]:
        rest, self._pending = self._pending.strip(), ""
        return [rest] if _speakable(rest) else []

    def _find_end(self, text: str) -> int | None:
        """Index just after the first sentence end in `text` that is certain, else None."""
        for i, ch in enumerate(text):
            if ch in _CJK_END:
                return i + 1
            if ch in _LATIN_END and i + 1 < len(text) and text[i + 1].isspace():
                if ch == "." and _not_an_end(text[: i + 1]):
                    continue
                return i + 1
            if ch in _LATIN_END and i + 1 == len(text) and _ends_for_sure(text):
                return i + 1
        if len(text) > self.max_chars:
            window = text[: self.max_chars]
            for mark in (", ", "，", "、", " "):
                at = window.rfind(mark)
                if at > self.max_chars // 3:
                    return at + len(mark)
            return self.max_chars
        return None


def _not_an_end(upto_period: str) -> bool:
    word = re.split(r"\s", upto_period)[-1].lower()
    if word in _ABBREVIATIONS:
        return True
    return re.search(r"(^|\n)\s*\d+\.$", upto_period) is not None  # "1. first" is a list item


def _ends_for_sure(text: str) -> bool:
    """Whether the . ! ? or ; that ends `text` ends a sentence whatever follows: ! ? ; always (a "!" or
    quote after them is dropped or starts the next piece), a period after a word of two or more letters
    that is no abbreviation ("mean.", not "3." of 3.5, "e." of e.g., "U.S." or "Dr.")."""
    if text[-1] != ".":
        return True
    word = re.split(r"\s", text)[-1]
    return re.fullmatch(r"[^\W\d_]{2,}\.", word) is not None and word.lower() not in _ABBREVIATIONS


def _speakable(text: str) -> bool:
    return any(ch.isalnum() for ch in text)
