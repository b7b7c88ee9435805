"""Scripted checkpoints that hear one text and answer another (the latency benchmark's instruments, tiny here):
what they say in PyTorch, after INT4 conversion on OpenVINO, and the shard-by-shard writer full-size ones use."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from assistant.daemon.conversation import Conversation
from assistant.models.transcript import SAMPLE_RATE
from assistant.testing.checkpoints import qwen2audio_tokenizer
from assistant.testing.scripted import make_script

HEARD = "ok assistant, capital of Peru?"
ANSWER = "Lima is the city you mean. Need help!"
SCREEN_ANSWER = "The screen shows a terminal window. Need more help!"
INT4 = {"group_size": 16, "ratio": 1.0}  # the defaults' mode and ratio; 16 divides the tiny widths


def clip(seconds: float, seed: int) -> np.ndarray:
    return (0.05 * np.random.default_rng(seed).standard_normal(int(seconds * SAMPLE_RATE))).astype(np.float32)


def test_the_answer_gets_its_own_chain_and_the_flag_head_two_dimensions():
    script = make_script(qwen2audio_tokenizer(), HEARD, 64, answer=ANSWER)
    tokenizer = qwen2audio_tokenizer()
    assert tokenizer.decode(script.heard) == HEARD and tokenizer.decode(script.answer) == ANSWER
    assert len(script.tokens) <= 64 - 2
    assert script.marker == tokenizer.convert_tokens_to_ids("Det")


def test_a_text_holding_the_requests_marker_cannot_be_an_answer():
    with pytest.raises(ValueError, match="marker"):
        make_script(qwen2audio_tokenizer(), "Det", 64, answer=ANSWER)


# ----------------------------------------------------------------------------------------------- slow


@pytest.fixture(scope="module")
def audio_checkpoint(tmp_path_factory):
    from assistant.testing import build_scripted_qwen2audio

    return build_scripted_qwen2audio(tmp_path_factory.mktemp("heard") / "qwen2audio", HEARD, answer=ANSWER)


@pytest.fixture(scope="module")
def vl_checkpoint(tmp_path_factory):
    from assistant.testing import build_scripted_qwen2vl

    return build_scripted_qwen2vl(tmp_path_factory.mktemp("vl") / "qwen2vl", SCREEN_ANSWER)


def int4(checkpoint, out):
    import nncf

    from assistant.models import convert_qwen2audio_model, convert_qwen2vl_model

    nncf.set_log_level(logging.ERROR)
    convert = convert_qwen2audio_model if "audio" in checkpoint.name else convert_qwen2vl_model
    convert(checkpoint, out, {"mode": nncf.CompressWeightsMode.INT4_ASYM, **INT4}, progress=lambda m: None)
    return out


def turns(pre, transcribe, generate) -> list[tuple[str, str]]:
    """(transcript, answer) of two turns as the service asks them: the second with the first as history."""
    conversation = Conversation()
    said = []
    for turn, seconds in enumerate((3.0, 6.0)):
        audio = clip(seconds, turn)
        heard = transcribe(conversation.transcription_inputs(pre, audio))
        answer = generate(conversation.voice_inputs(pre, audio))
        said.append((heard, answer))
        conversation.remember(audio, answer)
    return said


@pytest.mark.slow
def test_pytorch_hears_the_transcript_and_answers_the_answer(audio_checkpoint):
    import torch
    from transformers import Qwen2AudioForConditionalGeneration

    from assistant.models.preprocess import Qwen2AudioPreprocessor

    pre = Qwen2AudioPreprocessor.from_dir(audio_checkpoint)
    model = Qwen2AudioForConditionalGeneration.from_pretrained(audio_checkpoint).eval()

    def generate(inputs):
        with torch.no_grad():
            tensors = {k: torch.from_numpy(v) for k, v in inputs.items()}
            out = model.generate(**tensors, max_new_tokens=40, do_sample=False)
        return pre.decode(out[0, inputs["input_ids"].shape[1] :].tolist(), skip_special_tokens=True).strip()

    assert turns(pre, generate, generate) == [(HEARD, ANSWER)] * 2


@pytest.mark.slow
def test_int4_conversion_keeps_what_the_audio_model_hears_and_answers(audio_checkpoint, tmp_path):
    from assistant.models import OVQwen2AudioModel

    model = OVQwen2AudioModel(int4(audio_checkpoint, tmp_path / "audio-int4"))  # the default runtime settings
    pre = model.preprocessor

    def transcribe(inputs):
        return model.transcribe_prompt(inputs, max_new_tokens=40).text

    def generate(inputs):
        out = model.generate(**inputs, max_new_tokens=40, do_sample=False)
        return pre.decode(out[0, inputs["input_ids"].shape[1] :].tolist(), skip_special_tokens=True).strip()

    assert turns(pre, transcribe, generate) == [(HEARD, ANSWER)] * 2
    # The answer's prompt reuses the clip the transcript encoded (the conversation's shared prefix).
    assert model.last_stats.reused_tokens > 0


@pytest.mark.slow
def test_int4_conversion_keeps_what_the_screen_model_answers(vl_checkpoint, tmp_path):
    from PIL import Image

    from assistant.models import OVQwen2VLModel
    from assistant.models.qwen2vl import vision_prompt

    model = OVQwen2VLModel(int4(vl_checkpoint, tmp_path / "vl-int4"))
    pre = model.preprocessor
    for size in ((1920, 1080), (640, 480)):
        shot = Image.effect_noise(size, 60).convert("RGB")
        inputs = vision_prompt(pre, "What is on my screen?", [shot], max_pixels=200_000)
        out = model.generate(**inputs, max_new_tokens=40, do_sample=False)
        said = pre.decode(out[0, inputs["input_ids"].shape[1] :].tolist(), skip_special_tokens=True).strip()
        assert said == SCREEN_ANSWER, size
        model.reset()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["audio", "vl tied", "vl untied"])
def test_weights_written_shard_by_shard_load_under_the_models_own_names(kind, tmp_path):
    import torch
    from transformers import Qwen2AudioForConditionalGeneration, Qwen2VLForConditionalGeneration

    from assistant.testing import build_qwen2audio, build_qwen2vl

    if kind == "audio":
        folder, cls = build_qwen2audio(tmp_path / "m", streamed=True), Qwen2AudioForConditionalGeneration
    else:
        folder = build_qwen2vl(tmp_path / "m", tied=kind == "vl tied", streamed=True)
        cls = Qwen2VLForConditionalGeneration
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    assert ("lm_head.weight" in index["weight_map"]) is (kind != "vl tied")
    model, info = cls.from_pretrained(folder, dtype=torch.bfloat16, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    norms = [p for name, p in model.named_parameters() if name.endswith("norm.weight")]
    assert norms and all(bool((p == 1).all()) for p in norms)
    matrices = [p for p in model.parameters() if p.ndim == 2]
    assert all(float(p.detach().float().std()) > 0 for p in matrices)  # drawn, not left empty
