"""`assistant selftest`: every stage of a spoken request on tiny random models, without downloads.

A user's check of their setup: the same code paths as the real assistant (conversion, VAD,
transcript, routing, OpenVINO generation, speech synthesis), on checkpoints built here with
random weights, so the answers are gibberish but every stage must run.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

QUESTION = "Hey assistant, what is the capital of Peru?"


@dataclass(frozen=True)
class StageResult:
    name: str
    ok: bool
    seconds: float
    detail: str


def run_selftest(report: Callable[[StageResult], None], workdir: Path | None = None) -> bool:
    """Run the stages in order, reporting each; stop at the first that fails. True when all worked."""
    with tempfile.TemporaryDirectory(prefix="assistant-selftest-") as tmp:
        work = Path(workdir or tmp)
        state: dict = {}
        for name, stage in STAGES:
            started = time.perf_counter()
            try:
                detail = stage(work, state)
                ok = True
            except Exception as exc:  # report it as the stage's result, one line
                log.debug("selftest stage %s failed", name, exc_info=True)
                detail, ok = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", False
            report(StageResult(name, ok, time.perf_counter() - started, detail))
            if not ok:
                return False
    return True


def _build(work: Path, state: dict) -> str:
    from .testing import build_tiny_qwen2audio, build_tiny_qwen2vl

    state["audio_src"] = build_tiny_qwen2audio(work / "tiny-audio")
    state["vl_src"] = build_tiny_qwen2vl(work / "tiny-vl")
    return "tiny random Qwen2-Audio and Qwen2-VL checkpoints of the real architectures"


def _convert(work: Path, state: dict) -> str:
    import nncf

    from .models.convert import convert_model

    nncf.set_log_level(logging.ERROR)  # its tables and progress bars are for `assistant convert`, not here
    int4 = {"mode": nncf.CompressWeightsMode.INT4_ASYM, "group_size": 16, "ratio": 1.0}
    with contextlib.redirect_stdout(io.StringIO()):  # NNCF's progress bars
        audio = convert_model("qwen2-audio", state["audio_src"], work / "audio-ov", int4, progress=lambda m: None)
        vl = convert_model("qwen2-vl", state["vl_src"], work / "vl-ov", int4, progress=lambda m: None)
    state["audio_dir"], state["vl_dir"] = audio.folder, vl.folder
    return f"OpenVINO IR with INT4 language models ({audio.manifest.weight_bytes + vl.manifest.weight_bytes} bytes)"


def _speak_question(work: Path, state: dict) -> str:
    import librosa

    from .speech.synthesis import synthesize

    speech = synthesize(QUESTION)
    audio = librosa.resample(speech.samples, orig_sr=speech.sample_rate, target_sr=16000)
    silence = np.zeros(16000, np.float32)
    state["recording"] = np.concatenate([silence, audio, silence]).astype(np.float32)
    return f'"{QUESTION}" spoken by the TTS voice ({speech.seconds:.1f} s)'


def _detect(work: Path, state: dict) -> str:
    from .audio.vad import Utterance, UtteranceCutter, frames_of

    cutter = UtteranceCutter()
    found = []
    for frame in frames_of(state["recording"]):
        found += [x for x in cutter.feed(frame) if isinstance(x, Utterance)]
    found += [x for x in cutter.flush() if isinstance(x, Utterance)]
    if len(found) != 1:
        raise RuntimeError(f"voice activity detection found {len(found)} utterances, expected 1")
    state["utterance"] = found[0]
    return f"speech from {found[0].start:.2f} s to {found[0].end:.2f} s"


def _transcribe(work: Path, state: dict) -> str:
    from .models.qwen2audio import OVQwen2AudioModel

    state["audio_model"] = OVQwen2AudioModel(state["audio_dir"])
    audio = state["utterance"].audio.astype(np.float32) / 32768.0
    state["audio"] = audio
    heard = state["audio_model"].transcribe(audio, max_new_tokens=16)
    return f"{heard.text!r} (random weights: gibberish is expected)"


def _route(work: Path, state: dict) -> str:
    from .config import load_settings
    from .routing import mentions_screen

    phrases = load_settings().routing.screen_phrases
    screen = mentions_screen("what is on my screen", phrases)
    voice = not mentions_screen(QUESTION, phrases)
    if not (screen and voice):
        raise RuntimeError("routing sent the wrong request to the screen model")
    return "the question goes to voice chat; 'what is on my screen' would go to the screen model"


def _answer(work: Path, state: dict) -> str:
    from .models.transcript import audio_prompt

    model = state["audio_model"]
    pre = model.preprocessor
    inputs = audio_prompt(pre, [state["audio"]], None)
    out = model.generate(**inputs, max_new_tokens=16, do_sample=False)
    state["answer"] = pre.decode(out[0, inputs["input_ids"].shape[1] :].tolist()).strip() or "(empty answer)"
    stats = model.last_stats
    return f"{state['answer']!r}, first token after {1000 * stats.first_token_s:.0f} ms"


def _look(work: Path, state: dict) -> str:
    from PIL import Image

    from .models.qwen2vl import OVQwen2VLModel

    model = OVQwen2VLModel(state["vl_dir"])
    pre = model.preprocessor
    prompt = pre.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "?"}]}])
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 255, (224, 224, 3), dtype=np.uint8))
    inputs = pre(prompt, images=[picture])
    out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    return f"the screen model read a picture and answered {out.shape[1] - inputs['input_ids'].shape[1]} tokens"


def _voice(work: Path, state: dict) -> str:
    import soundfile

    from .speech.synthesis import synthesize

    speech = synthesize(state["answer"])
    path = work / "answer.wav"
    soundfile.write(path, speech.samples, speech.sample_rate)
    if speech.seconds <= 0:
        raise RuntimeError("the voice produced no audio")
    return f"the answer spoken into a file ({speech.seconds:.1f} s of audio)"


STAGES: list[tuple[str, Callable[[Path, dict], str]]] = [
    ("build", _build),
    ("convert", _convert),
    ("speak question", _speak_question),
    ("voice activity", _detect),
    ("transcript", _transcribe),
    ("route", _route),
    ("answer", _answer),
    ("screen model", _look),
    ("voice", _voice),
]
