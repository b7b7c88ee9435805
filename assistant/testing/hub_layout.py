"""Tiny Qwen2-VL / Qwen2-Audio checkpoints laid out as the real hub folders are, not as transformers 5 saves.

Users download ``Qwen/Qwen2-VL-2B-Instruct`` and ``Qwen/Qwen2-Audio-7B-Instruct``. Those folders were written by
transformers 4.4x and differ from what `build_tiny_qwen2vl` / `build_tiny_qwen2audio` write (transformers 5.24
``save_pretrained``): flat or partial configs with old key names, sharded weights with an index, a tokenizer
without tokenizer.json, the legacy preprocessor_config.json, chat templates in other files. Conversion and
inference must work on what users really have, so these builders write the tiny models (the same seeded random
weights, architectures and tokenizer) in that older layout.

How: the tiny checkpoint is built in a temporary folder and its files are rewritten. Every file written here
follows the file of the same name in the real repository, with the tiny dimensions (widths, depths, heads,
vocabulary) and the tiny tokenizer's ids (see `assistant.testing.tokenizer.special_token_ids`) in place of the
real 151k ids; the other values are the real ones. Details per file are in each builder's docstring. Both:

- weights: bf16 safetensors in two shards, ``model-00001-of-00002.safetensors`` and
  ``model-00002-of-00002.safetensors``, each with ``{"format": "pt"}`` metadata, and
  ``model.safetensors.index.json`` with ``metadata.total_size`` (bytes of all tensors) and ``weight_map``;
  state-dict keys are the hub's (transformers 5 renames them on load, see its ``conversion_mapping.py``).
  The real checkpoints have more shards of ~4 GB (2 for the 2B, 5 for the 7B); two is enough to exercise an index.
- ``generation_config.json``: the real sampling defaults and a list of end tokens.

Public copies of the Qwen2-VL-2B-Instruct files were at hand; for Qwen2-Audio-7B-Instruct only parts of its
config.json and preprocessor_config.json were, so its audio_config lists the fields of transformers 4.45's encoder
config and its generation_config.json the published sampling defaults (the key order there is not checked).

Builds are seeded and deterministic: two builds with the same seed write the same bytes (`folder_digest`).
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.testing.chat_templates import QWEN2AUDIO_CHAT_TEMPLATE, QWEN2VL_CHAT_TEMPLATE
from assistant.testing.checkpoints import (
    AUDIO_MEL_BINS,
    AUDIO_SAMPLING_RATE,
    DEFAULT_SEED,
    build_tiny_qwen2audio,
    build_tiny_qwen2vl,
    qwen2vl_image_settings,
)
from assistant.testing.tokenizer import (
    AUDIO,
    ENDOFTEXT,
    IM_END,
    IMAGE_PAD,
    SPECIAL_TOKENS,
    VIDEO_PAD,
    VISION_END,
    VISION_PAD,
    VISION_START,
)

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

SHARD_NAMES = ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")
INDEX_NAME = "model.safetensors.index.json"

# transformers 5 state-dict prefixes -> the hub's (the inverse of the renames transformers 5 applies on load).
# transformers 5.24 already writes these old names itself; mapping them keeps the builders right if it stops.
_QWEN2VL_KEYS = (("model.language_model.", "model."), ("model.visual.", "visual."))
_QWEN2AUDIO_KEYS = (
    ("model.language_model.", "language_model.model."),
    ("lm_head.", "language_model.lm_head."),
    ("model.audio_tower.", "audio_tower."),
    ("model.multi_modal_projector.", "multi_modal_projector."),
)
QWEN2VL_HUB_PREFIXES = ("model.", "visual.")
QWEN2AUDIO_HUB_PREFIXES = ("language_model.model.", "language_model.lm_head.", "audio_tower.", "multi_modal_projector.")

# The transformers versions the real files name (config.json and generation_config.json).
QWEN2VL_CONFIG_VERSION = "4.41.2"
QWEN2VL_GENERATION_VERSION = "4.37.0"
QWEN2AUDIO_CONFIG_VERSION = "4.45.0.dev0"
QWEN2AUDIO_GENERATION_VERSION = "4.38.1"


# ------------------------------------------------------------------------------------------------ files


def _write_json(path: Path, data: Any) -> None:
    """Two-space JSON with a final newline, keys in the order given (as the hub files are written)."""
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _read_tensors(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a saved checkpoint folder (one file or shards), by state-dict key."""
    from safetensors.torch import load_file

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no safetensors in {folder}")
    tensors: dict[str, torch.Tensor] = {}
    for file in files:
        tensors.update(load_file(file))
    return tensors


def _hub_keys(
    tensors: Mapping[str, torch.Tensor], renames: tuple[tuple[str, str], ...], allowed: tuple[str, ...]
) -> dict[str, torch.Tensor]:
    """Rename transformers 5 prefixes to the hub's; a key outside `allowed` means the layout changed."""
    out = {}
    for key, tensor in tensors.items():
        for new, old in renames:
            if key.startswith(new):
                key = old + key[len(new) :]
                break
        if not key.startswith(allowed):
            raise ValueError(f"unexpected weight {key!r}: expected names starting with {allowed}")
        out[key] = tensor
    return out


def _write_sharded(out: Path, tensors: Mapping[str, torch.Tensor]) -> None:
    """Two shards split at half the bytes (keys in sorted order) and the index, as the hub's sharded folders.

    Written with the safetensors package itself, with the ``{"format": "pt"}`` metadata the hub files carry.
    """
    from safetensors.torch import save_file

    keys = sorted(tensors)
    sizes = [tensors[k].numel() * tensors[k].element_size() for k in keys]
    total = sum(sizes)
    split, running = len(keys), 0
    for i, size in enumerate(sizes):
        if running >= total / 2:
            split = i
            break
        running += size
    parts = (keys[:split], keys[split:])
    if not all(parts):
        raise ValueError("too few tensors to write two shards")
    weight_map = {}
    for name, part in zip(SHARD_NAMES, parts, strict=True):
        save_file({k: tensors[k].contiguous() for k in part}, str(out / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, name))
    _write_json(out / INDEX_NAME, {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))})


def _token_ids(tokenizer_json: Mapping[str, Any]) -> dict[str, int]:
    """The special tokens' ids in the tiny tokenizer (its added tokens)."""
    ids = {token["content"]: int(token["id"]) for token in tokenizer_json["added_tokens"]}
    missing = [t for t in SPECIAL_TOKENS if t not in ids]
    if missing:
        raise ValueError(f"the tiny tokenizer lacks {missing}")
    return {t: ids[t] for t in SPECIAL_TOKENS}


def _bpe(tokenizer_json: Mapping[str, Any]) -> tuple[dict[str, int], list[str]]:
    """The BPE vocabulary (no added tokens) and merges as ``"a b"`` strings, as vocab.json and merges.txt hold them."""
    model = tokenizer_json["model"]
    merges = [" ".join(pair) if isinstance(pair, list) else pair for pair in model["merges"]]
    return dict(model["vocab"]), merges


def _write_vocab_and_merges(out: Path, vocab: Mapping[str, int], merges: list[str]) -> None:
    """vocab.json (one line, as GPT-2 style tokenizers save it) and merges.txt with its version header."""
    (out / "vocab.json").write_text(json.dumps(dict(vocab), ensure_ascii=False), encoding="utf-8")
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")


def _hub_tokenizer_json(tokenizer_json: Mapping[str, Any], vocab: Mapping[str, int], merges: list[str]) -> dict:
    """tokenizer.json in the shape the 2024 Qwen2 files have: ByteLevel post-processor, merges as strings.

    transformers 5 writes a TemplateProcessing post-processor (adding nothing for Qwen2) and merges as pairs;
    the tokens produced are the same.
    """
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    split = tokenizer_json["pre_tokenizer"]["pretokenizers"][0]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": list(tokenizer_json["added_tokens"]),
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [split, byte_level]},
        "post_processor": dict(byte_level),
        "decoder": dict(byte_level),
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": "",
            "end_of_word_suffix": "",
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": dict(vocab),
            "merges": merges,
        },
    }


def _added_tokens_decoder(ids: Mapping[str, int]) -> dict[str, dict[str, Any]]:
    """tokenizer_config.json's ``added_tokens_decoder``: every special token, keyed by its id as a string."""
    return {
        str(token_id): {
            "content": token,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for token, token_id in sorted(ids.items(), key=lambda item: item[1])
    }


def _tokenizer_config(
    ids: Mapping[str, int], *, eos: str, chat_template: str, processor_class: str, padding_side: str | None
) -> dict[str, Any]:
    """tokenizer_config.json as the real Qwen2 ones: added tokens, additional_special_tokens, eos, pad, template."""
    config: dict[str, Any] = {
        "add_prefix_space": False,
        "added_tokens_decoder": _added_tokens_decoder(ids),
        "additional_special_tokens": [t for t in ids if t != ENDOFTEXT],
        "bos_token": None,
        "chat_template": chat_template,
        "clean_up_tokenization_spaces": False,
        "eos_token": eos,
        "errors": "replace",
        "model_max_length": 32768,
        "pad_token": ENDOFTEXT,
    }
    if padding_side is not None:
        config["padding_side"] = padding_side
    config.update(
        processor_class=processor_class,
        split_special_tokens=False,
        tokenizer_class="Qwen2Tokenizer",
        unk_token=None,
    )
    return config


# -------------------------------------------------------------------------------------------- Qwen2-VL


def _qwen2vl_config(tiny: Mapping[str, Any], ids: Mapping[str, int]) -> dict[str, Any]:
    """The flat Qwen2-VL-2B-Instruct config.json (text keys at the top, old vision key names) for the tiny model."""
    text, vision = tiny["text_config"], tiny["vision_config"]
    rope = text["rope_parameters"]
    return {
        "architectures": ["Qwen2VLForConditionalGeneration"],
        "attention_dropout": text["attention_dropout"],
        "bos_token_id": ids[ENDOFTEXT],
        "eos_token_id": ids[IM_END],
        "vision_start_token_id": ids[VISION_START],
        "vision_end_token_id": ids[VISION_END],
        "vision_token_id": ids[VISION_PAD],
        "image_token_id": ids[IMAGE_PAD],
        "video_token_id": ids[VIDEO_PAD],
        "hidden_act": text["hidden_act"],
        "hidden_size": text["hidden_size"],
        "initializer_range": text["initializer_range"],
        "intermediate_size": text["intermediate_size"],
        "max_position_embeddings": text["max_position_embeddings"],
        "max_window_layers": text["max_window_layers"],
        "model_type": "qwen2_vl",
        "num_attention_heads": text["num_attention_heads"],
        "num_hidden_layers": text["num_hidden_layers"],
        "num_key_value_heads": text["num_key_value_heads"],
        "rms_norm_eps": text["rms_norm_eps"],
        "rope_theta": rope["rope_theta"],
        "sliding_window": 32768,  # the real value; unused, as use_sliding_window is false
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "transformers_version": QWEN2VL_CONFIG_VERSION,
        "use_cache": True,
        "use_sliding_window": False,
        "vision_config": {
            "depth": vision["depth"],
            "embed_dim": vision["embed_dim"],
            "mlp_ratio": vision["mlp_ratio"],
            "num_heads": vision["num_heads"],
            "in_chans": vision["in_channels"],
            "hidden_size": vision["hidden_size"],
            "patch_size": vision["patch_size"],
            "spatial_merge_size": vision["spatial_merge_size"],
            "spatial_patch_size": vision["patch_size"],
            "temporal_patch_size": vision["temporal_patch_size"],
        },
        "rope_scaling": {"type": "mrope", "mrope_section": list(rope["mrope_section"])},
        "vocab_size": text["vocab_size"],
    }


def _qwen2vl_generation_config(ids: Mapping[str, int]) -> dict[str, Any]:
    """Qwen2-VL-2B-Instruct's generation_config.json: near-greedy sampling, stop on im_end or endoftext."""
    return {
        "bos_token_id": ids[ENDOFTEXT],
        "pad_token_id": ids[ENDOFTEXT],
        "do_sample": True,
        "eos_token_id": [ids[IM_END], ids[ENDOFTEXT]],
        "repetition_penalty": 1.0,
        "temperature": 0.01,
        "top_p": 0.001,
        "top_k": 1,
        "transformers_version": QWEN2VL_GENERATION_VERSION,
    }


def _qwen2vl_preprocessor_config() -> dict[str, Any]:
    """The legacy, flat Qwen2VLImageProcessor settings (transformers 5 derives its video processor from them)."""
    return {
        **qwen2vl_image_settings(),
        "image_processor_type": "Qwen2VLImageProcessor",
        "processor_class": "Qwen2VLProcessor",
    }


def build_hub_qwen2vl(out_dir: str | Path, seed: int = DEFAULT_SEED) -> Path:
    """Write the tiny Qwen2-VL (weights of `build_tiny_qwen2vl` with `seed`) as Qwen/Qwen2-VL-2B-Instruct's folder.

    Files, each following the real one of the same name:

    - config.json: flat, text keys at the top level; ``rope_theta`` at the top and
      ``rope_scaling: {"type": "mrope", "mrope_section": [...]}`` (transformers 5: ``text_config.rope_parameters``);
      ``vision_config`` with the real key set, including the old ``in_chans`` and ``spatial_patch_size``;
      ``tie_word_embeddings: true``, ``torch_dtype: "bfloat16"``, ``transformers_version: "4.41.2"``, the token ids
      (``vision_token_id`` included) at the top. Differs: tiny widths/depths/heads/vocabulary, M-RoPE sections
      [2, 3, 3], tiny token ids, ``max_window_layers`` and ``initializer_range`` of the tiny model.
    - two weight shards + index: ``model.*`` and ``visual.*`` keys, no ``lm_head.weight`` (tied to the embedding).
    - generation_config.json: bos/pad endoftext, eos [im_end, endoftext], do_sample with temperature 0.01,
      top_p 0.001, top_k 1, repetition_penalty 1.0 (tiny ids).
    - preprocessor_config.json: the legacy flat Qwen2VLImageProcessor file (min/max pixels, patch sizes, CLIP
      mean/std, ``image_processor_type``, ``processor_class``); no video processor file, as in the real folder.
    - chat_template.json (``{"chat_template": ...}``) and the same template inside tokenizer_config.json; the
      template is this project's equivalent of the real one (same prompts, see `chat_templates`).
    - tokenizer.json (2024 shape: ByteLevel post-processor, merges as strings), vocab.json, merges.txt and
      tokenizer_config.json (added_tokens_decoder, additional_special_tokens, eos ``<|im_end|>``, pad
      ``<|endoftext|>``, ``padding_side: "left"``, model_max_length 32768, ``tokenizer_class: "Qwen2Tokenizer"``).
      Differs: the tiny BPE vocabulary; the three audio special tokens the tiny tokenizer also has.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tiny-qwen2vl-") as tmp:
        tiny = build_tiny_qwen2vl(Path(tmp) / "tiny", seed)
        tiny_config = _read_json(tiny / "config.json")
        tokenizer_json = _read_json(tiny / "tokenizer.json")
        tensors = _read_tensors(tiny)
    tensors.pop("lm_head.weight", None)  # tied: the real checkpoint stores only the embedding
    _write_sharded(out, _hub_keys(tensors, _QWEN2VL_KEYS, QWEN2VL_HUB_PREFIXES))
    ids = _token_ids(tokenizer_json)
    vocab, merges = _bpe(tokenizer_json)
    _write_json(out / "config.json", _qwen2vl_config(tiny_config, ids))
    _write_json(out / "generation_config.json", _qwen2vl_generation_config(ids))
    _write_json(out / "preprocessor_config.json", _qwen2vl_preprocessor_config())
    _write_json(out / "chat_template.json", {"chat_template": QWEN2VL_CHAT_TEMPLATE})
    _write_json(out / "tokenizer.json", _hub_tokenizer_json(tokenizer_json, vocab, merges))
    _write_vocab_and_merges(out, vocab, merges)
    _write_json(
        out / "tokenizer_config.json",
        _tokenizer_config(
            ids,
            eos=IM_END,
            chat_template=QWEN2VL_CHAT_TEMPLATE,
            processor_class="Qwen2VLProcessor",
            padding_side="left",
        ),
    )
    log.info("wrote a hub-layout tiny Qwen2-VL to %s", out)
    return out


# ----------------------------------------------------------------------------------------- Qwen2-Audio


def _qwen2audio_config(tiny: Mapping[str, Any], ids: Mapping[str, int]) -> dict[str, Any]:
    """Qwen2-Audio-7B-Instruct's config.json for the tiny model: a full audio_config, a partial text_config."""
    text, audio = tiny["text_config"], tiny["audio_config"]
    defaults = _qwen2_text_defaults()
    # The real file gives only these text keys and leaves the rest to Qwen2Config's defaults; the tiny model
    # must also give its widths, depths and heads (the defaults are 7B-sized).
    text_config: dict[str, Any] = {
        "bos_token_id": ids[ENDOFTEXT],
        "eos_token_id": ids[IM_END],
        "hidden_size": text["hidden_size"],
        "intermediate_size": text["intermediate_size"],
        "max_position_embeddings": text["max_position_embeddings"],
        "model_type": "qwen2",
        "num_attention_heads": text["num_attention_heads"],
        "num_hidden_layers": text["num_hidden_layers"],
        "num_key_value_heads": text["num_key_value_heads"],
        "rms_norm_eps": text["rms_norm_eps"],
        "torch_dtype": "bfloat16",
        "use_mrope": False,
        "vocab_size": text["vocab_size"],
    }
    # What is left out must equal the default, or the loaded model would not be the tiny one.
    left_out = {
        "hidden_act": text["hidden_act"],
        "rope_theta": text["rope_parameters"]["rope_theta"],
        "tie_word_embeddings": text["tie_word_embeddings"],
        "use_sliding_window": text["use_sliding_window"],
        "attention_dropout": text["attention_dropout"],
    }
    changed = {k: (v, defaults[k]) for k, v in left_out.items() if defaults[k] != v}
    if changed:
        raise ValueError(f"the tiny Qwen2-Audio differs from Qwen2Config defaults in {changed}")
    return {
        "architectures": ["Qwen2AudioForConditionalGeneration"],
        "audio_config": {
            "model_type": "qwen2_audio_encoder",
            "num_mel_bins": audio["num_mel_bins"],
            "encoder_layers": audio["encoder_layers"],
            "encoder_attention_heads": audio["encoder_attention_heads"],
            "encoder_ffn_dim": audio["encoder_ffn_dim"],
            "encoder_layerdrop": audio["encoder_layerdrop"],
            "d_model": audio["d_model"],
            "dropout": audio["dropout"],
            "attention_dropout": audio["attention_dropout"],
            "activation_function": audio["activation_function"],
            "activation_dropout": audio["activation_dropout"],
            "scale_embedding": audio["scale_embedding"],
            "init_std": audio["initializer_range"],
            "max_source_positions": audio["max_source_positions"],
        },
        "audio_token_index": ids[AUDIO],
        "ignore_index": -100,
        "model_type": "qwen2_audio",
        "text_config": text_config,
        "torch_dtype": "bfloat16",
        "transformers_version": QWEN2AUDIO_CONFIG_VERSION,
        "vocab_size": text["vocab_size"],
    }


def _qwen2_text_defaults() -> dict[str, Any]:
    """The Qwen2Config defaults the partial text_config relies on."""
    from transformers import Qwen2Config

    config = Qwen2Config()
    return {
        "hidden_act": config.hidden_act,
        "rope_theta": config.rope_parameters["rope_theta"],
        "tie_word_embeddings": config.tie_word_embeddings,
        "use_sliding_window": config.use_sliding_window,
        "attention_dropout": config.attention_dropout,
    }


def _qwen2audio_generation_config(ids: Mapping[str, int]) -> dict[str, Any]:
    """Qwen2-Audio-7B-Instruct's generation_config.json: chatml, stop on endoftext or im_end, sampling."""
    return {
        "chat_format": "chatml",
        "eos_token_id": [ids[ENDOFTEXT], ids[IM_END]],
        "pad_token_id": ids[ENDOFTEXT],
        "do_sample": True,
        "top_k": 20,
        "top_p": 0.5,
        "temperature": 0.7,
        "repetition_penalty": 1.1,
        "transformers_version": QWEN2AUDIO_GENERATION_VERSION,
    }


def _qwen2audio_preprocessor_config() -> dict[str, Any]:
    """The WhisperFeatureExtractor file: 128 mel bins, 16 kHz, 30 s windows (3000 frames), attention mask."""
    return {
        "chunk_length": 30,
        "feature_extractor_type": "WhisperFeatureExtractor",
        "feature_size": AUDIO_MEL_BINS,
        "hop_length": 160,
        "n_fft": 400,
        "n_samples": 30 * AUDIO_SAMPLING_RATE,
        "nb_max_frames": 3000,
        "padding_side": "right",
        "padding_value": 0.0,
        "processor_class": "Qwen2AudioProcessor",
        "return_attention_mask": True,
        "sampling_rate": AUDIO_SAMPLING_RATE,
    }


def build_hub_qwen2audio(out_dir: str | Path, seed: int = DEFAULT_SEED) -> Path:
    """Write the tiny Qwen2-Audio (weights of `build_tiny_qwen2audio` with `seed`) as Qwen/Qwen2-Audio-7B-Instruct's.

    Files, each following the real one of the same name:

    - config.json: ``audio_config`` with the 4.4x encoder keys (``init_std``, not ``initializer_range``), a partial
      ``text_config`` (bos/eos ids, intermediate size, positions, ``model_type: "qwen2"``, RMS eps, dtype,
      ``use_mrope: false``, vocabulary) that leaves the rest to Qwen2Config's defaults, ``audio_token_index``,
      ``ignore_index``, a top-level ``vocab_size``, ``transformers_version: "4.45.0.dev0"``. Differs: tiny widths,
      depths and heads (which the tiny text_config must give, the defaults being 7B-sized), tiny token ids.
    - two weight shards + index: ``audio_tower.*``, ``multi_modal_projector.linear.*``, ``language_model.model.*``
      and ``language_model.lm_head.weight`` (untied), as in the 7B checkpoint (which has five shards).
    - generation_config.json: ``chat_format: "chatml"``, eos [endoftext, im_end], pad endoftext, sampling with
      top_k 20, top_p 0.5, temperature 0.7, repetition_penalty 1.1 (tiny ids).
    - preprocessor_config.json: the WhisperFeatureExtractor settings with ``processor_class``.
    - the tokenizer only as vocab.json + merges.txt + tokenizer_config.json (no tokenizer.json, no chat_template
      file: the chat template is inside tokenizer_config.json; eos ``<|endoftext|>``, no padding side). Differs:
      the tiny BPE vocabulary; the Qwen2-VL special tokens the tiny tokenizer also has.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tiny-qwen2audio-") as tmp:
        tiny = build_tiny_qwen2audio(Path(tmp) / "tiny", seed)
        tiny_config = _read_json(tiny / "config.json")
        tokenizer_json = _read_json(tiny / "tokenizer.json")
        tensors = _read_tensors(tiny)
    _write_sharded(out, _hub_keys(tensors, _QWEN2AUDIO_KEYS, QWEN2AUDIO_HUB_PREFIXES))
    ids = _token_ids(tokenizer_json)
    vocab, merges = _bpe(tokenizer_json)
    _write_json(out / "config.json", _qwen2audio_config(tiny_config, ids))
    _write_json(out / "generation_config.json", _qwen2audio_generation_config(ids))
    _write_json(out / "preprocessor_config.json", _qwen2audio_preprocessor_config())
    _write_vocab_and_merges(out, vocab, merges)
    _write_json(
        out / "tokenizer_config.json",
        _tokenizer_config(
            ids,
            eos=ENDOFTEXT,
            chat_template=QWEN2AUDIO_CHAT_TEMPLATE,
            processor_class="Qwen2AudioProcessor",
            padding_side=None,
        ),
    )
    log.info("wrote a hub-layout tiny Qwen2-Audio to %s", out)
    return out
