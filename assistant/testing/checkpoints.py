"""Random-weight Qwen2-VL and Qwen2-Audio checkpoints of the real architectures, built offline.

Tests, `assistant selftest` and benchmarks cannot download the real checkpoints, but conversion and inference
must run on exactly the code path a real checkpoint takes. So these builders write ordinary Hugging Face
folders (config.json, generation_config.json, bf16 safetensors, tokenizer, processor, chat template) that
`AutoConfig` / `AutoProcessor` / `AutoTokenizer` / the model classes load with ``HF_HUB_OFFLINE=1``:

- *tiny* models: the real layer types, token ids wired to the tiny tokenizer, a few thousand parameters per
  layer; built in seconds, used by tests;
- *full-size* models: the real Qwen2-VL-2B-Instruct and Qwen2-Audio-7B-Instruct dimensions (vocabulary size
  included) with the tiny tokenizer; used by benchmarks to measure speed and memory without real weights.

Builds are seeded: the same call writes the same bytes (`folder_digest` checks it).

The real configs' values (Qwen/Qwen2-VL-2B-Instruct and Qwen/Qwen2-Audio-7B-Instruct, config.json), which
transformers' defaults do not give, are in `qwen2vl_config("full")` and `qwen2audio_config("full")`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from assistant.testing.chat_templates import QWEN2AUDIO_CHAT_TEMPLATE, QWEN2VL_CHAT_TEMPLATE
from assistant.testing.tokenizer import (
    AUDIO,
    ENDOFTEXT,
    IM_END,
    IM_START,
    IMAGE_PAD,
    VIDEO_PAD,
    VISION_END,
    VISION_START,
    build_qwen2_tokenizer,
    special_token_ids,
)

if TYPE_CHECKING:
    from transformers import (
        GenerationConfig,
        PretrainedConfig,
        Qwen2AudioConfig,
        Qwen2AudioProcessor,
        Qwen2Tokenizer,
        Qwen2VLConfig,
        Qwen2VLProcessor,
    )

    from .streamed import TensorEdit

log = logging.getLogger(__name__)

Size = Literal["tiny", "full"]

DEFAULT_SEED = 20241125

# Tiny models draw their weights with a larger spread than the real 0.02. At 0.02 a 64-wide model with a tied
# head only echoes its last input token ("\n" forever, whatever the image); at 0.2 the greedy output depends
# on the text, the image, the video and the audio, so a conversion that gets positions, masks or features
# wrong changes the tokens and a test notices.
TINY_INITIALIZER_RANGE = 0.2
REAL_INITIALIZER_RANGE = 0.02

# Embedding / output rows past the tokenizer (the vocabulary is padded) are scaled down by this factor, like
# rows that training never touched: a random model then only ever generates real, decodable tokens.
PADDED_ROWS_SCALE = 0.01

# Special-token ids of the real checkpoints, used when a config is built without a tokenizer.
QWEN2VL_REAL_TOKEN_IDS: Mapping[str, int] = {
    ENDOFTEXT: 151643,
    IM_START: 151644,
    IM_END: 151645,
    VISION_START: 151652,
    VISION_END: 151653,
    IMAGE_PAD: 151655,
    VIDEO_PAD: 151656,
}
QWEN2AUDIO_REAL_TOKEN_IDS: Mapping[str, int] = {
    ENDOFTEXT: 151643,
    IM_START: 151644,
    IM_END: 151645,
    AUDIO: 151646,
}
QWEN2VL_REAL_VOCAB_SIZE = 151936
QWEN2AUDIO_REAL_VOCAB_SIZE = 156032

# Qwen2-VL's image processor settings in the real preprocessor_config.json (the video processor that
# transformers 5 derives from that file gets the same pixel limits).
QWEN2VL_MIN_PIXELS = 56 * 56
QWEN2VL_MAX_PIXELS = 28 * 28 * 16384
OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# Qwen2-Audio's feature extractor: Whisper large-v3 style log-mel, 30 s windows.
AUDIO_SAMPLING_RATE = 16000
AUDIO_MEL_BINS = 128


def padded_vocab_size(num_tokens: int, multiple: int = 128) -> int:
    """Round the embedding table up as the real checkpoints do (151936 rows for 151657 tokens)."""
    return -(-num_tokens // multiple) * multiple


# --------------------------------------------------------------------------------------------- configs


def qwen2vl_config(
    size: Size = "tiny",
    token_ids: Mapping[str, int] | None = None,
    vocab_size: int | None = None,
) -> Qwen2VLConfig:
    """A Qwen2-VL config: `"full"` has the real Qwen2-VL-2B-Instruct dimensions (2.209B parameters).

    transformers 5.24's `Qwen2VLConfig()` defaults are the 72B text model, so every dimension is set here.
    The 2B model ties the output head to the token embedding (that is what makes it 2.209B, not 2.44B),
    uses M-RoPE with ``mrope_section`` [16, 24, 24] over its 128-wide heads, theta 1e6. The tiny model keeps
    every structural choice (tied head, GQA 4:2, M-RoPE sections in the same 2:3:3 ratio over 16-wide heads,
    two vision blocks, 14-pixel patches, 2x2 merge, temporal patch 2).
    """
    from transformers import Qwen2VLConfig

    ids = dict(QWEN2VL_REAL_TOKEN_IDS if token_ids is None else token_ids)
    if size == "full":
        text: dict[str, Any] = {
            "hidden_size": 1536,
            "intermediate_size": 8960,
            "num_hidden_layers": 28,
            "num_attention_heads": 12,
            "num_key_value_heads": 2,
            "max_window_layers": 28,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
        }
        vision: dict[str, Any] = {"depth": 32, "embed_dim": 1280, "num_heads": 16, "hidden_size": 1536}
        vocab = QWEN2VL_REAL_VOCAB_SIZE if vocab_size is None else vocab_size
    elif size == "tiny":
        text = {
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_window_layers": 2,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3]},
        }
        vision = {"depth": 2, "embed_dim": 32, "num_heads": 2, "hidden_size": 64}
        if vocab_size is None:
            raise ValueError("a tiny config needs the vocabulary size of its tokenizer")
        vocab = vocab_size
    else:
        raise ValueError(f"unknown size {size!r}")

    init_range = TINY_INITIALIZER_RANGE if size == "tiny" else REAL_INITIALIZER_RANGE
    text.update(
        vocab_size=vocab,
        initializer_range=init_range,
        hidden_act="silu",
        max_position_embeddings=32768,
        rms_norm_eps=1e-6,
        use_sliding_window=False,
        sliding_window=32768,
        attention_dropout=0.0,
        bos_token_id=ids[ENDOFTEXT],
        eos_token_id=ids[IM_END],
        pad_token_id=None,
    )
    vision.update(
        initializer_range=init_range,
        hidden_act="quick_gelu",
        mlp_ratio=4,
        in_channels=3,
        patch_size=14,
        spatial_merge_size=2,
        temporal_patch_size=2,
    )
    config = Qwen2VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=ids[IMAGE_PAD],
        video_token_id=ids[VIDEO_PAD],
        vision_start_token_id=ids[VISION_START],
        vision_end_token_id=ids[VISION_END],
        tie_word_embeddings=True,
        bos_token_id=ids[ENDOFTEXT],
        eos_token_id=ids[IM_END],
    )
    config.architectures = ["Qwen2VLForConditionalGeneration"]
    return config


def qwen2audio_config(
    size: Size = "tiny",
    token_ids: Mapping[str, int] | None = None,
    vocab_size: int | None = None,
) -> Qwen2AudioConfig:
    """A Qwen2-Audio config: `"full"` has the real Qwen2-Audio-7B-Instruct dimensions (8.40B parameters).

    The real text model is Qwen-7B shaped: hidden 4096, 32 layers, 32 heads with as many KV heads (no GQA),
    intermediate 11008, RMS eps 1e-5, RoPE theta 10000, 8192 positions, untied head, vocabulary 156032. The
    audio encoder is Whisper-large-v3 shaped: d_model 1280, 32 layers, 20 heads, FFN 5120, 128 mel bins and
    1500 positions, i.e. exactly 3000 mel frames (30 s) in. The tiny model keeps all of that except widths
    and depths; it still takes 3000 frames.
    """
    from transformers import Qwen2AudioConfig

    ids = dict(QWEN2AUDIO_REAL_TOKEN_IDS if token_ids is None else token_ids)
    if size == "full":
        text: dict[str, Any] = {
            "hidden_size": 4096,
            "intermediate_size": 11008,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 32,
            "max_window_layers": 28,
        }
        audio: dict[str, Any] = {
            "d_model": 1280,
            "encoder_layers": 32,
            "encoder_attention_heads": 20,
            "encoder_ffn_dim": 5120,
        }
        vocab = QWEN2AUDIO_REAL_VOCAB_SIZE if vocab_size is None else vocab_size
    elif size == "tiny":
        text = {
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 4,
            "max_window_layers": 2,
        }
        audio = {"d_model": 64, "encoder_layers": 2, "encoder_attention_heads": 4, "encoder_ffn_dim": 256}
        if vocab_size is None:
            raise ValueError("a tiny config needs the vocabulary size of its tokenizer")
        vocab = vocab_size
    else:
        raise ValueError(f"unknown size {size!r}")

    init_range = TINY_INITIALIZER_RANGE if size == "tiny" else REAL_INITIALIZER_RANGE
    text.update(
        model_type="qwen2",
        vocab_size=vocab,
        initializer_range=init_range,
        hidden_act="silu",
        max_position_embeddings=8192,
        rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        use_sliding_window=False,
        sliding_window=32768,
        tie_word_embeddings=False,
        bos_token_id=ids[ENDOFTEXT],
        eos_token_id=ids[IM_END],
    )
    audio.update(
        model_type="qwen2_audio_encoder",
        initializer_range=init_range,
        num_mel_bins=AUDIO_MEL_BINS,
        max_source_positions=1500,
        activation_function="gelu",
        scale_embedding=False,
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        encoder_layerdrop=0.0,
    )
    config = Qwen2AudioConfig(audio_config=audio, text_config=text, audio_token_index=ids[AUDIO])
    config.architectures = ["Qwen2AudioForConditionalGeneration"]
    return config


def qwen2vl_generation_config(token_ids: Mapping[str, int] | None = None) -> GenerationConfig:
    """Qwen2-VL-Instruct's generation_config.json: stop on ``<|im_end|>`` or ``<|endoftext|>``; near-greedy sampling."""
    from transformers import GenerationConfig

    ids = QWEN2VL_REAL_TOKEN_IDS if token_ids is None else token_ids
    return GenerationConfig(
        bos_token_id=ids[ENDOFTEXT],
        pad_token_id=ids[ENDOFTEXT],
        eos_token_id=[ids[IM_END], ids[ENDOFTEXT]],
        do_sample=True,
        temperature=0.01,
        top_p=0.001,
        top_k=1,
        repetition_penalty=1.0,
    )


def qwen2audio_generation_config(token_ids: Mapping[str, int] | None = None) -> GenerationConfig:
    """Qwen2-Audio-Instruct's generation settings: stop on ``<|im_end|>`` or ``<|endoftext|>``; samples by default."""
    from transformers import GenerationConfig

    ids = QWEN2AUDIO_REAL_TOKEN_IDS if token_ids is None else token_ids
    return GenerationConfig(
        pad_token_id=ids[ENDOFTEXT],
        eos_token_id=[ids[IM_END], ids[ENDOFTEXT]],
        do_sample=True,
        temperature=0.7,
        top_p=0.5,
        top_k=20,
        repetition_penalty=1.1,
    )


# ------------------------------------------------------------------------------------------ processors


def qwen2vl_image_settings() -> dict[str, Any]:
    """The image processor values of the real Qwen2-VL preprocessor_config.json."""
    return {
        "min_pixels": QWEN2VL_MIN_PIXELS,
        "max_pixels": QWEN2VL_MAX_PIXELS,
        "patch_size": 14,
        "temporal_patch_size": 2,
        "merge_size": 2,
        "image_mean": list(OPENAI_CLIP_MEAN),
        "image_std": list(OPENAI_CLIP_STD),
    }


def qwen2vl_processor(tokenizer: Qwen2Tokenizer) -> Qwen2VLProcessor:
    """`Qwen2VLProcessor` with the image and video processors a real Qwen2-VL folder loads to."""
    from transformers import Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

    common = qwen2vl_image_settings()
    return Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(**common),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(**common),
        chat_template=QWEN2VL_CHAT_TEMPLATE,
    )


def qwen2audio_processor(tokenizer: Qwen2Tokenizer) -> Qwen2AudioProcessor:
    """`Qwen2AudioProcessor` with Whisper-large-v3 features: 128 mel bins, 16 kHz, 30 s windows."""
    from transformers import Qwen2AudioProcessor, WhisperFeatureExtractor

    features = WhisperFeatureExtractor(
        feature_size=AUDIO_MEL_BINS,
        sampling_rate=AUDIO_SAMPLING_RATE,
        hop_length=160,
        chunk_length=30,
        n_fft=400,
        padding_value=0.0,
        return_attention_mask=True,
    )
    return Qwen2AudioProcessor(feature_extractor=features, tokenizer=tokenizer, chat_template=QWEN2AUDIO_CHAT_TEMPLATE)


# ---------------------------------------------------------------------------------------------- builds


def _save_random_model(
    model_cls: type,
    config: PretrainedConfig,
    out: Path,
    seed: int,
    generation_config: GenerationConfig,
    num_tokens: int,
    edit: TensorEdit | None = None,
    streamed: bool = False,
) -> None:
    """Save `model_cls(config)` with seeded random bf16 weights; the real checkpoints are bf16.

    Weights are drawn directly in bf16 so a full-size model needs no f32 copy (16.8 GB instead of 50 GB for
    the 7B one); `streamed` writes them shard by shard instead (`assistant.testing.streamed`: the peak is one
    shard, not the model). Rows for ids at or past `num_tokens` (the tokenizer's length) are shrunk, see
    PADDED_ROWS_SCALE. `edit(name, tensor)`, if given, then changes each weight in place before the save.
    """
    import torch

    def finish(name: str, tensor: torch.Tensor) -> None:
        if name.endswith(("embed_tokens.weight", "lm_head.weight")):
            tensor[num_tokens:] *= PADDED_ROWS_SCALE
        if edit is not None:
            edit(name, tensor)

    if streamed:
        from .streamed import write_streamed_weights

        std = config.get_text_config().initializer_range
        params = write_streamed_weights(model_cls, config, out, seed, std, finish)
        config.save_pretrained(out)
        generation_config.save_pretrained(out)
        log.info("saved %s with %.3fM parameters to %s, shard by shard", model_cls.__name__, params / 1e6, out)
        return
    torch.manual_seed(seed)
    model = model_cls._from_config(config, dtype=torch.bfloat16)
    model.eval()
    with torch.no_grad():
        embedding = model.get_input_embeddings().weight
        tied = model.get_output_embeddings().weight.data_ptr() == embedding.data_ptr()
        for name, tensor in model.state_dict().items():
            if not (tied and name == "lm_head.weight"):
                finish(name, tensor)
    model.generation_config = generation_config
    # Shards of 2 GB: the 7B is written without a second copy of its 16.8 GB (transformers' default
    # of 50 GB would serialise all of it in one piece).
    model.save_pretrained(out, max_shard_size="2GB")
    params = sum(p.numel() for p in model.parameters())
    log.info("saved %s with %.3fM parameters to %s", model_cls.__name__, params / 1e6, out)
    del model


def checkpoint_saved(folder: str | Path) -> bool:
    """Whether `folder` holds saved weights, in one file or in shards (their index is written last)."""
    folder = Path(folder)
    return (folder / "model.safetensors").exists() or (folder / "model.safetensors.index.json").exists()


def build_qwen2vl(
    out_dir: str | Path,
    size: Size = "tiny",
    seed: int = DEFAULT_SEED,
    *,
    edit: TensorEdit | None = None,
    tied: bool = True,
    streamed: bool = False,
) -> Path:
    """Write a random-weight Qwen2-VL checkpoint folder (`tiny`, or the 2B dimensions with `full`).

    `tied=False` gives the output head weights of its own (`assistant.testing.scripted` needs them); `edit`
    and `streamed` as in `_save_random_model`.
    """
    from transformers import Qwen2VLForConditionalGeneration

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = qwen2vl_tokenizer()
    ids = special_token_ids(tokenizer)
    vocab = padded_vocab_size(len(tokenizer)) if size == "tiny" else None
    config = qwen2vl_config(size, ids, vocab)
    if not tied:
        config.tie_word_embeddings = config.text_config.tie_word_embeddings = False
    _save_random_model(
        Qwen2VLForConditionalGeneration,
        config,
        out,
        seed,
        qwen2vl_generation_config(ids),
        len(tokenizer),
        edit,
        streamed,
    )
    qwen2vl_processor(tokenizer).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def qwen2vl_tokenizer() -> Qwen2Tokenizer:
    """The tiny tokenizer as a Qwen2-VL folder holds it: eos ``<|im_end|>``, padding on the left."""
    return build_qwen2_tokenizer(
        eos_token=IM_END, model_max_length=32768, padding_side="left", chat_template=QWEN2VL_CHAT_TEMPLATE
    )


def qwen2audio_tokenizer() -> Qwen2Tokenizer:
    """The tiny tokenizer as a Qwen2-Audio folder holds it: eos ``<|endoftext|>`` (the Qwen2 tokenizer default)."""
    return build_qwen2_tokenizer(eos_token=ENDOFTEXT, model_max_length=32768, chat_template=QWEN2AUDIO_CHAT_TEMPLATE)


def build_qwen2audio(
    out_dir: str | Path,
    size: Size = "tiny",
    seed: int = DEFAULT_SEED,
    *,
    edit: TensorEdit | None = None,
    streamed: bool = False,
) -> Path:
    """Write a random-weight Qwen2-Audio checkpoint folder (`tiny`, or the 7B dimensions with `full`).

    The tokenizer's eos is ``<|endoftext|>`` (the Qwen2 tokenizer default); generation stops on ``<|im_end|>``
    through generation_config either way. `edit(name, tensor)` may set weights by hand before the save
    (`assistant.testing.scripted` does); `streamed` writes shard by shard (see `_save_random_model`).
    """
    from transformers import Qwen2AudioForConditionalGeneration

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = qwen2audio_tokenizer()
    ids = special_token_ids(tokenizer)
    vocab = padded_vocab_size(len(tokenizer)) if size == "tiny" else None
    config = qwen2audio_config(size, ids, vocab)
    _save_random_model(
        Qwen2AudioForConditionalGeneration,
        config,
        out,
        seed,
        qwen2audio_generation_config(ids),
        len(tokenizer),
        edit,
        streamed,
    )
    qwen2audio_processor(tokenizer).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def build_tiny_qwen2vl(out_dir: str | Path, seed: int = DEFAULT_SEED) -> Path:
    """Tiny random Qwen2-VL checkpoint for tests: 0.21M parameters, tens of milliseconds once imports are warm."""
    return build_qwen2vl(out_dir, "tiny", seed)


def build_tiny_qwen2audio(out_dir: str | Path, seed: int = DEFAULT_SEED) -> Path:
    """Tiny random Qwen2-Audio checkpoint for tests: 0.42M parameters, tens of milliseconds once imports are warm."""
    return build_qwen2audio(out_dir, "tiny", seed)


def build_full_size_qwen2vl(out_dir: str | Path, seed: int = DEFAULT_SEED) -> Path:
    """Random Qwen2-VL-2B-sized checkpoint with the tiny tokenizer, for benchmarks (4.4 GB, ~45 s, 5.6 GB RAM)."""
    return build_qwen2vl(out_dir, "full", seed)


def build_full_size_qwen2audio(out_dir: str | Path, seed: int = DEFAULT_SEED) -> Path:
    """Random Qwen2-Audio-7B-sized checkpoint with the tiny tokenizer, for benchmarks (16.8 GB; needs ~21 GB RAM)."""
    return build_qwen2audio(out_dir, "full", seed)


def count_parameters(config: PretrainedConfig) -> int:
    """Parameters of the model a config describes (its `architectures[0]`), counted on the meta device.

    Tied weights count once, as in the published sizes; costs no memory and well under a second.
    """
    import torch
    import transformers

    model_cls = getattr(transformers, config.architectures[0])
    with torch.device("meta"):
        model = model_cls(config)
    return sum(p.numel() for p in model.parameters())


def folder_digest(folder: str | Path) -> str:
    """SHA-256 over every file's relative path and bytes, to show two builds are identical."""
    root = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()
