"""One request from the terminal: inputs -> route -> model -> streamed text, with per-stage timings.

No torch on this path: preprocessing is assistant.models.preprocess, inference is OpenVINO.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import Settings
from .errors import UsageError
from .models.transcript import SAMPLE_RATE, audio_prompt, split_clips
from .routing import RequestShape, Route, choose_route

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AskRequest:
    audio: Path | None = None
    images: tuple[Path, ...] = ()
    videos: tuple[Path, ...] = ()
    screen: bool = False
    text: str | None = None
    greedy: bool = False
    max_new_tokens: int | None = None


@dataclass
class AskResult:
    text: str = ""
    route: Route | None = None
    transcript: str | None = None
    language: str | None = None
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds per stage
    new_tokens: int = 0

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "text": self.text,
            "route": self.route.value if self.route else None,
            "timings": {k: round(v, 1) for k, v in self.timings.items()},
            "new_tokens": self.new_tokens,
        }
        if self.transcript is not None:
            out["transcript"] = self.transcript
            out["language"] = self.language
        return out


class Stopwatch:
    def __init__(self, timings: dict[str, float]):
        self.timings = timings

    def stage(self, name: str):
        watch = self

        class _Stage:
            def __enter__(self):
                self.start = time.perf_counter()

            def __exit__(self, *exc):
                watch.timings[name] = watch.timings.get(name, 0.0) + 1000 * (time.perf_counter() - self.start)

        return _Stage()


# The longest recording `ask` takes: ten 30 s clips in one question. Each second is 25 prompt positions of
# Qwen2-Audio-7B, whose KV cache holds 0.27 MiB a position: 5 minutes is ~2 GiB of it, and minutes of
# prompt on a laptop's CPU. Longer recordings are refused before they are loaded, in one line.
MAX_AUDIO_S = 300


def check_length(path: Path, seconds: float) -> None:
    if seconds > MAX_AUDIO_S:
        raise UsageError(
            f"{path} is {seconds / 60:.1f} minutes long; ask takes at most {MAX_AUDIO_S // 60} minutes of audio "
            "(split the recording, or cut the part the question is about)"
        )


def recorded_seconds(path: Path) -> float | None:
    """The length a sound file's header gives (None when libsndfile cannot read it: FFmpeg formats)."""
    import soundfile

    try:
        info = soundfile.info(str(path))
    except (RuntimeError, OSError, ValueError):
        return None
    return info.frames / info.samplerate if info.samplerate else None


def check_audible(audio: np.ndarray, path: Path) -> None:
    if audio.size == 0:
        raise UsageError(f"{path} holds no audio; record the question again")
    from .models.preprocess.audio import audio_token_count

    if audio_token_count(audio.size) == 0:
        raise UsageError(
            f"{path} is {audio.size / SAMPLE_RATE:.2f} s long, too short to hear; record the question again"
        )
    if float(np.max(np.abs(audio))) < 1e-3:
        raise UsageError(f"{path} is silent; check the microphone level and record again")


def run_ask(request: AskRequest, settings: Settings, on_text: Callable[[str], None] | None = None) -> AskResult:
    """Answer one request. `on_text` receives the answer as it streams."""
    from .models import preprocess

    result = AskResult()
    watch = Stopwatch(result.timings)
    started = time.perf_counter()
    shape = RequestShape(
        audio=request.audio is not None,
        text=bool(request.text),
        images=len(request.images),
        videos=len(request.videos),
        screen=request.screen,
    )
    try:
        route = choose_route(shape)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    result.route = route

    audio = None
    if request.audio is not None:
        header_s = recorded_seconds(request.audio) if request.audio.is_file() else None
        if header_s is not None:
            check_length(request.audio, header_s)
        with watch.stage("load_audio"):
            audio = preprocess.load_audio(request.audio)
        check_length(request.audio, audio.size / SAMPLE_RATE)
        check_audible(audio, request.audio)
    with watch.stage("load_images"):
        images = [preprocess.load_image(path) for path in request.images]
    if request.screen:
        from .screen.capture import capture_screen

        with watch.stage("screenshot"):
            images.append(capture_screen(settings.screen.monitor))
    with watch.stage("load_video"):
        videos = [preprocess.read_video(path) for path in request.videos]

    max_new = request.max_new_tokens or settings.generation.max_new_tokens
    sampling = settings.generation.sampling_options(greedy=request.greedy)
    if route.uses_vision_model:
        question = request.text or ""
        if audio is not None and not question:
            audio_model = _load(settings, "audio", watch)
            with watch.stage("transcribe"):
                heard = audio_model.transcribe(audio)
            result.transcript, result.language = heard.text, heard.language
            question = heard.text
        model = _load(settings, "vl", watch)
        with watch.stage("preprocess"):
            from .models.qwen2vl import vision_prompt

            pre = model.preprocessor
            # Every image, not only screenshots, is capped: the model's own limit (12.8 MP) would mean
            # tens of thousands of patches and minutes of encoder work on a laptop CPU.
            inputs = vision_prompt(pre, question, images, videos, settings.screen.max_pixels)
    else:
        model = _load(settings, "audio", watch)
        with watch.stage("preprocess"):
            pre = model.preprocessor
            inputs = audio_prompt(pre, split_clips(audio), request.text)
    ids = _generate(model, inputs, pre, max_new, sampling, on_text, result, watch, started)
    result.text = pre.decode(ids, skip_special_tokens=True).strip()
    return result


def _generate(model, inputs, pre, max_new, sampling, on_text, result, watch, started) -> list[int]:
    from .models.preprocess import StreamDecoder

    generated: list[int] = []
    first_token_at: list[float] = []
    stream = StreamDecoder(pre.tokenizer) if on_text is not None else None

    def on_token(token: int) -> None:
        if not first_token_at:
            first_token_at.append(time.perf_counter())
        generated.append(token)
        if stream is not None and (text := stream.put(token)):
            on_text(text)

    with watch.stage("generate"):
        model.generate(**inputs, max_new_tokens=max_new, on_token=on_token, **sampling)
    if stream is not None and (rest := stream.end()):
        on_text(rest)
    stats = model.last_stats
    result.new_tokens = stats.new_tokens
    result.timings["prefill"] = 1000 * stats.prefill_s
    result.timings["decode"] = 1000 * stats.decode_s
    result.timings["ms_per_token"] = stats.ms_per_token
    if first_token_at:
        result.timings["first_token"] = 1000 * (first_token_at[0] - started)
    result.timings["total"] = 1000 * (time.perf_counter() - started)
    return generated


_loaded: dict[tuple[str, Path], Any] = {}


def _load(settings: Settings, which: str, watch: Stopwatch):
    """Compile a model once per process (the compiled-model cache makes later processes fast too)."""
    from .models.runtime import RuntimeOptions

    folder = settings.models.audio_dir if which == "audio" else settings.models.vl_dir
    key = (which, Path(folder))
    if key not in _loaded:
        with watch.stage(f"load_{which}_model"):
            runtime = RuntimeOptions.from_settings(settings.runtime)
            if which == "audio":
                from .models.qwen2audio import OVQwen2AudioModel as cls
            else:
                from .models.qwen2vl import OVQwen2VLModel as cls
            _loaded[key] = cls(folder, device=settings.runtime.device, runtime=runtime)
    return _loaded[key]
