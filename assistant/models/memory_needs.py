"""The resident memory the configured models need, worked out from their manifests and configs.

What `benchmarks/memory.py` measured with both full-size models on the CPU (RESULTS.md, "Memory"), with
INT8 and with FP16 encoders:
- the CPU plugin holds the INT4 language model and INT8 encoders as in their files; f16 encoders are
  widened to f32 on a CPU without bf16 (twice their file), kept as they are on one with bf16. The embedding
  table is not held: the rows a prompt needs are gathered from the mapped file. The mapped files
  themselves are released after the warm-up;
- the KV cache is u8 with an f32 scale and zero point per position and head for Qwen2-Audio, bf16 for
  Qwen2-VL (runtime.KV_CACHE_PRECISIONS), and grows with the prompt: what counts is the longest prompt the
  service sends;
- working memory: compiling, the language model's packing beyond its file, activations and encoder
  buffers: ~1.85 GiB for Qwen2-Audio-7B and ~0.68 GiB for Qwen2-VL-2B (0.66 and 1.06 of their language
  models' files), with vision buffers that grow with the pixel cap's patches and the encoder's width; and
  Python, OpenVINO, the tokenizers and the audio, voice and tray threads (BASE_BYTES).
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
# Working memory beyond the weights and the KV cache, as a share of the language model's weights: what
# compiling and the language model's packing take beyond its file, and activations (measured the same,
# 1.85 and 0.68 GiB, with INT8 and FP16 encoders).
WORKING_SHARE = {"qwen2-audio": 0.66, "qwen2-vl": 1.06}
VISION_BUFFERS = 25  # f32 tensors of [patches, embed_dim] the vision encoder keeps at its largest input
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


def longest_prompt(
    kind: str, *, history_turns: int, max_new_tokens: int, max_pixels: int, history_audio_s: float | None = None
) -> int:
    """Positions of the longest prompt the service sends to this kind of model (its answer included): for the
    audio model, `history_turns` turns holding at most `history_audio_s` of speech, then a 30 s clip."""
    if kind == "qwen2-audio":
        heard_s = history_turns * LONGEST_CLIP_S
        if history_audio_s is not None:
            heard_s = min(heard_s, history_audio_s)
        clip_tokens = audio_token_count(LONGEST_CLIP_S * SAMPLE_RATE)
        history_tokens = round(clip_tokens * heard_s / LONGEST_CLIP_S)  # 25 a second of speech
        template = (history_turns + 1) * TEMPLATE_TOKENS_PER_TURN
        return history_tokens + clip_tokens + template + history_turns * max_new_tokens + max_new_tokens
    return max_pixels // (28 * 28) + 2 * TEMPLATE_TOKENS_PER_TURN + max_new_tokens


def held_weights(manifest: Manifest, *, widens_f16: bool) -> int:
    """Bytes of weights the CPU plugin holds for a folder: the language model's and the encoders' as in their
    files, f16 encoders twice that on a CPU without bf16; not the embedding table, whose few gathered rows
    come from the mapped file (or the compiled blob), released after the warm-up."""
    fp16 = str(manifest.compression.get("encoders", "fp16")) == "fp16"
    return sum(
        s.bytes * (2 if widens_f16 and fp16 and s.name != "language_model" else 1)
        for s in manifest.submodels
        if s.name != "text_embeddings"
    )


def model_need(
    folder: Path,
    manifest: Manifest,
    *,
    widens_f16: bool,
    history_turns: int,
    max_new_tokens: int,
    max_pixels: int,
    history_audio_s: float | None = None,
) -> MemoryNeed:
    """What one converted model folder needs resident (see the module docstring)."""
    weights = held_weights(manifest, widens_f16=widens_f16)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    positions = longest_prompt(
        manifest.kind,
        history_turns=history_turns,
        max_new_tokens=max_new_tokens,
        max_pixels=max_pixels,
        history_audio_s=history_audio_s,
    )
    language_model = sum(s.bytes for s in manifest.submodels if s.name == "language_model")
    working = int(WORKING_SHARE[manifest.kind] * language_model)
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
