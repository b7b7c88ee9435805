"""The resident memory the configured models need, worked out from their manifests and configs.

What `benchmarks/memory.py` measured with both full-size models on the CPU (RESULTS.md, "Memory"):
- the CPU plugin holds every sub-model's weights once, in their own precision: the INT4 language model and
  the text embeddings as in their files; f16 encoders are widened to f32 on a CPU without bf16 (twice their
  file), kept as they are on one with bf16. The mapped files themselves are released after the warm-up;
- the KV cache is u8 with an f32 scale and zero point per position and head (the CPU plugin's default), and
  grows with the prompt: what counts is the longest prompt the service sends;
- working memory: activations and encoder buffers, ~0.7 GiB for Qwen2-Audio-7B (11% of its weights) and
  ~0.45 GiB for Qwen2-VL-2B at the default pixel cap (6% of its weights, and vision buffers that grow
  with the cap's patches and the encoder's width), and Python, OpenVINO, the tokenizers and the audio,
  voice and tray threads (BASE_BYTES).
The figure is the need at the longest prompt, so a service that starts within it does not fail midway.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .manifest import Manifest
from .preprocess.audio import SAMPLE_RATE, audio_token_count
from .runtime import KV_CACHE_PRECISIONS

GIB = 1 << 30
BASE_BYTES = int(0.35 * GIB)
WORKING_SHARE = {"qwen2-audio": 0.11, "qwen2-vl": 0.06}  # of the weights
VISION_BUFFERS = 25  # f32 tensors of [patches, embed_dim] the vision encoder keeps at its largest input
ENCODERS = {"audio_encoder", "image_embedding_merger"}  # the f16 sub-models of any size
LONGEST_CLIP_S = 30  # the endpointer ends an utterance at max_utterance_s <= 30 s
TEMPLATE_TOKENS_PER_TURN = 40  # chat-template text around each turn, with the ASR instruction


@dataclass(frozen=True)
class MemoryNeed:
    parts: dict[str, int] = field(default_factory=dict)  # what needs it -> bytes

    @property
    def total(self) -> int:
        return sum(self.parts.values())


def kv_cache_bytes(config: dict, positions: int, precision: str = "u8") -> int:
    """The KV cache of `positions` positions of a language model with this config.json, in the CPU plugin's
    `precision` (u8 holds an f32 scale and zero point per position and head beside the bytes)."""
    text = config.get("text_config") or config
    heads = int(text.get("num_attention_heads") or 32)
    kv_heads = int(text.get("num_key_value_heads") or heads)
    head_dim = int(text.get("head_dim") or int(text.get("hidden_size") or 4096) // heads)
    layers = int(text.get("num_hidden_layers") or 32)
    per_head = head_dim + 8 if precision == "u8" else head_dim * (4 if precision == "f32" else 2)
    return 2 * layers * kv_heads * per_head * positions


def longest_prompt(kind: str, *, history_turns: int, max_new_tokens: int, max_pixels: int) -> int:
    """Positions of the longest prompt the service sends to this kind of model (its answer included)."""
    if kind == "qwen2-audio":
        clip_tokens = audio_token_count(LONGEST_CLIP_S * SAMPLE_RATE)
        turns = history_turns + 1
        return turns * (clip_tokens + TEMPLATE_TOKENS_PER_TURN) + history_turns * max_new_tokens + max_new_tokens
    return max_pixels // (28 * 28) + 2 * TEMPLATE_TOKENS_PER_TURN + max_new_tokens


def model_need(
    folder: Path,
    manifest: Manifest,
    *,
    widens_f16: bool,
    history_turns: int,
    max_new_tokens: int,
    max_pixels: int,
) -> MemoryNeed:
    """What one converted model folder needs resident (see the module docstring)."""
    encoders_f16 = str(manifest.compression.get("encoders", "fp16")) == "fp16"
    weights = sum(
        s.bytes * (2 if widens_f16 and encoders_f16 and s.name in ENCODERS else 1) for s in manifest.submodels
    )
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    positions = longest_prompt(
        manifest.kind, history_turns=history_turns, max_new_tokens=max_new_tokens, max_pixels=max_pixels
    )
    working = int(WORKING_SHARE[manifest.kind] * weights)
    if manifest.kind == "qwen2-vl":
        patches = max_pixels // (14 * 14)
        working += VISION_BUFFERS * patches * int(config["vision_config"].get("embed_dim", 1280)) * 4
    name = "Qwen2-Audio" if manifest.kind == "qwen2-audio" else "Qwen2-VL"
    return MemoryNeed(
        {
            f"{name} weights": weights,
            f"{name} KV cache ({positions} positions)": kv_cache_bytes(
                config, positions, KV_CACHE_PRECISIONS[manifest.kind]
            ),
            f"{name} working memory": working,
        }
    )


def service_need(needs: list[MemoryNeed]) -> MemoryNeed:
    """The service with these models: their needs and the process's own."""
    parts = {"Python, OpenVINO, tokenizers, threads": BASE_BYTES}
    for need in needs:
        parts.update(need.parts)
    return MemoryNeed(parts)


def cpu_widens_f16(core=None) -> bool:
    """Whether the CPU plugin computes f16 weights in f32 here (no bf16 in the CPU): they take twice the room."""
    import openvino as ov

    core = core or ov.Core()
    return "BF16" not in set(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
