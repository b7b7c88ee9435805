"""The offline tiny checkpoints behave like the real Qwen2-VL / Qwen2-Audio folders on every path we use."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from assistant.testing import checkpoints, tokenizer
from assistant.testing.chat_templates import QWEN2AUDIO_CHAT_TEMPLATE, QWEN2VL_CHAT_TEMPLATE

SYSTEM = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
IMAGE = "<|vision_start|><|image_pad|><|vision_end|>"
VIDEO = "<|vision_start|><|video_pad|><|vision_end|>"
AUDIO = "<|audio_bos|><|AUDIO|><|audio_eos|>"
SR = 16000


# ----------------------------------------------------------------------------------------------- inputs


def gradient_image(width: int, height: int, channel: int) -> Image.Image:
    """A deterministic picture with structure (two crossing ramps), distinct per `channel`."""
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[..., channel] = x * 255 // max(width - 1, 1)
    pixels[..., (channel + 1) % 3] = y * 255 // max(height - 1, 1)
    return Image.fromarray(pixels)


def tone(seconds: float, hz: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.fixture(scope="module")
def vl(tiny_qwen2vl_dir):
    from transformers import AutoProcessor, Qwen2VLForConditionalGeneration

    processor = AutoProcessor.from_pretrained(tiny_qwen2vl_dir)
    model = Qwen2VLForConditionalGeneration.from_pretrained(tiny_qwen2vl_dir).eval()
    return processor, model


@pytest.fixture(scope="module")
def audio(tiny_qwen2audio_dir):
    from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

    processor = AutoProcessor.from_pretrained(tiny_qwen2audio_dir)
    model = Qwen2AudioForConditionalGeneration.from_pretrained(tiny_qwen2audio_dir).eval()
    return processor, model


def count(input_ids, token_id: int) -> int:
    return int((input_ids == token_id).sum())


def greedy(model, inputs, new_tokens: int = 5):
    """Greedy-generate and check the prompt is kept; return only the new ids."""
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=new_tokens, do_sample=False)
    prompt_len = inputs["input_ids"].shape[1]
    assert torch.equal(out[:, :prompt_len], inputs["input_ids"])
    new = out[0, prompt_len:].tolist()
    assert 1 <= len(new) <= new_tokens
    return new


def last_logits(model, inputs) -> torch.Tensor:
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.shape[:2] == inputs["input_ids"].shape
    assert torch.isfinite(logits).all()
    return logits[0, -1].float()


# ------------------------------------------------------------------------------------- folder contents


def test_qwen2vl_folder_loads_offline(tiny_qwen2vl_dir):
    import huggingface_hub.constants
    from transformers import (
        AutoConfig,
        AutoModelForImageTextToText,
        AutoProcessor,
        AutoTokenizer,
        Qwen2Tokenizer,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    # conftest switched the hub off before anything imported huggingface_hub: every load below is local.
    assert huggingface_hub.constants.HF_HUB_OFFLINE is True
    assert (tiny_qwen2vl_dir / "model.safetensors").is_file()
    config = AutoConfig.from_pretrained(tiny_qwen2vl_dir)
    assert config.model_type == "qwen2_vl"
    assert config.architectures == ["Qwen2VLForConditionalGeneration"]
    assert str(config.dtype).removeprefix("torch.") == "bfloat16"
    assert config.tie_word_embeddings is True
    assert config.vision_config.patch_size == 14
    assert config.vision_config.spatial_merge_size == 2
    assert config.vision_config.temporal_patch_size == 2
    assert config.vision_config.hidden_size == config.text_config.hidden_size
    head_dim = config.text_config.hidden_size // config.text_config.num_attention_heads
    assert sum(config.text_config.rope_parameters["mrope_section"]) == head_dim // 2

    tok = AutoTokenizer.from_pretrained(tiny_qwen2vl_dir)
    assert type(tok) is Qwen2Tokenizer
    processor = AutoProcessor.from_pretrained(tiny_qwen2vl_dir)
    assert type(processor) is Qwen2VLProcessor
    assert type(processor.image_processor) is Qwen2VLImageProcessor
    assert type(processor.video_processor) is Qwen2VLVideoProcessor
    assert processor.chat_template == QWEN2VL_CHAT_TEMPLATE
    assert tok.chat_template == QWEN2VL_CHAT_TEMPLATE

    model = AutoModelForImageTextToText.from_pretrained(tiny_qwen2vl_dir)
    assert type(model) is Qwen2VLForConditionalGeneration
    assert model.dtype == torch.bfloat16
    assert model.lm_head.weight.data_ptr() == model.model.language_model.embed_tokens.weight.data_ptr()
    assert model.config.text_config.vocab_size >= len(tok)


def test_qwen2audio_folder_loads_offline(tiny_qwen2audio_dir):
    from transformers import (
        AutoConfig,
        AutoProcessor,
        AutoTokenizer,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        Qwen2Tokenizer,
        WhisperFeatureExtractor,
    )

    config = AutoConfig.from_pretrained(tiny_qwen2audio_dir)
    assert config.model_type == "qwen2_audio"
    assert config.architectures == ["Qwen2AudioForConditionalGeneration"]
    assert str(config.dtype).removeprefix("torch.") == "bfloat16"
    assert config.audio_config.num_mel_bins == 128
    assert config.audio_config.max_source_positions == 1500
    assert config.text_config.model_type == "qwen2"

    assert type(AutoTokenizer.from_pretrained(tiny_qwen2audio_dir)) is Qwen2Tokenizer
    processor = AutoProcessor.from_pretrained(tiny_qwen2audio_dir)
    assert type(processor) is Qwen2AudioProcessor
    features = processor.feature_extractor
    assert type(features) is WhisperFeatureExtractor
    assert (features.feature_size, features.sampling_rate, features.nb_max_frames) == (128, SR, 3000)
    assert processor.chat_template == QWEN2AUDIO_CHAT_TEMPLATE

    model = Qwen2AudioForConditionalGeneration.from_pretrained(tiny_qwen2audio_dir)
    assert model.dtype == torch.bfloat16
    assert model.lm_head.weight.data_ptr() != model.model.language_model.embed_tokens.weight.data_ptr()


@pytest.mark.parametrize("fixture", ["tiny_qwen2vl_dir", "tiny_qwen2audio_dir"])
def test_special_tokens_are_single_ids_matching_the_configs(fixture, request):
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    folder = request.getfixturevalue(fixture)
    tok = AutoTokenizer.from_pretrained(folder)
    ids = {}
    for token in tokenizer.SPECIAL_TOKENS:
        encoded = tok.encode(token, add_special_tokens=False)
        assert len(encoded) == 1, token
        ids[token] = encoded[0]
        assert tok.decode(encoded) == token
    assert len(set(ids.values())) == len(ids)
    # Inside running text too, not only on their own.
    encoded = tok.encode("say<|im_end|>\n<|im_start|>", add_special_tokens=False)
    assert ids["<|im_end|>"] in encoded and ids["<|im_start|>"] in encoded

    assert tok.pad_token == "<|endoftext|>" and tok.pad_token_id == ids["<|endoftext|>"]
    assert tok.bos_token is None
    config = AutoConfig.from_pretrained(folder)
    assert config.text_config.bos_token_id == ids["<|endoftext|>"]
    assert config.text_config.eos_token_id == ids["<|im_end|>"]
    generation = GenerationConfig.from_pretrained(folder)
    assert generation.eos_token_id == [ids["<|im_end|>"], ids["<|endoftext|>"]]
    assert generation.pad_token_id == ids["<|endoftext|>"]
    # Every id the tokenizer can produce has an embedding row.
    assert config.text_config.vocab_size >= len(tok)
    if config.model_type == "qwen2_vl":
        assert tok.eos_token == "<|im_end|>"
        assert config.image_token_id == ids["<|image_pad|>"]
        assert config.video_token_id == ids["<|video_pad|>"]
        assert config.vision_start_token_id == ids["<|vision_start|>"]
        assert config.vision_end_token_id == ids["<|vision_end|>"]
    else:
        assert config.audio_token_index == ids["<|AUDIO|>"]
        assert config.audio_token_id == ids["<|AUDIO|>"]


@pytest.mark.parametrize(
    "text",
    [
        "Hello world, what's on my screen?",
        "你好,今天天气怎么样?",
        "Mixed 中英文 text with numbers 1,234.56 and emoji 🙂 and ありがとう",
        "  leading spaces,\ttabs and\nnew lines\r\n",
    ],
)
def test_tokenizer_round_trips_text(tiny_qwen2vl_dir, text):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_qwen2vl_dir)
    ids = tok.encode(text, add_special_tokens=False)
    assert tok.decode(ids) == text
    assert all(0 <= i < len(tok) for i in ids)


def test_tokenizer_learned_merges_for_english_and_chinese(tiny_qwen2vl_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_qwen2vl_dir)
    assert 300 < len(tok) <= 1100
    for text in ("What does this error on my screen mean?", "这个视频里发生了什么"):
        assert len(tok.encode(text, add_special_tokens=False)) < len(text.encode("utf-8")) / 2


def test_tokenizer_is_deterministic():
    first = tokenizer.build_qwen2_tokenizer()
    second = tokenizer.build_qwen2_tokenizer()
    assert first.backend_tokenizer.to_str() == second.backend_tokenizer.to_str()


# -------------------------------------------------------------------------------------- chat templates


@pytest.fixture(scope="module")
def vl_processor(tiny_qwen2vl_dir):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_qwen2vl_dir)


@pytest.fixture(scope="module")
def audio_processor(tiny_qwen2audio_dir):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_qwen2audio_dir)


def render(processor, messages, **kwargs) -> str:
    text = processor.apply_chat_template(messages, tokenize=False, **kwargs)
    # The tokenizer carries the same template and must agree (some callers only load the tokenizer).
    assert processor.tokenizer.apply_chat_template(messages, tokenize=False, **kwargs) == text
    return text


def test_vl_template_text_only(vl_processor):
    messages = [{"role": "user", "content": "What's the capital of Peru?"}]
    assert render(vl_processor, messages, add_generation_prompt=True) == (
        SYSTEM + "<|im_start|>user\nWhat's the capital of Peru?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert render(vl_processor, messages) == SYSTEM + "<|im_start|>user\nWhat's the capital of Peru?<|im_end|>\n"


def test_vl_template_one_image(vl_processor):
    messages = [
        {
            "role": "user",
            "content": [{"type": "image", "image": "screen.png"}, {"type": "text", "text": "Describe this image."}],
        }
    ]
    assert render(vl_processor, messages, add_generation_prompt=True) == (
        SYSTEM + f"<|im_start|>user\n{IMAGE}Describe this image.<|im_end|>\n<|im_start|>assistant\n"
    )


def test_vl_template_video_and_vision_ids(vl_processor):
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "video", "video": ["f1.jpg", "f2.jpg"]},
                {"type": "text", "text": "What happens?"},
            ],
        }
    ]
    assert render(vl_processor, messages, add_generation_prompt=True) == (
        SYSTEM + f"<|im_start|>user\n{VIDEO}What happens?<|im_end|>\n<|im_start|>assistant\n"
    )
    two_images = [
        {
            "role": "user",
            "content": [
                {"type": "image"},
                {"type": "image_url", "image_url": "b.png"},
                {"type": "text", "text": "Compare."},
            ],
        }
    ]
    assert render(vl_processor, two_images, add_vision_id=True) == (
        SYSTEM + f"<|im_start|>user\nPicture 1: {IMAGE}Picture 2: {IMAGE}Compare.<|im_end|>\n"
    )
    assert render(vl_processor, two_images) == SYSTEM + f"<|im_start|>user\n{IMAGE}{IMAGE}Compare.<|im_end|>\n"


def test_vl_template_multi_turn_with_system(vl_processor):
    messages = [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is this?"}]},
        {"role": "assistant", "content": "A cat."},
        {"role": "user", "content": [{"type": "text", "text": "What colour?"}]},
    ]
    assert render(vl_processor, messages, add_generation_prompt=True) == (
        "<|im_start|>system\nAnswer briefly.<|im_end|>\n"
        f"<|im_start|>user\n{IMAGE}What is this?<|im_end|>\n"
        "<|im_start|>assistant\nA cat.<|im_end|>\n"
        "<|im_start|>user\nWhat colour?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_audio_template_voice_chat(audio_processor):
    messages = [{"role": "user", "content": [{"type": "audio", "audio_url": "question.wav"}]}]
    assert render(audio_processor, messages, add_generation_prompt=True) == (
        SYSTEM + f"<|im_start|>user\nAudio 1: {AUDIO}\n<|im_end|>\n<|im_start|>assistant\n"
    )


def test_audio_template_analysis_and_multi_turn(audio_processor):
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {
            "role": "user",
            "content": [{"type": "audio", "audio": "glass.wav"}, {"type": "text", "text": "What's that sound?"}],
        },
        {"role": "assistant", "content": "Glass breaking."},
        {"role": "user", "content": [{"type": "audio", "audio": "cough.wav"}, {"type": "text", "text": "And this?"}]},
    ]
    assert render(audio_processor, messages, add_generation_prompt=True) == (
        SYSTEM
        + f"<|im_start|>user\nAudio 1: {AUDIO}\nWhat's that sound?<|im_end|>\n"
        + "<|im_start|>assistant\nGlass breaking.<|im_end|>\n"
        + f"<|im_start|>user\nAudio 2: {AUDIO}\nAnd this?<|im_end|>\n"
        + "<|im_start|>assistant\n"
    )
    assert render(audio_processor, [{"role": "user", "content": "hi"}]) == (SYSTEM + "<|im_start|>user\nhi<|im_end|>\n")


def test_audio_template_needs_an_audio_key(audio_processor):
    """Like the real Qwen2-Audio template: a part is audio only with an `audio` or `audio_url` key."""
    messages = [{"role": "user", "content": [{"type": "audio", "path": "q.wav"}, {"type": "text", "text": "Hi"}]}]
    assert render(audio_processor, messages) == SYSTEM + "<|im_start|>user\nHi<|im_end|>\n"


# --------------------------------------------------------------------------------------- Qwen2-VL runs


def vl_inputs(processor, content, **kwargs):
    messages = [{"role": "user", "content": content}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return processor(text=[text], return_tensors="pt", **kwargs)


def test_vl_one_image_shapes_forward_and_generate(vl):
    processor, model = vl
    image = gradient_image(112, 84, 0)
    inputs = vl_inputs(processor, [{"type": "image"}, {"type": "text", "text": "Describe."}], images=[image])
    # 84x112 pixels are 6x8 patches of 14; each 2x2 group of patches is one language-model token.
    assert inputs["image_grid_thw"].tolist() == [[1, 6, 8]]
    assert tuple(inputs["pixel_values"].shape) == (48, 3 * 2 * 14 * 14)
    assert count(inputs["input_ids"], model.config.image_token_id) == 48 // 4
    assert count(inputs["input_ids"], model.config.vision_start_token_id) == 1
    assert "mm_token_type_ids" in inputs

    logits = last_logits(model, inputs)
    new = greedy(model, inputs)
    assert new[0] == int(logits.argmax())
    assert all(i < len(processor.tokenizer) for i in new)

    # The picture reaches the language model: another picture of the same size changes the prediction.
    content = [{"type": "image"}, {"type": "text", "text": "Describe."}]
    other = vl_inputs(processor, content, images=[gradient_image(112, 84, 2)])
    assert torch.equal(other["input_ids"], inputs["input_ids"])
    assert not torch.allclose(last_logits(model, other), logits)


def test_vl_two_images(vl):
    processor, model = vl
    images = [gradient_image(56, 56, 0), gradient_image(112, 84, 1)]
    content = [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "Compare them."}]
    inputs = vl_inputs(processor, content, images=images)
    grids = inputs["image_grid_thw"]
    assert grids.tolist() == [[1, 4, 4], [1, 6, 8]]
    assert inputs["pixel_values"].shape[0] == int(grids.prod(-1).sum())
    assert count(inputs["input_ids"], model.config.image_token_id) == (16 + 48) // 4
    assert count(inputs["input_ids"], model.config.vision_start_token_id) == 2
    last_logits(model, inputs)
    greedy(model, inputs)


def test_vl_video_frames(vl):
    processor, model = vl
    frames = [gradient_image(56, 56, i % 3) for i in range(4)]
    content = [{"type": "video"}, {"type": "text", "text": "What happens?"}]
    inputs = vl_inputs(processor, content, videos=[frames], fps=2.0)
    # 4 frames -> 2 temporal patches of 2 frames, each 4x4 patches of 14 pixels.
    assert inputs["video_grid_thw"].tolist() == [[2, 4, 4]]
    assert tuple(inputs["pixel_values_videos"].shape) == (32, 1176)
    assert count(inputs["input_ids"], model.config.video_token_id) == 32 // 4
    assert count(inputs["input_ids"], model.config.image_token_id) == 0
    logits = last_logits(model, inputs)
    greedy(model, inputs)

    reversed_frames = vl_inputs(processor, content, videos=[frames[::-1]], fps=2.0)
    assert not torch.allclose(last_logits(model, reversed_frames), logits)


def test_vl_with_qwen_vl_utils(vl):
    """The article's input path: qwen-vl-utils resizes and loads, the processor tokenizes."""
    qwen_vl_utils = pytest.importorskip("qwen_vl_utils")
    processor, model = vl
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "image", "image": gradient_image(130, 70, 1)},
                {"type": "text", "text": "What is on my screen?"},
            ],
        }
    ]
    images, videos = qwen_vl_utils.process_vision_info(messages)
    assert videos is None and len(images) == 1
    assert images[0].width % 28 == 0 and images[0].height % 28 == 0
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    inputs = processor(text=[text], images=images, return_tensors="pt")
    t, h, w = inputs["image_grid_thw"][0].tolist()
    assert (t, h * 14, w * 14) == (1, images[0].height, images[0].width)
    assert count(inputs["input_ids"], model.config.image_token_id) == t * h * w // 4
    greedy(model, inputs)


def test_vl_chat_template_tokenizes_inline_images(vl):
    """transformers 5 can load the media from the messages and run the processor in one call."""
    processor, model = vl
    messages = [
        {
            "role": "user",
            "content": [{"type": "image", "image": gradient_image(56, 56, 2)}, {"type": "text", "text": "Hi"}],
        }
    ]
    inputs = processor.apply_chat_template(
        messages, tokenize=True, return_dict=True, add_generation_prompt=True, return_tensors="pt"
    )
    assert inputs["image_grid_thw"].tolist() == [[1, 4, 4]]
    assert count(inputs["input_ids"], model.config.image_token_id) == 4
    greedy(model, inputs)


# ------------------------------------------------------------------------------------ Qwen2-Audio runs


def audio_inputs(processor, content, clips):
    messages = [{"role": "user", "content": content}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return processor(text=[text], audio=clips, sampling_rate=SR, return_tensors="pt")


def test_audio_voice_chat_three_seconds(audio):
    processor, model = audio
    inputs = audio_inputs(processor, [{"type": "audio", "audio_url": "q.wav"}], [tone(3.0, 220.0)])
    # Every clip is padded to 30 s of 10 ms frames; the mask marks the 3 s that are real.
    assert tuple(inputs["input_features"].shape) == (1, 128, 3000)
    assert int(inputs["feature_attention_mask"].sum()) == 300
    # 25 audio tokens per second of speech reach the language model.
    assert count(inputs["input_ids"], model.config.audio_token_index) == 75
    assert "num_audio_tokens" not in inputs

    logits = last_logits(model, inputs)
    new = greedy(model, inputs)
    assert new[0] == int(logits.argmax())
    assert all(i < len(processor.tokenizer) for i in new)

    other = audio_inputs(processor, [{"type": "audio", "audio_url": "q.wav"}], [tone(3.0, 3000.0)])
    assert torch.equal(other["input_ids"], inputs["input_ids"])
    assert not torch.allclose(last_logits(model, other), logits)


def test_audio_with_text_question(audio):
    processor, model = audio
    content = [{"type": "audio", "audio_url": "a.wav"}, {"type": "text", "text": "What's that sound?"}]
    inputs = audio_inputs(processor, content, [tone(2.0, 440.0)])
    assert count(inputs["input_ids"], model.config.audio_token_index) == 50
    text = processor.tokenizer.decode(inputs["input_ids"][0])
    assert text.endswith("<|audio_eos|>\nWhat's that sound?<|im_end|>\n<|im_start|>assistant\n")
    last_logits(model, inputs)
    greedy(model, inputs)


def test_audio_chat_template_tokenizes_inline_audio(audio):
    processor, model = audio
    messages = [{"role": "user", "content": [{"type": "audio", "audio": tone(1.0, 330.0)}]}]
    inputs = processor.apply_chat_template(
        messages,
        tokenize=True,
        return_dict=True,
        add_generation_prompt=True,
        return_tensors="pt",
        processor_kwargs={"sampling_rate": SR},
    )
    assert int(inputs["feature_attention_mask"].sum()) == 100
    assert count(inputs["input_ids"], model.config.audio_token_index) == 25
    greedy(model, inputs)


def test_audio_processor_drops_the_old_audios_keyword(audio_processor):
    """transformers 5 takes `audio=`; `audios=` (4.4x) is dropped, then the audio placeholder has no clip."""
    messages = [{"role": "user", "content": [{"type": "audio", "audio_url": "q.wav"}]}]
    text = audio_processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    with pytest.raises(ValueError, match="no audio inputs"):
        audio_processor(text=[text], audios=[tone(1.0, 220.0)], sampling_rate=SR, return_tensors="pt")


# ------------------------------------------------------------------------------- determinism, full size


def test_builds_are_deterministic(tiny_qwen2vl_dir, tiny_qwen2audio_dir, tmp_path):
    again_vl = checkpoints.build_tiny_qwen2vl(tmp_path / "vl")
    again_audio = checkpoints.build_tiny_qwen2audio(tmp_path / "audio")
    for first, second in ((tiny_qwen2vl_dir, again_vl), (tiny_qwen2audio_dir, again_audio)):
        assert (first / "model.safetensors").read_bytes() == (second / "model.safetensors").read_bytes()
        assert checkpoints.folder_digest(first) == checkpoints.folder_digest(second)
    # A different seed gives different weights (the digest does look at them).
    other = checkpoints.build_tiny_qwen2vl(tmp_path / "vl-other", seed=1)
    assert checkpoints.folder_digest(other) != checkpoints.folder_digest(tiny_qwen2vl_dir)


def test_padded_vocabulary_rows_are_small(vl, audio):
    for processor, model in (vl, audio):
        n = len(processor.tokenizer)
        for weight in (model.get_input_embeddings().weight, model.get_output_embeddings().weight):
            real = weight[:n].float().abs().mean()
            padded = weight[n:].float().abs().mean()
            assert weight.shape[0] > n
            assert padded < real / 20


def test_full_size_qwen2vl_2b_config():
    config = checkpoints.qwen2vl_config("full")
    text, vision = config.text_config, config.vision_config
    assert (text.hidden_size, text.num_hidden_layers, text.num_attention_heads, text.num_key_value_heads) == (
        1536,
        28,
        12,
        2,
    )
    assert (text.intermediate_size, text.vocab_size) == (8960, 151936)
    assert text.rope_parameters["mrope_section"] == [16, 24, 24]
    assert text.rope_parameters["rope_theta"] == 1000000.0
    assert (vision.depth, vision.embed_dim, vision.num_heads, vision.hidden_size) == (32, 1280, 16, 1536)
    assert (config.image_token_id, config.video_token_id, config.vision_start_token_id) == (151655, 151656, 151652)
    assert checkpoints.count_parameters(config) == 2_208_985_600


def test_full_size_qwen2audio_7b_config():
    config = checkpoints.qwen2audio_config("full")
    text, enc = config.text_config, config.audio_config
    assert (text.hidden_size, text.num_hidden_layers, text.num_attention_heads, text.num_key_value_heads) == (
        4096,
        32,
        32,
        32,
    )
    assert (text.intermediate_size, text.vocab_size, text.max_position_embeddings) == (11008, 156032, 8192)
    assert (enc.d_model, enc.encoder_layers, enc.encoder_attention_heads, enc.num_mel_bins) == (1280, 32, 20, 128)
    assert config.audio_token_index == 151646
    assert checkpoints.count_parameters(config) == 8_397_094_912


def test_full_size_config_takes_tiny_tokenizer_ids():
    tok = tokenizer.build_qwen2_tokenizer()
    ids = tokenizer.special_token_ids(tok)
    config = checkpoints.qwen2vl_config("full", ids)
    assert config.image_token_id == ids["<|image_pad|>"] < len(tok)
    assert config.text_config.vocab_size == 151936
    generation = checkpoints.qwen2vl_generation_config(ids)
    assert generation.eos_token_id == [ids["<|im_end|>"], ids["<|endoftext|>"]]
    audio_config = checkpoints.qwen2audio_config("full", ids)
    assert audio_config.audio_token_index == ids["<|AUDIO|>"]
    assert audio_config.text_config.vocab_size == 156032


def test_saved_generation_configs_match_the_real_defaults(tiny_qwen2vl_dir, tiny_qwen2audio_dir):
    vl_generation = json.loads((tiny_qwen2vl_dir / "generation_config.json").read_text())
    assert vl_generation["do_sample"] is True and vl_generation["top_k"] == 1
    audio_generation = json.loads((tiny_qwen2audio_dir / "generation_config.json").read_text())
    assert audio_generation["do_sample"] is True
