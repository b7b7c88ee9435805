"""Qwen2-VL's multimodal rotary positions (M-RoPE) in numpy, as transformers 5.24's ``get_rope_index``.

Every token gets three position ids (time, height, width). Text advances all three together. A run of
image or video tokens gets a grid: time from the temporal patch index, height and width from the merged
patch row and column, all offset by the position where the run starts; the text after it continues from
that start plus max(grid height, grid width) (not the number of tokens). The returned delta (largest
position + 1 - sequence length) lets decoding continue with ``cache position + delta``.
"""

from __future__ import annotations

from itertools import groupby

import numpy as np

from .errors import PreprocessError

TEXT, IMAGE, VIDEO = 0, 1, 2


def vision_position_ids(start: int, grid_thw: np.ndarray, spatial_merge_size: int = 2) -> np.ndarray:
    """Positions [3, t*h*w] of one image/video's tokens (h and w after merging), offset by `start`."""
    t = int(grid_thw[0])
    h = int(grid_thw[1]) // spatial_merge_size
    w = int(grid_thw[2]) // spatial_merge_size
    tt, hh, ww = np.meshgrid(np.arange(t), np.arange(h), np.arange(w), indexing="ij")
    return np.stack([tt, hh, ww]).reshape(3, -1).astype(np.int64) + start


def get_rope_index(
    input_ids: np.ndarray,
    mm_token_type_ids: np.ndarray,
    image_grid_thw: np.ndarray | None = None,
    video_grid_thw: np.ndarray | None = None,
    attention_mask: np.ndarray | None = None,
    spatial_merge_size: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """``(position_ids int64 [3, batch, seq], rope_deltas int64 [batch, 1])``.

    `mm_token_type_ids` marks each token 0 (text), 1 (image) or 2 (video); each contiguous run of 1s or 2s
    consumes the next grid of `image_grid_thw` / `video_grid_thw`. Padding (attention mask 0) keeps
    position 0 and does not count in the delta.
    """
    input_ids = np.asarray(input_ids)
    types = np.asarray(mm_token_type_ids)
    if input_ids.ndim != 2 or types.shape != input_ids.shape:
        raise ValueError(f"input_ids {input_ids.shape} and mm_token_type_ids {types.shape} must be [batch, seq]")
    grids = {
        IMAGE: iter(np.asarray(image_grid_thw)) if image_grid_thw is not None else iter(()),
        VIDEO: iter(np.asarray(video_grid_thw)) if video_grid_thw is not None else iter(()),
    }
    batch, seq = input_ids.shape
    position_ids = np.zeros((3, batch, seq), dtype=np.int64)
    deltas = np.zeros((batch, 1), dtype=np.int64)
    for b in range(batch):
        keep = np.ones(seq, dtype=bool) if attention_mask is None else np.asarray(attention_mask[b]).astype(bool)
        row_types = types[b][keep].tolist()
        pieces: list[np.ndarray] = []
        current = 0
        index = 0
        for kind, run in groupby(row_types):
            length = sum(1 for _ in run)
            if kind == TEXT:
                pieces.append(np.broadcast_to(np.arange(length, dtype=np.int64) + current, (3, length)))
                current += length
            elif kind in (IMAGE, VIDEO):
                grid = next(grids[kind], None)
                if grid is None:
                    name = "image" if kind == IMAGE else "video"
                    raise PreprocessError(f"the prompt has more {name} runs than {name} grids")
                pieces.append(vision_position_ids(current, grid, spatial_merge_size))
                current += max(int(grid[1]), int(grid[2])) // spatial_merge_size
            else:
                raise ValueError(f"unknown mm_token_type {kind}")
            index += length
        positions = np.concatenate(pieces, axis=1) if pieces else np.zeros((3, 0), dtype=np.int64)
        if positions.shape[1] != index:
            raise PreprocessError(
                f"the prompt's image/video tokens ({index}) do not match their grids ({positions.shape[1]})"
            )
        position_ids[:, b, keep] = positions
        deltas[b, 0] = (positions.max() + 1 - index) if index else 0
    return position_ids, deltas


def text_position_ids(seq_len: int, start: int = 0) -> np.ndarray:
    """Positions [3, 1, seq_len] of plain text (all three axes equal)."""
    return np.broadcast_to(np.arange(start, start + seq_len, dtype=np.int64), (3, 1, seq_len)).copy()
