"""A short digest of an array's content: tells two images or clips apart (~1 ms per MB)."""

from __future__ import annotations

import hashlib

import numpy as np


def content_digest(array: np.ndarray) -> str:
    data = np.ascontiguousarray(array)
    return hashlib.blake2b(data.view(np.uint8).reshape(-1), digest_size=16).hexdigest()
