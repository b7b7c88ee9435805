"""OVQwen2VLModel and OVQwen2AudioModel against transformers' PyTorch generate, token for token
(tiny checkpoints, f32 IR, f32 execution): images, video, voice chat, analysis, two turns;
streaming, cancellation, and multi-turn KV-cache reuse.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from PIL import Image

from assistant.models import OVQwen2AudioModel, OVQwen2VLModel
from assistant.models.transcript import ASR_PROMPT

from speech import SAMPLE_RATE, spoken

pytestmark = pytest.mark.slow

EXACT = {"INFERENCE_PRECISION_HINT": "f32", "KV_CACHE_PRECISION": "f32"}
NEW_TOKENS = 12


@pytest.fixture(scope="module")
def ov_vl(vl_f32):
    return OVQwen2VLModel(vl_f32, ov_config=EXACT)


@pytest.fixture(scope="module")
def ov_audio(audio_f32):
    return OVQwen2AudioModel(audio_f32, ov_config=EXACT)


def picture(width, height, seed):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def torch_generate(model, inputs, new_tokens=NEW_TOKENS):
    with torch.no_grad():
        return model.generate(**inputs, max_new_tokens=new_tokens, do_sample=False)[0].tolist()


def vl_inputs(processor, content, tensors="pt", history=()):
    messages = [*history, {"role": "user", "content": content}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    images = [
        c["image"] for m in messages if isinstance(m["content"], list) for c in m["content"] if c["type"] == "image"
    ]
    videos = [
        c["video"] for m in messages if isinstance(m["content"], list) for c in m["content"] if c["type"] == "video"
    ]
    return processor(text=[text], images=images or None, videos=videos or None, return_tensors=tensors)


VL_CASES = {
    "one image": [{"type": "image", "image": picture(112, 84, 1)}, {"type": "text", "text": "What is this?"}],
    "two images": [
        {"type": "image", "image": picture(112, 84, 1)},
        {"type": "image", "image": picture(56, 140, 2)},
        {"type": "text", "text": "Compare them."},
    ],
    "video frames": [
        {"type": "video", "video": [picture(84, 56, s) for s in range(4)]},
        {"type": "text", "text": "What happens?"},
    ],
    "text only": [{"type": "text", "text": "Hello there"}],
}


@pytest.mark.parametrize("case", list(VL_CASES))
def test_vl_greedy_equals_pytorch(ov_vl, vl_torch, case):
    model, processor = vl_torch
    inputs = vl_inputs(processor, VL_CASES[case])
    expected = torch_generate(model, inputs)
    ov_vl.reset()
    got = ov_vl.generate(**inputs, max_new_tokens=NEW_TOKENS, do_sample=False)
    assert isinstance(got, torch.Tensor)  # torch in, torch out, like transformers
    assert got[0].tolist() == expected
    assert len(expected) > inputs["input_ids"].shape[1]


def test_vl_accepts_numpy_processor_outputs(ov_vl, vl_torch):
    model, processor = vl_torch
    expected = torch_generate(model, vl_inputs(processor, VL_CASES["one image"]))
    got = ov_vl.generate(
        **vl_inputs(processor, VL_CASES["one image"], tensors="np"), max_new_tokens=NEW_TOKENS, do_sample=False
    )
    assert isinstance(got, np.ndarray) and got[0].tolist() == expected


def audio_inputs(processor, content, history=(), tensors="pt"):
    messages = [*history, {"role": "user", "content": content}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    audios = [
        c["audio"] for m in messages if isinstance(m["content"], list) for c in m["content"] if c["type"] == "audio"
    ]
    return processor(text=text, audio=audios or None, sampling_rate=SAMPLE_RATE, return_tensors=tensors)


@pytest.fixture(scope="module")
def question():
    return spoken("What is the capital of Peru?", seconds=3.0)


@pytest.mark.parametrize("case", ["voice chat", "analysis"])
def test_audio_greedy_equals_pytorch(ov_audio, audio_torch, question, case):
    model, processor = audio_torch
    content = [{"type": "audio", "audio": question}]
    if case == "analysis":
        content.append({"type": "text", "text": "What language is spoken?"})
    inputs = audio_inputs(processor, content)
    expected = torch_generate(model, inputs)
    ov_audio.reset()
    got = ov_audio.generate(**inputs, max_new_tokens=NEW_TOKENS, do_sample=False)[0].tolist()
    assert got == expected
    assert ov_audio.last_stats.prompt_tokens == inputs["input_ids"].shape[1]


def test_two_turn_voice_conversation_reuses_the_cache_and_equals_pytorch(ov_audio, audio_torch, question, monkeypatch):
    model, processor = audio_torch
    first_content = [{"type": "audio", "audio": question}]
    first = audio_inputs(processor, first_content)
    ov_audio.reset()
    answer_ids = ov_audio.generate(**first, max_new_tokens=NEW_TOKENS, do_sample=False)[0].tolist()
    answer = processor.tokenizer.decode(answer_ids[first["input_ids"].shape[1] :], skip_special_tokens=True)
    history = [{"role": "user", "content": first_content}, {"role": "assistant", "content": answer}]
    follow_up = spoken("And of Chile?", seconds=1.5)
    second = audio_inputs(processor, [{"type": "audio", "audio": follow_up}], history=history)
    expected = torch_generate(model, second)  # PyTorch recomputes the whole conversation
    encoded = []
    original = ov_audio.encode_audio
    monkeypatch.setattr(ov_audio, "encode_audio", lambda *a: encoded.append(a) or original(*a))
    got = ov_audio.generate(**second, max_new_tokens=NEW_TOKENS, do_sample=False)[0].tolist()
    assert got == expected
    # The first turn's prompt (with its audio) comes from the KV cache; only the new clip is encoded.
    assert ov_audio.last_stats.reused_tokens >= first["input_ids"].shape[1]
    assert len(encoded) == 1


def test_two_turn_image_conversation_equals_pytorch(ov_vl, vl_torch):
    model, processor = vl_torch
    first_content = VL_CASES["one image"]
    first = vl_inputs(processor, first_content)
    ov_vl.reset()
    ids = ov_vl.generate(**first, max_new_tokens=NEW_TOKENS, do_sample=False)[0].tolist()
    answer = processor.tokenizer.decode(ids[first["input_ids"].shape[1] :], skip_special_tokens=True)
    history = [{"role": "user", "content": first_content}, {"role": "assistant", "content": answer}]
    second = vl_inputs(processor, [{"type": "text", "text": "Describe the colours."}], history=history)
    expected = torch_generate(model, second)
    got = ov_vl.generate(**second, max_new_tokens=NEW_TOKENS, do_sample=False)[0].tolist()
    assert got == expected


def test_a_new_picture_of_the_same_size_is_not_taken_from_the_cache(ov_vl, vl_torch):
    """Two screenshots of one screen have the same placeholder ids; the second must still be seen."""
    model, processor = vl_torch
    question = {"type": "text", "text": "What is on my screen?"}
    ov_vl.reset()
    for seed in (11, 12):
        inputs = vl_inputs(processor, [{"type": "image", "image": picture(112, 84, seed)}, question])
        expected = torch_generate(model, inputs)
        assert ov_vl.generate(**inputs, max_new_tokens=NEW_TOKENS, do_sample=False)[0].tolist() == expected
    assert ov_vl.last_stats.reused_tokens < inputs["input_ids"].shape[1] - 1


@pytest.mark.parametrize(
    ("hole_limit", "compact_prompt"),
    [(10_000, 10**9), (0, 10**9), (10_000, 0)],
    ids=["holes", "compacted", "compacted at forward"],
)
def test_the_answer_after_a_transcript_of_its_clip_equals_pytorch_with_or_without_holes(
    ov_audio, audio_torch, question, hole_limit, compact_prompt, monkeypatch
):
    """The voice prompt shares the clip with the transcription prompt before it and then diverges: the
    transcript's positions stay in the state, hidden by the attention mask (or are compacted away, when
    cut or before the next forward)."""
    from assistant.models import engine

    monkeypatch.setattr(engine, "HOLE_LIMIT", hole_limit)
    monkeypatch.setattr(engine, "COMPACT_PROMPT", compact_prompt)
    model, processor = audio_torch
    ov_audio.reset()
    asr = [{"type": "audio", "audio": question}, {"type": "text", "text": ASR_PROMPT}]
    ov_audio.generate(**audio_inputs(processor, asr), max_new_tokens=NEW_TOKENS, do_sample=False)
    voice = audio_inputs(processor, [{"type": "audio", "audio": question}])
    expected = torch_generate(model, voice)
    assert ov_audio.generate(**voice, max_new_tokens=NEW_TOKENS, do_sample=False)[0].tolist() == expected
    assert ov_audio.last_stats.reused_tokens > 0
    assert (ov_audio.decoder.holes > 0) is (hole_limit > 0 and compact_prompt > 0)


def test_a_new_clip_of_the_same_length_is_not_taken_from_the_cache(ov_audio, audio_torch):
    model, processor = audio_torch
    ov_audio.reset()
    for text in ("Turn it up", "Turn it off"):
        content = [{"type": "audio", "audio": spoken(text, seconds=2.0)}]
        inputs = audio_inputs(processor, content)
        expected = torch_generate(model, inputs)
        assert ov_audio.generate(**inputs, max_new_tokens=NEW_TOKENS, do_sample=False)[0].tolist() == expected


def test_streaming_gives_the_same_text_with_a_transformers_text_streamer(ov_vl, vl_torch, capsys):
    from transformers import TextStreamer

    _, processor = vl_torch
    inputs = vl_inputs(processor, VL_CASES["one image"])
    ov_vl.reset()
    plain = ov_vl.generate(**inputs, max_new_tokens=NEW_TOKENS, do_sample=False)[0]
    text = processor.tokenizer.decode(plain[inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    capsys.readouterr()
    streamer = TextStreamer(processor.tokenizer, skip_prompt=True, skip_special_tokens=True)
    streamed = ov_vl.generate(**inputs, max_new_tokens=NEW_TOKENS, do_sample=False, streamer=streamer)[0]
    assert streamed.tolist() == plain.tolist()
    assert capsys.readouterr().out.strip() == text.strip()
    seen = []
    tokens = list(ov_vl.iter_generate(**inputs, max_new_tokens=NEW_TOKENS, do_sample=False, on_token=seen.append))
    assert tokens == seen == plain[inputs["input_ids"].shape[1] :].tolist()


def test_cancellation_stops_within_one_token(ov_audio, audio_torch, question):
    _, processor = audio_torch
    inputs = audio_inputs(processor, [{"type": "audio", "audio": question}], tensors="np")
    cancel = threading.Event()
    produced = []

    def on_token(token):
        produced.append(token)
        if len(produced) == 3:
            cancel.set()  # as another thread would, between two tokens

    ov_audio.reset()
    out = ov_audio.generate(
        **inputs, max_new_tokens=50, do_sample=False, on_token=on_token, cancel=cancel, repetition_penalty=1.0
    )
    new = out.shape[1] - inputs["input_ids"].shape[1]
    assert ov_audio.last_stats.cancelled or ov_audio.last_stats.stopped_on is not None
    if ov_audio.last_stats.cancelled:
        assert new == 3


def test_sampling_is_reproducible_with_a_seed_and_varies_without(ov_audio, audio_torch, question):
    _, processor = audio_torch
    inputs = audio_inputs(processor, [{"type": "audio", "audio": question}], tensors="np")
    kwargs = dict(max_new_tokens=8, do_sample=True, temperature=1.5, top_p=1.0, top_k=0)
    a = ov_audio.generate(**inputs, seed=7, **kwargs)
    b = ov_audio.generate(**inputs, seed=7, **kwargs)
    assert a.tolist() == b.tolist()
    others = {tuple(ov_audio.generate(**inputs, seed=s, **kwargs)[0].tolist()) for s in range(5)}
    assert len(others) > 1


def test_article_message_format_with_process_vision_info(ov_vl, vl_torch, tmp_path):
    """The article's way: messages with file:// paths through qwen-vl-utils, then the processor."""
    from qwen_vl_utils import process_vision_info

    model, processor = vl_torch
    path = tmp_path / "photo.png"
    picture(112, 84, 5).save(path)
    frames = [picture(84, 56, s) for s in range(4)]
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "image", "image": f"file://{path}", "min_pixels": 56 * 56, "max_pixels": 112 * 112},
                {"type": "video", "video": frames, "fps": 2.0},
                {"type": "text", "text": "Describe both."},
            ],
        }
    ]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    images, videos = process_vision_info(messages)
    inputs = processor(text=[text], images=images, videos=videos, padding=True, return_tensors="pt")
    expected = torch_generate(model, inputs)
    ov_vl.reset()
    assert ov_vl.generate(**inputs, max_new_tokens=NEW_TOKENS, do_sample=False)[0].tolist() == expected


def test_a_4k_screenshot_is_encoded_block_by_block_under_the_cap(ov_vl, vl_torch, monkeypatch):
    """3840x2160 at the default screenshot cap: the merger never sees more than one block's patches
    and no attention mask larger than 1x1x1."""
    from assistant.models.preprocess import Qwen2VLPreprocessor

    pre = Qwen2VLPreprocessor.from_dir(ov_vl.model_dir)
    prompt = pre.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "?"}]}])
    inputs = pre(prompt, images=[picture(3840, 2160, 9)], max_pixels=401408)
    patches = int(inputs["image_grid_thw"].prod())
    assert patches * 14 * 14 <= 401408
    seen = []
    original = ov_vl._merger_request.infer
    monkeypatch.setattr(
        ov_vl._merger_request,
        "infer",
        lambda data: seen.append({k: v.shape for k, v in data.items()}) or original(data),
        raising=False,
    )
    ov_vl.reset()
    ov_vl.generate(**inputs, max_new_tokens=2, do_sample=False)
    assert seen and all(s["attention_mask"] == (1, 1, 1) for s in seen)
    assert sum(s["hidden_states"][0] for s in seen) == patches


def test_compiled_model_cache_is_written_once_and_reused(audio_f32, tmp_path):
    from assistant.models.runtime import RuntimeOptions

    cache = tmp_path / "ov-cache"
    OVQwen2AudioModel(audio_f32, runtime=RuntimeOptions(cache_dir=cache))
    first = sorted(p.name for p in cache.iterdir())
    assert first  # compiled blobs were stored
    stamps = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    OVQwen2AudioModel(audio_f32, runtime=RuntimeOptions(cache_dir=cache))
    assert sorted(p.name for p in cache.iterdir()) == first
    assert {p.name: p.stat().st_mtime_ns for p in cache.iterdir()} == stamps  # read, not rewritten


def test_ov_config_overrides_the_configured_runtime_options(audio_f32):
    from assistant.models.runtime import RuntimeOptions

    model = OVQwen2AudioModel(
        audio_f32, runtime=RuntimeOptions(inference_precision="bf16"), ov_config={"INFERENCE_PRECISION_HINT": "f32"}
    )
    assert model.ov_config["INFERENCE_PRECISION_HINT"] == "f32"
    compiled = model._compiled["language_model"]
    assert "float32" in str(compiled.get_property("INFERENCE_PRECISION_HINT"))


def test_the_transcript_and_the_voice_answer_encode_the_clip_once(ov_audio, audio_torch, question, monkeypatch):
    """The service asks for the transcript, then the answer, on one conversation: the second prompt
    shares the first up to and including the clip, so the clip is encoded and attended only once —
    and the answer is the one a fresh model gives."""
    from assistant.daemon.conversation import Conversation

    conversation = Conversation()
    conversation.remember(spoken("Hello there", seconds=1.5), "Hi! How can I help?")
    pre = ov_audio.preprocessor
    transcription, voice = conversation.transcription_inputs(pre, question), conversation.voice_inputs(pre, question)
    ov_audio.reset()
    expected = ov_audio.generate(**voice, max_new_tokens=NEW_TOKENS, do_sample=False)[0].tolist()
    ov_audio.reset()
    encoded = []
    original = ov_audio.encode_audio
    monkeypatch.setattr(ov_audio, "encode_audio", lambda *a: encoded.append(a) or original(*a))
    ov_audio.transcribe_prompt(transcription, max_new_tokens=8)
    assert len(encoded) == 2  # the history's clip and the new one
    got = ov_audio.generate(**voice, max_new_tokens=NEW_TOKENS, do_sample=False)[0].tolist()
    assert len(encoded) == 2  # nothing encoded again for the answer
    clip_end = max(i for i, t in enumerate(voice["input_ids"][0].tolist()) if t == ov_audio.audio_token_id) + 1
    assert ov_audio.last_stats.reused_tokens >= clip_end
    assert got == expected


def test_a_transcript_stopped_early_is_the_start_of_the_full_one_and_the_answer_still_reuses_the_clip(
    ov_audio, question
):
    """`keep_going` saying no after three tokens ends the transcript there (no further decode step), its
    text is the start of the full transcript, and the KV cache it leaves is one a voice answer reuses."""
    from assistant.daemon.conversation import Conversation

    pre = ov_audio.preprocessor
    conversation = Conversation()
    transcription, voice = conversation.transcription_inputs(pre, question), conversation.voice_inputs(pre, question)
    ov_audio.reset()
    full = ov_audio.transcribe_prompt(transcription, max_new_tokens=NEW_TOKENS)
    seen: list[str] = []
    ov_audio.reset()
    cut = ov_audio.transcribe_prompt(
        transcription, max_new_tokens=NEW_TOKENS, keep_going=lambda text: seen.append(text) or len(seen) < 3
    )
    assert cut.stopped_early and not full.stopped_early
    assert cut.tokens == 3 and ov_audio.last_stats.new_tokens == 3 and full.tokens > 3
    assert full.text.startswith(cut.text) and seen[-1] == cut.text
    ov_audio.generate(**voice, max_new_tokens=2, do_sample=False)
    clip_end = max(i for i, t in enumerate(voice["input_ids"][0].tolist()) if t == ov_audio.audio_token_id) + 1
    assert ov_audio.last_stats.reused_tokens >= clip_end


def test_warm_up_leaves_only_the_system_prompt_and_the_first_request_answers_as_fresh(
    ov_audio, ov_vl, audio_torch, vl_torch, question
):
    from assistant.models.warmup import warm_up_audio, warm_up_vision

    model, processor = audio_torch
    inputs = audio_inputs(processor, [{"type": "audio", "audio": question}])
    warm_up_audio(ov_audio)
    prefix = int(np.argmax(inputs["input_ids"][0].numpy() == ov_audio.audio_token_id))
    assert 0 < len(ov_audio.decoder.cached_keys) == prefix and ov_audio.decoder.holes == 0
    assert ov_audio.generate(**inputs, max_new_tokens=NEW_TOKENS, do_sample=False)[0].tolist() == torch_generate(
        model, inputs
    )
    assert ov_audio.last_stats.reused_tokens == prefix

    model, processor = vl_torch
    warm_up_vision(ov_vl, 200_000, "What is on my screen?")
    inputs = vl_inputs(processor, VL_CASES["one image"])
    assert ov_vl.generate(**inputs, max_new_tokens=NEW_TOKENS, do_sample=False)[0].tolist() == torch_generate(
        model, inputs
    )
    assert ov_vl.last_stats.reused_tokens > 0


def test_the_kv_cache_precision_keeps_greedy_output_identical(vl_f32, audio_f32, vl_torch, audio_torch, question):
    """Each model's KV cache precision (Qwen2-Audio's u8, with a scale and zero point per position and head;
    Qwen2-VL's bf16: u8 and f16 changed its tiny model's tokens after 12-29 of them) against an f32 cache,
    both computing in f32: the same greedy tokens over two voice turns and an image question."""
    audio_processor, vl_processor = audio_torch[1], vl_torch[1]
    first = audio_inputs(audio_processor, [{"type": "audio", "audio": question}])
    follow_up = [{"type": "audio", "audio": spoken("And of Chile?", seconds=1.5)}]
    said = {}
    for name, config in (("own", {"INFERENCE_PRECISION_HINT": "f32"}), ("f32", EXACT)):
        audio, vl = OVQwen2AudioModel(audio_f32, ov_config=config), OVQwen2VLModel(vl_f32, ov_config=config)
        for model, own in ((audio, "u8"), (vl, "bf16")):
            precision = model._compiled["language_model"].get_property("KV_CACHE_PRECISION").get_type_name()
            assert precision == (own if name == "own" else "f32")
        answer = audio.generate(**first, max_new_tokens=3 * NEW_TOKENS, do_sample=False)[0].tolist()
        text = audio_processor.tokenizer.decode(answer[first["input_ids"].shape[1] :], skip_special_tokens=True)
        history = [
            {"role": "user", "content": [{"type": "audio", "audio": question}]},
            {"role": "assistant", "content": text},
        ]
        again = audio.generate(
            **audio_inputs(audio_processor, follow_up, history=history), max_new_tokens=36, do_sample=False
        )
        images = [
            vl.generate(**vl_inputs(vl_processor, VL_CASES[c]), max_new_tokens=36, do_sample=False) for c in VL_CASES
        ]
        said[name] = (answer, again[0].tolist(), [seen[0].tolist() for seen in images])
    assert said["own"] == said["f32"]


def test_a_prompt_longer_than_the_prefill_chunk_runs_in_chunks_with_the_same_tokens(
    ov_audio, ov_vl, audio_torch, vl_torch, question, monkeypatch
):
    from assistant.models import engine

    audio_prompt = audio_inputs(audio_torch[1], [{"type": "audio", "audio": question}])
    image_prompt = vl_inputs(vl_torch[1], VL_CASES["two images"])
    whole = []
    for model, prompt in ((ov_audio, audio_prompt), (ov_vl, image_prompt)):
        model.reset()
        whole.append(model.generate(**prompt, max_new_tokens=NEW_TOKENS, do_sample=False)[0].tolist())
    monkeypatch.setattr(engine, "PREFILL_CHUNK", 7)
    runs = []
    for model in (ov_audio, ov_vl):
        original = model.decoder.request.infer
        monkeypatch.setattr(model.decoder.request, "infer", lambda inputs, o=original: runs.append(inputs) or o(inputs))
    chunked = []
    for model, prompt in ((ov_audio, audio_prompt), (ov_vl, image_prompt)):
        model.reset()
        chunked.append(model.generate(**prompt, max_new_tokens=NEW_TOKENS, do_sample=False)[0].tolist())
    assert chunked == whole
    assert max(r["inputs_embeds"].shape[1] for r in runs) == 7
    prefills = [r for r in runs if r["inputs_embeds"].shape[1] > 1]
    assert len(prefills) >= (audio_prompt["input_ids"].shape[1] + image_prompt["input_ids"].shape[1]) // 7 - 2
