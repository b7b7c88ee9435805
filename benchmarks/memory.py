"""Where the service's memory goes with both full-size models: resident memory, broken down by what holds it.

    python benchmarks/memory.py --workdir /tmp/bench [--variant NAME ...] [--json FILE]    # prints Markdown

The models are the full-size scripted Qwen2-Audio-7B and Qwen2-VL-2B (`scripted_models.py`: real shapes,
INT4 defaults). Each configuration (the audio model alone, the VL model alone, both) runs in a process of
its own with the service's runtime settings and a compiled-model cache warmed beforehand, as `assistant
run` finds it after its first start. Step by step, it snapshots its own `/proc/self/smaps`:

1. `imports`: Python, numpy, OpenVINO and the assistant's modules;
2. `processors`: each model's tokenizer, chat template and media preprocessing read;
3. `compiled`: every sub-model compiled (imported from the cache);
4. `encoders`: each media encoder run once at the largest input the service sends (a 30 s clip; a
   1920x1080 screenshot at the pixel cap);
5. `first prompt`: a short prompt through the language model (the CPU plugin packs its weights here);
6. `requests`: the service's usual prompts, timed (a 3 s question's transcription; the screenshot
   question), after one run of each;
7. `longest prompt`: for the audio model a 10 s utterance after a turn of 10 s of history (the KV cache
   grows by the same bytes a position: the service's longest, 4 turns holding 60 s of speech, is worked
   out from it); the VL model's longest is the screenshot question;
8. `released`: the mapped weights files dropped from the process (`release_mapped_weights`);
9. `requests after release`: the same prompts again, timed (do the pages come back? does it cost time?);
10. `reset`: the conversation forgotten, as between requests.

Each snapshot splits RSS and PSS into anonymous memory, the model folders' files (IR `.bin`, mmapped),
the compiled-model cache's blobs (mmapped) and other files (libraries). The KV cache's own size is worked
out from its precision and positions (reading the state tensors would allocate an f32 copy). Variants
(`--variant`) change one thing, so its effect is measured side by side in one run: see VARIANTS.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

MIB = 1 << 20
GIB = 1 << 30
CONFIGURATIONS = {"audio": ("audio",), "vl": ("vl",), "both": ("audio", "vl")}
# What each variant sets in the process's environment (read by the runtime settings), beside the defaults.
VARIANTS: dict[str, dict[str, str]] = {"defaults": {}}


# -- smaps ---------------------------------------------------------------------------------------


@dataclass
class Region:
    rss: int = 0  # bytes
    pss: int = 0
    anonymous: int = 0  # of it: anonymous pages (a private file mapping's written pages count here too)

    def add(self, other: Region) -> None:
        self.rss += other.rss
        self.pss += other.pss
        self.anonymous += other.anonymous


@dataclass
class Snapshot:
    groups: dict[str, Region] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)  # RSS of each mapped file in the named groups

    @property
    def rss(self) -> int:
        return sum(g.rss for g in self.groups.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "rss": self.rss,
            "groups": {name: vars(region) for name, region in self.groups.items()},
            "files": self.files,
        }


def parse_smaps(text: str, named: dict[str, list[Path]]) -> Snapshot:
    """RSS, PSS and anonymous bytes of /proc/PID/smaps, summed per group: a file under one of `named`'s
    folders counts in that group, any other file in "other files", everything else in "anonymous"."""
    snapshot = Snapshot({name: Region() for name in [*named, "other files", "anonymous"]})
    path, region = "", None

    def close() -> None:
        if region is None:
            return
        group = group_of(path, named)
        snapshot.groups[group].add(region)
        if group in named:
            snapshot.files[path] = snapshot.files.get(path, 0) + region.rss

    for line in text.splitlines():
        head = line.split(maxsplit=5)
        if len(head) >= 5 and "-" in head[0] and ":" not in head[0]:  # a mapping's header line
            close()
            path, region = (head[5] if len(head) == 6 else ""), Region()
        elif region is not None and line.endswith(" kB"):
            key, value = line.split(":", 1)
            kib = int(value.split()[0]) * 1024
            if key == "Rss":
                region.rss = kib
            elif key == "Pss":
                region.pss = kib
            elif key == "Anonymous":
                region.anonymous = kib
    close()
    return snapshot


def group_of(path: str, named: dict[str, list[Path]]) -> str:
    if not path.startswith("/"):
        return "anonymous"  # [heap], [stack], [anon:...], unnamed mappings
    for name, folders in named.items():
        if any(Path(path).is_relative_to(Path(folder).resolve()) for folder in folders):
            return name
    return "other files"


# -- the measured process --------------------------------------------------------------------------


def kv_bytes(model, positions: int) -> int:
    """What `positions` positions of the language model's KV cache take: `memory_needs.kv_cache_bytes` in the
    precision the compiled model reports, checked against the one memory_needs.py assumes (worked out, not
    read: reading the state tensors would allocate an f32 copy of them)."""
    from assistant.models.memory_needs import kv_cache_bytes
    from assistant.models.runtime import KV_CACHE_PRECISIONS

    precision = model._compiled["language_model"].get_property("KV_CACHE_PRECISION").get_type_name()
    if precision != KV_CACHE_PRECISIONS[model.kind]:
        raise SystemExit(
            f"the KV cache is {precision}, not the {KV_CACHE_PRECISIONS[model.kind]} memory_needs.py works out"
        )
    return kv_cache_bytes(model.config, positions, precision)


def measure(kinds: tuple[str, ...], folders: dict[str, Path], cache: Path) -> dict[str, Any]:
    """The steps of the module docstring in this process; each snapshot as a dict."""
    import numpy as np
    from PIL import Image

    from assistant.config import load_settings
    from assistant.daemon.conversation import Conversation
    from assistant.daemon.service import SCREEN_QUESTION
    from assistant.models import OVQwen2AudioModel, OVQwen2VLModel, preprocess
    from assistant.models.mapped_weights import release_mapped_weights
    from assistant.models.preprocess.audio import log_mel_features
    from assistant.models.qwen2vl import vision_prompt
    from assistant.models.runtime import RuntimeOptions

    settings = load_settings()
    runtime = RuntimeOptions.from_settings(settings.runtime)
    runtime = RuntimeOptions(
        runtime.device, runtime.inference_precision, runtime.performance_hint, cache, runtime.decode_activations
    )
    named = {"model files": [folders[k] for k in kinds], "compiled cache": [cache]}
    steps: list[dict[str, Any]] = []

    def snap(step: str, **extra: Any) -> None:
        gc.collect()
        snapshot = parse_smaps(Path("/proc/self/smaps").read_text(), named)
        steps.append({"step": step, **snapshot.as_dict(), **extra})

    classes = {"audio": OVQwen2AudioModel, "vl": OVQwen2VLModel}
    snap("imports")
    pre = {k: getattr(preprocess, classes[k].preprocessor_class).from_dir(folders[k]) for k in kinds}
    snap("processors")
    started = time.perf_counter()
    models = {k: classes[k](folders[k], runtime=runtime) for k in kinds}
    load_s = time.perf_counter() - started
    for k, model in models.items():
        model.__dict__["preprocessor"] = pre[k]  # the one read above (a cached property)
    snap("compiled", load_s=round(load_s, 2))

    rng = np.random.default_rng(0)
    clip30 = (0.05 * rng.standard_normal(30 * 16000)).astype(np.float32)
    shot = Image.effect_noise((1920, 1080), 60).convert("RGB")
    max_pixels = settings.screen.max_pixels
    if "audio" in models:
        features, mask = log_mel_features(clip30)
        models["audio"].encode_audio(features[0], int(mask.sum()))
    if "vl" in models:
        inputs = vision_prompt(pre["vl"], SCREEN_QUESTION, [shot], max_pixels=max_pixels)
        models["vl"].encode_vision(inputs["pixel_values"], inputs["image_grid_thw"])
    snap("encoders")

    for model in models.values():
        ids = model.preprocessor.tokenizer.encode("Say hello.")
        model.generate(input_ids=np.asarray([ids], np.int64), max_new_tokens=2, do_sample=False)
    snap("first prompt")

    def requests() -> dict[str, float]:
        """The service's usual prompts, timed from an empty cache: a 3 s question's transcription, the
        screenshot question."""
        seconds = {}
        for model in models.values():
            model.reset()
        if "audio" in models:
            inputs = Conversation().transcription_inputs(pre["audio"], clip30[: 3 * 16000])
            started = time.perf_counter()
            models["audio"].generate(**inputs, max_new_tokens=2, do_sample=False)
            seconds["audio"] = round(time.perf_counter() - started, 2)
        if "vl" in models:
            inputs = vision_prompt(pre["vl"], SCREEN_QUESTION, [shot], max_pixels=max_pixels)
            started = time.perf_counter()
            models["vl"].generate(**inputs, max_new_tokens=2, do_sample=False)
            seconds["vl"] = round(time.perf_counter() - started, 2)
        return seconds

    requests()  # the first run of each prompt shape prepares its kernels
    snap("requests", seconds=requests())
    positions: dict[str, int] = {}
    if "audio" in models:
        # Longer history makes the KV cache grow by the same bytes per position: 10 s clips stand for 30 s ones.
        conversation = Conversation()
        conversation.remember(clip30[: 10 * 16000], "Lima is the city you mean. Need help!")
        inputs = conversation.transcription_inputs(pre["audio"], clip30[: 10 * 16000])
        models["audio"].generate(**inputs, max_new_tokens=2, do_sample=False)
        positions["audio"] = int(inputs["input_ids"].shape[1]) + 1
    if "vl" in models:
        positions["vl"] = (
            int(vision_prompt(pre["vl"], SCREEN_QUESTION, [shot], max_pixels=max_pixels)["input_ids"].shape[1]) + 1
        )
    kv = {k: kv_bytes(models[k], n) for k, n in positions.items()}
    snap("longest prompt", kv=kv, positions=positions)
    released = release_mapped_weights([*named["model files"], cache])
    snap("released", released=released)
    snap("requests after release", seconds=requests())
    for model in models.values():
        model.reset()
    snap("reset")
    longest = {"audio": service_longest_audio_positions(settings) if "audio" in models else None}
    kv_longest = {k: kv_bytes(models[k], n) for k, n in longest.items() if n}
    return {
        "steps": steps,
        "load_s": round(load_s, 2),
        "weights": weights_on_disk(folders, kinds),
        "kv_at_service_longest": kv_longest,
        "service_longest_positions": longest,
    }


def service_longest_audio_positions(settings) -> int:
    """Prompt positions of the longest transcription the service sends (`memory_needs.longest_prompt`)."""
    from assistant.daemon.conversation import HISTORY_AUDIO_S, HISTORY_TURNS
    from assistant.models.memory_needs import longest_prompt

    return longest_prompt(
        "qwen2-audio",
        history_turns=HISTORY_TURNS,
        history_audio_s=HISTORY_AUDIO_S,
        max_new_tokens=settings.generation.max_new_tokens,
        max_pixels=settings.screen.max_pixels,
    )


def weights_on_disk(folders: dict[str, Path], kinds: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """Bytes of each sub-model's weights file, per model."""
    out = {}
    for k in kinds:
        out[k] = {p.stem: p.stat().st_size for p in sorted(folders[k].glob("*.bin"))}
    return out


# -- the runner ------------------------------------------------------------------------------------


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_child(configuration: str, variant: str, folders: dict[str, Path], cache: Path) -> dict[str, Any]:
    env = {**os.environ, **VARIANTS[variant]}
    args = [sys.executable, __file__, "--child", configuration, "--cache", str(cache)]
    args += ["--audio", str(folders["audio"]), "--vl", str(folders["vl"])]
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{configuration}/{variant} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, help="the scripted models (built when missing)")
    parser.add_argument("--variant", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--configurations", nargs="*", default=list(CONFIGURATIONS), choices=list(CONFIGURATIONS))
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the raw numbers to FILE")
    parser.add_argument("--render", type=Path, metavar="FILE", help="only print the tables of an earlier --json")
    parser.add_argument("--child", choices=list(CONFIGURATIONS), help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--audio", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--vl", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        folders = {"audio": args.audio, "vl": args.vl}
        print(json.dumps(measure(CONFIGURATIONS[args.child], folders, args.cache)))
        return 0
    if args.render:
        print(render(json.loads(args.render.read_text())))
        return 0
    if args.workdir is None:
        parser.error("--workdir is required")
    from scripted_models import ensure_models  # this folder is on sys.path

    models = ensure_models(args.workdir)
    folders = {k: Path(models[k]["folder"]) for k in ("audio", "vl")}
    run: dict[str, Any] = {"results": {}}
    for variant in args.variant:
        cache = args.workdir / f"memory-cache-{variant}"
        if not any(cache.glob("*.blob")):
            progress(f"{variant}: warming the compiled-model cache")
            run_child("both", variant, folders, cache)
        for configuration in args.configurations:
            progress(f"{variant}: {configuration}")
            run["results"].setdefault(variant, {})[configuration] = run_child(configuration, variant, folders, cache)
    print(render(run))
    if args.json:
        args.json.write_text(json.dumps(run, indent=1) + "\n")
    return 0


GROUPS = ("anonymous", "model files", "compiled cache", "other files")


def gib(n: float | None) -> str:
    return "–" if n is None else f"{n / GIB:.2f}"


def step_of(result: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in result["steps"] if s["step"] == name)


def rows_by_step(result: dict[str, Any]) -> list[str]:
    lines = []
    for s in result["steps"]:
        groups = s["groups"]
        pss = sum(g["pss"] for g in groups.values())
        kv = sum(s.get("kv", {}).values()) if s.get("kv") else None
        cells = [gib(s["rss"]), gib(pss), *(gib(groups[g]["rss"]) for g in GROUPS), gib(kv)]
        lines.append(f"| {s['step']} | " + " | ".join(cells) + " |")
    return lines


def breakdown(result: dict[str, Any]) -> list[tuple[str, float | None]]:
    """Where the resident memory at the longest prompt comes from, step by step (anonymous deltas)."""

    def anon(name: str) -> int:
        return step_of(result, name)["groups"]["anonymous"]["rss"]

    def files(name: str) -> int:
        groups = step_of(result, name)["groups"]
        return groups["model files"]["rss"] + groups["compiled cache"]["rss"]

    longest = step_of(result, "longest prompt")
    kv = sum(longest.get("kv", {}).values())
    return [
        ("Python, numpy, OpenVINO, libraries (RSS after the imports)", step_of(result, "imports")["rss"]),
        ("tokenizers, chat templates, media preprocessing (anonymous)", anon("processors") - anon("imports")),
        ("compiling / importing the sub-models (anonymous)", anon("compiled") - anon("processors")),
        ("the encoders' first run at the largest input (anonymous)", anon("encoders") - anon("compiled")),
        ("the language model's first prompt: its packed weights (anonymous)", anon("first prompt") - anon("encoders")),
        ("the longest prompt: KV cache and activations (anonymous)", anon("longest prompt") - anon("first prompt")),
        ("… of it the KV cache (worked out from its precision and positions)", kv),
        ("model files and compiled-cache blobs still mapped (file-backed RSS)", files("longest prompt")),
        ("RSS at the longest prompt", longest["rss"]),
        ("RSS once the mapped weights are released (`release_mapped_weights`)", step_of(result, "released")["rss"]),
        ("RSS after the requests again, released", step_of(result, "requests after release")["rss"]),
        ("anonymous memory still held after reset", anon("reset")),
        (
            f"KV cache at the service's longest audio prompt ({result['service_longest_positions'].get('audio')} "
            "positions: 4 turns of history holding 60 s of speech, their answers, a 30 s clip), worked out",
            result["kv_at_service_longest"].get("audio"),
        ),
    ]


def render(run: dict[str, Any]) -> str:
    lines: list[str] = []
    for variant, results in run["results"].items():
        for configuration, result in results.items():
            lines += [
                "",
                f"#### {configuration} ({variant}): resident memory after each step, GiB "
                f"(load {result['load_s']:.1f} s)",
                "",
                "| step | RSS | PSS | anonymous | model files | compiled cache | other files | KV cache |",
                "|---|---|---|---|---|---|---|---|",
                *rows_by_step(result),
            ]
        both = results.get("both")
        if both:
            lines += ["", f"#### both models ({variant}): where it comes from, GiB", "", "| part | GiB |", "|---|---|"]
            lines += [f"| {name} | {gib(value)} |" for name, value in breakdown(both)]
            seconds = {s["step"]: s["seconds"] for s in both["steps"] if "seconds" in s}
            lines += [
                "",
                "The service's prompts from an empty cache, s (before → after the release): "
                + "; ".join(
                    f"{k} {seconds['requests'][k]:.2f} → {seconds['requests after release'][k]:.2f}"
                    for k in seconds["requests"]
                ),
            ]
            disk = both["weights"]
            lines += [
                "",
                "Weights files on disk, MiB: "
                + "; ".join(
                    f"{k}: " + ", ".join(f"{name} {size / MIB:.0f}" for name, size in files.items())
                    for k, files in disk.items()
                ),
            ]
    return "\n".join(lines).lstrip() + "\n"


if __name__ == "__main__":
    sys.exit(main())
