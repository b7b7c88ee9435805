"""Conversion benchmark on the full-size Qwen2-VL-2B architecture (random weights, real config).

Measures, in one run on this machine:
1. `assistant convert vl` with the defaults (INT4 asym, group 128, ratio 1.0; INT8 encoders):
   wall time and peak memory (PSS) of the whole process tree (the command and its export
   child), sampled every 20 ms;
2. the encoder weight precision trade-off: the vision encoder (patch embedding + merger) of
   a 1280x720 screenshot at the default pixel cap, FP16 weights vs INT8 weights, against the
   f32 IR: latency (median of alternating runs) and error of the image embeddings.

    python benchmarks/conversion.py --workdir /tmp/bench   # prints a Markdown report
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil

GIB = 2**30


def tree_pss(proc: psutil.Process) -> int:
    """Memory of a process tree, shared pages counted once (PSS): a fork of a 5 GB process
    shows 5 GB of RSS while it shares every page with its parent."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_full_info().pss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


def timed_convert(args: list[str]) -> tuple[float, int, str]:
    """Run `assistant convert ...`; return seconds, peak memory (PSS) of its process tree, and stdout."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistant", "convert", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    watched = psutil.Process(proc.pid)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            try:
                peak = max(peak, tree_pss(watched))
            except psutil.NoSuchProcess:
                return
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"conversion failed ({proc.returncode}): assistant convert {' '.join(args)}")
    return time.monotonic() - start, peak, out


def convert_variant(source: Path, out: Path, encoder_weights: str, full_precision: bool) -> None:
    if (out / "manifest.json").exists():
        return
    from assistant.models.convert import convert_model
    from assistant.models.convert.compression import compression_from_options

    compression = None if full_precision else compression_from_options("int4", 128, 1.0, False)
    convert_model(
        "qwen2-vl",
        source,
        out,
        compression,
        encoder_weights=encoder_weights,
        full_precision=full_precision,
        progress=lambda m: print(f"  [{out.name}] {m}", file=sys.stderr),
    )


def screenshot_inputs(folder: Path, max_pixels: int):
    from PIL import Image
    from transformers import AutoProcessor

    from assistant.models.vision_layout import attention_chunks, block_attention_mask, vision_rotary_angles

    rng = np.random.default_rng(0)
    # A screenshot-like picture: flat panels with text-like noise bands.
    pixels = np.full((720, 1280, 3), 235, np.uint8)
    pixels[:40] = (40, 44, 52)
    for row in range(80, 700, 24):
        pixels[row : row + 10, 60 : rng.integers(300, 1200)] = rng.integers(0, 120, 3)
    processor = AutoProcessor.from_pretrained(folder)
    batch = processor.image_processor(
        images=[Image.fromarray(pixels)],
        return_tensors="np",
        size={"shortest_edge": 56 * 56, "longest_edge": max_pixels},
    )
    grid = batch["image_grid_thw"]
    import json

    vision = json.loads((folder / "config.json").read_text())["vision_config"]
    head_dim = vision["embed_dim"] // vision["num_heads"]
    theta = (vision.get("rope_parameters") or {}).get("rope_theta", 10000.0)
    return (
        batch["pixel_values"].astype(np.float32),
        {
            "attention_mask": block_attention_mask(attention_chunks(grid)),
            "rotary_pos_emb": vision_rotary_angles(grid, vision["spatial_merge_size"], head_dim, theta),
        },
        grid,
    )


def vision_runner(folder: Path, config: dict):
    import openvino as ov

    core = ov.Core()
    patch = core.compile_model(folder / "openvino_vision_embeddings_model.xml", "CPU", config)
    merger = core.compile_model(folder / "openvino_vision_embeddings_merger_model.xml", "CPU", config)

    def run(pixel_values, extra):
        hidden = patch({"pixel_values": pixel_values})[0]
        return merger({"hidden_states": hidden, **extra})[0]

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-pixels", type=int, default=401408)
    args = parser.parse_args()
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    source = work / "qwen2vl-2b-random"
    from assistant.testing import build_full_size_qwen2vl, checkpoint_saved

    if not checkpoint_saved(source):
        print("building the full-size random Qwen2-VL-2B checkpoint", file=sys.stderr)
        build_full_size_qwen2vl(source)

    seconds, peak, _ = timed_convert(["vl", "--source", str(source), "--out", str(work / "vl-default"), "--force"])
    print("## Conversion of the full-size Qwen2-VL-2B architecture\n")
    print(f"- machine: {os.cpu_count()} CPUs, {psutil.virtual_memory().total / GIB:.1f} GiB RAM")
    print(
        f"- `assistant convert vl` (INT4 asym g128 r1.0, INT8 encoders): **{seconds:.0f} s**, "
        f"peak memory of the process tree (PSS, sampled every 20 ms) **{peak / GIB:.2f} GiB**"
    )
    sizes = {p.name: p.stat().st_size for p in (work / "vl-default").glob("*.bin")}
    print(f"- output: {sum(sizes.values()) / GIB:.2f} GiB of weights\n")

    convert_variant(source, work / "vl-f32", "f32", full_precision=True)
    convert_variant(source, work / "vl-int8-encoders", "int8", full_precision=False)
    pixel_values, extra, grid = screenshot_inputs(work / "vl-default", args.max_pixels)
    reference = vision_runner(work / "vl-f32", {"INFERENCE_PRECISION_HINT": "f32"})(pixel_values, extra)
    variants = {"FP16 weights": work / "vl-default", "INT8 weights": work / "vl-int8-encoders"}
    rows = []
    for precision in ("f32", "bf16"):
        runners = {
            name: vision_runner(folder, {"INFERENCE_PRECISION_HINT": precision}) for name, folder in variants.items()
        }
        times: dict[str, list[float]] = {name: [] for name in runners}
        outputs = {}
        for name, run in runners.items():  # warm-up
            outputs[name] = run(pixel_values, extra)
        for _ in range(args.repeats):  # alternate A B A B: the machine's bandwidth drifts
            for name, run in runners.items():
                t0 = time.perf_counter()
                run(pixel_values, extra)
                times[name].append(time.perf_counter() - t0)
        for name in runners:
            out = outputs[name]
            cos = float((out * reference).sum() / (np.linalg.norm(out) * np.linalg.norm(reference)))
            rel = float(np.linalg.norm(out - reference) / np.linalg.norm(reference))
            size = sum(p.stat().st_size for p in variants[name].glob("openvino_vision_embeddings*.bin"))
            rows.append(
                (name, precision, statistics.median(times[name]), min(times[name]), max(times[name]), rel, cos, size)
            )
    tokens = int(grid[0].prod()) // 4
    print(
        f"## Vision encoder weight precision (1280x720 screenshot, max_pixels {args.max_pixels}: "
        f"{int(grid[0].prod())} patches, {tokens} image tokens)\n"
    )
    print("| weights | execution | median s | min s | max s | rel. error vs f32 IR | cosine | size MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for name, precision, med, lo, hi, rel, cos, size in rows:
        print(
            f"| {name} | {precision} | {med:.2f} | {lo:.2f} | {hi:.2f} | {rel:.2e} | {cos:.6f} | {size / 2**20:.0f} |"
        )


if __name__ == "__main__":
    main()
