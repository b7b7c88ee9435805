"""Read the processor, tokenizer and template files a model folder holds, without transformers.

`assistant convert` saves the processor as transformers 5 does: one ``processor_config.json`` with an
``image_processor`` / ``video_processor`` / ``feature_extractor`` section. Checkpoints written by older
transformers keep the same settings in ``preprocessor_config.json`` (and ``video_preprocessor_config.json``),
flat, with ``min_pixels`` / ``max_pixels`` instead of ``size``; both layouts are read.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from .errors import PreprocessError

log = logging.getLogger(__name__)

PROCESSOR_CONFIG = "processor_config.json"
LEGACY_PREPROCESSOR_CONFIG = "preprocessor_config.json"
LEGACY_VIDEO_CONFIG = "video_preprocessor_config.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
TOKENIZER_FILE = "tokenizer.json"
# The hub's Qwen2-Audio-7B-Instruct has no tokenizer.json, only the byte-level BPE's two files.
VOCAB_FILE = "vocab.json"
MERGES_FILE = "merges.txt"
CHAT_TEMPLATE_FILE = "chat_template.jinja"
LEGACY_CHAT_TEMPLATE_FILE = "chat_template.json"


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from `path`; a missing or broken file is a `PreprocessError` naming it."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PreprocessError(f"{path} is missing; convert the model again with `assistant convert`") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PreprocessError(f"cannot read {path} ({exc}); convert the model again") from None
    if not isinstance(data, dict):
        raise PreprocessError(f"{path} does not hold a JSON object; convert the model again")
    return data


def processor_section(model_dir: Path, section: str) -> dict[str, Any]:
    """Settings of one sub-processor: ``image_processor``, ``video_processor`` or ``feature_extractor``.

    A video section falls back to the image section, as transformers does for checkpoints that only ship
    an image processor config (the video processor then gets the same pixel limits).
    """
    model_dir = Path(model_dir)
    combined = model_dir / PROCESSOR_CONFIG
    if combined.is_file():
        data = read_json(combined)
        if isinstance(data.get(section), dict):
            return dict(data[section])
        if section == "video_processor" and isinstance(data.get("image_processor"), dict):
            return dict(data["image_processor"])
    if section == "video_processor" and (model_dir / LEGACY_VIDEO_CONFIG).is_file():
        return read_json(model_dir / LEGACY_VIDEO_CONFIG)
    if (model_dir / LEGACY_PREPROCESSOR_CONFIG).is_file():
        return read_json(model_dir / LEGACY_PREPROCESSOR_CONFIG)
    if combined.is_file():
        raise PreprocessError(f"{combined} has no {section} settings; is this the right model folder?")
    raise PreprocessError(f"{model_dir} has no {PROCESSOR_CONFIG}; convert the model again with `assistant convert`")


def processor_attributes(model_dir: Path) -> dict[str, Any]:
    """Top-level processor attributes (e.g. Qwen2-Audio's ``audio_token``); empty when there are none."""
    path = Path(model_dir) / PROCESSOR_CONFIG
    if not path.is_file():
        return {}
    return {k: v for k, v in read_json(path).items() if not isinstance(v, dict)}


def pixel_limits(section: dict[str, Any], default_min: int, default_max: int) -> tuple[int, int]:
    """(min_pixels, max_pixels) from ``size`` or the legacy ``min_pixels`` / ``max_pixels`` keys."""
    size = section.get("size") if isinstance(section.get("size"), dict) else {}
    low = section.get("min_pixels", size.get("shortest_edge", size.get("min_pixels", default_min)))
    high = section.get("max_pixels", size.get("longest_edge", size.get("max_pixels", default_max)))
    return int(low), int(high)
