"""Where Qwen2-VL's vision patches sit: rotary angles and attention blocks, in numpy.

The vision encoder attends within each image (and within each temporal slice of a video)
only. These helpers compute, from the processor's `grid_thw`, the inputs the converted
merger model takes instead of transformers' `cu_seqlens`, so inference needs no torch.
"""

from __future__ import annotations

import numpy as np


def vision_position_ids(grid_thw: np.ndarray, merge_size: int) -> np.ndarray:
    """(patches, 2) row/column of every patch, laid out in merge_size x merge_size blocks."""
    rows = []
    for t, h, w in np.asarray(grid_thw, dtype=np.int64).tolist():
        hpos, wpos = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        block = (h // merge_size, merge_size, w // merge_size, merge_size)
        hpos = hpos.reshape(block).transpose(0, 2, 1, 3).reshape(-1)
        wpos = wpos.reshape(block).transpose(0, 2, 1, 3).reshape(-1)
        rows.append(np.tile(np.stack([hpos, wpos], axis=-1), (t, 1)))
    return np.concatenate(rows, axis=0)


def vision_rotary_angles(grid_thw: np.ndarray, merge_size: int, head_dim: int, theta: float) -> np.ndarray:
    """(patches, head_dim/2) rotary angles: the first half from the row, the second from the column."""
    spatial_dim = head_dim // 2
    inv_freq = 1.0 / (theta ** (np.arange(0, spatial_dim, 2, dtype=np.float32) / spatial_dim))
    positions = vision_position_ids(grid_thw, merge_size).astype(np.float32)
    angles = positions[:, :, None] * inv_freq.astype(np.float32)[None, None, :]
    return np.concatenate([angles[:, 0], angles[:, 1]], axis=-1).astype(np.float32)


def attention_chunks(grid_thw: np.ndarray) -> list[int]:
    """Lengths of the independent attention blocks: one per temporal slice of each image/video."""
    out: list[int] = []
    for t, h, w in np.asarray(grid_thw, dtype=np.int64).tolist():
        out.extend([h * w] * t)
    return out


def block_attention_mask(chunks: list[int]) -> np.ndarray:
    """(1, N, N) additive mask: 0 within a block, the lowest float elsewhere.

    O(N^2) memory: callers with many or large blocks should run blocks one by one instead.
    """
    total = sum(chunks)
    mask = np.full((1, total, total), np.finfo(np.float32).min, dtype=np.float32)
    start = 0
    for length in chunks:
        mask[0, start : start + length, start : start + length] = 0.0
        start += length
    return mask
