"""The latency benchmark's instruments: full-size Qwen2-Audio-7B and Qwen2-VL-2B that say chosen sentences.

Random full-size weights have the real compute per token but babble to the token limit, so no latency
figure from them means what a user waits. These are the real shapes (every weight matrix present and of
its real size, `assistant.testing.scripted`) with a few weights set so that the audio model hears `HEARD`
from any clip and answers `ANSWER` to it, and the VL model answers `SCREEN_ANSWER` to any screenshot. They
are built shard by shard, converted with the defaults (`assistant convert`, INT4 asym group 128), and the
converted folders are then asked, on OpenVINO, whether they still say exactly that: transcript, voice
answer, a follow-up turn with history, and a screenshot question. A folder that fails the check is not used.

    python benchmarks/scripted_models.py --workdir /tmp/bench    # -> audio-7b-scripted/, vl-2b-scripted/

Building the 7B writes 16.8 GB (~3 GB of RAM); converting it peaks at ~18 GiB; the checkpoints stay in
`--workdir` so a later run only checks. Each stage runs in its own process, so its memory is gone after it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

# A 3 s question: 12 transcript tokens, starting with a default wake phrase. The answer is two sentences
# (10 tokens to the end of the first, 16 in all): the first can be spoken while the second is written.
HEARD = "ok assistant, capital of Peru?"
ANSWER = "Lima is the city you mean. Need help!"
SCREEN_ANSWER = "The screen shows a terminal window. Need more help!"
SEED = 0


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def build(kind: str, out: Path) -> None:
    from assistant.testing import build_scripted_qwen2audio, build_scripted_qwen2vl

    if kind == "audio":
        build_scripted_qwen2audio(out, HEARD, SEED, answer=ANSWER, size="full")
    else:
        build_scripted_qwen2vl(out, SCREEN_ANSWER, SEED, size="full")


def _said(model, inputs: dict, limit: int = 40) -> str:
    out = model.generate(**inputs, max_new_tokens=limit, do_sample=False)
    new = out[0, inputs["input_ids"].shape[1] :].tolist()
    return model.preprocessor.decode(new, skip_special_tokens=True).strip()


def check_audio(model_dir: Path) -> dict:
    """What the converted audio model says: transcript and answer, alone and as a follow-up turn."""
    import numpy as np

    from assistant.daemon.conversation import Conversation
    from assistant.models import OVQwen2AudioModel

    model = OVQwen2AudioModel(model_dir)
    rng = np.random.default_rng(1)
    conversation = Conversation()
    said: dict[str, str] = {}
    for turn, seconds in enumerate((3.0, 6.0)):
        clip = (0.05 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)
        inputs = conversation.transcription_inputs(model.preprocessor, clip)
        said[f"transcript {turn}"] = model.transcribe_prompt(inputs, max_new_tokens=40).text
        said[f"answer {turn}"] = _said(model, conversation.voice_inputs(model.preprocessor, clip))
        conversation.remember(clip, said[f"answer {turn}"])
    expected = {k: HEARD if k.startswith("transcript") else ANSWER for k in said}
    return {"said": said, "ok": said == expected}


def check_vl(model_dir: Path) -> dict:
    from PIL import Image

    from assistant.config import load_settings
    from assistant.daemon.service import SCREEN_QUESTION
    from assistant.models import OVQwen2VLModel
    from assistant.models.qwen2vl import vision_prompt

    model = OVQwen2VLModel(model_dir)
    shot = Image.effect_noise((1920, 1080), 60).convert("RGB")
    cap = load_settings().screen.max_pixels  # what the service sends
    said = {"screenshot": _said(model, vision_prompt(model.preprocessor, SCREEN_QUESTION, [shot], max_pixels=cap))}
    return {"said": said, "ok": said == {"screenshot": SCREEN_ANSWER}}


def _stage(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(Path(__file__)), *args], stdout=subprocess.PIPE, text=True)


def converted_with_the_defaults(folder: Path) -> bool:
    """Whether a folder's conversion is what `assistant convert` now writes by default (an older one is
    converted again: a benchmark of the defaults must not measure last month's)."""
    from assistant.models.convert.pipeline import CONVERTER_VERSION, DEFAULT_ENCODER_WEIGHTS

    settings = json.loads((folder / "manifest.json").read_text()).get("compression", {})
    return settings.get("converter") == CONVERTER_VERSION and settings.get("encoders") == DEFAULT_ENCODER_WEIGHTS


def ensure_models(work: Path) -> dict:
    """Build, convert and check both models in `work` (what is already there is reused); the record of it.

    Raises SystemExit when a stage fails or a converted model does not say its script.
    """
    from conversion import timed_convert  # this folder is on sys.path when run as a script

    from assistant.testing import checkpoint_saved

    record_path = work / "scripted-models.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    for kind, name in (("audio", "audio-7b-scripted"), ("vl", "vl-2b-scripted")):
        checkpoint, folder = work / f"{name}-checkpoint", work / name
        entry = record.setdefault(kind, {"folder": str(folder)})
        if not checkpoint_saved(checkpoint) and not (folder / "manifest.json").exists():
            progress(f"building the full-size scripted {kind} checkpoint (shard by shard)")
            started = time.monotonic()
            if _stage("--build", kind, str(checkpoint)).returncode != 0:
                raise SystemExit(f"building the scripted {kind} checkpoint failed")
            entry["build_s"] = round(time.monotonic() - started, 1)
        stale = (folder / "manifest.json").exists() and not converted_with_the_defaults(folder)
        if stale or not (folder / "manifest.json").exists():
            progress(f"converting it with the defaults: assistant convert {kind}" + (" (again)" if stale else ""))
            args = [kind, "--source", str(checkpoint), "--out", str(folder), *(["--force"] if stale else [])]
            seconds, peak, _ = timed_convert(args)
            entry.update(convert_s=round(seconds, 1), convert_peak_gib=round(peak / 2**30, 2))
            entry.pop("check", None)
        if not entry.get("check", {}).get("ok"):
            progress(f"checking what the converted {kind} model says (OpenVINO, INT4)")
            done = _stage("--check", kind, str(folder))
            if done.returncode != 0:
                raise SystemExit(f"checking the scripted {kind} model failed")
            entry["check"] = json.loads(done.stdout)
        record_path.write_text(json.dumps(record, indent=1) + "\n")
        if not entry["check"]["ok"]:
            raise SystemExit(f"the converted scripted {kind} model does not say its script: {entry['check']['said']}")
        progress(f"{kind}: says {entry['check']['said']}")
    return record


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, help="checkpoints and converted folders go here (~26 GB)")
    parser.add_argument("--build", nargs=2, metavar=("KIND", "OUT"), help=argparse.SUPPRESS)  # one stage's process
    parser.add_argument("--check", nargs=2, metavar=("KIND", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        import logging

        logging.basicConfig(level=logging.INFO, format="%(message)s")
        build(args.build[0], Path(args.build[1]))
        return 0
    if args.check:
        kind, folder = args.check[0], Path(args.check[1])
        print(json.dumps(check_audio(folder) if kind == "audio" else check_vl(folder)))
        return 0
    if args.workdir is None:
        parser.error("--workdir is required")
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(json.dumps(ensure_models(args.workdir), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
