"""Tiny checkpoints in the real hub layout (Qwen2-VL-2B-Instruct, Qwen2-Audio-7B-Instruct, written by transformers
4.4x): the files look like the hub's, transformers 5 loads them to exactly the tiny models, the torch-free
preprocessing reads them, and conversion + OpenVINO greedy decoding equal PyTorch on them token for token.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from assistant.errors import UsageError
from assistant.models.convert.compression import check_group_size, language_model_input_channels
from assistant.testing import build_hub_qwen2audio, build_hub_qwen2vl, folder_digest, special_token_ids
from assistant.testing.hub_layout import INDEX_NAME, SHARD_NAMES

from speech import SAMPLE_RATE, spoken

EXACT = {"INFERENCE_PRECISION_HINT": "f32", "KV_CACHE_PRECISION": "f32"}
NEW_TOKENS = 12
INT4 = {"group_size": 16, "ratio": 1.0}  # the mode is added where nncf is imported

COMMON_FILES = {"config.json", "generation_config.json", "preprocessor_config.json", "tokenizer_config.json"}
COMMON_FILES |= {"vocab.json", "merges.txt", INDEX_NAME, *SHARD_NAMES}
VL_FILES = COMMON_FILES | {"tokenizer.json", "chat_template.json"}
AUDIO_FILES = COMMON_FILES


@pytest.fixture(scope="module")
def hub_vl(tmp_path_factory):
    return build_hub_qwen2vl(tmp_path_factory.mktemp("hub") / "Qwen2-VL-2B-Instruct")


@pytest.fixture(scope="module")
def hub_audio(tmp_path_factory):
    return build_hub_qwen2audio(tmp_path_factory.mktemp("hub") / "Qwen2-Audio-7B-Instruct")


@pytest.fixture(scope="module")
def tiny_ids(hf, tiny_qwen2vl_dir):
    """Special-token ids of the tiny tokenizer (both builders use the same one)."""
    return special_token_ids(hf.AutoTokenizer.from_pretrained(tiny_qwen2vl_dir))


def read(folder, name):
    return json.loads((folder / name).read_text(encoding="utf-8"))


def picture(width, height, seed):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


# ---------------------------------------------------------------------------------------------- layout


def test_vl_folder_is_laid_out_as_the_hub_one(hub_vl, tiny_ids):
    assert {p.name for p in hub_vl.iterdir()} == VL_FILES
    config = read(hub_vl, "config.json")
    # Flat: the text model's keys at the top level, M-RoPE as rope_scaling, the 4.4x vision key names.
    assert "text_config" not in config and "rope_parameters" not in config
    assert config["rope_scaling"] == {"type": "mrope", "mrope_section": [2, 3, 3]}
    assert config["rope_theta"] == 1000000.0 and config["hidden_size"] == 64 and config["num_hidden_layers"] == 2
    vision = config["vision_config"]
    assert vision["in_chans"] == 3 and vision["spatial_patch_size"] == 14 and "in_channels" not in vision
    assert {"depth", "embed_dim", "mlp_ratio", "num_heads", "hidden_size", "patch_size"} <= set(vision)
    assert config["tie_word_embeddings"] is True and config["torch_dtype"] == "bfloat16"
    assert config["transformers_version"].startswith("4.")
    assert config["vision_token_id"] == tiny_ids["<|vision_pad|>"]
    assert config["image_token_id"] == tiny_ids["<|image_pad|>"]
    assert config["video_token_id"] == tiny_ids["<|video_pad|>"]
    assert config["eos_token_id"] == tiny_ids["<|im_end|>"] and config["vocab_size"] > max(tiny_ids.values())

    generation = read(hub_vl, "generation_config.json")
    assert generation["eos_token_id"] == [tiny_ids["<|im_end|>"], tiny_ids["<|endoftext|>"]]
    assert generation["pad_token_id"] == generation["bos_token_id"] == tiny_ids["<|endoftext|>"]
    sampling = ("do_sample", "temperature", "top_p", "top_k", "repetition_penalty")
    assert [generation[k] for k in sampling] == [True, 0.01, 0.001, 1, 1.0]

    pre = read(hub_vl, "preprocessor_config.json")
    assert pre["image_processor_type"] == "Qwen2VLImageProcessor" and pre["processor_class"] == "Qwen2VLProcessor"
    assert (pre["min_pixels"], pre["max_pixels"], pre["merge_size"]) == (3136, 12845056, 2)

    template = read(hub_vl, "chat_template.json")["chat_template"]
    tokenizer_config = read(hub_vl, "tokenizer_config.json")
    assert tokenizer_config["chat_template"] == template
    assert tokenizer_config["eos_token"] == "<|im_end|>" and tokenizer_config["pad_token"] == "<|endoftext|>"
    assert tokenizer_config["tokenizer_class"] == "Qwen2Tokenizer" and tokenizer_config["model_max_length"] == 32768
    assert tokenizer_config["split_special_tokens"] is False and tokenizer_config["padding_side"] == "left"
    decoder = tokenizer_config["added_tokens_decoder"]
    assert {int(k): v["content"] for k, v in decoder.items()} == {i: t for t, i in tiny_ids.items()}
    tokenizer = read(hub_vl, "tokenizer.json")
    assert all(isinstance(m, str) for m in tokenizer["model"]["merges"])  # 2024 tokenizer.json, "a b" merges
    assert (hub_vl / "merges.txt").read_text(encoding="utf-8").startswith("#version: 0.2\n")


def test_audio_folder_is_laid_out_as_the_hub_one(hub_audio, tiny_ids):
    assert {p.name for p in hub_audio.iterdir()} == AUDIO_FILES  # no tokenizer.json, no template file
    config = read(hub_audio, "config.json")
    text = config["text_config"]
    # Partial: what Qwen2Config's defaults give is left out, as in the real file.
    assert not {"hidden_act", "rope_theta", "rope_parameters", "tie_word_embeddings", "max_window_layers"} & set(text)
    assert text["model_type"] == "qwen2" and text["use_mrope"] is False and text["torch_dtype"] == "bfloat16"
    assert text["eos_token_id"] == tiny_ids["<|im_end|>"] and text["bos_token_id"] == tiny_ids["<|endoftext|>"]
    assert config["audio_config"]["model_type"] == "qwen2_audio_encoder" and "init_std" in config["audio_config"]
    assert config["audio_token_index"] == tiny_ids["<|AUDIO|>"] and config["ignore_index"] == -100
    assert config["vocab_size"] == text["vocab_size"]

    generation = read(hub_audio, "generation_config.json")
    assert generation["chat_format"] == "chatml"
    assert generation["eos_token_id"] == [tiny_ids["<|endoftext|>"], tiny_ids["<|im_end|>"]]
    assert (generation["top_k"], generation["top_p"], generation["temperature"]) == (20, 0.5, 0.7)
    assert generation["repetition_penalty"] == 1.1 and generation["do_sample"] is True

    pre = read(hub_audio, "preprocessor_config.json")
    assert pre["feature_extractor_type"] == "WhisperFeatureExtractor" and pre["feature_size"] == 128
    assert (pre["sampling_rate"], pre["nb_max_frames"], pre["return_attention_mask"]) == (16000, 3000, True)
    tokenizer_config = read(hub_audio, "tokenizer_config.json")
    assert "<|AUDIO|>" in tokenizer_config["chat_template"] and tokenizer_config["eos_token"] == "<|endoftext|>"


@pytest.mark.parametrize("which", ["vl", "audio"])
def test_weights_are_two_bf16_shards_with_the_hub_names_and_an_index(hub_vl, hub_audio, which):
    folder = hub_vl if which == "vl" else hub_audio
    index = read(folder, INDEX_NAME)
    assert set(index) == {"metadata", "weight_map"} and set(index["metadata"]) == {"total_size"}
    in_shards, total = {}, 0
    for name in SHARD_NAMES:
        with safe_open(folder / name, "pt") as shard:
            assert shard.metadata() == {"format": "pt"}
            for key in shard.keys():  # noqa: SIM118 (a safetensors handle, not a dict)
                tensor = shard.get_tensor(key)
                assert tensor.dtype == torch.bfloat16, key
                in_shards[key] = name
                total += tensor.numel() * tensor.element_size()
    assert index["weight_map"] == in_shards  # every tensor listed, in the shard it is in, nothing else
    assert index["metadata"]["total_size"] == total
    assert set(in_shards.values()) == set(SHARD_NAMES)
    keys = set(in_shards)
    if which == "vl":
        assert "lm_head.weight" not in keys  # tied to the embedding
        assert {"model.embed_tokens.weight", "model.norm.weight", "visual.patch_embed.proj.weight"} <= keys
        assert all(k.startswith(("model.layers.", "model.embed_tokens.", "model.norm.", "visual.")) for k in keys)
        assert {k.split(".")[1] for k in keys if k.startswith("visual.")} == {"patch_embed", "blocks", "merger"}
    else:
        assert {"language_model.lm_head.weight", "language_model.model.embed_tokens.weight"} <= keys
        assert {"multi_modal_projector.linear.weight", "multi_modal_projector.linear.bias"} <= keys
        prefixes = ("audio_tower.", "multi_modal_projector.linear.", "language_model.model.", "language_model.lm_head.")
        assert all(k.startswith(prefixes) for k in keys)


def test_builds_are_deterministic(hub_vl, hub_audio, tmp_path):
    assert folder_digest(build_hub_qwen2vl(tmp_path / "vl")) == folder_digest(hub_vl)
    assert folder_digest(build_hub_qwen2audio(tmp_path / "audio")) == folder_digest(hub_audio)
    assert folder_digest(build_hub_qwen2vl(tmp_path / "vl-other", seed=1)) != folder_digest(hub_vl)


# ---------------------------------------------------------------------------------------- transformers


@pytest.mark.parametrize("which", ["vl", "audio"])
def test_transformers_loads_them_to_exactly_the_tiny_models(
    hf, hub_vl, hub_audio, tiny_qwen2vl_dir, tiny_qwen2audio_dir, which
):
    if which == "vl":
        folder, tiny, model_cls = hub_vl, tiny_qwen2vl_dir, hf.Qwen2VLForConditionalGeneration
        names = ("Qwen2VLConfig", "Qwen2VLProcessor")
    else:
        folder, tiny, model_cls = hub_audio, tiny_qwen2audio_dir, hf.Qwen2AudioForConditionalGeneration
        names = ("Qwen2AudioConfig", "Qwen2AudioProcessor")
    config = hf.AutoConfig.from_pretrained(folder)
    processor = hf.AutoProcessor.from_pretrained(folder)
    assert (type(config).__name__, type(processor).__name__) == names
    reference = hf.AutoProcessor.from_pretrained(tiny)
    text = "Hello there! 秘鲁的首都是哪里? <|im_start|>user\n<|AUDIO|><|image_pad|><|im_end|>\n"
    assert processor.tokenizer(text)["input_ids"] == reference.tokenizer(text)["input_ids"]
    assert processor.tokenizer.eos_token == reference.tokenizer.eos_token
    messages = [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]
    assert processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == (
        reference.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    )

    model, info = model_cls.from_pretrained(folder, dtype=torch.bfloat16, output_loading_info=True)
    assert not any(info.values()), info  # no missing, unexpected, mismatched keys, no errors
    expected = model_cls.from_pretrained(tiny, dtype=torch.bfloat16).state_dict()
    got = model.state_dict()
    assert got.keys() == expected.keys()
    assert all(torch.equal(got[k], expected[k]) for k in got)
    tied = model.get_input_embeddings().weight.data_ptr() == model.get_output_embeddings().weight.data_ptr()
    assert tied == (which == "vl")


def test_the_torch_free_preprocessing_reads_the_hub_folders(hf, hub_vl, hub_audio):
    """The legacy preprocessor_config.json and chat_template.json, and a tokenizer from vocab.json + merges.txt."""
    from assistant.models.preprocess import Qwen2AudioPreprocessor, Qwen2VLPreprocessor, Tokenizer

    text = "Hello there! 秘鲁的首都是哪里? ありがとう 1,234.56\n<|im_start|>user\n<|AUDIO|><|im_end|>\n"
    for folder in (hub_vl, hub_audio):
        reference = hf.AutoTokenizer.from_pretrained(folder)
        tokenizer = Tokenizer.from_dir(folder)
        ids = tokenizer.encode(text)
        assert ids == reference(text)["input_ids"]
        assert tokenizer.decode(ids) == reference.decode(ids, skip_special_tokens=True)
        assert tokenizer.eos_token == reference.eos_token and len(tokenizer) == len(reference)

    vl_processor = hf.AutoProcessor.from_pretrained(hub_vl)
    vl = Qwen2VLPreprocessor.from_dir(hub_vl)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is this?"}]}]
    prompt = vl.apply_chat_template(messages)
    assert prompt == vl_processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    image = picture(112, 84, 1)
    mine = vl(prompt, images=[image], image_backend="torch")
    ref = vl_processor(text=[prompt], images=[image], return_tensors="np")
    assert list(mine) == list(ref.keys())
    for key in ref:
        np.testing.assert_allclose(mine[key], ref[key], atol=1e-5, err_msg=key)

    audio_processor = hf.AutoProcessor.from_pretrained(hub_audio)
    audio = Qwen2AudioPreprocessor.from_dir(hub_audio)
    messages = [{"role": "user", "content": [{"type": "audio", "audio": "q.wav"}]}]
    prompt = audio.apply_chat_template(messages)
    assert prompt == audio_processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    clip = spoken("What is the capital of Peru?", seconds=3.0)
    mine = audio(prompt, audio=clip)
    ref = audio_processor(text=[prompt], audio=clip, sampling_rate=SAMPLE_RATE, return_tensors="np")
    assert list(mine) == list(ref.keys())
    for key in ref:
        np.testing.assert_allclose(mine[key], ref[key], atol=1e-4, err_msg=key)


def test_the_group_size_check_reads_partial_and_flat_hub_configs():
    """The real Qwen2-Audio-7B-Instruct text_config has no hidden size or head count (Qwen2Config defaults)."""
    real_audio = {
        "architectures": ["Qwen2AudioForConditionalGeneration"],
        "audio_config": {"model_type": "qwen2_audio_encoder", "d_model": 1280, "encoder_layers": 32},
        "audio_token_index": 151646,
        "model_type": "qwen2_audio",
        "text_config": {"intermediate_size": 11008, "model_type": "qwen2", "use_mrope": False, "vocab_size": 156032},
    }
    real_vl = {
        "model_type": "qwen2_vl",
        "hidden_size": 1536,
        "intermediate_size": 8960,
        "num_attention_heads": 12,
        "num_key_value_heads": 2,
        "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
        "vision_config": {"depth": 32, "embed_dim": 1280, "in_chans": 3, "spatial_patch_size": 14},
    }
    assert language_model_input_channels(real_audio) == {4096, 11008}
    assert language_model_input_channels(real_vl) == {1536, 8960}
    check_group_size(real_audio, {"group_size": 128})
    check_group_size(real_vl, {"group_size": 128})
    with pytest.raises(UsageError, match="does not divide"):
        check_group_size(real_audio, {"group_size": 96})


# ------------------------------------------------------------------------------------ conversion (slow)


@pytest.fixture(scope="module")
def hub_vl_f32(hub_vl, tmp_path_factory):
    from assistant.models import convert_qwen2vl_model

    out = tmp_path_factory.mktemp("convert-hub") / "vl-f32"
    convert_qwen2vl_model(hub_vl, out, None, full_precision=True)
    return out


@pytest.fixture(scope="module")
def hub_audio_f32(hub_audio, tmp_path_factory):
    from assistant.models import convert_qwen2audio_model

    out = tmp_path_factory.mktemp("convert-hub") / "audio-f32"
    convert_qwen2audio_model(hub_audio, out, None, full_precision=True)
    return out


def torch_generate(model, inputs):
    with torch.no_grad():
        return model.generate(**inputs, max_new_tokens=NEW_TOKENS, do_sample=False)[0].tolist()


@pytest.mark.slow
def test_vl_greedy_on_the_hub_folder_equals_pytorch(hf, hub_vl, hub_vl_f32):
    from assistant.models import OVQwen2VLModel

    model = hf.Qwen2VLForConditionalGeneration.from_pretrained(hub_vl, dtype=torch.float32).eval()
    processor = hf.AutoProcessor.from_pretrained(hub_vl)
    image = picture(112, 84, 1)
    messages = [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": "What?"}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    inputs = processor(text=[text], images=[image], return_tensors="pt")
    expected = torch_generate(model, inputs)
    got = OVQwen2VLModel(hub_vl_f32, ov_config=EXACT).generate(**inputs, max_new_tokens=NEW_TOKENS, do_sample=False)
    assert got[0].tolist() == expected
    assert len(expected) > inputs["input_ids"].shape[1]


@pytest.mark.slow
def test_audio_voice_chat_on_the_hub_folder_equals_pytorch(hf, hub_audio, hub_audio_f32):
    from assistant.models import OVQwen2AudioModel

    model = hf.Qwen2AudioForConditionalGeneration.from_pretrained(hub_audio, dtype=torch.float32).eval()
    processor = hf.AutoProcessor.from_pretrained(hub_audio)
    clip = spoken("What is the capital of Peru?", seconds=3.0)
    messages = [{"role": "user", "content": [{"type": "audio", "audio": clip}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    inputs = processor(text=text, audio=[clip], sampling_rate=SAMPLE_RATE, return_tensors="pt")
    expected = torch_generate(model, inputs)
    ov_model = OVQwen2AudioModel(hub_audio_f32, ov_config=EXACT)
    got = ov_model.generate(**inputs, max_new_tokens=NEW_TOKENS, do_sample=False)[0].tolist()
    assert got == expected
    assert ov_model.last_stats.prompt_tokens == inputs["input_ids"].shape[1]
    # The end tokens of the hub's generation_config.json (a list) reach the converted folder.
    assert ov_model.stop_ids() == set(json.loads((hub_audio / "generation_config.json").read_text())["eos_token_id"])


@pytest.mark.slow
@pytest.mark.parametrize("which", ["vl", "audio"])
def test_int4_conversion_of_the_hub_folders(hub_vl, hub_audio, tmp_path, which):
    import nncf

    from assistant.models import OVQwen2AudioModel, OVQwen2VLModel, convert_qwen2audio_model, convert_qwen2vl_model

    convert, model_cls, folder = (
        (convert_qwen2vl_model, OVQwen2VLModel, hub_vl)
        if which == "vl"
        else (convert_qwen2audio_model, OVQwen2AudioModel, hub_audio)
    )
    out = tmp_path / which
    result = convert(folder, out, {"mode": nncf.CompressWeightsMode.INT4_ASYM, **INT4})
    assert result.manifest.compression["language_model"] == {"group_size": 16, "mode": "int4_asym", "ratio": 1.0}
    model = model_cls(out)
    ids = np.asarray([model.preprocessor.tokenizer.encode("Hello there")], dtype=np.int64)
    new = model.generate(input_ids=ids, max_new_tokens=4, do_sample=False).shape[1] - ids.shape[1]
    assert 1 <= new <= 4
