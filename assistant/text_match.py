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
        if skip and (skip >= len(words) or words[skip - 1] not in _FILLERS):
            break  # ("um" alone is no wake phrase: nothing is left to match)
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


def may_start_with(partial: str, phrase: str, final: bool = False) -> bool:
    """Whether a transcript that so far reads `partial` can still turn out to start with `phrase`.

    The check `match_prefix` makes on the whole transcript, decided as early as the text allows, so a
    transcription of speech not meant for the assistant can stop after a few tokens. The last word of
    `partial` may still grow unless the text ends with a space or punctuation (or `final`). Errs on the
    side of "yes": a wrong "no" would miss a request, a wrong "yes" only costs a few tokens more.
    """
    if match_prefix(partial, phrase) is not None:
        return True
    t, p = normalize(partial), normalize(phrase)
    if not p or final:
        return False
    if not t:
        return True
    if is_cjk(p):
        return _cjk_may_start_with(t.replace(" ", ""), p.replace(" ", ""))
    words = t.split(" ")
    # A CJK "word" is complete as it is: it is a run of characters that never turns into a Latin word.
    growing = re.search(r"\w$", unicodedata.normalize("NFKC", partial)) and not is_cjk(words[-1])
    complete = words[:-1] if growing else words
    target = p.split(" ")
    # As match_prefix: after up to two fillers, a window of the phrase's length +-1 whose first word
    # resembles the phrase's. A start is dead when its first word does not, or when all its windows are
    # complete words (match_prefix, asked above, found none of them).
    for skip in range(0, 3):
        if skip and (skip > len(complete) or complete[skip - 1] not in _FILLERS):
            return False  # a word before the phrase that is not a filler: nothing later can match
        if skip >= len(complete):
            return True  # the word where the phrase would start is not complete yet
        if _similar(complete[skip], target[0]) < 0.6:
            continue
        if len(complete) < skip + len(target) + 1:
            return True  # it may start here; the rest of the window is still coming
    return False


def _cjk_may_start_with(compact: str, target: str) -> bool:
    for filler in ("", "嗯", "那个"):
        if not (compact.startswith(filler) or filler.startswith(compact)):
            continue
        window = compact[len(filler) : len(filler) + len(target)]
        # Undecided while the window is short, unless its first two characters both differ (one misheard
        # character is allowed).
        undecided = len(window) < 2 or window[0] == target[0] or window[1] == target[1]
        if len(window) < len(target) and undecided:
            return True
    return False


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
