"""Conversion and inference of Qwen2-Audio and Qwen2-VL on OpenVINO.

Names load lazily: conversion pulls in torch and nncf, which the running assistant never needs.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "convert_qwen2vl_model": "assistant.models.convert",
    "convert_qwen2audio_model": "assistant.models.convert",
    "OVQwen2VLModel": "assistant.models.qwen2vl",
    "OVQwen2AudioModel": "assistant.models.qwen2audio",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'assistant.models' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = sorted(_LAZY)
