"""Checks before the long work: is there room on disk and in memory for this conversion?

A conversion that dies of a full disk after a 17 GB download, or of the OOM killer half an hour in,
costs the user an evening. So before downloading anything `convert` estimates what the checkpoint
needs, from the size of its weights and their dtype, and refuses with the numbers and the way out.

The estimates come from conversions measured on this project's machines (README, "Converting"):
- memory: the PyTorch export holds the checkpoint's weights once in bf16 plus the tracing overhead
  (Qwen2-Audio-7B: 15.6 GiB of weights, 17.9 GiB peak; Qwen2-VL-2B: 4.1 GiB, 5.7 GiB peak), so
  1.05 x the bf16 weights + 1.5 GiB; traced from f32 (``--weights f32``) the weights count twice;
- output disk: the staging folder holds every sub-model as exported (2 bytes per parameter, 4 for f32)
  while NNCF writes the compressed language model beside it.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ...errors import UsageError
from ...system_memory import available_memory
from .hub import size_text

log = logging.getLogger(__name__)

GIB = 1 << 30
GB = 1e9

# Bytes per parameter of the checkpoint's `torch_dtype`.
DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}
# Bytes per parameter the compressed language model adds while it is written next to the export.
COMPRESSED_BYTES = {"int4": 0.6, "int8": 1.1, "fp16": 0.0, "f32": 0.0}
MEMORY_FACTOR = 1.05
MEMORY_OVERHEAD = int(1.5 * GIB)
# Processor, tokenizer (the real tokenizer.json, vocab.json and merges.txt are ~12 MB), configs, manifest.
OUTPUT_OVERHEAD = 16 << 20


@dataclass(frozen=True)
class ConversionNeeds:
    parameters: int
    download_bytes: int  # into the hub cache
    output_bytes: int  # at the peak, in the output folder's file system
    memory_bytes: int


def parameter_count(config: dict, weight_bytes: int) -> int:
    """Parameters from the size of the weight files and the dtype config.json names (bf16 if none)."""
    text = config.get("text_config") or {}
    dtype = config.get("torch_dtype") or config.get("dtype") or text.get("torch_dtype") or "bfloat16"
    return int(weight_bytes / DTYPE_BYTES.get(str(dtype), 2))


def estimate_needs(config: dict, weight_bytes: int, download_bytes: int, weights: str) -> ConversionNeeds:
    """What converting this checkpoint with `--weights weights` needs (see the module docstring)."""
    params = parameter_count(config, weight_bytes)
    exported = 4 if weights == "f32" else 2
    output = int(params * (exported + COMPRESSED_BYTES.get(weights, 1.1))) + OUTPUT_OVERHEAD
    memory = int(MEMORY_FACTOR * params * exported) + MEMORY_OVERHEAD
    return ConversionNeeds(params, download_bytes, output, memory)


def _existing_parent(path: Path) -> Path:
    path = path.expanduser().absolute()
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def free_disk(path: Path) -> tuple[int, int]:
    """(free bytes, device id) of the file system that `path` is, or will be, on."""
    existing = _existing_parent(path)
    return shutil.disk_usage(existing).free, os.stat(existing).st_dev


def check_room(needs: ConversionNeeds, what: str, hub_cache: Path | None, output: Path) -> None:
    """Refuse, in one line with the numbers and the way out, a conversion this machine cannot finish."""
    out_free, out_dev = free_disk(output)
    out_need = needs.output_bytes
    if hub_cache is not None and needs.download_bytes:
        cache_free, cache_dev = free_disk(hub_cache)
        if cache_dev == out_dev:
            out_need += needs.download_bytes  # one file system holds both
        elif needs.download_bytes > cache_free:
            raise UsageError(
                f"not enough disk space to download {what}: it needs {size_text(needs.download_bytes)} in "
                f"{_existing_parent(hub_cache)} and {size_text(cache_free)} are free; free space there "
                f"(`hf cache ls` / `hf cache rm` removes old checkpoints), move the cache with HF_HUB_CACHE, "
                f"or convert on a bigger machine and copy the folder"
            )
    if out_need > out_free:
        parts = f"{size_text(needs.output_bytes)} to convert"
        if out_need != needs.output_bytes:
            parts = f"{size_text(needs.download_bytes)} to download and {parts}"
        raise UsageError(
            f"not enough disk space for {what}: it needs {parts} in {_existing_parent(output)} and "
            f"{size_text(out_free)} are free; choose another --out folder (or HF_HUB_CACHE for the download), "
            f"delete old checkpoints from the hub cache (`hf cache rm`), or convert on a bigger machine and "
            f"copy the folder"
        )
    available = available_memory()
    if needs.memory_bytes > available:
        raise UsageError(
            f"not enough memory to convert {what}: it needs about {needs.memory_bytes / GIB:.1f} GiB and "
            f"{available / GIB:.1f} GiB are available; close other programs, or convert on a bigger machine "
            f"(assistant convert ... --out DIR there) and copy the folder here"
        )
    log.info(
        "room for %s: %.2f GB to download, %.2f GB to convert (%.2f GB free), %.1f of %.1f GiB memory",
        what,
        needs.download_bytes / GB,
        needs.output_bytes / GB,
        out_free / GB,
        needs.memory_bytes / GIB,
        available / GIB,
    )
