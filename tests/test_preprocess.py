"""The torch-free preprocessing package against the real transformers processors, value for value.

References are transformers 5.24's Qwen2-VL / Qwen2-Audio processors (and tokenizers, chat templates, the
Qwen2-VL model's get_rope_index) loaded from the tiny checkpoint folders, whose files have the layout of
the real ones. qwen-vl-utils' own functions are the reference for sampling frames from a video file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from assistant.models.preprocess import (
    AudioSettings,
    ChatTemplate,
    ImageSettings,
    PreprocessError,
    Qwen2AudioPreprocessor,
    Qwen2VLPreprocessor,
    Tokenizer,
    VideoSettings,
    audio_token_count,
    compile_template,
    get_rope_index,
    load_audio,
    load_image,
    log_mel_features,
    mel_filter_bank,
    preprocess_images,
    preprocess_videos,
    read_video,
    resize_uint8,
    sample_count,
    sample_indices,
    smart_resize,
)

from speech import spoken

pytestmark = pytest.mark.filterwarnings("ignore:Passing `min_pixels`:FutureWarning")

REPO = Path(__file__).resolve().parents[1]
RNG_SEED = 20241125

TEXTS = [
    "",
    "Hello, world!",
    "What's the capital of Peru? The capital of Peru is Lima.",
    "  leading and   several    spaces  ",
    "line one\nline two\r\n\n\ttabbed",
    "秘鲁的首都是哪里?秘鲁的首都是利马。",
    "日本語で「ありがとう」と言います。 Mixed 中文 and English.",
    "emoji 👍🏽 and ünïcödé, e\u0301 (NFC), ﬁ ligature",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "<|vision_start|><|image_pad|><|image_pad|><|vision_end|>text<|video_pad|>",
    "Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\n",
    "numbers 1,234.56 and 2024-11-25; code: def f(x): return x**2",
]


# --------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def vl_processor(hf, tiny_qwen2vl_dir):
    return hf.AutoProcessor.from_pretrained(tiny_qwen2vl_dir)


@pytest.fixture(scope="module")
def audio_processor(hf, tiny_qwen2audio_dir):
    return hf.AutoProcessor.from_pretrained(tiny_qwen2audio_dir)


@pytest.fixture(scope="module")
def pil_image_processor(hf, tiny_qwen2vl_dir):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    return Qwen2VLImageProcessorPil.from_pretrained(tiny_qwen2vl_dir)


@pytest.fixture(scope="module")
def vl(tiny_qwen2vl_dir):
    return Qwen2VLPreprocessor.from_dir(tiny_qwen2vl_dir)


@pytest.fixture(scope="module")
def audio(tiny_qwen2audio_dir):
    return Qwen2AudioPreprocessor.from_dir(tiny_qwen2audio_dir)


@pytest.fixture(scope="module")
def speech_3s():
    return spoken("What is the capital of Peru? Tell me in one sentence.", seconds=3.0)


def screenshot(width: int, height: int) -> Image.Image:
    """Something like a desktop: flat panels, thin lines, text, a photo-like gradient."""
    image = Image.new("RGB", (width, height), (236, 239, 244))
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 0, width, height // 20], fill=(40, 44, 52))
    for row in range(height // 20 + 10, height - 20, max(12, height // 40)):
        draw.text((width // 20, row), f"line {row}: error: file not found, check the path", fill=(20, 20, 20))
    draw.line([(0, height // 2), (width, height // 2 + 7)], fill=(200, 30, 30), width=1)
    gx = np.linspace(0, 255, width // 3, dtype=np.float32)
    gy = np.linspace(0, 255, height // 3, dtype=np.float32)
    photo = np.stack([np.add.outer(gy, gx) / 2, np.outer(gy, np.ones_like(gx)), np.outer(np.ones_like(gy), gx)], -1)
    image.paste(Image.fromarray(photo.astype(np.uint8)), (width // 2, height // 2))
    return image


def noise_image(width: int, height: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1, "LA": 2}[mode]
    pixels = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    return Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode=mode)


def video_frames(count: int, width: int, height: int, seed: int = 1) -> list[Image.Image]:
    """Frames of a moving gradient with a bright square, plus a little noise."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(count):
        x = np.arange(width)[None, :] + 7 * i
        y = np.arange(height)[:, None]
        pixels = np.stack(np.broadcast_arrays((x + y) % 256, (2 * y) % 256, (3 * x) % 256), -1).astype(np.int16)
        pixels += rng.integers(-8, 9, pixels.shape)
        top, left = (5 * i) % max(1, height - 20), (9 * i) % max(1, width - 20)
        pixels[top : top + 20, left : left + 20] = 255
        frames.append(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)))
    return frames


def write_video(path: Path, frames: list[Image.Image], fps: int = 10) -> Path:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height = frames[0].size
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_image(frame)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def assert_same_inputs(mine: dict, ref, float_tol: float = 1e-5) -> None:
    assert list(mine) == list(ref.keys())
    for key, value in ref.items():
        value = np.asarray(value)
        assert mine[key].shape == value.shape, key
        assert mine[key].dtype == value.dtype, key
        if np.issubdtype(value.dtype, np.floating):
            assert np.abs(mine[key] - value).max(initial=0.0) <= float_tol, key
        else:
            np.testing.assert_array_equal(mine[key], value, err_msg=key)


# -------------------------------------------------------------------------------------------- tokenizer


@pytest.mark.parametrize("which", ["vl", "audio"])
def test_encode_and_decode_match_transformers(hf, which, tiny_qwen2vl_dir, tiny_qwen2audio_dir):
    folder = tiny_qwen2vl_dir if which == "vl" else tiny_qwen2audio_dir
    ref = hf.AutoTokenizer.from_pretrained(folder)
    tok = Tokenizer.from_dir(folder)
    for text in TEXTS:
        assert tok.encode(text) == ref(text)["input_ids"], text
        assert tok.encode(text, add_special_tokens=False) == ref(text, add_special_tokens=False)["input_ids"]
        ids = tok.encode(text)
        for skip in (True, False):
            assert tok.decode(ids, skip_special_tokens=skip) == ref.decode(ids, skip_special_tokens=skip), text
    rng = np.random.default_rng(RNG_SEED)
    for _ in range(50):  # arbitrary ids, including cut UTF-8 sequences and special tokens
        ids = rng.integers(0, len(ref), rng.integers(1, 12)).tolist()
        assert tok.decode(ids) == ref.decode(ids, skip_special_tokens=True)
        assert tok.decode(ids, skip_special_tokens=False) == ref.decode(ids, skip_special_tokens=False)
    assert tok.eos_token == ref.eos_token and tok.eos_token_id == ref.eos_token_id
    assert tok.pad_token_id == ref.pad_token_id
    assert tok.special_tokens_map == ref.special_tokens_map
    assert tok.all_special_ids == frozenset(ref.all_special_ids)
    assert len(tok) == len(ref)
    for token in ["<|im_start|>", "<|image_pad|>", "<|AUDIO|>", "Lima", "no-such-token-xyz"]:
        assert tok.token_to_id(token) == ref.convert_tokens_to_ids(token) or (
            tok.token_to_id(token) is None and ref.convert_tokens_to_ids(token) is None
        )


def test_stream_decoder_matches_text_streamer(hf, tiny_qwen2vl_dir):
    ref = hf.AutoTokenizer.from_pretrained(tiny_qwen2vl_dir)
    tok = Tokenizer.from_dir(tiny_qwen2vl_dir)

    class Capture(hf.TextStreamer):
        def __init__(self, tokenizer):
            super().__init__(tokenizer, skip_special_tokens=True)
            self.pieces: list[str] = []

        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            self.pieces.append(text)

    text = "秘鲁的首都是利马。 The capital of Peru is Lima.\n日本語で「ありがとう」 👍🏽 ok<|im_end|>"
    ids = tok.encode(text)
    assert any("\ufffd" in tok.decode([i]) for i in ids), "the sample should split characters across tokens"
    streamer = Capture(ref)
    decoder = tok.stream_decoder()
    mine = []
    for token_id in ids:
        streamer.put(np.asarray([token_id]))
        mine.append(decoder.put(token_id))
    streamer.end()
    mine.append(decoder.end())
    assert mine == streamer.pieces
    assert "".join(mine) == tok.decode(ids)
    assert all("\ufffd" not in piece for piece in mine)


def test_an_eager_stream_decoder_releases_a_period_at_once_and_joins_to_the_same_text(tiny_qwen2vl_dir):
    from assistant.models.preprocess import StreamDecoder

    tok = Tokenizer.from_dir(tiny_qwen2vl_dir)
    ids = tok.encode("The capital of Peru is Lima. 秘鲁的首都是利马。 日本語で「ありがとう」 👍🏽 ok!")
    decoder = StreamDecoder(tok, eager=True)
    pieces = [decoder.put(i) for i in ids] + [decoder.end()]
    assert "".join(pieces) == tok.decode(ids)
    assert all("\ufffd" not in piece for piece in pieces)
    sentence = tok.encode("The capital of Peru is Lima.")
    eager, plain = StreamDecoder(tok, eager=True), tok.stream_decoder()
    assert "".join(eager.put(i) for i in sentence) == "The capital of Peru is Lima."
    assert "".join(plain.put(i) for i in sentence) == "The capital of Peru is Lima"  # its period waits for a space


# ------------------------------------------------------------------------------------------ chat template

CONVERSATIONS = [
    [{"role": "user", "content": "What's the capital of Peru?"}],
    [
        {"role": "system", "content": "You answer briefly."},
        {"role": "user", "content": [{"type": "text", "text": "你好"}]},
        {"role": "assistant", "content": "你好!"},
        {"role": "user", "content": [{"type": "text", "text": "And now?"}]},
    ],
    [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe this image."}]}],
    [
        {
            "role": "user",
            "content": [
                {"type": "image", "image": "<PIL>"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                {"type": "text", "text": "Compare them.", "extra": None},
            ],
        }
    ],
    [{"role": "user", "content": [{"type": "video", "video": "clip.mp4"}, {"type": "text", "text": "What happens?"}]}],
    [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is it?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "A cat."}]},
        {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "And this?"}]},
    ],
]

AUDIO_CONVERSATIONS = [
    [{"role": "user", "content": [{"type": "audio", "audio": "q.wav"}]}],
    [
        {"role": "system", "content": "You are a helpful assistant."},
        {
            "role": "user",
            "content": [{"type": "audio", "audio_url": "a.wav"}, {"type": "text", "text": "What's that?"}],
        },
        {"role": "assistant", "content": "Glass breaking."},
        {"role": "user", "content": [{"type": "audio", "audio": "b.wav"}, {"type": "text", "text": "And this one?"}]},
    ],
    [{"role": "user", "content": "Detect the language and recognize the speech."}],
]


def test_chat_template_matches_processors(vl_processor, audio_processor, vl, audio):
    image = Image.new("RGB", (8, 8))
    for conversation in CONVERSATIONS:
        # a real image object in the message must reach the template as a placeholder, as in transformers
        conversation = json.loads(json.dumps(conversation))
        for message in conversation:
            for part in message["content"] if isinstance(message["content"], list) else []:
                if part.get("image") == "<PIL>":
                    part["image"] = image
        for generation in (True, False):
            expected = vl_processor.apply_chat_template(conversation, tokenize=False, add_generation_prompt=generation)
            assert vl.apply_chat_template(conversation, add_generation_prompt=generation) == expected
        expected = vl_processor.apply_chat_template(conversation, tokenize=False, add_vision_id=True)
        assert vl.apply_chat_template(conversation, add_generation_prompt=False, add_vision_id=True) == expected
    for conversation in AUDIO_CONVERSATIONS:
        expected = audio_processor.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
        assert audio.apply_chat_template(conversation) == expected


def test_template_environment_matches_transformers(vl_processor, vl):
    source = textwrap.dedent(
        """\
        {%- set ns = namespace(count=0) -%}
        {%- for message in messages -%}
            {%- if message.role == 'stop' %}{% break %}{% endif -%}
            {%- set ns.count = ns.count + 1 -%}
            {% generation %}{{ message | tojson }}{% endgeneration %}
            {{ message.content | tojson(indent=2) }}
        {% endfor -%}
        {{ ns.count }} {{ eos_token }} {{ dict(a=1) | tojson }} {{ strftime_now('%Y') | length }}
        {%- if boom %}{{ raise_exception('boom: ' ~ boom) }}{% endif %}
        """
    )
    messages = [
        {"role": "user", "content": '<b>"quotes" & ünïcödé 中文</b>'},
        {"role": "assistant", "content": [{"type": "text", "text": "x"}], "tool_calls": None},
        {"role": "stop", "content": "never"},
        {"role": "user", "content": "after the break"},
    ]
    expected = vl_processor.apply_chat_template(messages, chat_template=source, tokenize=False)
    template = ChatTemplate(source, vl.tokenizer.special_tokens_map)
    assert template.render(messages, add_generation_prompt=False) == expected
    assert "<|im_end|>" in expected and "&amp;" not in expected and "null" not in expected
    with pytest.raises(PreprocessError, match="boom: now"):
        ChatTemplate(source).render(messages, boom="now")
    with pytest.raises(PreprocessError):
        ChatTemplate("{% set ns = namespace(_private=1) %}").render(messages)
    with pytest.raises(PreprocessError, match="does not compile"):
        compile_template("{% for %}")


# ------------------------------------------------------------------------------------------------ images

IMAGE_CASES = [
    ("screenshot 1280x720", lambda: screenshot(1280, 720), {}),
    ("4K screenshot capped", lambda: screenshot(3840, 2160), {"max_pixels": 1280 * 28 * 28}),
    ("4K screenshot tight cap", lambda: screenshot(3840, 2160), {"max_pixels": 401_408}),
    ("tiny below min_pixels", lambda: noise_image(20, 17), {}),
    ("tall noise", lambda: noise_image(97, 1500, seed=2), {}),
    ("RGBA with transparency", lambda: noise_image(300, 200, "RGBA", seed=3), {}),
    ("grayscale", lambda: noise_image(256, 300, "L", seed=4), {}),
    ("grayscale+alpha", lambda: noise_image(120, 90, "LA", seed=5), {}),
    ("palette", lambda: screenshot(400, 300).convert("P"), {}),
    ("min_pixels raised", lambda: noise_image(64, 64, seed=6), {"min_pixels": 200 * 200}),
]


@pytest.mark.parametrize(("name", "make", "limits"), IMAGE_CASES, ids=[c[0] for c in IMAGE_CASES])
def test_images_equal_transformers_pil_processor(pil_image_processor, vl, name, make, limits):
    image = make()
    ref = pil_image_processor(images=[image], return_tensors="np", **limits)
    mine = preprocess_images([image], vl.image_settings, **limits)
    np.testing.assert_array_equal(mine["image_grid_thw"], ref["image_grid_thw"])
    assert mine["pixel_values"].dtype == np.float32 and mine["pixel_values"].shape == ref["pixel_values"].shape
    assert np.abs(mine["pixel_values"] - ref["pixel_values"]).max() <= 1e-5


def test_image_arrays_equal_pil_images(pil_image_processor, vl):
    rng = np.random.default_rng(RNG_SEED)
    rgba = rng.integers(0, 256, (70, 90, 4), dtype=np.uint8)
    gray = rng.integers(0, 256, (70, 90, 1), dtype=np.uint8)
    chw = np.ascontiguousarray(rng.integers(0, 256, (3, 70, 90), dtype=np.uint8))
    for array in (rgba, gray, chw):
        ref = pil_image_processor(images=[array], return_tensors="np")
        mine = preprocess_images([array], vl.image_settings)
        assert np.abs(mine["pixel_values"] - ref["pixel_values"]).max() <= 1e-5
    with pytest.raises(PreprocessError, match="uint8"):
        preprocess_images([rgba.astype(np.float32)], vl.image_settings)
    with pytest.raises(PreprocessError, match="elongated"):
        preprocess_images([Image.new("RGB", (5000, 20))], vl.image_settings)
    with pytest.raises(PreprocessError, match="cannot use"):
        preprocess_images([b"bytes are not an image"], vl.image_settings)


def test_image_files_load_like_transformers(hf, tmp_path, vl):
    from transformers.image_utils import load_image as reference

    upright = screenshot(300, 200)
    exif = upright.getexif()
    exif[0x0112] = 6  # stored rotated: viewers (and transformers) turn it upright
    path = tmp_path / "rotated.jpg"
    upright.save(path, exif=exif, quality=95)
    mine, ref = load_image(path), reference(str(path))
    assert mine.size == ref.size == (200, 300)
    np.testing.assert_array_equal(np.asarray(mine), np.asarray(ref))
    by_path = preprocess_images([path], vl.image_settings)
    np.testing.assert_array_equal(by_path["pixel_values"], preprocess_images([ref], vl.image_settings)["pixel_values"])

    (tmp_path / "notes.png").write_text("not a picture")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(path.read_bytes()[:600])
    for bad, message in [
        (tmp_path / "missing.png", "no image file"),
        (tmp_path / "notes.png", "not an image"),
        (truncated, "cannot read the image"),
    ]:
        with pytest.raises(PreprocessError, match=message) as info:
            load_image(bad)
        assert "\n" not in str(info.value)


def test_images_against_the_default_torchvision_processor(vl_processor, pil_image_processor, vl, record_property):
    """The torch backend is exact; the PIL backend differs from torchvision's bicubic by a few grey levels."""
    differences = {}
    for name, image, limits in [
        ("screenshot", screenshot(1280, 720), {}),
        ("4K screenshot", screenshot(3840, 2160), {"max_pixels": 1280 * 28 * 28}),
        ("noise", noise_image(640, 480, seed=7), {}),
    ]:
        ref = vl_processor.image_processor(images=[image], return_tensors="np", **limits)
        torch_like = preprocess_images([image], vl.image_settings, backend="torch", **limits)
        np.testing.assert_array_equal(torch_like["image_grid_thw"], ref["image_grid_thw"])
        assert np.abs(torch_like["pixel_values"] - ref["pixel_values"]).max() <= 1e-5
        pil_like = preprocess_images([image], vl.image_settings, **limits)
        diff = np.abs(pil_like["pixel_values"] - ref["pixel_values"])
        differences[name] = (float(diff.max()), float(diff.mean()))
    record_property("pil_vs_torchvision_pixel_values_max_mean", differences)
    print(f"PIL vs torchvision backend, pixel_values |diff| (max, mean): {differences}")
    for name, (largest, mean) in differences.items():
        assert largest < 0.5 and mean < 0.02, name  # 1/255/std is ~0.015 per grey level


def test_settings_from_a_legacy_preprocessor_config(tmp_path, tiny_qwen2vl_dir):
    """Checkpoints saved by transformers 4.x keep flat image settings with min_pixels / max_pixels."""
    import shutil

    folder = tmp_path / "legacy"
    shutil.copytree(tiny_qwen2vl_dir, folder)
    (folder / "processor_config.json").unlink()
    legacy = {"min_pixels": 3136, "max_pixels": 1003520, "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2}
    (folder / "preprocessor_config.json").write_text(json.dumps(legacy))
    pre = Qwen2VLPreprocessor.from_dir(folder)
    assert (pre.image_settings.min_pixels, pre.image_settings.max_pixels) == (3136, 1003520)
    assert (pre.video_settings.min_pixels, pre.video_settings.max_pixels) == (3136, 1003520)
    assert pre.image_settings.image_mean == ImageSettings().image_mean
    (folder / "preprocessor_config.json").unlink()
    with pytest.raises(PreprocessError, match=r"processor_config\.json"):
        Qwen2VLPreprocessor.from_dir(folder)
    with pytest.raises(PreprocessError, match=r"tokenizer\.json"):
        Qwen2VLPreprocessor.from_dir(tmp_path / "nowhere")


def test_smart_resize_and_settings(hf, tiny_qwen2vl_dir):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize as reference

    settings = ImageSettings.from_dir(tiny_qwen2vl_dir)
    assert (settings.min_pixels, settings.max_pixels, settings.factor) == (56 * 56, 28 * 28 * 16384, 28)
    assert smart_resize(2160, 3840, 28, 3136, 401_408) == (448, 840)  # 600 tokens for a 4K screen
    rng = np.random.default_rng(RNG_SEED)
    for height, width in rng.integers(1, 5000, (300, 2)):
        if max(height, width) / min(height, width) > 200:
            continue
        for low, high in ((3136, 401_408), (3136, 28 * 28 * 16384), (128 * 784, 768 * 784)):
            assert smart_resize(int(height), int(width), 28, low, high) == reference(height, width, 28, low, high)
    video = VideoSettings.from_dir(tiny_qwen2vl_dir)
    assert (video.min_pixels, video.max_pixels, video.temporal_patch_size) == (3136, 12845056, 2)


def test_torch_resize_port_is_bit_exact():
    import torch
    import torchvision.transforms.v2.functional as tvf

    rng = np.random.default_rng(RNG_SEED)
    sizes = [((1080, 1920), (476, 840)), ((120, 160), (112, 168)), ((31, 17), (56, 84)), ((700, 90), (28, 56))]
    sizes += [((int(h), int(w)), (int(a), int(b))) for h, w, a, b in rng.integers(2, 300, (12, 4))]
    for (height, width), (new_h, new_w) in sizes:
        pixels = rng.integers(0, 256, (2, 3, height, width), dtype=np.uint8)
        for code, mode in ((3, tvf.InterpolationMode.BICUBIC), (2, tvf.InterpolationMode.BILINEAR)):
            ref = tvf.resize(torch.from_numpy(pixels), [new_h, new_w], interpolation=mode, antialias=True).numpy()
            np.testing.assert_array_equal(resize_uint8(pixels, new_h, new_w, code), ref)


# ------------------------------------------------------------------------------------------------- video


@pytest.mark.parametrize(
    ("count", "width", "height", "kwargs"),
    [(5, 80, 60, {}), (8, 640, 360, {}), (4, 333, 251, {"cap_pixels_per_frame": True}), (1, 56, 56, {})],
)
def test_video_frames_equal_transformers_video_processor(vl_processor, vl, count, width, height, kwargs):
    frames = video_frames(count, width, height)
    ref = vl_processor.video_processor(videos=[frames], return_tensors="np", **kwargs)
    settings = VideoSettings(**{**vl.video_settings.__dict__, **kwargs})
    for video in (frames, np.stack([np.asarray(f) for f in frames])):
        mine = preprocess_videos([video], settings)
        np.testing.assert_array_equal(mine["video_grid_thw"], ref["video_grid_thw"])
        assert np.abs(mine["pixel_values_videos"] - ref["pixel_values_videos"]).max() <= 1e-5


def test_frame_sampling_matches_qwen_vl_utils():
    import torch
    from qwen_vl_utils.vision_process import smart_nframes

    for total in [2, 3, 4, 5, 7, 30, 31, 61, 100, 299, 1000, 1801, 5000]:
        for source_fps in (10.0, 23.976, 25.0, 30.0, 60.0):
            for fps in (0.5, 1.0, 2.0, 4.0):
                try:
                    expected = smart_nframes({"fps": fps}, total_frames=total, video_fps=source_fps)
                except ValueError:
                    with pytest.raises(PreprocessError):
                        sample_count(total, source_fps, fps)
                    continue
                count = sample_count(total, source_fps, fps)
                assert count == expected
                expected_idx = torch.linspace(0, total - 1, count).round().long().tolist()
                assert sample_indices(total, count) == expected_idx, (total, count)


def _qwen_vl_utils_reference(path: Path, vl_processor):
    """qwen-vl-utils' fetch_video with its torchvision reader (all frames decoded, here through PyAV)."""
    import av
    import torch
    from qwen_vl_utils import vision_process

    def read_all(ele):
        with av.open(ele["video"]) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate)
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        video = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)
        total = video.shape[0]
        count = vision_process.smart_nframes(ele, total_frames=total, video_fps=fps)
        idx = torch.linspace(0, total - 1, count).round().long()
        return video[idx], {"fps": fps}, count / max(total, 1e-6) * fps

    original = dict(vision_process.VIDEO_READER_BACKENDS)
    vision_process.VIDEO_READER_BACKENDS["torchvision"] = read_all
    old_force = vision_process.FORCE_QWENVL_VIDEO_READER
    vision_process.FORCE_QWENVL_VIDEO_READER = "torchvision"
    try:
        video, sample_fps = vision_process.fetch_video({"video": str(path)}, return_video_sample_fps=True)
    finally:
        vision_process.VIDEO_READER_BACKENDS.update(original)
        vision_process.FORCE_QWENVL_VIDEO_READER = old_force
    inputs = vl_processor.video_processor(videos=[video], return_tensors="np")
    return inputs, sample_fps


def test_read_video_matches_qwen_vl_utils_and_the_processor(tmp_path, vl_processor, vl):
    path = write_video(tmp_path / "walk.mp4", video_frames(31, 320, 240), fps=10)
    ref, ref_fps = _qwen_vl_utils_reference(path, vl_processor)
    clip = read_video(path, settings=vl.video_settings)
    assert clip.total_frames == 31 and clip.frames.shape[0] == 6  # 3.1 s at 2 fps -> 6 frames
    assert clip.sample_fps == pytest.approx(ref_fps)
    mine = preprocess_videos([clip], vl.video_settings)
    np.testing.assert_array_equal(mine["video_grid_thw"], ref["video_grid_thw"])
    assert np.abs(mine["pixel_values_videos"] - ref["pixel_values_videos"]).max() <= 1e-5
    prompt = vl.apply_chat_template([{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "?"}]}])
    by_path = vl(prompt, videos=[path])
    np.testing.assert_array_equal(by_path["pixel_values_videos"], mine["pixel_values_videos"])


def test_read_video_errors(tmp_path):
    with pytest.raises(PreprocessError, match="no video file"):
        read_video(tmp_path / "missing.mp4")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    for path in (empty, corrupt):
        with pytest.raises(PreprocessError) as info:
            read_video(path)
        assert "\n" not in str(info.value)
    sound = tmp_path / "sound.wav"
    import soundfile

    soundfile.write(sound, np.zeros(1600, np.float32), 16000)
    with pytest.raises(PreprocessError, match="no video stream"):
        read_video(sound)
    one_frame = write_video(tmp_path / "one.mp4", video_frames(1, 64, 64))
    with pytest.raises(PreprocessError, match="too short"):
        read_video(one_frame)
    good = write_video(tmp_path / "good.mp4", video_frames(20, 64, 48), fps=10)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    with pytest.raises(PreprocessError) as info:
        read_video(cut)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------------------------------------- audio


def test_mel_filters_equal_transformers(hf):
    extractor = hf.WhisperFeatureExtractor(feature_size=128)
    assert np.abs(mel_filter_bank(201, 128, 16000) - extractor.mel_filters).max() < 1e-12


@pytest.mark.parametrize("clip", ["speech 3 s", "noise 5 s", "exactly 30 s", "45 s (cut)", "0.05 s"])
def test_log_mel_matches_whisper_feature_extractor(audio_processor, speech_3s, clip):
    rng = np.random.default_rng(RNG_SEED)
    samples = {
        "speech 3 s": lambda: speech_3s,
        "noise 5 s": lambda: (0.1 * rng.standard_normal(5 * 16000)).astype(np.float32),
        "exactly 30 s": lambda: np.tile(speech_3s, 10) + (0.01 * rng.standard_normal(480000)).astype(np.float32),
        "45 s (cut)": lambda: (0.2 * rng.standard_normal(45 * 16000)).astype(np.float32),
        "0.05 s": lambda: speech_3s[8000:8800],
    }[clip]()
    extractor = audio_processor.feature_extractor
    ref = extractor(samples, sampling_rate=16000, return_attention_mask=True, padding="max_length", return_tensors="np")
    features, mask = log_mel_features(samples, AudioSettings())
    assert features.shape == (1, 128, 3000) and features.dtype == np.float32
    assert mask.dtype == ref["attention_mask"].dtype
    np.testing.assert_array_equal(mask, ref["attention_mask"])
    assert np.abs(features - ref["input_features"]).max() <= 1e-4  # transformers runs torch.stft in float32
    # transformers' own numpy path (used when torch is absent) agrees to float32 rounding
    padded = np.zeros((1, 480000), np.float32)
    padded[0, : min(len(samples), 480000)] = samples[:480000]
    assert np.abs(features - extractor._np_extract_fbank_features(padded, "cpu")).max() <= 1e-6


def test_audio_token_counts():
    assert audio_token_count(3 * 16000) == 75
    assert audio_token_count(30 * 16000) == 750
    assert audio_token_count(45 * 16000) == 750
    assert audio_token_count(800) == 1  # 5 frames
    with pytest.raises(PreprocessError, match="empty"):
        log_mel_features(np.zeros(0, np.float32))
    with pytest.raises(PreprocessError, match="mono"):
        log_mel_features(np.zeros((2, 16000), np.float32))
    with pytest.raises(PreprocessError, match="NaN"):
        log_mel_features(np.full(16000, np.nan, np.float32))


def test_load_audio_equals_librosa(tmp_path, speech_3s):
    import librosa
    import soundfile

    rng = np.random.default_rng(RNG_SEED)
    base = librosa.resample(speech_3s, orig_sr=16000, target_sr=44100)
    stereo = np.stack([base, 0.5 * base + 0.01 * rng.standard_normal(base.size)], axis=1).astype(np.float32)
    files = {
        "stereo-44k.wav": (stereo, 44100, "PCM_16"),
        "mono-22k.flac": (librosa.resample(speech_3s, orig_sr=16000, target_sr=22050), 22050, "PCM_24"),
        "mono-16k.wav": (speech_3s, 16000, "FLOAT"),
        "quad-8k.ogg": (np.tile(librosa.resample(speech_3s, orig_sr=16000, target_sr=8000)[:, None], 4), 8000, None),
    }
    for name, (data, rate, subtype) in files.items():
        path = tmp_path / name
        soundfile.write(path, data, rate, subtype=subtype)
        expected, _ = librosa.load(path, sr=16000)
        mine = load_audio(path)
        assert mine.dtype == np.float32 and mine.shape == expected.shape, name
        assert np.abs(mine - expected).max() <= 1e-6, name


def test_load_audio_through_ffmpeg(tmp_path, speech_3s):
    import av

    path = tmp_path / "speech.m4a"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=48000, layout="stereo")
        resampled = np.repeat(np.interp(np.arange(0, 3 * 48000) / 3, np.arange(speech_3s.size), speech_3s), 1)
        pcm = np.stack([resampled, resampled]).astype(np.float32)
        for start in range(0, pcm.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(pcm[:, start : start + 1024]), format="fltp", layout="stereo"
            )
            frame.rate = 48000
            frame.pts = start
            frame.time_base = Fraction(1, 48000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    loaded = load_audio(path)
    assert abs(loaded.size - speech_3s.size) < 0.1 * 16000  # the codec adds priming samples
    n = min(loaded.size, speech_3s.size)
    lag = int(np.argmax(np.correlate(loaded[:n], speech_3s[:2000].astype(np.float64), mode="valid")))
    aligned = loaded[lag : lag + n - 4000]
    assert np.corrcoef(aligned, speech_3s[: aligned.size])[0, 1] > 0.9


def test_load_audio_errors(tmp_path):
    import soundfile

    cases = {"missing.wav": None, "empty.wav": b"", "corrupt.wav": b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk"}
    cases["text.mp3"] = b"this is not audio at all\n" * 20
    for name, content in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(PreprocessError) as info:
            load_audio(path)
        assert "\n" not in str(info.value), name
    silent = tmp_path / "zero-samples.wav"
    soundfile.write(silent, np.zeros(0, np.float32), 16000)
    with pytest.raises(PreprocessError, match="no audio"):
        load_audio(silent)


# ------------------------------------------------------------------------------------- prompt assembly


def test_vl_inputs_equal_the_processor(hf, vl_processor, pil_image_processor, vl):
    one = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What does this error mean?"}]}]
    two = [{"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "Diff?"}]}]
    vid = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What happens?"}]}]
    mixed = [{"role": "user", "content": [{"type": "video"}, {"type": "image"}, {"type": "text", "text": "Same?"}]}]
    text = [{"role": "user", "content": "Summarise this window for me, please."}]
    shot, small = screenshot(1280, 720), noise_image(200, 150, seed=9)
    frames = video_frames(6, 160, 120)
    cases = [
        (one, {"images": [shot]}, {}),
        (one, {"images": [screenshot(3840, 2160)]}, {"max_pixels": 401_408}),
        (two, {"images": [shot, small]}, {}),
        (vid, {"videos": [frames]}, {}),
        (mixed, {"images": [small], "videos": [frames]}, {}),
        (text, {}, {}),
    ]
    # AutoProcessor picks the torchvision image backend; the same processor with the PIL image backend is
    # what `Qwen2VLPreprocessor` matches by default.
    with_pil = hf.Qwen2VLProcessor(
        image_processor=pil_image_processor,
        tokenizer=vl_processor.tokenizer,
        video_processor=vl_processor.video_processor,
        chat_template=vl_processor.chat_template,
    )
    for conversation, media, limits in cases:
        prompt = vl.apply_chat_template(conversation)
        ref = vl_processor(text=[prompt], return_tensors="np", **media, **limits)
        assert_same_inputs(vl([prompt], **media, **limits, image_backend="torch"), ref)
        ref = with_pil(text=[prompt], return_tensors="np", **media, **limits)
        mine = vl(prompt, **media, **limits)
        assert_same_inputs(mine, ref)
        if "images" in media:
            grid = mine["image_grid_thw"]
            assert (mine["mm_token_type_ids"] == 1).sum() == int((grid.prod(axis=1) // 4).sum())


def test_audio_inputs_equal_the_processor(audio_processor, audio, speech_3s):
    rng = np.random.default_rng(RNG_SEED)
    second = (0.05 * rng.standard_normal(7 * 16000)).astype(np.float32)
    one = [{"role": "user", "content": [{"type": "audio", "audio": "q.wav"}]}]
    two = AUDIO_CONVERSATIONS[1]
    text = AUDIO_CONVERSATIONS[2]
    for conversation, clips in ((one, [speech_3s]), (two, [speech_3s, second]), (text, [])):
        prompt = audio.apply_chat_template(conversation)
        ref = audio_processor(text=[prompt], audio=clips or None, sampling_rate=16000, return_tensors="np")
        mine = audio(prompt, audio=clips or None)
        assert_same_inputs(mine, ref, float_tol=1e-4)
    counts = (audio(audio.apply_chat_template(one), audio=speech_3s)["input_ids"] == audio.audio_token_id).sum()
    assert counts == 75


def test_placeholder_mismatches_are_clear(vl, audio):
    prompt = vl.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "?"}]}])
    with pytest.raises(PreprocessError, match="1 <\\|image_pad\\|> placeholder"):
        vl(prompt)
    with pytest.raises(PreprocessError, match="placeholder"):
        audio("no audio here", audio=np.zeros(16000, np.float32))
    with pytest.raises(PreprocessError, match="16000 Hz"):
        audio("x", sampling_rate=44100)


# ---------------------------------------------------------------------------------------------- M-RoPE


def test_rope_index_equals_the_model(hf, tiny_qwen2vl_dir, vl_processor, vl):
    import torch

    model = hf.Qwen2VLForConditionalGeneration.from_pretrained(tiny_qwen2vl_dir)
    shot, small = screenshot(640, 360), noise_image(90, 200, seed=3)
    frames = video_frames(5, 160, 120)
    conversations = [
        (
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is this?"}]}],
            {"images": [shot]},
        ),
        (
            [{"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "Diff?"}]}],
            {"images": [shot, small]},
        ),
        ([{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "And?"}]}], {"videos": [frames]}),
        (
            [{"role": "user", "content": [{"type": "image"}, {"type": "video"}, {"type": "text", "text": "?"}]}],
            {"images": [small], "videos": [frames]},
        ),
        ([{"role": "user", "content": "Plain text only."}], {}),
    ]
    for conversation, media in conversations:
        inputs = vl(vl.apply_chat_template(conversation), **media)
        tensors = {k: torch.from_numpy(v) for k, v in inputs.items()}
        ref_pos, ref_delta = model.model.get_rope_index(
            tensors["input_ids"],
            tensors["mm_token_type_ids"],
            image_grid_thw=tensors.get("image_grid_thw"),
            video_grid_thw=tensors.get("video_grid_thw"),
            attention_mask=tensors["attention_mask"],
        )
        positions, delta = get_rope_index(
            inputs["input_ids"],
            inputs["mm_token_type_ids"],
            inputs.get("image_grid_thw"),
            inputs.get("video_grid_thw"),
            inputs["attention_mask"],
            spatial_merge_size=model.config.vision_config.spatial_merge_size,
        )
        assert positions.shape == (3, 1, inputs["input_ids"].shape[1]) and positions.dtype == np.int64
        np.testing.assert_array_equal(positions, ref_pos.numpy())
        np.testing.assert_array_equal(delta, ref_delta.numpy())

    # a left-padded batch of two prompts: padding keeps position 0 and is left out of the delta
    prompts = [vl.apply_chat_template(conversations[0][0]), vl.apply_chat_template(conversations[4][0])]
    ref = vl_processor(text=prompts, images=[shot], padding=True, return_tensors="pt")
    ref_pos, ref_delta = model.model.get_rope_index(
        ref["input_ids"],
        ref["mm_token_type_ids"],
        image_grid_thw=ref["image_grid_thw"],
        attention_mask=ref["attention_mask"],
    )
    positions, delta = get_rope_index(
        ref["input_ids"].numpy(),
        ref["mm_token_type_ids"].numpy(),
        ref["image_grid_thw"].numpy(),
        attention_mask=ref["attention_mask"].numpy(),
    )
    np.testing.assert_array_equal(positions, ref_pos.numpy())
    np.testing.assert_array_equal(delta, ref_delta.numpy())


# ------------------------------------------------------------------------------------------ no torch


def test_the_ask_path_imports_neither_torch_nor_transformers(tmp_path, tiny_qwen2vl_dir, tiny_qwen2audio_dir):
    import soundfile

    video = write_video(tmp_path / "clip.mp4", video_frames(12, 96, 64), fps=6)
    wav = tmp_path / "q.wav"
    soundfile.write(wav, spoken("What is on my screen?"), 16000)
    screenshot(800, 600).save(tmp_path / "shot.png")
    script = textwrap.dedent(
        f"""
        import sys
        from PIL import Image
        from assistant.models.preprocess import (
            Qwen2AudioPreprocessor, Qwen2VLPreprocessor, get_rope_index, load_audio, read_video,
        )

        vl = Qwen2VLPreprocessor.from_dir({str(tiny_qwen2vl_dir)!r})
        prompt = vl.apply_chat_template([{{"role": "user", "content": [
            {{"type": "image"}}, {{"type": "video"}}, {{"type": "text", "text": "What is this?"}}]}}])
        clip = read_video({str(video)!r}, settings=vl.video_settings)
        inputs = vl(prompt, images=[Image.open({str(tmp_path / "shot.png")!r})], videos=[clip], max_pixels=200_000)
        positions, delta = get_rope_index(inputs["input_ids"], inputs["mm_token_type_ids"],
                                          inputs["image_grid_thw"], inputs["video_grid_thw"])
        text = vl.decode(vl.tokenizer.encode("秘鲁的首都是利马。"))

        audio = Qwen2AudioPreprocessor.from_dir({str(tiny_qwen2audio_dir)!r})
        prompt = audio.apply_chat_template([{{"role": "user", "content": [{{"type": "audio", "audio": "q.wav"}}]}}])
        features = audio(prompt, audio=load_audio({str(wav)!r}))

        assert inputs["pixel_values"].shape[0] > 0 and features["input_features"].shape == (1, 128, 3000)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers", "torchvision"))
        print(loaded)
        assert not loaded, loaded
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "[]"


def test_a_tail_too_short_for_one_audio_token_is_not_a_clip_of_its_own():
    from assistant.models.transcript import split_clips

    assert [len(c) for c in split_clips(np.zeros(60 * 16000 + 160))] == [480000, 480000]  # 0.01 s tail dropped
    assert [len(c) for c in split_clips(np.zeros(60 * 16000 + 480))] == [480000, 480000, 480]  # one token: kept
    assert [len(c) for c in split_clips(np.zeros(160))] == [160]  # alone, it is the caller's to refuse
