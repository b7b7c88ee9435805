"""Lever: the Qwen2-VL-2B output head in INT4 (`assistant convert --int4-head`) instead of NNCF's INT8.

The head (151936 x 1536) is a quarter of the weights read per new token. This converts the full-size
random checkpoint both ways with the project's converter (INT8 head: conversion.py's `vl-default`),
times screenshot answers through OVQwen2VLModel alternated (A B A B), and measures what the head
costs in accuracy: last-position logits over fixed random-token prompts, each IR run exactly (f32,
f32 KV cache, no dynamic quantization), against each other and against the f32 IR when present.

    python benchmarks/output_head.py --workdir /tmp/bench [--json FILE]     # prints Markdown
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

EXACT = {"INFERENCE_PRECISION_HINT": "f32", "KV_CACHE_PRECISION": "f32", "DYNAMIC_QUANTIZATION_GROUP_SIZE": "0"}


def convert_int4_head(work: Path) -> Path:
    """`assistant convert vl --int4-head` of the random checkpoint, as a user would run it (its output
    goes to stderr: stdout is this script's Markdown)."""
    out = work / "vl-int4-head"
    command = ["convert", "vl", "--source", str(work / "qwen2vl-2b-random"), "--out", str(out), "--int4-head"]
    subprocess.run([sys.executable, "-m", "assistant", *command], stdout=sys.stderr, check=True)
    return out


def teacher_forced_logits(model_dir: Path, embed, prompts: list[list[int]], split: int) -> np.ndarray:
    """Last-position logits: a `split`-token prefill, then one token at a time (what decoding runs)."""
    import openvino as ov

    from assistant.models.engine import StatefulDecoder

    decoder = StatefulDecoder(ov.Core().compile_model(model_dir / "openvino_language_model.xml", "CPU", EXACT))
    out = []
    for ids in prompts:
        decoder.reset()
        for start, stop in [(0, split), *((k, k + 1) for k in range(split, len(ids)))]:
            positions = np.broadcast_to(np.arange(start, stop), (3, 1, stop - start)).copy()  # M-RoPE rows
            out.append(decoder.forward(embed(ids[start:stop]), positions, range(start, stop)).copy())
    return np.stack(out)


def agreement(got: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    error = np.linalg.norm(got - ref, axis=1) / np.linalg.norm(ref, axis=1)
    return {"relative_error": float(np.median(error)), "top1": float(np.mean(got.argmax(1) == ref.argmax(1)))}


def accuracy(folders: dict[str, Path], reference: Path | None, prompts: int = 6, length: int = 64) -> dict:
    import openvino as ov

    embeddings = ov.Core().compile_model(folders["INT8 head"] / "openvino_text_embeddings_model.xml", "CPU", EXACT)
    rng = np.random.default_rng(0)
    ids = [rng.integers(100, 150000, length).tolist() for _ in range(prompts)]

    def embed(tokens: list[int]) -> np.ndarray:
        return embeddings(np.asarray([tokens], np.int64))[0]

    logits = {name: teacher_forced_logits(folder, embed, ids, length // 2) for name, folder in folders.items()}
    rows = {"INT4 head vs INT8 head": agreement(logits["INT4 head"], logits["INT8 head"])}
    if reference is not None:
        exact = teacher_forced_logits(reference, embed, ids, length // 2)
        for name in folders:
            rows[f"{name} vs the f32 IR"] = agreement(logits[name], exact)
    return {"positions": len(logits["INT8 head"]), "rows": rows}


def speed(folders: dict[str, Path], repeats: int) -> dict[str, dict[str, list[float]]]:
    from inference import Ours, screenshot

    systems = {name: Ours(folder) for name, folder in folders.items()}
    for system in systems.values():
        system.run(screenshot(1280, 720, variant=-1))  # the first answer after load is slower
    runs: dict[str, dict[str, list[float]]] = {name: {"ttft_s": [], "decode_ms": []} for name in systems}
    for run in range(repeats):
        for name, system in systems.items():  # A B A B, the same new picture for both
            ttft, decode, _ = system.run(screenshot(1280, 720, variant=run))
            runs[name]["ttft_s"].append(ttft)
            runs[name]["decode_ms"].append(decode)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, required=True, help="holds conversion.py's folders")
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = parser.parse_args()
    from report import summary

    work = args.workdir
    if not (work / "vl-default" / "manifest.json").exists():
        raise SystemExit(f"{work / 'vl-default'} missing: run benchmarks/conversion.py --workdir {work} first")
    folders = {"INT8 head": work / "vl-default", "INT4 head": convert_int4_head(work)}
    reference = work / "vl-f32" if (work / "vl-f32" / "manifest.json").exists() else None
    runs = speed(folders, args.repeats)
    acc = accuracy(folders, reference)
    sizes = {name: (folder / "openvino_language_model.bin").stat().st_size for name, folder in folders.items()}
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "accuracy": acc, "weights_bytes": sizes}, indent=1))
    print("Full-size Qwen2-VL-2B, INT4 body (asym, group 128) in both; 1280x720 screenshot through OVQwen2VLModel,")
    print(f"32 new tokens, {args.repeats} alternated runs.\n")
    print("| output head | language-model weights, GB | time to first token, s | decode ms/token |")
    print("|---|---|---|---|")
    for name, values in runs.items():
        print(f"| {name} | {sizes[name] / 1e9:.2f} | {summary(values['ttft_s'], 2)} | {summary(values['decode_ms'])} |")
    base, lever = (statistics.median(runs[name]["decode_ms"]) for name in folders)
    print(f"\nINT4 head: {100 * (lever / base - 1):+.1f}% per new token.\n")
    print(f"Accuracy, last-position logits at {acc['positions']} teacher-forced positions, every IR run exactly:\n")
    print("| comparison | relative logit error | top-1 agreement |")
    print("|---|---|---|")
    for name, row in acc["rows"].items():
        print(f"| {name} | {row['relative_error']:.2e} | {100 * row['top1']:.1f} % |")
    print(
        "\nRandom weights give nearly flat logits, so top-1 agreement says little about a real checkpoint;"
        "\nthe relative error is the head's own rounding. INT8 stays the default until it is measured on"
        "\nthe real Qwen2-VL-2B."
    )


if __name__ == "__main__":
    main()
