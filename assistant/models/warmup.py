"""Warm-up: one short dummy request per model with the shapes real requests have.

OpenVINO prepares kernels for the shapes it meets the first time; without this the first
screenshot question after start takes seconds longer than later ones (8.5 s vs 4.9 s on the
full-size Qwen2-VL-2B here). Any 16:9 screen scales to the same grid under the pixel cap.
Each model then forgets the dummy request but for the text before its media, the system prompt every
request starts with, so the first real one does not prefill it again (~20 tokens).
"""

from __future__ import annotations

import numpy as np


def warm_up_audio(model) -> None:
    """Transcribe 3 s of faint noise (encoder, prefill and decode run once), then forget it."""
    from .transcript import ASR_PROMPT, audio_prompt

    clip = np.random.default_rng(0).normal(0, 0.01, 3 * 16000).astype(np.float32)
    inputs = audio_prompt(model.preprocessor, [clip], ASR_PROMPT)
    model.transcribe_prompt(inputs, max_new_tokens=2)
    model.reset(keep=_text_before(inputs["input_ids"], model.audio_token_id))


def warm_up_vision(model, max_pixels: int, question: str) -> None:
    """Ask `question` (the one real requests ask) about a grey 1920x1080 "screenshot" at the pixel cap,
    then forget it."""
    from PIL import Image

    from .qwen2vl import vision_prompt

    shot = Image.new("RGB", (1920, 1080), (128, 128, 128))
    inputs = vision_prompt(model.preprocessor, question, images=[shot], max_pixels=max_pixels)
    model.generate(**inputs, max_new_tokens=2, do_sample=False)
    model.reset(keep=_text_before(inputs["input_ids"], model.image_token_id))


def _text_before(input_ids, media_token_id: int) -> int:
    """How many prompt tokens come before the first media placeholder."""
    ids = np.asarray(input_ids).reshape(-1)
    return int(np.argmax(ids == media_token_id))
