"""OVQwen2VLModel: Qwen2-VL on OpenVINO, called like transformers' model (`generate(**inputs)`).

Images and videos are encoded one attention block at a time (one image, or one temporal
slice of a video): no dense patches x patches mask beyond one block, so a screenshot costs
what its pixel cap allows and no more.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import OVModelBase, as_numpy, single_row, token_runs
from .digest import content_digest
from .engine import GenerationRequest
from .preprocess.positions import get_rope_index
from .vision_layout import attention_chunks, vision_rotary_angles

IMAGE, VIDEO = 1, 2  # mm_token_type_ids values


class OVQwen2VLModel(OVModelBase):
    kind = "qwen2-vl"
    preprocessor_class = "Qwen2VLPreprocessor"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        vision = self.config["vision_config"]
        self.merge_size = int(vision["spatial_merge_size"])
        self.vision_head_dim = int(vision["embed_dim"]) // int(vision["num_heads"])
        self.vision_theta = float((vision.get("rope_parameters") or {}).get("rope_theta", 10000.0))
        self.image_token_id = int(self.config["image_token_id"])
        self.video_token_id = int(self.config["video_token_id"])
        self._patch_request = self._compiled["image_embedding"].create_infer_request()
        self._merger_request = self._compiled["image_embedding_merger"].create_infer_request()

    # -- vision ----------------------------------------------------------------------------------

    def encode_vision(self, pixel_values: np.ndarray, grid_thw: np.ndarray) -> list[np.ndarray]:
        """One [tokens, hidden] array per image/video, each encoded block by block."""
        outputs = []
        row = 0
        for grid in np.asarray(grid_thw, dtype=np.int64).reshape(-1, 3):
            pieces = []
            for length in attention_chunks(grid[None]):
                patches = pixel_values[row : row + length]
                row += length
                block_grid = np.array([[1, grid[1], grid[2]]])
                hidden = self._patch_request.infer({"pixel_values": patches})[0]
                pieces.append(
                    self._merger_request.infer(
                        {
                            "hidden_states": hidden,
                            "attention_mask": np.zeros((1, 1, 1), np.float32),  # one block: attend to all of it
                            "rotary_pos_emb": vision_rotary_angles(
                                block_grid, self.merge_size, self.vision_head_dim, self.vision_theta
                            ),
                        }
                    )[0].copy()
                )
            outputs.append(np.concatenate(pieces, axis=0))
        if row != len(pixel_values):
            raise ValueError(f"pixel values hold {len(pixel_values)} patches but the grids describe {row}")
        return outputs

    # -- generation ------------------------------------------------------------------------------

    def _request(
        self,
        inputs: dict[str, Any],
        max_new_tokens: int,
        do_sample: bool | None,
        streamer: Any,
        options: dict[str, Any],
    ) -> GenerationRequest:
        ids = single_row(inputs.get("input_ids"))
        token_types = as_numpy(inputs.get("mm_token_type_ids"), np.int64)
        token_types = (
            _token_types(ids, self.image_token_id, self.video_token_id)
            if token_types is None
            else token_types.reshape(-1)
        )
        image_grid = as_numpy(inputs.get("image_grid_thw"), np.int64)
        video_grid = as_numpy(inputs.get("video_grid_thw"), np.int64)
        pixel_values = as_numpy(inputs.get("pixel_values"), np.float32)
        video_values = as_numpy(inputs.get("pixel_values_videos"), np.float32)
        positions, deltas = get_rope_index(
            ids[None], token_types[None], image_grid, video_grid, spatial_merge_size=self.merge_size
        )
        delta = int(deltas[0, 0])

        def embed_prompt(first: int) -> np.ndarray:
            embeds = self.embed_text(ids[first:])
            for kind, values, grid in ((IMAGE, pixel_values, image_grid), (VIDEO, video_values, video_grid)):
                spans = token_runs(token_types == kind)
                wanted = [k for k, (start, _) in enumerate(spans) if start >= first]
                if not wanted:
                    continue
                if values is None or grid is None:
                    raise ValueError("the prompt has image/video tokens but no pixel values")
                features = self.encode_vision(*_select(values, grid, wanted))
                for k, feature in zip(wanted, features, strict=True):
                    start, end = spans[k]
                    if end - start != len(feature):
                        raise ValueError(f"{end - start} placeholder tokens for {len(feature)} vision tokens")
                    embeds[0, start - first : end - first] = feature
            return embeds

        def position_ids(start: int, count: int) -> np.ndarray:
            if start + count <= len(ids):
                return np.ascontiguousarray(positions[:, :, start : start + count])
            steps = np.arange(start, start + count) + delta
            return np.broadcast_to(steps, (3, 1, count)).astype(np.int64).copy()

        media = []
        for kind, values, grid in ((IMAGE, pixel_values, image_grid), (VIDEO, video_values, video_grid)):
            for k, span in enumerate(token_runs(token_types == kind)):
                if values is not None and grid is not None and k < len(grid):
                    media.append((span, content_digest(_select(values, grid, [k])[0])))
                else:  # a missing picture is reported by embed_prompt; its key only has to be unique
                    media.append((span, f"missing-{kind}-{k}"))
        return self._make_request(ids, embed_prompt, position_ids, media, max_new_tokens, do_sample, streamer, options)


def vision_prompt(pre: Any, question: str, images=(), videos=(), max_pixels: int | None = None) -> dict[str, Any]:
    """The processor inputs of one user turn: every image and video, then the question
    (Qwen2-VL's twin of `transcript.audio_prompt`)."""
    content = [{"type": "image"} for _ in images] + [{"type": "video"} for _ in videos]
    prompt = pre.apply_chat_template([{"role": "user", "content": [*content, {"type": "text", "text": question}]}])
    return pre(prompt, images=list(images), videos=list(videos), max_pixels=max_pixels)


def _token_types(ids: np.ndarray, image_id: int, video_id: int) -> np.ndarray:
    return np.where(ids == image_id, IMAGE, np.where(ids == video_id, VIDEO, 0)).astype(np.int64)


def _select(values: np.ndarray, grid: np.ndarray, wanted: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The pixel rows and grid rows of the images/videos numbered `wanted`."""
    grid = np.asarray(grid, dtype=np.int64).reshape(-1, 3)
    sizes = grid.prod(axis=1)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    rows = np.concatenate([values[starts[k] : starts[k + 1]] for k in wanted])
    return rows, grid[wanted]
