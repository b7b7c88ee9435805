"""OpenVINO settings from the configuration: device, precision, latency hint, compiled-model cache,
and how the language model computes (`language_model_config`)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PRECISION_HINTS = {"f32": "f32", "bf16": "bf16", "f16": "f16"}
# Each model's KV cache on the CPU: the smallest precision that keeps the tiny models' greedy tokens those of
# an f32 cache (tests/test_inference.py::test_the_kv_cache_precision_keeps_greedy_output_identical). u8 and
# f16 changed tiny Qwen2-VL's after 12-29 tokens; its bf16 cache is ~40 MB at the longest screen prompt.
KV_CACHE_PRECISIONS = {"qwen2-audio": "u8", "qwen2-vl": "bf16"}


@dataclass(frozen=True)
class RuntimeOptions:
    device: str = "CPU"
    inference_precision: str = "auto"  # auto | f32 | bf16 | f16
    performance_hint: str = "LATENCY"
    cache_dir: Path | None = None
    decode_activations: str = "int8"  # int8 | same: how the language model computes (see language_model_config)

    @classmethod
    def from_settings(cls, runtime) -> RuntimeOptions:
        return cls(
            runtime.device,
            runtime.inference_precision,
            runtime.performance_hint,
            runtime.cache_dir,
            runtime.decode_activations,
        )

    def ov_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"PERFORMANCE_HINT": self.performance_hint}
        if self.cache_dir is not None:
            Path(self.cache_dir).mkdir(parents=True, exist_ok=True)
            config["CACHE_DIR"] = str(self.cache_dir)
        if self.inference_precision in PRECISION_HINTS:
            config["INFERENCE_PRECISION_HINT"] = PRECISION_HINTS[self.inference_precision]
            if self.inference_precision == "f32" and self.device.startswith("CPU"):
                # The CPU plugin keeps the KV cache in u8 by default; exact results need f32 there too.
                config["KV_CACHE_PRECISION"] = "f32"
        return config


def merged_config(device: str, ov_config: dict[str, Any] | None, defaults: RuntimeOptions | None = None) -> dict:
    """The class's `ov_config` over the configured defaults (it wins key by key)."""
    base = (defaults or RuntimeOptions(device=device)).ov_config()
    return {**base, **(ov_config or {})}


def language_model_config(
    prompt_config: dict[str, Any],
    *,
    device: str,
    decode_activations: str,
    weights: dict[str, Any],
    capabilities: Iterable[str],
) -> dict[str, Any] | None:
    """The language model's config when it should differ from the encoders', else None.

    On a CPU that computes in bf16 by default (AMX/AVX-512 BF16), the INT4/INT8 language model decodes
    much faster with activations quantized to int8 on the fly (OpenVINO's dynamic quantization, which the
    CPU plugin applies only at f32 precision): Qwen2-VL-2B 80 -> 50 ms/token, Qwen2-Audio-7B 306 -> 205,
    for a longer prompt on the 2B (+0.25 s at 448x448) and about the same on the 7B. The encoders keep
    bf16 (f32 would make the vision encoder 5x slower). A second compilation just for new tokens
    would keep prompts in bf16, but the CPU plugin repacks the weights once per compilation: the 7B
    took 16 instead of 8 GiB, so no.
    An explicit precision (configured or in `ov_config`) applies to every sub-model.
    """
    if decode_activations != "int8" or device.upper() != "CPU":
        return None
    if "INFERENCE_PRECISION_HINT" in prompt_config or "DYNAMIC_QUANTIZATION_GROUP_SIZE" in prompt_config:
        return None
    mode = str(weights.get("mode", "none"))
    if not mode.startswith(("int4", "int8")) or "BF16" not in set(capabilities):
        return None  # float weights are not quantized on the fly; without bf16 the CPU default already is f32+int8
    group = int(weights.get("group_size") or 0)
    return {
        **prompt_config,
        "INFERENCE_PRECISION_HINT": "f32",
        # The weights' own group keeps prompts cheapest (measured: 128 vs 32 at the same ms/token).
        "DYNAMIC_QUANTIZATION_GROUP_SIZE": str(group if group > 0 else 32),
    }


def with_kv_cache_precision(config: dict[str, Any], device: str, precision: str) -> dict[str, Any]:
    """`config` with the language model's KV cache in `precision` on the CPU, unless it names one already
    (an f32 run asks for an f32 cache: runtime options, `ov_config`)."""
    if device.upper() != "CPU" or "KV_CACHE_PRECISION" in config:
        return config
    return {**config, "KV_CACHE_PRECISION": precision}
