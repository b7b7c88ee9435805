"""Inference benchmark: OVQwen2VLModel against openvino.genai's VLMPipeline on the same IR and
PyTorch generate on the same weights, and Qwen2-Audio's encoder on real frames vs padded 30 s.

Full-size architectures with random weights (compute equals the real models'). Medians of warm
runs, the systems alternated (A B A B) because this machine's memory bandwidth drifts.

    python benchmarks/inference.py --workdir /tmp/bench     # reuses benchmarks/conversion.py's folders

Prints a Markdown report.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

SCREENSHOT_PIXELS = 401408  # the default [screen] max_pixels
NEW_TOKENS = 32
PROMPT = "Describe this image."


def stats(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


def screenshot(width: int, height: int, variant: int = 0) -> np.ndarray:
    """A synthetic screen: a title bar and lines of "text"; each variant differs, so no system can answer
    a run from a cache of the previous one (VLMPipeline reuses the KV cache of an identical prompt)."""
    rng = np.random.default_rng(width * 1000 + variant)
    pixels = np.full((height, width, 3), 235, np.uint8)
    pixels[: height // 18] = (40, 44, 52)
    for row in range(height // 9, height - 20, 24):
        pixels[row : row + 10, 40 : int(rng.integers(width // 4, width - 40))] = rng.integers(0, 120, 3)
    return pixels


def prepare_genai_folder(model_dir: Path, folder: Path) -> Path:
    """The same IR files (symlinked) plus what VLMPipeline also needs: tokenizer IRs and a flat
    preprocessor_config.json with the same pixel cap as ours."""
    if (folder / "openvino_tokenizer.xml").exists():
        return folder
    import openvino as ov
    from openvino_tokenizers import convert_tokenizer
    from transformers import AutoTokenizer

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for item in model_dir.iterdir():
        os.symlink(item, folder / item.name)
    tokenizer, detokenizer = convert_tokenizer(AutoTokenizer.from_pretrained(model_dir), with_detokenizer=True)
    ov.save_model(tokenizer, folder / "openvino_tokenizer.xml")
    ov.save_model(detokenizer, folder / "openvino_detokenizer.xml")
    processor = json.loads((model_dir / "processor_config.json").read_text())
    flat = dict(processor.get("image_processor", processor))
    flat.update(min_pixels=56 * 56, max_pixels=SCREENSHOT_PIXELS)
    (folder / "preprocessor_config.json").write_text(json.dumps(flat))
    return folder


class Ours:
    name = "OVQwen2VLModel"

    def __init__(self, model_dir: Path):
        from assistant.models import OVQwen2VLModel
        from assistant.models.preprocess import Qwen2VLPreprocessor

        t0 = time.perf_counter()
        self.model = OVQwen2VLModel(model_dir)
        self.load_s = time.perf_counter() - t0
        self.pre = Qwen2VLPreprocessor.from_dir(model_dir)

    def run(self, image: np.ndarray, max_pixels: int = SCREENSHOT_PIXELS) -> tuple[float, float, int]:
        """Seconds to the first token (from the raw image), decode ms/token, image tokens."""
        from PIL import Image

        start = time.perf_counter()
        first: list[float] = []
        prompt = self.pre.apply_chat_template(
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": PROMPT}]}]
        )
        inputs = self.pre(prompt, images=[Image.fromarray(image)], max_pixels=max_pixels)
        self.model.reset()
        self.model.generate(
            **inputs,
            max_new_tokens=NEW_TOKENS,
            do_sample=False,
            ignore_eos=True,
            on_token=lambda _: first or first.append(time.perf_counter()),
        )
        return first[0] - start, self.model.last_stats.ms_per_token, int(inputs["image_grid_thw"].prod()) // 4


class GenAI:
    name = "openvino.genai VLMPipeline"

    def __init__(self, folder: Path):
        import openvino_genai

        t0 = time.perf_counter()
        self.pipe = openvino_genai.VLMPipeline(str(folder), "CPU")
        self.load_s = time.perf_counter() - t0
        self.config = openvino_genai.GenerationConfig()
        self.config.max_new_tokens = NEW_TOKENS
        self.config.min_new_tokens = NEW_TOKENS
        self.config.ignore_eos = True

    def run(self, image: np.ndarray) -> tuple[float, float, int]:
        import openvino as ov

        result = self.pipe.generate(PROMPT, images=[ov.Tensor(image[None])], generation_config=self.config)
        metrics = result.perf_metrics
        return metrics.get_ttft().mean / 1000, metrics.get_tpot().mean, -1


class Torch:
    name = "PyTorch generate (bf16)"

    def __init__(self, checkpoint: Path):
        import torch
        from transformers import AutoProcessor, Qwen2VLForConditionalGeneration

        t0 = time.perf_counter()
        self.model = Qwen2VLForConditionalGeneration.from_pretrained(checkpoint, dtype=torch.bfloat16).eval()
        self.load_s = time.perf_counter() - t0
        self.processor = AutoProcessor.from_pretrained(checkpoint)

    def run(self, image: np.ndarray) -> tuple[float, float, int]:
        import torch
        from PIL import Image
        from transformers.generation.streamers import BaseStreamer

        times: list[float] = []

        class Clock(BaseStreamer):
            def put(self, value):
                times.append(time.perf_counter())

            def end(self):
                pass

        start = time.perf_counter()
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": PROMPT}]}]
        text = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        inputs = self.processor(
            text=[text],
            images=[Image.fromarray(image)],
            return_tensors="pt",
            images_kwargs={"size": {"shortest_edge": 3136, "longest_edge": SCREENSHOT_PIXELS}},
        )
        new = 8
        with torch.no_grad():
            self.model.generate(**inputs, max_new_tokens=new, min_new_tokens=new, do_sample=False, streamer=Clock())
        # times[0] is the prompt put; times[1] the first new token
        return times[1] - start, 1000 * (times[-1] - times[1]) / (len(times) - 2), -1


RESULTS: dict = {}  # raw numbers for --json: {"vl": {input: {system: {"ttft_s": [...], "decode_ms": [...]}}}, ...}


def vl_section(work: Path, repeats: int, with_torch: bool) -> None:
    model_dir = work / "vl-default"
    checkpoint = work / "qwen2vl-2b-random"
    if not (model_dir / "manifest.json").exists():
        raise SystemExit(f"{model_dir} missing: run benchmarks/conversion.py --workdir {work} first")
    genai_dir = prepare_genai_folder(model_dir, work / "vl-default-genai")
    systems = [Ours(model_dir), GenAI(genai_dir)]
    sizes = {"448x448 image": (448, 448), "1280x720 screenshot": (1280, 720)}
    print("## Qwen2-VL-2B (INT4 language model, FP16 vision), CPU, default precision\n")
    print(f"Load: {', '.join(f'{s.name} {s.load_s:.1f} s' for s in systems)}\n")
    RESULTS["load_s"] = {s.name: s.load_s for s in systems}
    RESULTS["vl_weights_bytes"] = (model_dir / "openvino_language_model.bin").stat().st_size
    print("| input | image tokens | system | time to first token, s | decode ms/token | runs |")
    print("|---|---|---|---|---|---|")
    for label, size in sizes.items():
        results: dict[str, list[tuple[float, float, int]]] = {s.name: [] for s in systems}
        for s in systems:  # warm-up: the first answer after loading is slower
            first = s.run(screenshot(*size, variant=-1))
            RESULTS.setdefault("first_answer_ttft_s", {}).setdefault(s.name, first[0])
        for run in range(repeats):
            for s in systems:  # A B A B, the same new picture for both
                results[s.name].append(s.run(screenshot(*size, variant=run)))
        tokens = results[systems[0].name][0][2]
        RESULTS.setdefault("vl", {})[label] = {
            name: {"ttft_s": [r[0] for r in rows], "decode_ms": [r[1] for r in rows]} for name, rows in results.items()
        }
        for s in systems:
            rows = results[s.name]
            print(
                f"| {label} | {tokens} | {s.name} | {stats([r[0] for r in rows])} | "
                f"{stats([r[1] for r in rows])} | {len(rows)} |"
            )
        sys.stdout.flush()
    if with_torch:
        del systems
        torch_system = Torch(checkpoint)
        for label, size in sizes.items():
            torch_system.run(screenshot(*size, variant=-1))
            rows = [torch_system.run(screenshot(*size, variant=run)) for run in range(2)]
            RESULTS["vl"][label][torch_system.name] = {
                "ttft_s": [r[0] for r in rows],
                "decode_ms": [r[1] for r in rows],
            }
            print(
                f"| {label} | - | {torch_system.name} | {stats([r[0] for r in rows])} | "
                f"{stats([r[1] for r in rows])} | {len(rows)} |"
            )
    print()


def build_audio_encoder_model(work: Path) -> Path:
    """Qwen2-Audio with the real (Whisper-large-v3 sized) encoder and a tiny language model:
    the encoder is what this section times."""
    out = work / "audio-real-encoder-ov"
    if (out / "manifest.json").exists():
        return out
    import torch
    from transformers import AutoConfig, Qwen2AudioForConditionalGeneration

    from assistant.models.convert import convert_model
    from assistant.testing import build_tiny_qwen2audio, qwen2audio_config

    tiny = build_tiny_qwen2audio(work / "audio-tiny")
    config = AutoConfig.from_pretrained(tiny)
    config.audio_config = qwen2audio_config("full").audio_config
    checkpoint = work / "audio-real-encoder"
    torch.manual_seed(0)
    Qwen2AudioForConditionalGeneration(config).to(torch.bfloat16).save_pretrained(checkpoint)
    for item in tiny.iterdir():
        if item.suffix in (".json", ".jinja") and item.name not in ("config.json",):
            shutil.copy(item, checkpoint / item.name)
    convert_model("qwen2-audio", checkpoint, out, None, force=True, progress=lambda m: None)
    return out


def audio_section(work: Path, repeats: int) -> None:
    import openvino as ov

    from assistant.models.audio_frames import encoder_input_frames
    from assistant.models.preprocess import AudioSettings, log_mel_features

    folder = build_audio_encoder_model(work)
    encoder = ov.Core().compile_model(folder / "openvino_audio_encoder_model.xml", "CPU")
    settings = AudioSettings.from_dir(folder)
    rng = np.random.default_rng(0)
    print("## Qwen2-Audio encoder (Whisper-large-v3 size, FP16 weights), CPU, default precision\n")
    print("| speech | frames encoded | seconds | vs padded 30 s |")
    print("|---|---|---|---|")
    runs: dict[str, list[float]] = {}
    inputs = {}
    for seconds in (2, 5, 10, 30):
        audio = (0.1 * rng.standard_normal(seconds * 16000)).astype(np.float32)
        features, mask = log_mel_features(audio, settings)
        given = encoder_input_frames(int(mask.sum()))
        inputs[f"{seconds} s"] = features[:, :, :given]
    inputs["padded 30 s (3000 frames)"] = features
    for value in inputs.values():
        encoder(value)  # warm-up
    for _ in range(repeats):
        for label, value in inputs.items():
            t0 = time.perf_counter()
            encoder(value)
            runs.setdefault(label, []).append(time.perf_counter() - t0)
    padded = statistics.median(runs["padded 30 s (3000 frames)"])
    RESULTS["audio_encoder_s"] = runs
    for label, values in runs.items():
        print(f"| {label} | {inputs[label].shape[-1]} | {stats(values)} | {statistics.median(values) / padded:.2f}x |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-torch", action="store_true", help="leave out the (slow) PyTorch rows")
    parser.add_argument("--only", choices=["vl", "audio"], help="run one section")
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = parser.parse_args()
    print(f"Machine: {os.cpu_count()} CPUs. Medians (min-max) of {args.repeats} warm runs, systems alternated.\n")
    if args.only in (None, "vl"):
        vl_section(args.workdir, args.repeats, not args.skip_torch)
    if args.only in (None, "audio"):
        audio_section(args.workdir, args.repeats)
    if args.json:
        args.json.write_text(json.dumps(RESULTS, indent=1))


if __name__ == "__main__":
    main()
