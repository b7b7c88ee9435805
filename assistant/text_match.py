"""Matching configured phrases in transcripts: normalisation and tolerant matching (pure).

Transcripts come from speech recognition: case, punctuation, contractions and full-width
characters vary, and words are sometimes misheard. Latin-script phrases match on word
boundaries ("this window" must not match "this windowsill"); CJK phrases match as
substrings, since those languages do not separate words with spaces.
"""

from __future__ import annotations

import difflib
import re
import unicodedata

_CONTRACTIONS = {"what's": "what is", "whats": "what is", "that's": "that is", "it's": "it is", "i'm": "i am"}
# Words a speaker may put before the wake phrase; anything else before it means it was not addressed.
_FILLERS = {"um", "uh", "erm", "er", "so", "oh", "well", "hmm", "ah", "and", "嗯", "那个"}
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


def normalize(text: str) -> str:
    """Lower case, half-width, apostrophes unified, contractions expanded, punctuation to spaces."""
    text = unicodedata.normalize("NFKC", text).casefold().replace("\u2019", "'").replace("`", "'")
    words = []
    for word in re.split(r"\s+", text):
        words.append(_CONTRACTIONS.get(word.strip('.,!?;:"()'), word))
    text = " ".join(words)
    text = re.sub(r"[^\w\s']|_", " ", text)  # CJK punctuation included; letters of every script kept
    text = text.replace("'", "")
    return re.sub(r"\s+", " ", text).strip()


def is_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


def contains_phrase(transcript: str, phrase: str) -> bool:
    """Exact containment after normalisation: word-bounded for spaced scripts, substring for CJK."""
    t, p = normalize(transcript), normalize(phrase)
    if not p:
        return False
    if is_cjk(p):
        return p.replace(" ", "") in t.replace(" ", "")
    return re.search(rf"(?<!\w){re.escape(p)}(?!\w)", t) is not None


def _similar(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio()


def match_prefix(transcript: str, phrase: str, tolerance: float = 0.8) -> str | None:
    """If `transcript` starts with `phrase` (allowing small recognition errors), the rest of it.

    Up to two leading filler words ("um", "so") may come first; any other word before the phrase
    means it was not said to the assistant. Returns None when the phrase is not there.
    """
    t, p = normalize(transcript), normalize(phrase)
    if not p or not t:
        return None
    if is_cjk(p):
        return _match_cjk_prefix(t, p, tolerance)
    words, target = t.split(" "), p.split(" ")
    for skip in range(0, 3):
        if skip and words[skip - 1] not in _FILLERS:
            break
        for extra in (0, -1, 1):  # a misheard phrase can gain or lose a word ("hey assist and")
            size = len(target) + extra
            if size < 1 or skip + size > len(words):
                continue
            window = words[skip : skip + size]
            if _similar(window[0], target[0]) < 0.6 or _similar(" ".join(window), p) < tolerance:
                continue
            if extra == 0 and any(_similar(a, b) < 0.6 for a, b in zip(window, target, strict=True)):
                continue
            return " ".join(words[skip + size :]).strip()
    return None


def _match_cjk_prefix(t: str, p: str, tolerance: float) -> str | None:
    compact, target = t.replace(" ", ""), p.replace(" ", "")
    # Short CJK phrases: one misheard character is a big share of the ratio; allow exactly one.
    threshold = min(tolerance, (len(target) - 1) / len(target)) if len(target) >= 4 else tolerance
    for filler in ("", "嗯", "那个"):
        if not compact.startswith(filler):
            continue
        start = len(filler)
        window = compact[start : start + len(target)]
        if window and _similar(window, target) >= threshold - 1e-9:
            return compact[start + len(target) :].strip()
    return None
