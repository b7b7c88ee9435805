"""Qwen2-Audio-7B at full size (random weights, real config): build, convert, then a 150-token prefill and
decode ms/token of OVQwen2AudioModel against a plain Python loop over the same stateful IR, the
memory-bandwidth bound, and PyTorch generate on the same weights for reference.

    python benchmarks/audio7b.py --workdir /tmp/bench [--json raw.json]     # prints Markdown

Building the checkpoint holds its 16.8 GB of bf16 weights (~16.5 GiB peak) and converting it ~18 GiB;
on a machine without that much free memory the script says so and measures nothing (exit 0), so the
report can go on without it. Each stage runs in its own process, so one's memory is gone before the next.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
from report import bound_ms, memory_bandwidth_gbs, summary  # this folder is on sys.path: it is the script's

HERE = Path(__file__).resolve().parent
GIB = 2**30
NEEDS_GIB = 19  # the conversion's measured peak plus a margin
PROMPT_TOKENS = 150
NEW_TOKENS = 32


def prompt_ids() -> np.ndarray:
    """A fixed prompt of PROMPT_TOKENS ordinary token ids."""
    return np.random.default_rng(0).integers(100, 150000, PROMPT_TOKENS).astype(np.int64)[None]


class PlainLoop:
    """The peer: greedy decoding as a plain Python loop of `infer` calls on the stateful IR, CPU defaults."""

    name = "plain Python loop (CPU defaults)"

    def __init__(self, model_dir: Path):
        import openvino as ov

        core = ov.Core()
        config = {"PERFORMANCE_HINT": "LATENCY"}
        self.embed = core.compile_model(model_dir / "openvino_text_embeddings_model.xml", "CPU", config)
        language_model = core.compile_model(model_dir / "openvino_language_model.xml", "CPU", config)
        self.request = language_model.create_infer_request()

    def _infer(self, embeds: np.ndarray, start: int) -> np.ndarray:
        n = embeds.shape[1]
        self.request.infer(
            {
                "inputs_embeds": embeds,
                "attention_mask": np.ones((1, start + n), np.int64),
                "position_ids": np.arange(start, start + n, dtype=np.int64)[None],
                "beam_idx": np.zeros(1, np.int32),
            }
        )
        return self.request.get_tensor("logits").data[0, -1]

    def run(self, ids: np.ndarray) -> tuple[float, float]:
        """Prefill seconds, decode ms/token."""
        self.request.reset_state()
        t0 = time.perf_counter()
        logits = self._infer(self.embed(ids)[0], 0)
        prefill = time.perf_counter() - t0
        steps = []
        for k in range(NEW_TOKENS - 1):
            t0 = time.perf_counter()
            token = np.array([[int(np.argmax(logits))]], np.int64)
            logits = self._infer(self.embed(token)[0], ids.shape[1] + k)
            steps.append(time.perf_counter() - t0)
        return prefill, 1000 * statistics.median(steps)


class Ours:
    name = "OVQwen2AudioModel"

    def __init__(self, model_dir: Path):
        from assistant.models import OVQwen2AudioModel

        t0 = time.perf_counter()
        self.model = OVQwen2AudioModel(model_dir)
        self.load_s = time.perf_counter() - t0

    def run(self, ids: np.ndarray) -> tuple[float, float]:
        self.model.reset()
        self.model.generate(
            input_ids=ids,
            attention_mask=np.ones_like(ids),
            max_new_tokens=NEW_TOKENS,
            do_sample=False,
            ignore_eos=True,
        )
        stats_ = self.model.last_stats
        return stats_.prefill_s, stats_.ms_per_token


def measure(model_dir: Path, repeats: int) -> dict:
    ids = prompt_ids()
    bandwidth = [memory_bandwidth_gbs()]
    systems = [Ours(model_dir), PlainLoop(model_dir)]
    for system in systems:
        system.run(ids)  # warm-up
    runs: dict[str, list[tuple[float, float]]] = {s.name: [] for s in systems}
    for _ in range(repeats):
        for system in systems:  # A B A B
            runs[system.name].append(system.run(ids))
        bandwidth.append(memory_bandwidth_gbs())  # it drifts within minutes: sampled between rounds
    return {
        "weights_bytes": (model_dir / "openvino_language_model.bin").stat().st_size,
        "bandwidth_gbs": bandwidth,
        "load_s": systems[0].load_s,
        "systems": {
            name: {"prefill_s": [r[0] for r in rows], "decode_ms": [r[1] for r in rows]} for name, rows in runs.items()
        },
    }


def measure_torch(checkpoint: Path) -> dict:
    """PyTorch generate (bf16) on the same weights: prefill and decode of a few tokens."""
    import torch
    from transformers import Qwen2AudioForConditionalGeneration

    model = Qwen2AudioForConditionalGeneration.from_pretrained(checkpoint, dtype=torch.bfloat16).eval()
    ids = torch.from_numpy(prompt_ids())
    new = 6
    times: list[float] = []

    class Clock:
        def put(self, value):
            times.append(time.perf_counter())

        def end(self):
            pass

    with torch.no_grad():
        for _ in range(2):  # the first is the warm-up
            times.clear()
            start = time.perf_counter()
            model.generate(input_ids=ids, max_new_tokens=new, min_new_tokens=new, do_sample=False, streamer=Clock())
    # The streamer gets the prompt first, then each new token.
    return {"prefill_s": [times[1] - start], "decode_ms": [1000 * (times[-1] - times[1]) / (new - 1)]}


def run_stage(flag: str, *values: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(Path(__file__)), flag, *values], stdout=subprocess.PIPE, text=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, help="checkpoint and converted model go here (~23 GB)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)  # internal: one stage's process
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--torch", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        from assistant.testing import build_full_size_qwen2audio

        build_full_size_qwen2audio(args.build)
        return
    if args.measure:
        print(json.dumps(measure(args.measure, args.repeats)))
        return
    if args.torch:
        print(json.dumps(measure_torch(args.torch)))
        return

    work = args.workdir
    if work is None:
        parser.error("--workdir is required")
    work.mkdir(parents=True, exist_ok=True)
    checkpoint, model_dir = work / "qwen2audio-7b-random", work / "audio-7b"
    result: dict = {}
    available = psutil.virtual_memory().available / GIB
    if available < NEEDS_GIB and not (model_dir / "manifest.json").exists():
        result["skipped"] = (
            f"the full-size Qwen2-Audio-7B needs ~{NEEDS_GIB} GiB of free memory to build and convert; "
            f"this machine has {available:.1f} GiB available"
        )
        print(f"## Qwen2-Audio-7B\n\nSkipped: {result['skipped']}.\n")
    else:
        result = run_all(work, checkpoint, model_dir, args.repeats)
        print(render(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


def run_all(work: Path, checkpoint: Path, model_dir: Path, repeats: int) -> dict:
    result: dict = {}
    from assistant.testing import checkpoint_saved

    if not checkpoint_saved(checkpoint):
        print("building the full-size random Qwen2-Audio-7B checkpoint", file=sys.stderr, flush=True)
        if run_stage("--build", str(checkpoint)).returncode != 0:
            raise SystemExit("building the 7B checkpoint failed")
    if not (model_dir / "manifest.json").exists():
        from conversion import timed_convert

        print("converting it (INT4 asym, group 128; FP16 audio encoder)", file=sys.stderr, flush=True)
        seconds, peak, _ = timed_convert(["audio", "--source", str(checkpoint), "--out", str(model_dir)])
        result["conversion"] = {"seconds": seconds, "peak_gib": peak / GIB}
    done = run_stage("--measure", str(model_dir), "--repeats", str(repeats))
    if done.returncode != 0:
        raise SystemExit("measuring the 7B failed")
    result.update(json.loads(done.stdout))
    if psutil.virtual_memory().available / GIB > 18:  # the bf16 model plus activations
        done = run_stage("--torch", str(checkpoint))
        if done.returncode == 0:
            result["systems"]["PyTorch generate (bf16)"] = json.loads(done.stdout)
    return result


def render(result: dict) -> str:
    bound = bound_ms(result["weights_bytes"], result["bandwidth_gbs"])
    lines = ["## Qwen2-Audio-7B (INT4 language model), CPU", ""]
    if "conversion" in result:
        c = result["conversion"]
        lines += [f"Conversion: {c['seconds']:.0f} s, peak memory {c['peak_gib']:.1f} GiB (PSS of the process tree)."]
        lines.append("")
    lines += [
        f"{PROMPT_TOKENS}-token prompt, {NEW_TOKENS} new tokens (greedy, end of text ignored); load of "
        f"OVQwen2AudioModel {result['load_s']:.1f} s. Bandwidth bound: {result['weights_bytes'] / 1e9:.2f} GB of "
        f"language-model weights per token at {summary(result['bandwidth_gbs'])} GB/s = {summary(bound)} ms.",
        "",
        "| system | prefill of 150 tokens, s | decode ms/token | vs bound |",
        "|---|---|---|---|",
    ]
    for name, rows in result["systems"].items():
        ratio = statistics.median(rows["decode_ms"]) / statistics.median(bound)
        lines.append(f"| {name} | {summary(rows['prefill_s'], 2)} | {summary(rows['decode_ms'])} | {ratio:.2f}x |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
