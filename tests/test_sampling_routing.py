"""Pure logic: token choice with transformers' semantics, and which model answers a request."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.models.sampling import (
    SamplingSettings,
    _softmax,
    _top_k,
    _top_p,
    apply_repetition_penalty,
    candidate_probabilities,
    next_token,
)
from assistant.models.transcript import guess_language, parse_transcript, split_clips
from assistant.routing import RequestShape, Route, choose_route


def reference(processor, logits, seen=None):
    import torch

    ids = torch.tensor([seen or [0]])
    return processor(ids, torch.tensor(logits)[None]).numpy()[0]


def test_repetition_penalty_matches_transformers():
    from transformers import RepetitionPenaltyLogitsProcessor

    logits = np.array([2.0, -1.0, 0.5, 3.0, -2.0], np.float32)
    ours = apply_repetition_penalty(logits, [1, 3, 3], 1.3)
    assert np.allclose(ours, reference(RepetitionPenaltyLogitsProcessor(1.3), logits, [1, 3, 3]))
    assert apply_repetition_penalty(logits, [1], 1.0) is logits


@pytest.mark.parametrize("k", [1, 2, 4])
def test_top_k_matches_transformers(k):
    from transformers import TopKLogitsWarper

    logits = np.random.default_rng(k).standard_normal(16).astype(np.float32)
    assert np.array_equal(_top_k(logits, k), reference(TopKLogitsWarper(k), logits))


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9, 0.999])
def test_top_p_matches_transformers(p):
    from transformers import TopPLogitsWarper

    logits = np.random.default_rng(7).standard_normal(32).astype(np.float32)
    assert np.array_equal(np.isinf(_top_p(logits, p)), np.isinf(reference(TopPLogitsWarper(p), logits)))


def test_greedy_picks_the_maximum_and_sampling_respects_top_k():
    rng = np.random.default_rng(0)
    logits = np.array([0.1, 5.0, 4.9, -3.0], np.float32)
    assert next_token(logits, [], SamplingSettings(), rng) == 1
    picks = {
        next_token(logits, [], SamplingSettings(do_sample=True, temperature=5.0, top_k=2), rng) for _ in range(200)
    }
    assert picks == {1, 2}


# Qwen2-Audio-7B-Instruct's generation_config.json (sampling part and end tokens).
AUDIO_GENERATION = {
    "do_sample": True,
    "temperature": 0.7,
    "top_p": 0.5,
    "top_k": 20,
    "repetition_penalty": 1.1,
    "eos_token_id": [151643, 151645],
}


@pytest.mark.parametrize(
    ("generation", "greedy", "expected"),
    [
        ({}, False, SamplingSettings(True, 0.7, 0.5, 20, 1.1)),  # the default: the folder's own values
        ({"sampling": "config"}, False, SamplingSettings(True, 0.7, 0.9, 20, 1.1)),
        ({"sampling": "config", "temperature": 0.0}, False, SamplingSettings(False, 0.7, 0.5, 20, 1.1)),
        ({}, True, SamplingSettings(False, 0.7, 0.5, 20, 1.1)),
        ({"sampling": "config"}, True, SamplingSettings(False, 0.7, 0.5, 20, 1.1)),
    ],
)
def test_configured_sampling_over_the_folder_generation_config(tmp_path, generation, greedy, expected):
    """[generation] sampling through generate()'s option handling, on a folder's generation_config.json."""
    from assistant.config import load_settings
    from assistant.models.base import OVModelBase

    config = tmp_path / "config.toml"
    config.write_text("[generation]\n" + "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in generation.items()))
    options = load_settings(config).generation.sampling_options(greedy=greedy)
    model = object.__new__(OVModelBase)  # only the generation config: no OpenVINO model is compiled
    model.config, model.generation_config = {}, AUDIO_GENERATION
    names = ("temperature", "top_p", "top_k", "repetition_penalty")
    assert model.sampling(options.get("do_sample"), *(options.get(n) for n in names)) == expected
    assert model.stop_ids() == frozenset(AUDIO_GENERATION["eos_token_id"])


@pytest.mark.parametrize(
    ("shape", "route"),
    [
        (RequestShape(audio=True), Route.VOICE),
        (RequestShape(audio=True, text=True), Route.ANALYSIS),
        (RequestShape(images=1, text=True), Route.IMAGE),
        (RequestShape(images=1, audio=True), Route.IMAGE),
        (RequestShape(videos=1, text=True), Route.VIDEO),
        (RequestShape(screen=True, text=True), Route.SCREEN),
        (RequestShape(screen=True, images=2), Route.SCREEN),
        (RequestShape(text=True), Route.TEXT),
    ],
)
def test_routes(shape, route):
    assert choose_route(shape) is route
    assert route.uses_vision_model == (route not in (Route.VOICE, Route.ANALYSIS))


def test_nothing_to_ask():
    with pytest.raises(ValueError, match="nothing to ask"):
        choose_route(RequestShape())


def test_transcript_parsing_and_language():
    assert parse_transcript("<|en|>What is the capital of Peru?<|im_end|>") == ("What is the capital of Peru?", "en")
    assert parse_transcript("  hello <|endoftext|>") == ("hello", None)
    assert guess_language("屏幕上是什么") == "zh"
    assert guess_language("what is on my screen") == "en"
    assert guess_language("") is None


def test_long_audio_is_split_not_cut():
    audio = np.arange(16000 * 75, dtype=np.float32)
    clips = split_clips(audio)
    assert [len(c) for c in clips] == [480000, 480000, 240000]
    assert np.array_equal(np.concatenate(clips), audio)


@pytest.mark.parametrize(
    "settings",
    [
        SamplingSettings(True, 0.7, 0.5, 20, 1.1),  # Qwen2-Audio-7B-Instruct's own
        SamplingSettings(True, 0.01, 0.001, 1, 1.0),  # Qwen2-VL-2B-Instruct's own
        SamplingSettings(True, 1.0, 0.9, 0, 1.0),  # no top-k: the whole vocabulary
    ],
)
def test_sampling_draws_from_the_distribution_over_the_whole_vocabulary(settings):
    logits = 3 * np.random.default_rng(3).standard_normal(5000).astype(np.float32)
    seen = [1, 2, 3, 40]
    scores = apply_repetition_penalty(logits, seen, settings.repetition_penalty)
    if settings.temperature != 1.0:
        scores = scores / settings.temperature
    whole = _softmax(_top_p(_top_k(scores, settings.top_k), settings.top_p).astype(np.float64))
    ids, probs = candidate_probabilities(logits, seen, settings)
    drawn = np.zeros_like(whole)
    drawn[ids] = probs
    np.testing.assert_allclose(drawn, whole, atol=1e-12)
