"""Choosing the next token from logits: greedy or sampled, with transformers' semantics.

Pure numpy, so every rule is testable on hand-made logits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SamplingSettings:
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0: off
    repetition_penalty: float = 1.0


def apply_repetition_penalty(logits: np.ndarray, seen: Iterable[int], penalty: float) -> np.ndarray:
    """Seen tokens: positive logits divided by the penalty, negative ones multiplied (CTRL rule)."""
    if penalty == 1.0:
        return logits
    ids = np.unique(np.fromiter(seen, dtype=np.int64))
    if ids.size == 0:
        return logits
    out = logits.copy()
    values = out[ids]
    out[ids] = np.where(values < 0, values * penalty, values / penalty)
    return out


def _top_k(logits: np.ndarray, k: int) -> np.ndarray:
    if k <= 0 or k >= logits.size:
        return logits
    threshold = np.partition(logits, -k)[-k]
    return np.where(logits < threshold, -np.inf, logits)


def _top_p(logits: np.ndarray, p: float) -> np.ndarray:
    if p >= 1.0:
        return logits
    order = np.argsort(logits, kind="stable")  # ascending, as transformers sorts
    probs = _softmax(logits[order])
    cumulative = np.cumsum(probs)
    remove = cumulative <= 1.0 - p
    remove[-1] = False  # always keep the most likely token
    out = logits.copy()
    out[order[remove]] = -np.inf
    return out


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - np.max(x))
    return z / z.sum()


def next_token(logits: np.ndarray, seen: Iterable[int], settings: SamplingSettings, rng: np.random.Generator) -> int:
    """The next token id for one position's logits [vocab]."""
    scores = apply_repetition_penalty(np.asarray(logits, dtype=np.float32), seen, settings.repetition_penalty)
    if not settings.do_sample:
        return int(np.argmax(scores))
    if settings.temperature > 0 and settings.temperature != 1.0:
        scores = scores / settings.temperature
    scores = _top_p(_top_k(scores, settings.top_k), settings.top_p)
    probs = _softmax(scores.astype(np.float64))
    return int(rng.choice(probs.size, p=probs))
