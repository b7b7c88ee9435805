"""Service benchmark: what `assistant run` itself costs on this machine, measured through the real
microphone path.

A private PulseAudio (the tests' facility) gives the service a virtual microphone (a 16 kHz null sink
whose monitor is the default source, kept live by a stream of silence) and a second null sink as its
speaker, and an Xvfb full-HD screen answers the screen route. `assistant run --no-tray --events FILE`
runs as a subprocess on converted models with
`[activation] mode = "always"` and speech on, and this script measures:

1. CPU while listening to silence: user+sys time of the service process (all its threads, psutil)
   over `--idle-seconds` once its warm-up (`warmed_up`) is done, as % of one core; also without the
   first 5 s, since opening the input stream costs a burst of CPU once;
2. end of speech -> transcription call, and first token / first complete sentence -> first sound,
   from the `answer` and `speak_start` events of N spoken questions (espeak-ng) played into the mic;
3. memory (RSS, PSS, USS; anonymous vs mmapped files) with both models loaded, after the warm-up
   and after each request, and seconds from process start to `listening`, started twice on one
   compiled-model cache folder (the second start is the warm one).

By default the models are tiny (real architectures, tiny widths), built and converted here: a Qwen2-Audio
scripted to hear and answer one fixed two-sentence text (a random one hears gibberish, which may be empty,
name the screen, or end no sentence) and a random Qwen2-VL.

    python benchmarks/service.py                            # tiny models, built and converted here
    python benchmarks/service.py --workdir /tmp/bench       # keep the tiny models there for the next run
    python benchmarks/service.py --audio-dir A --vl-dir V   # converted full-size folders instead

Prints a Markdown table on stdout (progress on stderr); `--json FILE` writes the raw numbers.
Every process it starts is stopped by PID at the end, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import itertools
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the tests' OS facilities: PulseAudio virtual mic, espeak-ng speech

# Every model, processor and tokenizer comes from a local folder; a stray hub lookup fails at once.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

QUESTIONS = (
    "What is the capital of Peru?",
    "How do I say thank you in Japanese?",
    "How far away is the moon?",
    "Why is the sky blue?",
    "What should I cook for dinner tonight?",
    "Who wrote the novel War and Peace?",
    "How many legs does a spider have?",
    "When does the next leap year start?",
)
# What the tiny scripted audio model hears and answers: two sentences, so the first is complete mid-stream.
SCRIPT = "The capital is Lima. Any more questions?"
PROGRAMS = ("pulseaudio", "pactl", "pacat", "paplay", "espeak-ng")
MAX_NEW_TOKENS = 24
IDLE_SETTLE_S = 5.0  # the idle figure is also given without its first seconds
TARGET_IDLE_CPU = 1.0  # % of one core
TARGET_END_TO_CALL = 50.0  # ms
TARGET_SENTENCE_TO_AUDIO = 150.0  # ms
SAMPLE_RATE = 16000


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- models ------------------------------------------------------------------------------------


def tiny_group_size(checkpoint: Path) -> int:
    """The largest INT4 group size (128 down to 8) that divides the tiny language model's layer widths."""
    from assistant.models.convert.compression import language_model_input_channels

    channels = language_model_input_channels(json.loads((checkpoint / "config.json").read_text()))
    return next((g for g in (128, 64, 32, 16, 8) if all(c % g == 0 for c in channels)), -1)


def tiny_models(folder: Path) -> tuple[Path, Path]:
    """Build the tiny checkpoints and convert them (INT4 asym language models, ratio 1.0).

    The audio model is the scripted tiny Qwen2-Audio: it hears and answers `SCRIPT` whatever is said, so
    every question takes the voice route and its answer has a sentence end mid-stream. (The random tiny
    checkpoint hears long gibberish, which may hold a screen phrase, be empty, or end no sentence.)
    """
    import functools
    import logging

    import nncf

    from assistant.models import convert_qwen2audio_model, convert_qwen2vl_model
    from assistant.testing import build_scripted_qwen2audio, build_tiny_qwen2vl

    nncf.set_log_level(logging.ERROR)
    out = []
    for name, build, convert in (
        ("audio-scripted", functools.partial(build_scripted_qwen2audio, text=SCRIPT), convert_qwen2audio_model),
        ("vl-tiny", build_tiny_qwen2vl, convert_qwen2vl_model),
    ):
        target = folder / f"{name}-int4"
        if not (target / "manifest.json").exists():
            checkpoint = build(folder / f"{name}-checkpoint")
            group = tiny_group_size(checkpoint)
            progress(f"converting the {name} model (INT4 asym, group size {group}, ratio 1.0)")
            config = {"mode": nncf.CompressWeightsMode.INT4_ASYM, "group_size": group, "ratio": 1.0}
            with contextlib.redirect_stdout(sys.stderr):  # NNCF's progress bars; stdout is the report's
                convert(checkpoint, target, config, progress=lambda m: None)
        out.append(target)
    return out[0], out[1]


def describe_model(folder: Path, kind: str) -> dict[str, Any]:
    from assistant.models.manifest import read_manifest

    manifest = read_manifest(folder, kind)
    return {
        "folder": str(folder),
        "source": manifest.source,
        "language_model": manifest.compression.get("language_model", manifest.compression),
        "weight_mib": round(manifest.weight_bytes / 2**20, 1),
    }


def write_config(path: Path, audio_dir: Path, vl_dir: Path, cache_dir: Path) -> Path:
    path.write_text(
        f'[models]\naudio_dir = "{audio_dir}"\nvl_dir = "{vl_dir}"\n'
        f'[runtime]\ncache_dir = "{cache_dir}"\n'
        f'[generation]\nmax_new_tokens = {MAX_NEW_TOKENS}\nsampling = "config"\ntemperature = 0.0\n'
        '[activation]\nmode = "always"\n[tts]\nenabled = true\n[tray]\nenabled = false\n'
    )
    return path


# -- the service under measurement ---------------------------------------------------------------


class Service:
    """`assistant run --no-tray --events FILE` in the background; its events read as they come."""

    def __init__(
        self,
        config: Path,
        env: dict[str, str],
        events: Path,
        log: Path,
        cwd: Path | None = None,
        wrap: Callable[[list[str]], list[str]] | None = None,  # e.g. a memory cgroup's: start it inside
    ):
        self.events_path = events
        self.events: list[dict] = []
        self._offset = 0
        events.unlink(missing_ok=True)
        self._log = log.open("w", encoding="utf-8")
        self.started = time.monotonic()
        command = [sys.executable, "-m", "assistant", "run", "--config", str(config), "--no-tray"]
        command += ["--events", str(events)]
        self.proc = subprocess.Popen(
            wrap(command) if wrap else command,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            cwd=cwd,  # `python -m` puts the working folder first on sys.path: it picks the `assistant` package
        )
        self.log_path = log

    def read(self) -> list[dict]:
        """Events written since the last call (whole lines only)."""
        if not self.events_path.exists():
            return []
        with self.events_path.open(encoding="utf-8") as f:
            f.seek(self._offset)
            chunk = f.read()
        complete = chunk[: chunk.rfind("\n") + 1]
        self._offset += len(complete.encode())
        new = [json.loads(line) for line in complete.splitlines() if line.strip()]
        self.events += new
        return new

    def wait_for(self, predicate: Callable[[list[dict]], bool], since: int, timeout: float, what: str) -> list[dict]:
        """Events from index `since` once `predicate` holds for them (polled every 20 ms)."""
        deadline = time.monotonic() + timeout
        while True:
            self.read()
            if predicate(self.events[since:]):
                return self.events[since:]
            if self.proc.poll() is not None:
                raise RuntimeError(f"assistant run exited ({self.proc.returncode}); log: {self.tail()}")
            if time.monotonic() > deadline:
                names = [e["event"] for e in self.events[since:]]
                raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}; events: {names}")
            time.sleep(0.02)

    def tail(self, lines: int = 5) -> str:
        if not self._log.closed:
            self._log.flush()
        text = self.log_path.read_text(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:])

    def stop(self) -> tuple[int | None, float]:
        """SIGTERM (SIGKILL after 15 s); the exit code and how long stopping took."""
        sent = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode, time.monotonic() - sent


@contextlib.contextmanager
def running(
    config: Path,
    env: dict[str, str],
    work: Path,
    name: str,
    cwd: Path | None = None,
    wrap: Callable[[list[str]], list[str]] | None = None,
) -> Iterator[Service]:
    service = Service(config, env, work / f"{name}.events.jsonl", work / f"{name}.log", cwd=cwd, wrap=wrap)
    try:
        yield service
    finally:
        code, took = service.stop()
        progress(f"{name}: stopped with exit code {code} in {took:.2f} s")


def seconds_to(event: str, service: Service, timeout: float) -> float:
    """Seconds from the process start to its first `event` (the event file is polled every 20 ms)."""
    service.wait_for(lambda ev: any(e["event"] == event for e in ev), 0, timeout, event)
    return time.monotonic() - service.started


@contextlib.contextmanager
def silence_into(pulse) -> Iterator[subprocess.Popen]:
    """Keep the microphone's sink live: endless silence played into it (paced by the server)."""
    raw = ["--raw", "--format=s16le", "--rate=16000", "--channels=1"]
    proc = subprocess.Popen(
        ["pacat", "--playback", f"--device={pulse.sink}", *raw, "/dev/zero"],
        stdin=subprocess.DEVNULL,
        env={**os.environ, **pulse.env()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# -- measurements ------------------------------------------------------------------------------


def memory(pid: int) -> dict[str, float]:
    import psutil

    process = psutil.Process(pid)
    out = {"rss_mib": process.memory_info().rss / 2**20}
    with contextlib.suppress(psutil.AccessDenied, AttributeError):
        full = process.memory_full_info()
        out.update(pss_mib=getattr(full, "pss", float("nan")) / 2**20, uss_mib=full.uss / 2**20)
    with contextlib.suppress(OSError, ValueError):
        # Pages of the mmapped model files are clean page cache the kernel can drop; anonymous memory is
        # what the process really needs (the CPU plugin's repacked weights, KV cache, activations).
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
        fields = {line.split(":")[0]: int(line.split()[1]) for line in rollup if line.endswith("kB")}
        out.update(anon_mib=fields["Pss_Anon"] / 1024, file_mib=fields["Pss_File"] / 1024)
    return {k: round(v, 1) for k, v in out.items()}


def thread_names(pid: int) -> dict[int, str]:
    names = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            names[int(task.name)] = (task / "comm").read_text().strip()
    return names


def idle_cpu(service: Service, seconds: float, settle: float = IDLE_SETTLE_S) -> dict[str, Any]:
    """CPU time of the service (every thread, user+sys) while it hears nothing but silence.

    Sampled once a second: the whole span as asked, and the span after the first `settle` seconds apart
    (opening the input stream costs a burst of CPU in PortAudio's thread that does not come back).
    """
    import psutil

    process = psutil.Process(service.proc.pid)
    since = len(service.events)

    def cpu_now() -> float:
        times = process.cpu_times()
        return times.user + times.system

    threads_before, t0, cpu0 = {t.id: t for t in process.threads()}, time.monotonic(), cpu_now()
    before = process.cpu_times()
    samples = [(0.0, 0.0)]
    deadline = t0 + seconds
    while time.monotonic() < deadline:
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        samples.append((time.monotonic() - t0, cpu_now() - cpu0))
        service.read()
        if service.proc.poll() is not None:
            raise RuntimeError(f"assistant run exited while idle; log: {service.tail()}")
    after, threads_after = process.cpu_times(), process.threads()
    wall, cpu = samples[-1]
    names = thread_names(service.proc.pid)
    per_thread = []
    for t in threads_after:
        b = threads_before.get(t.id)
        used = (t.user_time + t.system_time) - ((b.user_time + b.system_time) if b else 0.0)
        if used > 0:
            name = "main (asyncio loop)" if t.id == service.proc.pid else names.get(t.id, "?")
            per_thread.append({"tid": t.id, "name": name, "cpu_s": round(used, 3)})
    per_thread.sort(key=lambda x: -x["cpu_s"])
    settled = next(((t, c) for t, c in samples if t >= settle), None)
    steady = None
    if settled is not None and wall - settled[0] >= 5:
        steady = round(100 * (cpu - settled[1]) / (wall - settled[0]), 3)
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 3),
        "user_s": round(after.user - before.user, 3),
        "system_s": round(after.system - before.system, 3),
        "percent_of_one_core": round(100 * cpu / wall, 3),
        "settle_s": settle,
        "percent_after_settle": steady,
        "cpu_in_first_settle_s": round(settled[1], 3) if settled else None,
        "samples": [(round(t, 2), round(c, 3)) for t, c in samples],
        "threads": len(threads_after),
        "busiest_threads": per_thread[:8],
        "events_while_idle": [e["event"] for e in service.events[since:]],
    }


def request_wav(folder: Path, index: int, text: str) -> Path:
    import soundfile

    from speech import spoken

    path = folder / f"request-{index}.wav"
    before, after = np.zeros(SAMPLE_RATE // 2, np.float32), np.zeros(SAMPLE_RATE, np.float32)
    soundfile.write(path, np.concatenate([before, spoken(text), after]), SAMPLE_RATE)
    return path


def ask(service: Service, pulse, wav: Path, timeout: float) -> dict[str, Any]:
    """Play one spoken question into the microphone; its events once the answer has been spoken."""
    since = len(service.events)
    pulse.play_into_microphone(wav)

    def done(events: list[dict]) -> bool:
        names = [e["event"] for e in events]
        return "speak_end" in names or ("ignored" in names and "speech_end" in names)

    events = service.wait_for(done, since, timeout, "the answer to be spoken")
    found = {e["event"]: e for e in events}  # the last of each kind
    answer, start = found.get("answer", {}), found.get("speak_start", {})
    return {
        "events": [e["event"] for e in events],
        "transcript": found.get("transcript", {}).get("text"),
        "route": found.get("route", {}).get("route"),
        "answer": answer.get("text"),
        "timings": answer.get("timings", {}),
        "after_first_token_ms": start.get("after_first_token_ms"),
        "after_first_sentence_ms": start.get("after_first_sentence_ms"),
        "errors": [e.get("message") for e in events if e["event"] == "error"],
        "ignored": [e.get("reason") for e in events if e["event"] == "ignored"],
    }


def source_outputs(pulse) -> int:
    """Recording streams open on the PulseAudio server (the service's microphone)."""
    result = subprocess.run(
        ["pactl", "list", "short", "source-outputs"],
        env={**os.environ, **pulse.env()},
        capture_output=True,
        text=True,
        check=True,
    )
    return len([line for line in result.stdout.splitlines() if line.strip()])


# -- report ------------------------------------------------------------------------------------


def spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "n": len(values)}


def fmt_spread(s: dict[str, float] | None, unit: str, digits: int = 1) -> str:
    if s is None:
        return "no data"
    return f"{s['min']:.{digits}f} / {s['median']:.{digits}f} / {s['max']:.{digits}f} {unit} (n={s['n']})"


def met(s: dict[str, float] | None, limit: float) -> str:
    """Met when every request is within the limit."""
    if s is None:
        return "no data"
    return "yes" if s["max"] <= limit else "**no**"


def fmt_memory(m: dict[str, float]) -> str:
    nan = float("nan")
    text = f"RSS {m['rss_mib']:.0f} MiB, PSS {m.get('pss_mib', nan):.0f} MiB, USS {m.get('uss_mib', nan):.0f} MiB"
    if "anon_mib" in m:
        text += f" (anonymous {m['anon_mib']:.0f} MiB, mmapped files {m['file_mib']:.0f} MiB)"
    return text


def machine() -> dict[str, Any]:
    import psutil

    cpu = platform.processor()
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "date": datetime.date.today().isoformat(),
    }


def header(results: dict[str, Any]) -> str:
    m, s = results["machine"], results["requests_summary"]
    lines = [
        f"## `assistant run`: service costs ({m['date']})",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; "
        f"load average at start {m['load_average_at_start']}.",
    ]
    for name, info in results["models"].items():
        lines.append(
            f"- {name} model: `{info['folder']}` ({info['weight_mib']} MiB of weights; "
            f"language model {info['language_model']}; from `{info['source']}`)"
        )
    if results["tiny_models"]:
        lines.append(
            "- **Tiny models** (Qwen2-Audio scripted to hear and answer "
            f'"{SCRIPT}", random Qwen2-VL; real architectures, tiny widths): the memory figures and model '
            "timings say nothing about the real Qwen2-Audio-7B / Qwen2-VL-2B; pass --audio-dir and --vl-dir "
            "with full-size conversions for those."
        )
    lines.append(
        f"- {s['asked']} spoken questions (espeak-ng) into a PulseAudio virtual microphone, "
        f'`[activation] mode = "always"`, speech on (into a null sink), max_new_tokens {MAX_NEW_TOKENS}, greedy; '
        f"{s['spoken']} answers spoken. Whole run {results['total_s']:.0f} s."
    )
    lines.append(
        "- End of speech is when the endpointer ends the utterance (after `[audio] end_silence_ms` of silence); "
        "first audio is when the speaker thread starts playing the first synthesised sentence."
    )
    return "\n".join(lines) + "\n"


def report(results: dict[str, Any]) -> str:
    idle, req = results["idle"], results["requests_summary"]
    start = results["start"]
    warm, cold = start["warm_s"], start["cold_s"]
    percent, steady = idle["percent_of_one_core"], idle["percent_after_settle"]
    e2c, s2a = req["end_to_model_call"], req["after_first_sentence_ms"]
    rss = [r["memory_after"]["rss_mib"] for r in results["requests"]]
    lines = [
        "| measure | min / median / max, or value | target | met? |",
        "|---|---|---|---|",
        f"| CPU while listening to silence ({idle['wall_s']:.0f} s after the warm-up, every thread, user+sys) | "
        f"{percent:.2f} % of one core ({idle['cpu_s']:.2f} s CPU) | < {TARGET_IDLE_CPU:g} % | "
        f"{'yes' if percent < TARGET_IDLE_CPU else '**no**'} |",
        f"| … the same without its first {idle['settle_s']:g} s ({idle['cpu_in_first_settle_s']} s CPU in those) | "
        + (f"{steady:.2f} % of one core" if steady is not None else "span too short")
        + f" | < {TARGET_IDLE_CPU:g} % | "
        + ("no data" if steady is None else "yes" if steady < TARGET_IDLE_CPU else "**no**")
        + " |",
        f"| end of speech → transcription call | {fmt_spread(e2c, 'ms')} | ≤ {TARGET_END_TO_CALL:g} ms each | "
        f"{met(e2c, TARGET_END_TO_CALL)} |",
        f"| first complete sentence → first audio | {fmt_spread(s2a, 'ms')} | ≤ {TARGET_SENTENCE_TO_AUDIO:g} ms each | "
        f"{met(s2a, TARGET_SENTENCE_TO_AUDIO)} |",
        f"| first token → first audio | {fmt_spread(req['after_first_token_ms'], 'ms')} | — | — |",
        f"| transcription (Qwen2-Audio) | {fmt_spread(req['transcribe'], 'ms')} | — | — |",
        f"| answer: first token, after its call | {fmt_spread(req['first_token'], 'ms')} | — | — |",
        f"| answer: first complete sentence, after its call | {fmt_spread(req['first_sentence'], 'ms')} | — | — |",
        f"| answer: whole answer ({MAX_NEW_TOKENS} tokens at most) | {fmt_spread(req['answer'], 'ms')} | — | — |",
        f"| memory with both models loaded, after `listening` | {fmt_memory(results['memory_after_listening'])} "
        "| — | — |",
        f"| memory after the warm-up | {fmt_memory(results['memory_after_warm_up'])} | — | — |",
        f"| memory after the requests | {fmt_memory(results['memory_after_requests'])} | — | — |",
        f"| RSS after each request: first → last (peak) | {rss[0]:.0f} → {rss[-1]:.0f} MiB ({max(rss):.0f}) | — | — |",
        f"| start → `listening`, warm compiled-model cache (second start) | {warm:.2f} s | — | — |",
        f"| start → `warmed_up` (each model ran once; warm-up {start['warm_up_ms']} ms), warm cache | "
        f"{start['warmed_up_s']:.2f} s | — | — |",
        f"| start → `listening`, empty cache (first start) | {cold:.2f} s | — | — |",
    ]
    return "\n".join(lines)


def summarise(requests: list[dict[str, Any]]) -> dict[str, Any]:
    def values(get: Callable[[dict], Any]) -> list[float]:
        return [float(v) for r in requests if (v := get(r)) is not None]

    out = {key: spread(values(lambda r, k=key: r["timings"].get(k))) for key in (
        "end_to_model_call", "transcribe", "first_token", "first_sentence", "answer"
    )}  # fmt: skip
    for key in ("after_first_token_ms", "after_first_sentence_ms"):
        out[key] = spread(values(lambda r, k=key: r.get(k)))
    out["spoken"] = sum("speak_start" in r["events"] for r in requests)
    out["asked"] = len(requests)
    return out


# -- main --------------------------------------------------------------------------------------


def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from cli_runner import headless_env
    from facilities import pulse_virtual_mic, xvfb

    models = work.parent if args.workdir else work
    if args.audio_dir and args.vl_dir:
        audio_dir, vl_dir = Path(args.audio_dir), Path(args.vl_dir)
    else:
        progress("building and converting the tiny models (pass --audio-dir/--vl-dir for real ones)")
        tiny_audio, tiny_vl = tiny_models(models / "models")
        audio_dir = Path(args.audio_dir) if args.audio_dir else tiny_audio
        vl_dir = Path(args.vl_dir) if args.vl_dir else tiny_vl
    used = {"audio": describe_model(audio_dir, "qwen2-audio"), "vl": describe_model(vl_dir, "qwen2-vl")}
    tiny = not (args.audio_dir and args.vl_dir)
    for name, info in used.items():
        progress(f"{name} model: {info['folder']} ({info['weight_mib']} MiB of weights, from {info['source']})")
    config = write_config(work / "config.toml", audio_dir, vl_dir, work / "ov-cache")
    wavs = []
    for i, text in enumerate((QUESTIONS * (1 + args.requests // len(QUESTIONS)))[: args.requests]):
        wavs.append((text, request_wav(work, i, text)))

    results: dict[str, Any] = {"machine": machine(), "models": used, "tiny_models": tiny, "settings": vars(args)}
    # A full-HD X screen, so a request routed to the screen is answered from a real screenshot.
    with pulse_virtual_mic(speaker="speaker") as pulse, silence_into(pulse), xvfb(1920, 1080) as display:
        env = headless_env(work / "home", **pulse.env(), DISPLAY=display)
        progress("first start (empty compiled-model cache)")
        with running(config, env, work, "first-start") as service:
            cold = seconds_to("listening", service, args.start_timeout)
        cache_files = [p for p in (work / "ov-cache").rglob("*") if p.is_file()]
        progress(f"first start: listening after {cold:.2f} s; {len(cache_files)} files in the compiled-model cache")
        progress("second start (warm cache)")
        with running(config, env, work, "second-start") as service:
            warm = seconds_to("listening", service, args.start_timeout)
            mem = memory(service.proc.pid)
            streams = source_outputs(pulse)
            progress(f"second start: listening after {warm:.2f} s; RSS {mem['rss_mib']:.0f} MiB; {streams} mic stream")
            # The service then runs each model once on a dummy request ([runtime] warm_up): idle starts after.
            warmed = seconds_to("warmed_up", service, args.start_timeout)
            warm_up_ms = next(e for e in service.events if e["event"] == "warmed_up").get("ms")
            mem_warmed = memory(service.proc.pid)
            progress(f"warmed up after {warmed:.2f} s (warm-up {warm_up_ms} ms); RSS {mem_warmed['rss_mib']:.0f} MiB")
            progress(f"measuring CPU while the microphone hears silence for {args.idle_seconds:g} s")
            idle = idle_cpu(service, args.idle_seconds)
            progress(f"idle: {idle['percent_of_one_core']:.2f} % of one core; busiest: {idle['busiest_threads'][:3]}")
            requests = []
            for i, (text, wav) in enumerate(wavs):
                progress(f"request {i + 1}/{len(wavs)}: {text!r}")
                result = ask(service, pulse, wav, args.request_timeout)
                result["question"] = text
                time.sleep(0.6)  # past the speaking tail: the microphone counts again
                result["memory_after"] = memory(service.proc.pid)
                requests.append(result)
                progress(
                    f"  heard {result['transcript']!r} -> {result['route']}; timings {result['timings']}; "
                    f"first audio {result['after_first_token_ms']} ms after the first token, "
                    f"{result['after_first_sentence_ms']} ms after the first sentence; "
                    f"RSS {result['memory_after']['rss_mib']:.0f} MiB"
                )
            after = memory(service.proc.pid)
    results.update(
        start={
            "cold_s": round(cold, 3),
            "warm_s": round(warm, 3),
            "warmed_up_s": round(warmed, 3),
            "warm_up_ms": warm_up_ms,
            "cache_files": len(cache_files),
        },
        memory_after_listening=mem,
        memory_after_warm_up=mem_warmed,
        memory_after_requests=after,
        microphone_streams=streams,
        idle=idle,
        requests=requests,
        requests_summary=summarise(requests),
        memory_growth_per_request_mib=spread(
            [b["memory_after"]["rss_mib"] - a["memory_after"]["rss_mib"] for a, b in itertools.pairwise(requests)]
        ),
    )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle-seconds", type=float, default=60.0, help="how long to measure idle CPU (60)")
    parser.add_argument("--requests", type=int, default=5, help="spoken questions to ask (5)")
    parser.add_argument("--audio-dir", help="converted Qwen2-Audio folder (default: a tiny one, built here)")
    parser.add_argument("--vl-dir", help="converted Qwen2-VL folder (default: a tiny one, built here)")
    parser.add_argument("--workdir", type=Path, help="keep the tiny models here between runs (default: a temp dir)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the raw numbers to FILE")
    parser.add_argument("--start-timeout", type=float, default=300.0, help="seconds to wait for `listening`")
    parser.add_argument("--request-timeout", type=float, default=180.0, help="seconds to wait for each answer")
    args = parser.parse_args()
    missing = [p for p in PROGRAMS if shutil.which(p) is None]
    if missing:
        print(f"service.py: missing programs: {', '.join(missing)} (bash scripts/install.sh --test)", file=sys.stderr)
        return 2
    if args.requests < 1 or args.idle_seconds <= 0:
        print("service.py: --requests must be at least 1 and --idle-seconds positive", file=sys.stderr)
        return 2
    # Ctrl-C (even when started with SIGINT ignored, as from a script's `&`) and SIGTERM unwind the stack,
    # so every `finally` stops what it started.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    began = time.monotonic()
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="service-bench-", dir=args.workdir) as tmp:
        try:
            results = measure(args, Path(tmp))
        except KeyboardInterrupt:
            progress("interrupted; everything started here has been stopped")
            return 130
    results["total_s"] = round(time.monotonic() - began, 1)
    print(header(results))
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str) + "\n")
        progress(f"raw numbers written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
