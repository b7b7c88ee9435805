"""OpenVINO settings from the configuration: device, precision, latency hint, compiled-model cache."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PRECISION_HINTS = {"f32": "f32", "bf16": "bf16", "f16": "f16"}


@dataclass(frozen=True)
class RuntimeOptions:
    device: str = "CPU"
    inference_precision: str = "auto"  # auto | f32 | bf16 | f16
    performance_hint: str = "LATENCY"
    cache_dir: Path | None = None

    @classmethod
    def from_settings(cls, runtime) -> RuntimeOptions:
        return cls(runtime.device, runtime.inference_precision, runtime.performance_hint, runtime.cache_dir)

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
