"""The scripted tiny Qwen2-Audio checkpoint says its text for any audio, in PyTorch and after conversion."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from assistant.models.transcript import ASR_PROMPT, SAMPLE_RATE, audio_prompt
from assistant.testing.checkpoints import qwen2audio_tokenizer
from assistant.testing.scripted import DEFAULT_SCRIPT, prompt_end_token, script_tokens

EXACT = {"INFERENCE_PRECISION_HINT": "f32", "KV_CACHE_PRECISION": "f32"}
OTHER_SCRIPT = "open the settings"


def noise(seconds: float) -> np.ndarray:
    return (0.1 * np.random.default_rng(7).standard_normal(int(seconds * SAMPLE_RATE))).astype(np.float32)


def sine(seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


CLIPS = {"1 s of noise": noise(1.0), "2 s of a sine": sine(2.0)}


def voice_chat_inputs(pre, clips, answers=()):
    """A voice-chat prompt as the service builds one: earlier clips and answers, then the new clip alone."""
    messages = []
    for i, answer in enumerate(answers):
        messages.append({"role": "user", "content": [{"type": "audio", "audio_url": f"clip-{i}"}]})
        messages.append({"role": "assistant", "content": answer})
    messages.append({"role": "user", "content": [{"type": "audio", "audio_url": f"clip-{len(answers)}"}]})
    return pre(pre.apply_chat_template(messages), audio=list(clips))


def new_text(pre, inputs, out) -> str:
    return pre.decode(np.asarray(out)[0, inputs["input_ids"].shape[1] :].tolist(), skip_special_tokens=False)


# ----------------------------------------------------------------------------------------------- fast


@pytest.fixture(scope="module")
def tokenizer():
    return qwen2audio_tokenizer()


def test_the_default_script_routes_to_the_screen():
    from assistant.config import load_settings
    from assistant.routing import mentions_screen

    assert mentions_screen(DEFAULT_SCRIPT, load_settings().routing.screen_phrases)


def test_the_chain_starts_at_the_newline_that_ends_every_generation_prompt(tokenizer):
    newline = tokenizer.convert_tokens_to_ids("Ċ")  # byte-level "\n"
    assert prompt_end_token(tokenizer) == newline
    chain = script_tokens(tokenizer, DEFAULT_SCRIPT, 64)
    assert chain[0] == newline
    assert tokenizer.decode(chain[1:]) == DEFAULT_SCRIPT
    assert len(set(chain)) == len(chain)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("on on on", "repeats token 2"),  # " on" twice
        ("hello\nworld", "repeats the prompt's last token"),
        ("stop<|im_end|>", "special tokens"),
        ("1234567890" * 8, "at most 63 fit"),  # digits are single tokens
    ],
)
def test_an_unscriptable_text_is_refused_before_anything_is_written(tokenizer, tmp_path, text, reason):
    from assistant.testing import build_scripted_qwen2audio

    with pytest.raises(ValueError, match=reason):
        script_tokens(tokenizer, text, 64)
    with pytest.raises(ValueError, match="cannot script"):
        build_scripted_qwen2audio(tmp_path / "never", text)
    assert not (tmp_path / "never").exists()


# ----------------------------------------------------------------------------------------------- slow


@pytest.fixture(scope="module")
def scripted_dir(tmp_path_factory):
    from assistant.testing import build_scripted_qwen2audio

    return build_scripted_qwen2audio(tmp_path_factory.mktemp("scripted") / "qwen2audio")


@pytest.fixture(scope="module")
def scripted_ov(scripted_dir, tmp_path_factory):
    from assistant.models import OVQwen2AudioModel, convert_qwen2audio_model

    out = tmp_path_factory.mktemp("scripted-convert") / "audio-f32"
    convert_qwen2audio_model(scripted_dir, out, None, full_precision=True)
    return OVQwen2AudioModel(out, ov_config=EXACT)


def torch_says(folder, inputs_for, **generate) -> list[str]:
    """What PyTorch's generate says for each clip, with the prompt `inputs_for(pre, clip)` builds."""
    import torch
    from transformers import Qwen2AudioForConditionalGeneration

    from assistant.models.preprocess import Qwen2AudioPreprocessor

    pre = Qwen2AudioPreprocessor.from_dir(folder)
    model = Qwen2AudioForConditionalGeneration.from_pretrained(folder).eval()
    said = []
    for clip in CLIPS.values():
        inputs = inputs_for(pre, clip)
        assert inputs["input_ids"][0, -1] == prompt_end_token(qwen2audio_tokenizer())
        with torch.no_grad():
            out = model.generate(**{k: torch.from_numpy(v) for k, v in inputs.items()}, max_new_tokens=80, **generate)
        said.append(new_text(pre, inputs, out))
    return said


@pytest.mark.slow
def test_pytorch_greedy_transcription_says_the_script_whatever_the_audio(scripted_dir):
    said = torch_says(scripted_dir, lambda pre, clip: audio_prompt(pre, [clip], ASR_PROMPT), do_sample=False)
    assert said == [DEFAULT_SCRIPT + "<|im_end|>"] * len(CLIPS)


@pytest.mark.slow
def test_pytorch_voice_chat_says_the_script_even_when_sampling(scripted_dir):
    # No do_sample: the checkpoint's generation_config samples (temperature 0.7, top-k 20, repetition penalty).
    said = torch_says(scripted_dir, lambda pre, clip: voice_chat_inputs(pre, [clip]))
    assert said == [DEFAULT_SCRIPT + "<|im_end|>"] * len(CLIPS)


@pytest.mark.slow
def test_the_script_is_a_parameter(tmp_path):
    from assistant.testing import build_scripted_qwen2audio

    folder = build_scripted_qwen2audio(tmp_path / "other", OTHER_SCRIPT)
    said = torch_says(folder, lambda pre, clip: audio_prompt(pre, [clip], ASR_PROMPT), do_sample=False)
    assert said == [OTHER_SCRIPT + "<|im_end|>"] * len(CLIPS)


@pytest.mark.slow
def test_everything_but_the_hand_set_weights_is_the_tiny_checkpoint(scripted_dir, tmp_path):
    import torch
    from safetensors.torch import load_file

    from assistant.testing import build_tiny_qwen2audio

    tiny = build_tiny_qwen2audio(tmp_path / "tiny")
    files = sorted(p.name for p in scripted_dir.iterdir())
    assert files == sorted(p.name for p in tiny.iterdir())
    for name in files:  # config, generation config, tokenizer, processor, chat template
        if name != "model.safetensors":
            assert (scripted_dir / name).read_bytes() == (tiny / name).read_bytes(), name
    ours = load_file(scripted_dir / "model.safetensors")
    theirs = load_file(tiny / "model.safetensors")
    assert ours.keys() == theirs.keys()
    edited = (
        "o_proj.weight",
        "down_proj.weight",
        "language_model.norm.weight",
        "embed_tokens.weight",
        "lm_head.weight",
    )
    changed = {name for name in ours if not torch.equal(ours[name], theirs[name])}
    assert changed == {name for name in ours if name.endswith(edited)}
    # Only the chain's embedding rows change; the head is zero but for one entry per chain token.
    chain = script_tokens(qwen2audio_tokenizer(), DEFAULT_SCRIPT, 64)
    (embedding,) = (name for name in ours if name.endswith("embed_tokens.weight"))
    (head,) = (name for name in ours if name.endswith("lm_head.weight"))
    rows = (ours[embedding] != theirs[embedding]).any(dim=1).nonzero().flatten().tolist()
    assert rows == sorted(chain)
    assert int(ours[head].count_nonzero()) == len(chain)


@pytest.mark.slow
@pytest.mark.parametrize("clip", list(CLIPS))
def test_openvino_transcribe_says_the_script(scripted_ov, clip):
    heard = scripted_ov.transcribe(CLIPS[clip])
    assert heard.text == DEFAULT_SCRIPT
    assert heard.language == "en"


@pytest.mark.slow
def test_openvino_voice_chat_says_the_script_greedy_sampled_and_as_a_follow_up(scripted_ov):
    from assistant.config import load_settings

    pre = scripted_ov.preprocessor
    generation = load_settings().generation
    # What the service passes by default: nothing, so the folder's own sampling (temperature 0.7, top-k 20,
    # repetition penalty 1.1); and with sampling = "config", the configured temperature 0.7 and top-p 0.9.
    sampling = generation.sampling_options()
    configured = dataclasses.replace(generation, sampling="config").sampling_options()
    first, second = CLIPS.values()
    cases = {
        "greedy": (voice_chat_inputs(pre, [first]), {"do_sample": False}),
        "sampled": (voice_chat_inputs(pre, [second]), sampling),
        "sampled as configured": (voice_chat_inputs(pre, [second]), configured),
        "follow-up": (voice_chat_inputs(pre, [first, second], answers=[DEFAULT_SCRIPT]), sampling),
    }
    for case, (inputs, options) in cases.items():
        assert inputs["input_ids"][0, -1] == prompt_end_token(qwen2audio_tokenizer()), case
        scripted_ov.reset()
        out = scripted_ov.generate(**inputs, max_new_tokens=80, **options)
        assert new_text(pre, inputs, out) == DEFAULT_SCRIPT + "<|im_end|>", case
        assert pre.decode(np.asarray(out)[0, inputs["input_ids"].shape[1] :].tolist()).strip() == DEFAULT_SCRIPT
