"""Prefill against PyTorch on the same prompt and weights: the service's own prompts, full-size models.

    python benchmarks/prefill.py --workdir /tmp/bench [--repeats 3] [--json FILE]    # prints Markdown

Two prompts, as the service builds them: the transcription prompt of a 3 s question (Qwen2-Audio-7B: audio
encoder + language model) and the screen question with a 1920x1080 screenshot at the service's pixel cap
(Qwen2-VL-2B: vision encoder + language model). Per system, the time from the call to the first new token,
encoders included; OpenVINO's is also split into the prompt's embeddings (encoders) and the language
model's prefill. OpenVINO: OVQwen2AudioModel / OVQwen2VLModel with the service's runtime settings on the
converted INT4 folders (and, as a lever, with the language model at the CPU's default precision instead of
int8 activations); PyTorch: transformers' generate in bf16 on the checkpoints they were converted
from (`scripted_models.py`; the same weights before INT4). Each system runs in its own process, OpenVINO
before and after PyTorch (the 7B in bf16 takes 17 GB: the two do not fit together), one warm-up call each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from report import summary  # this folder is on sys.path
from scripted_models import ensure_models

PROMPTS = {"audio": "3 s question, transcription prompt", "vl": "screen question, 1920x1080 at the pixel cap"}


def prompt(kind: str, pre) -> dict:
    import numpy as np
    from PIL import Image

    from assistant.config import load_settings
    from assistant.daemon.conversation import Conversation
    from assistant.daemon.service import SCREEN_QUESTION
    from assistant.models.qwen2vl import vision_prompt

    if kind == "audio":
        clip = (0.05 * np.random.default_rng(0).standard_normal(int(3.1 * 16000))).astype(np.float32)
        return Conversation().transcription_inputs(pre, clip)
    shot = Image.effect_noise((1920, 1080), 60).convert("RGB")
    return vision_prompt(pre, SCREEN_QUESTION, [shot], max_pixels=load_settings().screen.max_pixels)


def measure_openvino(kind: str, folder: Path, repeats: int, decode_activations: str) -> dict:
    import dataclasses

    from assistant.config import load_settings
    from assistant.models import OVQwen2AudioModel, OVQwen2VLModel
    from assistant.models.runtime import RuntimeOptions

    cls = OVQwen2AudioModel if kind == "audio" else OVQwen2VLModel
    runtime = dataclasses.replace(
        RuntimeOptions.from_settings(load_settings().runtime), decode_activations=decode_activations
    )
    model = cls(folder, runtime=runtime)
    inputs = prompt(kind, model.preprocessor)
    rows = []
    for _ in range(repeats + 1):
        model.reset()
        model.generate(**inputs, max_new_tokens=1, do_sample=False)
        s = model.last_stats
        rows.append({"first_token_s": s.first_token_s, "embed_s": s.embed_s, "prefill_s": s.prefill_s - s.embed_s})
    return {"tokens": int(inputs["input_ids"].shape[1]), "runs": rows[1:]}


def measure_torch(kind: str, checkpoint: Path, folder: Path, repeats: int) -> dict:
    import torch
    from transformers import Qwen2AudioForConditionalGeneration, Qwen2VLForConditionalGeneration

    from assistant.models import preprocess

    cls = Qwen2AudioForConditionalGeneration if kind == "audio" else Qwen2VLForConditionalGeneration
    model = cls.from_pretrained(checkpoint, dtype=torch.bfloat16).eval()
    pre = (preprocess.Qwen2AudioPreprocessor if kind == "audio" else preprocess.Qwen2VLPreprocessor).from_dir(folder)
    inputs = {k: torch.from_numpy(v) for k, v in prompt(kind, pre).items()}
    if "pixel_values" in inputs:
        inputs["pixel_values"] = inputs["pixel_values"].to(torch.bfloat16)
    if "input_features" in inputs:
        inputs["input_features"] = inputs["input_features"].to(torch.bfloat16)
    rows = []
    with torch.no_grad():
        for _ in range(repeats + 1):
            started = time.perf_counter()
            model.generate(**inputs, max_new_tokens=1, min_new_tokens=1, do_sample=False)
            rows.append({"first_token_s": time.perf_counter() - started})
    return {"tokens": int(inputs["input_ids"].shape[1]), "threads": torch.get_num_threads(), "runs": rows[1:]}


def stage(*args: str) -> dict:
    done = subprocess.run([sys.executable, str(Path(__file__)), *args], stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit(f"prefill.py {' '.join(args)} failed")
    return json.loads(done.stdout)


def render(result: dict) -> str:
    lines = [
        "| prompt | tokens | OpenVINO (INT4) to first token, s | of it: encoder / LM prefill, s | PyTorch (bf16), s | "
        "OpenVINO / PyTorch | target ≤ 1x | lever: LM at the CPU's default precision (`decode_activations = "
        '"same"`), s |',
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind, title in PROMPTS.items():
        ov, pt = result[kind]["openvino"], result[kind]["pytorch"]
        ov_s = [r["first_token_s"] for r in ov]
        pt_s = [r["first_token_s"] for r in pt]
        ratio = statistics.median(ov_s) / statistics.median(pt_s)
        encoder, prefill = (statistics.median(r[key] for r in ov) for key in ("embed_s", "prefill_s"))
        split = f"{encoder:.2f} / {prefill:.2f}"
        lines.append(
            f"| {title} | {result[kind]['tokens']} | {summary(ov_s, 2)} | {split} | {summary(pt_s, 2)} | "
            f"{ratio:.2f}x | {'yes' if ratio <= 1 else 'no'} | "
            f"{summary([r['first_token_s'] for r in result[kind]['openvino_same_activations']], 2)} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, help="the scripted models (built when missing)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the raw numbers to FILE")
    parser.add_argument("--openvino", nargs=3, metavar=("KIND", "DIR", "ACT"), help=argparse.SUPPRESS)  # a stage
    parser.add_argument("--pytorch", nargs=3, metavar=("KIND", "CKPT", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.openvino:
        kind, folder, activations = args.openvino
        print(json.dumps(measure_openvino(kind, Path(folder), args.repeats, activations)))
        return 0
    if args.pytorch:
        kind, checkpoint, folder = args.pytorch
        print(json.dumps(measure_torch(kind, Path(checkpoint), Path(folder), args.repeats)))
        return 0
    if args.workdir is None:
        parser.error("--workdir is required")
    models = ensure_models(args.workdir)
    result: dict = {}
    for kind in PROMPTS:
        folder = Path(models[kind]["folder"])
        checkpoint = folder.with_name(folder.name + "-checkpoint")
        repeats = ("--repeats", str(args.repeats))
        before = stage("--openvino", kind, str(folder), "int8", *repeats)
        torch_run = stage("--pytorch", kind, str(checkpoint), str(folder), *repeats)
        lever = stage("--openvino", kind, str(folder), "same", *repeats)
        after = stage("--openvino", kind, str(folder), "int8", *repeats)
        result[kind] = {
            "tokens": before["tokens"],
            "openvino": before["runs"] + after["runs"],
            "openvino_same_activations": lever["runs"],
            "pytorch": torch_run["runs"],
            "pytorch_threads": torch_run["threads"],
        }
    print(render(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
