"""`assistant ask` end to end on the tiny converted models: every route, streaming, JSON, bad
input as one line with exit 2, and no torch on the path for audio and images."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile
from PIL import Image

from cli_runner import headless_env, run_cli
from speech import SAMPLE_RATE, spoken

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(vl_f32, audio_f32, tmp_path_factory):
    """A config pointing at the tiny models, and input files of every kind."""
    home = tmp_path_factory.mktemp("ask-home")
    files = tmp_path_factory.mktemp("ask-files")
    config = files / "config.toml"
    config.write_text(
        f'[models]\naudio_dir = "{audio_f32}"\nvl_dir = "{vl_f32}"\n'
        '[runtime]\ninference_precision = "f32"\n[generation]\nmax_new_tokens = 8\n'
    )
    question = spoken("What is the capital of Peru?")
    soundfile.write(files / "question.wav", question, SAMPLE_RATE)
    # The same speech at 44.1 kHz stereo: converted on the way in.
    import librosa

    stereo = librosa.resample(question, orig_sr=SAMPLE_RATE, target_sr=44100)
    soundfile.write(files / "question-44k-stereo.wav", np.stack([stereo, stereo], axis=1), 44100)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (84, 112, 3), dtype=np.uint8)).save(files / "picture.png")
    soundfile.write(files / "silent.wav", np.zeros(SAMPLE_RATE, np.float32), SAMPLE_RATE)
    soundfile.write(files / "empty.wav", np.zeros(0, np.float32), SAMPLE_RATE)
    (files / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")
    (files / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (files / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 nothing else")
    write_video(files / "clip.mp4")
    return {"home": home, "files": files, "config": config}


def write_video(path, frames=8, fps=4):
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 112, 84, "yuv420p"
        for i in range(frames):
            image = np.full((84, 112, 3), (i * 30) % 256, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def ask(setup, *args, env=None):
    return run_cli(
        "ask",
        "--config",
        str(setup["config"]),
        "--no-speak",
        *args,
        env=env or headless_env(setup["home"]),
        timeout=600,
    )


def ask_json(setup, *args):
    result = ask(setup, "--json", "--greedy", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("args", "route", "transcript"),
    [
        (["--audio", "{files}/question.wav"], "voice", False),
        (["--audio", "{files}/question.wav", "--text", "What language is spoken?"], "analysis", False),
        (["--image", "{files}/picture.png", "--text", "What is this?"], "image", False),
        (["--image", "{files}/picture.png", "--image", "{files}/picture.png", "--text", "Same?"], "image", False),
        (["--image", "{files}/picture.png", "--audio", "{files}/question.wav"], "image", True),
        (["--video", "{files}/clip.mp4", "--text", "What happens?"], "video", False),
        (["--text", "Hello there"], "text", False),
        (["--audio", "{files}/question-44k-stereo.wav"], "voice", False),
    ],
)
def test_routes_and_json(setup, args, route, transcript):
    out = ask_json(setup, *[a.format(files=setup["files"]) for a in args])
    assert out["route"] == route
    assert isinstance(out["text"], str) and out["new_tokens"] >= 1
    for stage in ("first_token", "prefill", "decode", "total"):
        assert out["timings"][stage] >= 0
    assert out["timings"]["first_token"] <= out["timings"]["total"]
    assert ("transcript" in out) == transcript


def test_a_two_minute_monologue_is_heard_whole(setup, tmp_path):
    """Longer than one 30 s clip: split into clips, never cut off."""
    speech = spoken("This is a long story about the weather and the sea. " * 2)
    long = np.tile(np.concatenate([speech, np.zeros(SAMPLE_RATE, np.float32)]), 40)[: 120 * SAMPLE_RATE]
    soundfile.write(tmp_path / "monologue.wav", long, SAMPLE_RATE)
    out = ask_json(setup, "--audio", str(tmp_path / "monologue.wav"))
    assert out["route"] == "voice" and out["new_tokens"] >= 1


def test_streamed_text_equals_the_json_text(setup):
    args = ["--greedy", "--audio", str(setup["files"] / "question.wav")]
    streamed = ask(setup, *args)
    as_json = ask_json(setup, *args[1:])
    assert streamed.returncode == 0, streamed.stderr
    assert streamed.stdout.strip() == as_json["text"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--audio", "{files}/corrupt.wav"], "corrupt.wav"),
        (["--audio", "{files}/empty.wav"], "holds no audio"),
        (["--audio", "{files}/silent.wav"], "is silent"),
        (["--audio", "{files}/missing.wav"], "missing.wav"),
        (["--image", "{files}/corrupt.png", "--text", "x"], "corrupt.png"),
        (["--video", "{files}/corrupt.mp4", "--text", "x"], "corrupt.mp4"),
        ([], "nothing to ask"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(setup, args, expected):
    result = ask(setup, *[a.format(files=setup["files"]) for a in args])
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr


@pytest.mark.parametrize("folder", ["missing", "not-converted"])
def test_model_folder_missing_or_not_converted(setup, tmp_path, folder):
    target = tmp_path / folder
    if folder == "not-converted":
        target.mkdir()
        (target / "config.json").write_text("{}")
    config = tmp_path / "config.toml"
    config.write_text(f'[models]\naudio_dir = "{target}"\n')
    result = run_cli(
        "ask",
        "--config",
        str(config),
        "--no-speak",
        "--audio",
        str(setup["files"] / "question.wav"),
        env=headless_env(setup["home"]),
        timeout=300,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "assistant convert audio" in lines[0]


@pytest.mark.parametrize(
    "args", [["--audio", "{files}/question.wav"], ["--image", "{files}/picture.png", "--text", "What is it?"]]
)
def test_the_ask_path_imports_no_torch(setup, args):
    argv = [
        "ask",
        "--config",
        str(setup["config"]),
        "--no-speak",
        "--json",
        *[a.format(files=setup["files"]) for a in args],
    ]
    code = (
        "import sys, json\n"
        "from assistant.cli import main\n"
        f"code = main({argv!r})\n"
        "heavy = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')"
        " or m.startswith('transformers'))\n"
        "print(json.dumps({'code': code, 'heavy': heavy[:5]}), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=headless_env(setup["home"]), capture_output=True, text=True, timeout=600
    )
    report = json.loads(result.stderr.strip().splitlines()[-1])
    assert report == {"code": 0, "heavy": []}


def test_ask_about_the_screen_on_a_virtual_display(setup):
    """`ask --screen` captures the Xvfb screen (a known picture on it) and asks Qwen2-VL."""
    from Xlib import display as xdisplay

    from facilities import xvfb

    with xvfb(1280, 720) as name:
        d = xdisplay.Display(name)
        root = d.screen().root
        root.fill_rectangle(
            root.create_gc(foreground=d.screen().default_colormap.alloc_color(0, 0, 65535).pixel), 0, 0, 640, 720
        )
        d.sync()
        env = headless_env(setup["home"], DISPLAY=name)
        result = ask(setup, "--json", "--greedy", "--screen", "--text", "What is on my screen?", env=env)
        d.close()
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["route"] == "screen" and out["timings"]["screenshot"] >= 0 and out["new_tokens"] >= 1


def test_ask_about_the_screen_without_a_display_says_so(setup):
    result = ask(setup, "--screen", "--text", "What is on my screen?")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no display" in lines[0]


def folder_with_generation(source, folder, **changes):
    """A copy of a converted model folder whose generation_config.json says `changes`."""
    import shutil

    shutil.copytree(source, folder)
    path = folder / "generation_config.json"
    generation = {**json.loads(path.read_text()), **changes}
    path.write_text(json.dumps(generation))
    return generation


@pytest.mark.parametrize(
    ("which", "question"),
    [("vl", {"text": "Hello there"}), ("audio", {"audio": "question.wav"})],
)
def test_ask_without_sampling_flags_uses_the_folder_generation_config(
    setup, vl_f32, audio_f32, tmp_path, monkeypatch, which, question
):
    """The default `[generation] sampling = "model"`: the request samples exactly as the folder says, with
    its end tokens; "config" takes temperature and top_p from the configuration instead."""
    from assistant.ask import AskRequest, run_ask
    from assistant.config import load_settings
    from assistant.models import base
    from assistant.models.sampling import SamplingSettings

    folder = tmp_path / which
    # Values no checkpoint ships, so they can only have come from this folder.
    generation = folder_with_generation(
        vl_f32 if which == "vl" else audio_f32,
        folder,
        do_sample=True,
        temperature=1.3,
        top_p=0.8,
        top_k=5,
        repetition_penalty=1.2,
    )
    requests = []
    real = base.run_generation

    def recording(decoder, request, stats):
        requests.append(request)
        return real(decoder, request, stats)

    monkeypatch.setattr(base, "run_generation", recording)
    models = f'[models]\n{which}_dir = "{folder}"\n[runtime]\ninference_precision = "f32"\ncache_dir = "{tmp_path}"\n'
    default = tmp_path / "default.toml"
    default.write_text(models + "[generation]\nmax_new_tokens = 4\n")
    configured = tmp_path / "configured.toml"
    configured.write_text(models + '[generation]\nmax_new_tokens = 4\nsampling = "config"\n')
    inputs = {k: setup["files"] / v if k == "audio" else v for k, v in question.items()}

    run_ask(AskRequest(**inputs), load_settings(default))
    run_ask(AskRequest(**inputs), load_settings(configured))
    run_ask(AskRequest(greedy=True, **inputs), load_settings(default))
    samplings = [r.sampling for r in requests]
    assert samplings == [
        SamplingSettings(do_sample=True, temperature=1.3, top_p=0.8, top_k=5, repetition_penalty=1.2),
        SamplingSettings(do_sample=True, temperature=0.7, top_p=0.9, top_k=5, repetition_penalty=1.2),
        SamplingSettings(do_sample=False, temperature=1.3, top_p=0.8, top_k=5, repetition_penalty=1.2),
    ]
    assert all(r.stop_ids == frozenset(generation["eos_token_id"]) for r in requests)
    assert len(generation["eos_token_id"]) == 2  # the folder's list of end tokens, not one id


def test_ask_without_sampling_flags_answers_as_the_folder_says(setup, vl_f32, tmp_path):
    """A folder that says do_sample false answers the same every time with no --greedy, as the default
    configuration leaves sampling to the folder (the old fixed temperature 0.7 would sample)."""
    folder = tmp_path / "vl"
    folder_with_generation(vl_f32, folder, do_sample=False, temperature=1.5, top_k=0, top_p=1.0)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[models]\nvl_dir = "{folder}"\n[runtime]\ninference_precision = "f32"\n[generation]\nmax_new_tokens = 8\n'
    )
    texts = []
    for flags in ([], [], ["--greedy"]):
        result = run_cli(
            "ask",
            "--config",
            str(config),
            "--json",
            "--no-speak",
            *flags,
            "--text",
            "Tell me a story",
            env=headless_env(setup["home"]),
            timeout=600,
        )
        assert result.returncode == 0, result.stderr
        texts.append(json.loads(result.stdout)["text"])
    assert texts[0] == texts[1] == texts[2], texts


def hostile_wavs(folder, question: np.ndarray) -> None:
    """The README's table of hostile sound files, written from the spoken question."""
    import struct

    import librosa

    def at(rate: int) -> np.ndarray:
        return question if rate == SAMPLE_RATE else librosa.resample(question, orig_sr=SAMPLE_RATE, target_sr=rate)

    loud = int(np.argmax(np.abs(question)))
    soundfile.write(folder / "short.wav", question[loud : loud + SAMPLE_RATE // 100], SAMPLE_RATE)  # 0.01 s
    soundfile.write(folder / "pcm8.wav", question, SAMPLE_RATE, subtype="PCM_U8")
    soundfile.write(folder / "pcm24.wav", question, SAMPLE_RATE, subtype="PCM_24")
    soundfile.write(folder / "float64.wav", question.astype(np.float64), SAMPLE_RATE, subtype="DOUBLE")
    soundfile.write(folder / "six-channels.wav", np.stack([at(48000)] * 6, axis=1), 48000)
    soundfile.write(folder / "192k.wav", at(192000), 192000, subtype="PCM_24")
    soundfile.write(folder / "ten-minutes.wav", np.tile(question, 600 * SAMPLE_RATE // len(question) + 1), SAMPLE_RATE)
    whole = (folder / "pcm24.wav").read_bytes()
    data = whole.index(b"data")
    lying = bytearray(whole)
    lying[data + 4 : data + 8] = struct.pack("<I", 0x7FFFFFF0)  # a data chunk far longer than the file
    (folder / "lying-header.wav").write_bytes(bytes(lying))
    (folder / "truncated.wav").write_bytes(whole[: data + 8 + 3 * (len(question) // 2) + 1])  # mid-sample


# What each hostile file does (the README's troubleshooting table): "answered" or the one-line error.
HOSTILE_WAVS = {
    "short.wav": "too short to hear",  # 0.01 s: less than one audio token (0.03 s)
    "pcm8.wav": "answered",
    "pcm24.wav": "answered",
    "float64.wav": "answered",
    "six-channels.wav": "answered",  # 48 kHz, 6 channels: averaged to mono and resampled
    "192k.wav": "answered",
    "ten-minutes.wav": "ask takes at most 5 minutes of audio",
    "lying-header.wav": "answered",  # the samples that are there
    "truncated.wav": "answered",  # cut mid-sample: the whole samples before it
}


@pytest.fixture(scope="module")
def hostile(setup, tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile-wavs")
    hostile_wavs(folder, soundfile.read(setup["files"] / "question.wav", dtype="float32")[0])
    return folder


@pytest.mark.parametrize("name", list(HOSTILE_WAVS))
def test_hostile_sound_files_are_answered_or_refused_in_one_line(setup, hostile, name):
    result = ask(setup, "--json", "--greedy", "--audio", str(hostile / name))
    expected = HOSTILE_WAVS[name]
    assert "Traceback" not in result.stderr, result.stderr
    if expected == "answered":
        assert result.returncode == 0, result.stderr
        out = json.loads(result.stdout)
        assert out["route"] == "voice" and out["new_tokens"] >= 1
    else:
        assert result.returncode == 2, result.stdout + result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0] and name in lines[0], result.stderr


def hostile_images(folder) -> None:
    """The README's table of hostile pictures."""
    import io
    import struct
    import zlib

    rng = np.random.default_rng(3)
    Image.new("RGB", (1, 1), (200, 10, 10)).save(folder / "one-pixel.png")
    Image.new("L", (20000, 20000), 40).save(folder / "20000x20000.png")
    one = io.BytesIO()
    Image.new("L", (1, 1)).save(one, "PNG")
    header = bytearray(one.getvalue())  # a 1x1 PNG whose header says 100000x100000: a decompression bomb
    header[16:24] = struct.pack(">II", 100_000, 100_000)
    header[29:33] = struct.pack(">I", zlib.crc32(bytes(header[12:29])))
    (folder / "bomb.png").write_bytes(bytes(header))
    picture = rng.integers(0, 256, (84, 112, 3), dtype=np.uint8)
    Image.fromarray(picture).convert("CMYK").save(folder / "cmyk.jpg")
    Image.fromarray((rng.integers(0, 256, (84, 112)) * 257).astype(np.uint16)).save(folder / "16-bit.png")
    frames = [Image.fromarray(np.roll(picture, i * 10, axis=1)) for i in range(3)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    jpeg = io.BytesIO()
    frames[0].save(jpeg, "JPEG")
    (folder / "truncated.jpg").write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 2])


HOSTILE_IMAGES = {
    "one-pixel.png": "answered",  # scaled up to the model's smallest picture
    "20000x20000.png": "more pixels than are read safely",
    "bomb.png": "more pixels than are read safely",  # refused from its header, nothing decoded
    "cmyk.jpg": "answered",
    "16-bit.png": "answered",  # scaled to 8 bits (Pillow's own conversion would turn it white)
    "animated.gif": "answered",  # its first frame
    "truncated.jpg": "is truncated",
}


@pytest.fixture(scope="module")
def hostile_pictures(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile-images")
    hostile_images(folder)
    return folder


@pytest.mark.parametrize("name", list(HOSTILE_IMAGES))
def test_hostile_pictures_are_answered_or_refused_in_one_line(setup, hostile_pictures, name):
    result = ask(setup, "--json", "--greedy", "--image", str(hostile_pictures / name), "--text", "What is it?")
    expected = HOSTILE_IMAGES[name]
    assert "Traceback" not in result.stderr, result.stderr
    if expected == "answered":
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["route"] == "image"
    else:
        assert result.returncode == 2, result.stdout + result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0] and name in lines[0], result.stderr


def test_a_16_bit_picture_keeps_its_tones(tmp_path):
    from assistant.models.preprocess import load_image
    from assistant.models.preprocess.images import to_rgb_array

    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (4, 1))
    path = tmp_path / "ramp.png"
    Image.fromarray(ramp).save(path)
    grey = to_rgb_array(load_image(path))[..., 0]
    assert np.abs(grey[0].astype(int) - np.arange(256)).max() <= 1
