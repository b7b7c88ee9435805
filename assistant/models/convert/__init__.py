"""Conversion of Qwen2-VL and Qwen2-Audio checkpoints to OpenVINO IR (needs torch and nncf)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .pipeline import ConversionResult, convert_model


def convert_qwen2vl_model(
    model_id: str | Path, model_dir: str | Path, compression_configuration: dict[str, Any] | None = None, **options
) -> ConversionResult:
    """The article's call: a hub id or checkpoint folder, an output folder, an NNCF dict or None."""
    return convert_model("qwen2-vl", model_id, model_dir, compression_configuration, **options)


def convert_qwen2audio_model(
    model_id: str | Path, model_dir: str | Path, compression_configuration: dict[str, Any] | None = None, **options
) -> ConversionResult:
    """As convert_qwen2vl_model, for Qwen2-Audio."""
    return convert_model("qwen2-audio", model_id, model_dir, compression_configuration, **options)


__all__ = ["ConversionResult", "convert_model", "convert_qwen2audio_model", "convert_qwen2vl_model"]
