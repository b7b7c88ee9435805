"""Offline stand-ins for the real Qwen2-VL / Qwen2-Audio checkpoints: tokenizer, chat templates, random models
(also laid out as the real hub folders are), and scripted ones that say a chosen text: tiny for the tests, of
the real sizes for the latency benchmark.

Used by the tests, `assistant selftest` and the benchmarks, none of which may download weights. Importing
this package is cheap: torch and transformers load only when a builder is first used.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "build_tiny_qwen2vl": "checkpoints",
    "build_tiny_qwen2audio": "checkpoints",
    "build_full_size_qwen2vl": "checkpoints",
    "build_full_size_qwen2audio": "checkpoints",
    "build_qwen2vl": "checkpoints",
    "build_qwen2audio": "checkpoints",
    "build_scripted_qwen2audio": "scripted",
    "build_scripted_qwen2vl": "scripted",
    "build_hub_qwen2vl": "hub_layout",
    "build_hub_qwen2audio": "hub_layout",
    "qwen2vl_config": "checkpoints",
    "qwen2audio_config": "checkpoints",
    "qwen2vl_generation_config": "checkpoints",
    "qwen2audio_generation_config": "checkpoints",
    "qwen2vl_processor": "checkpoints",
    "qwen2audio_processor": "checkpoints",
    "count_parameters": "checkpoints",
    "folder_digest": "checkpoints",
    "checkpoint_saved": "checkpoints",
    "build_qwen2_tokenizer": "tokenizer",
    "special_token_ids": "tokenizer",
    "SPECIAL_TOKENS": "tokenizer",
    "QWEN2VL_CHAT_TEMPLATE": "chat_templates",
    "QWEN2AUDIO_CHAT_TEMPLATE": "chat_templates",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import the submodule that defines `name` on first use (PEP 562), keeping `import assistant.testing` light."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
