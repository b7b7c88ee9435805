"""Latency benchmark: the silence after a spoken question, with both full-size models, stage by stage.

`assistant run` runs on the full-size scripted Qwen2-Audio-7B and Qwen2-VL-2B (`scripted_models.py`: the
real shapes and INT4 conversion, so the compute per token is the real one, and they say a realistic amount:
a 12-token transcript, a two-sentence answer). Questions are spoken (espeak-ng) into the PulseAudio virtual
microphone; a full-HD Xvfb screen answers the screen route; speech goes to a null sink. Every session is a
fresh service (a fresh conversation), started on a warm compiled-model cache:

- voice (`always`): a 3 s question, then the same question as a follow-up (one turn of history);
- long (`always`): a 6 s question (the scripted model hears the same 12 tokens: the encoder and prefill
  are the 6 s clip's, the transcript is not longer), then a 5 s remark transcribed in full;
- screen (`always`, "capital of peru" as a screen phrase): the 3 s question answered from a screenshot;
- wake (`wake_phrase`, wake phrase "hey computer"): the 5 s remark (not addressed to the assistant), then
  the same remark again with the 3 s question right after it, asked by push-to-talk (SIGUSR1) as soon as
  the remark has been played; last, the remark asked by push-to-talk, so its full transcript's CPU in
  the same mode is the yardstick of what the unaddressed one cost.

Per request it reports the service's own stage timings (end of speech is when the endpointer ends the
utterance, `[audio] end_silence_ms` after the last speech frame): transcript inputs, audio encoder,
transcript prefill, transcript tokens, routing, answer inputs, encoder, prefill, tokens up to the first
sentence, synthesis, and end of speech -> first audio; and the CPU time (all threads) the remark costs.
`--baseline REF` runs the same sessions on earlier code (a git worktree of REF, alternated with this
checkout's) so each change is measured side by side; older code lacks some stage figures, but end of
speech -> first audio is reconstructed from the events every version writes. `--baseline-models` gives
the baselines the folders their code converted, `--other-models` runs this checkout on other folders, and
`--memory-limit 9` runs this checkout a second time in a 9 GiB memory cgroup (its peak, the times the
limit was reached and OOM kills are reported), after starting it once in a cgroup of half that, which it
must refuse at start in one line.

    python benchmarks/latency.py --workdir /tmp/bench [--repeats 3] [--baseline 3cab61c] [--json FILE]
    python benchmarks/latency.py --workdir /tmp/bench --sessions voice screen --memory-limit 9 \
        --baseline 933a746 --baseline-models /tmp/old/audio-7b-scripted,/tmp/old/vl-2b-scripted
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripted_models import ANSWER, HEARD, SCREEN_ANSWER, ensure_models  # this folder is on sys.path

from service import SAMPLE_RATE, Service, machine, memory, progress, running, silence_into

ROOT = Path(__file__).resolve().parents[1]

SPEECH = {
    "q3": "Tell me please, what is the capital city of Peru?",
    "q6": "I was reading about South America this morning, so tell me please, what is the capital city of Peru?",
    "u5": "I think we should meet at noon tomorrow to talk about the budget for next year, then have lunch.",
}
CURRENT = "this checkout"


@dataclass(frozen=True)
class Step:
    label: str
    speech: str  # a key of SPEECH
    expect: str = "answer"  # or "ignored": not addressed, nothing is said
    push_to_talk: bool = False
    then_at_once: bool = False  # the next step is played as soon as this one has been (no waiting)


@dataclass(frozen=True)
class Session:
    name: str
    mode: str
    steps: tuple[Step, ...]
    wake_phrases: tuple[str, ...] = ("ok assistant",)
    screen_phrases: tuple[str, ...] = ("on my screen",)


# The remark asked by push-to-talk: transcribed in full in the same mode, the head check's yardstick.
REMARK_ASKED = "5 s remark, asked by push-to-talk (transcribed in full)"

SESSIONS = (
    Session("voice", "always", (Step("3 s question", "q3"), Step("follow-up (1 turn of history)", "q3"))),
    Session("long", "always", (Step("6 s question", "q6"), Step("5 s remark, transcribed in full", "u5"))),
    Session("screen", "always", (Step("screen question (1920x1080)", "q3"),), screen_phrases=("capital of peru",)),
    Session(
        "wake",
        "wake_phrase",
        (
            Step("5 s remark, not addressed", "u5", expect="ignored"),
            Step("5 s remark, then at once", "u5", expect="ignored", then_at_once=True),
            Step("3 s question right after the remark", "q3", push_to_talk=True),
            Step(REMARK_ASKED, "u5", push_to_talk=True),
        ),
        wake_phrases=("hey computer",),
    ),
)


@dataclass
class Version:
    label: str
    code: Path  # the folder whose `assistant` package runs
    results: list[dict[str, Any]] = field(default_factory=list)
    sessions: tuple[str, ...] | None = None  # the sessions it runs (None: all)
    models: dict | None = None  # other model folders than the scripted ones ({"audio": {"folder": ...}, ...})
    memory_limit: int | None = None  # bytes: the service runs in a memory cgroup of this limit


# -- the sessions ------------------------------------------------------------------------------------


def write_config(path: Path, models: dict, cache: Path, session: Session) -> Path:
    def toml_list(items: tuple[str, ...]) -> str:
        return "[" + ", ".join(json.dumps(i) for i in items) + "]"

    path.write_text(
        f'[models]\naudio_dir = "{models["audio"]["folder"]}"\nvl_dir = "{models["vl"]["folder"]}"\n'
        f'[runtime]\ncache_dir = "{cache}"\n'
        f'[activation]\nmode = "{session.mode}"\nwake_phrases = {toml_list(session.wake_phrases)}\n'
        f"[routing]\nscreen_phrases = {toml_list(session.screen_phrases)}\n"
        "[tts]\nenabled = true\n[tray]\nenabled = false\n",
        encoding="utf-8",
    )
    return path


def speech_wavs(folder: Path) -> dict[str, tuple[Path, float]]:
    """Each utterance as a wav (0.5 s of silence, the speech, 1 s of silence) and its speech's length."""
    import numpy as np
    import soundfile

    from speech import spoken

    out = {}
    for key, text in SPEECH.items():
        speech = spoken(text)
        path = folder / f"{key}.wav"
        silence = np.zeros(SAMPLE_RATE // 2, np.float32)
        soundfile.write(path, np.concatenate([silence, speech, silence, silence]), SAMPLE_RATE)
        out[key] = (path, len(speech) / SAMPLE_RATE)
    return out


def cpu_seconds(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def first(events: list[dict], name: str) -> dict | None:
    return next((e for e in events if e["event"] == name), None)


def settle(service: Service, since: int, step: Step, timeout: float) -> list[dict]:
    """The step's events once it is done: spoken and finished, or ignored."""

    def done(events: list[dict]) -> bool:
        names = [e["event"] for e in events]
        if step.expect == "ignored":
            return "ignored" in names or "answer" in names
        return "speak_end" in names or "error" in names

    return service.wait_for(done, since, timeout, f"{step.label!r} to be done")


def run_session(version: Version, session: Session, env: dict, work: Path, pulse, wavs, models, timeout) -> None:
    config = write_config(work / f"{session.name}.toml", version.models or models, work / "ov-cache", session)
    name = f"{version.label.replace(' ', '-')}-{session.name}"
    check_code(env, version)
    from facilities import memory_cgroup  # the tests' folder is on sys.path (main)

    with contextlib.ExitStack() as stack:
        group = stack.enter_context(memory_cgroup(version.memory_limit)) if version.memory_limit else None
        service = stack.enter_context(running(config, env, work, name, version.code, group.wrap if group else None))
        _run_steps(version, session, service, pulse, wavs, timeout)
        version.results[-1]["memory_after_session"] = memory(service.proc.pid)
        if group is not None:
            version.results[-1]["cgroup"] = group.figures()


def _run_steps(version: Version, session: Session, service: Service, pulse, wavs, timeout) -> None:
    """Warm-up, then the session's steps in turn; each request's figures go to the version's results."""
    service.wait_for(lambda ev: any(e["event"] == "warmed_up" for e in ev), 0, timeout, "warmed_up")
    time.sleep(1.0)
    pending: tuple[Step, int, float] | None = None
    for step in session.steps:
        since, cpu0 = len(service.events), cpu_seconds(service.proc.pid)
        if step.push_to_talk:
            service.proc.send_signal(signal.SIGUSR1)
        pulse.play_into_microphone(wavs[step.speech][0])
        if step.then_at_once:
            pending = (step, since, cpu0)
            continue
        if pending is not None:  # the step played at once before this one: both settle now
            earlier = settle(service, pending[1], pending[0], timeout)
            version.results.append(summarise(session, pending[0], earlier, None))
            # This step's events come after the earlier utterance's decision (requests are answered in turn).
            since = max(since, pending[1] + last_decision(earlier) + 1)
            pending = None
        events = settle(service, since, step, timeout)
        cpu = cpu_seconds(service.proc.pid) - cpu0
        version.results.append(summarise(session, step, events, cpu))
        progress(f"  {version.label} / {session.name} / {step.label}: {brief(version.results[-1])}")
        time.sleep(0.8)  # past the speaking tail: the microphone counts again


def refused_at_start(env: dict, work: Path, models: dict, limit: int, timeout: float) -> dict[str, Any]:
    """The service started in a memory cgroup too small for both models: how it ends, and how soon."""
    from facilities import memory_cgroup

    config = write_config(work / "refused.toml", models, work / "ov-cache", SESSIONS[0])
    command = [sys.executable, "-m", "assistant", "run", "--config", str(config), "--no-tray"]
    with memory_cgroup(limit) as group:
        started = time.monotonic()
        done = subprocess.run(
            group.wrap(command), env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
        )
        figures = group.figures()
    lines = done.stderr.strip().splitlines()
    return {
        "limit_gib": round(limit / 2**30, 2),
        "exit_code": done.returncode,
        "seconds": round(time.monotonic() - started, 2),
        "stderr_lines": len(lines),
        "last_line": lines[-1] if lines else "",
        "cgroup": figures,
    }


def last_decision(events: list[dict]) -> int:
    """Index of the event that settled an utterance: its `ignored`, or its `answer`."""
    return max(i for i, e in enumerate(events) if e["event"] in ("ignored", "answer"))


def check_code(env: dict, version: Version) -> None:
    """The service of a version runs that version's code (`python -m` started in its folder), else the
    comparison would compare this checkout with itself."""
    found = subprocess.run(
        [sys.executable, "-c", "import assistant; print(assistant.__file__)"],
        env=env,
        cwd=version.code,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(found).resolve().is_relative_to(version.code.resolve()):
        raise RuntimeError(f"{version.label}: `assistant` is imported from {found}, not from {version.code}")


def summarise(session: Session, step: Step, events: list[dict], cpu_s: float | None) -> dict[str, Any]:
    """One request's figures from its events (any version of the service writes these)."""
    heard, answer, start = first(events, "transcript"), first(events, "answer"), first(events, "speak_start")
    ignored = first(events, "ignored")
    timings = (answer or {}).get("timings", {})
    out: dict[str, Any] = {
        "session": session.name,
        "step": step.label,
        "speech": step.speech,
        "events": [e["event"] for e in events],
        "transcript": (heard or {}).get("text"),
        "transcript_tokens": (heard or {}).get("tokens"),
        "transcript_ms": (heard or {}).get("ms"),
        "transcript_cpu_ms": (heard or {}).get("cpu_ms"),
        "stopped_early": (heard or {}).get("stopped_early"),
        "route": (first(events, "route") or {}).get("route"),
        "answer": (answer or {}).get("text"),
        "ignored": (ignored or {}).get("reason"),
        "timings": timings,
        "tokens": (answer or {}).get("tokens", {}),
        "speak_start": {k: v for k, v in (start or {}).items() if k not in ("event", "t")},
        "cpu_s": cpu_s,
        "errors": [e.get("message") for e in events if e["event"] == "error"],
    }
    if start is not None and heard is not None and "end_to_model_call" in timings:
        # The service's clock at the end of speech: the transcript event came transcribe ms after the
        # model call, which came end_to_model_call ms after the endpoint.
        end_of_speech = heard["t"] - (heard["ms"] + timings["end_to_model_call"]) / 1000
        out["end_to_first_audio_ms"] = round(1000 * (start["t"] - end_of_speech), 1)
    expected = SCREEN_ANSWER if out["route"] == "screen" else ANSWER
    out["said_as_scripted"] = step.expect == "ignored" or (out["transcript"] == HEARD and out["answer"] == expected)
    return out


def brief(result: dict[str, Any]) -> str:
    if result["ignored"]:
        cpu = f"{result['cpu_s']:.2f} s CPU" if result["cpu_s"] is not None else "CPU not measured alone"
        return f"ignored ({result['ignored']}; {result['transcript_tokens']} transcript tokens, {cpu})"
    return (
        f"heard {result['transcript']!r} -> {result['route']}; end of speech -> first audio "
        f"{result.get('end_to_first_audio_ms')} ms; {result['errors'] or ''}"
    )


# -- versions --------------------------------------------------------------------------------------


def model_folders(given: str) -> dict:
    """`AUDIO_DIR,VL_DIR` as the models record names them."""
    audio, _, vl = given.partition(",")
    if not (audio and vl):
        raise SystemExit(f"model folders are given as AUDIO_DIR,VL_DIR, not {given!r}")
    return {"audio": {"folder": audio}, "vl": {"folder": vl}}


def other_models(given: str) -> Version:
    """`LABEL=AUDIO_DIR,VL_DIR`: this checkout on other model folders."""
    label, _, folders = given.partition("=")
    if not label:
        raise SystemExit(f"--other-models wants LABEL=AUDIO_DIR,VL_DIR, not {given!r}")
    return Version(label, ROOT, models=model_folders(folders))


@contextlib.contextmanager
def versions(refs: list[str], work: Path, models: dict | None = None) -> Iterator[list[Version]]:
    """This checkout, and a git worktree of each baseline ref (removed at the end); "REF:a,b" runs only
    sessions a and b on it. The baselines run on `models` when given (the folders their code converted)."""
    made: list[Path] = []
    out = [Version(CURRENT, ROOT)]
    try:
        for given in refs:
            ref, _, only = given.partition(":")
            folder = work / f"code-{ref.replace('/', '-')}"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(folder), ref], check=True)
            made.append(folder)
            commit = subprocess.run(
                ["git", "-C", str(folder), "log", "-1", "--format=%h %s"], capture_output=True, text=True, check=True
            ).stdout.strip()
            out.append(Version(f"baseline {ref}", folder, [], tuple(only.split(",")) if only else None, models))
            progress(f"baseline {ref}: {commit[:100]}")
        yield out
    finally:
        for folder in made:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(folder)], check=False)


# -- the table -------------------------------------------------------------------------------------


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def fmt(value: float | None, unit: str = "", digits: int = 0) -> str:
    return "–" if value is None else f"{value:.{digits}f}{unit}"


STAGES = (
    ("endpoint → transcription call", "end_to_model_call"),
    ("transcript inputs (log-mel, tokens)", "transcript_inputs"),
    ("audio encoder", "transcript_encode"),
    ("transcript prefill", "transcript_prefill"),
    ("transcript tokens", "transcript_tokens"),
    ("routing", "routing"),
    ("screenshot", "screenshot"),
    ("answer inputs (screen: image preprocessing)", "answer_inputs"),
    ("answer embeddings (screen: vision encoder)", "answer_encode"),
    ("answer prefill", "answer_prefill"),
    ("answer's first token, from the transcription call", "first_token"),
)
ANSWERED = ("3 s question", "follow-up (1 turn of history)", "6 s question", "screen question (1920x1080)")
ALONE, AFTER = "3 s question", "3 s question right after the remark"
MEMORY_KEYS = ("rss_mib", "anon_mib", "file_mib")
REMARK, REMARK_FULL = "5 s remark, not addressed", "5 s remark, transcribed in full"


def rows_of(results: list[dict[str, Any]], step: str) -> list[dict[str, Any]]:
    return [r for r in results if r["step"] == step]


def stage_ms(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """Median ms of each stage over the requests of one kind (None where the version does not report it)."""
    out: dict[str, float | None] = {
        key: median([r["timings"][key] for r in rows if key in r["timings"]]) for _, key in STAGES
    }
    out["to_first_sentence"] = median(
        [r["timings"]["first_sentence"] - r["timings"]["first_token"] for r in rows if "first_sentence" in r["timings"]]
    )
    out["sentence_to_audio"] = median(
        [r["speak_start"]["after_first_sentence_ms"] for r in rows if "after_first_sentence_ms" in r["speak_start"]]
    )
    out["synthesis"] = median([r["speak_start"]["synthesis_ms"] for r in rows if "synthesis_ms" in r["speak_start"]])
    out["total"] = median([r["end_to_first_audio_ms"] for r in rows if "end_to_first_audio_ms" in r])
    out["unavoidable"] = median([u for r in rows if (u := unavoidable_ms(r)) is not None])
    return out


def unavoidable_ms(r: dict[str, Any]) -> float | None:
    """The issue's sum of unavoidable parts for one request: encoder + both prefills + transcript tokens +
    the first sentence's tokens at the measured ms/token + synthesis of the first sentence.

    The ms/token of a voice answer is the transcript's (the same model, decoding greedily with nothing else
    running): what the answer's own steps cost beyond that is overhead. A screen answer's is its own, up to
    the first sentence (the VL model decodes nothing else)."""
    t, tokens, start = r["timings"], r["tokens"], r["speak_start"]
    need = ("transcript_encode", "transcript_prefill", "transcript_tokens", "answer_encode", "answer_prefill")
    if not all(k in t for k in need) or "first_sentence" not in t or "synthesis_ms" not in start:
        return None
    steps = max(0, tokens.get("answer_to_first_sentence", 1) - 1)  # the first token comes with the prefill
    if r["route"] == "screen":
        per_token = (t["first_sentence"] - t["first_token"]) / max(1, steps)
    else:
        per_token = t["transcript_tokens"] / max(1, tokens.get("transcript_new", 1) - 1)
    encode = t["answer_encode"] if r["route"] == "screen" else 0.0  # a voice answer's is cache bookkeeping
    return sum(t[k] for k in need[:3]) + encode + t["answer_prefill"] + steps * per_token + start["synthesis_ms"]


def cpu_of_remark(rows: list[dict[str, Any]]) -> float | None:
    return median([r["cpu_s"] for r in rows if r["cpu_s"] is not None and r["ignored"] is not None])


def render(run: dict[str, Any]) -> str:
    versions_ = run["versions"]
    labels = list(versions_)
    steps = [s.label for session in SESSIONS for s in session.steps if s.label != "5 s remark, then at once"]
    m = run["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores. Full-size scripted Qwen2-Audio-7B and Qwen2-VL-2B (INT4 "
        "defaults; `benchmarks/scripted_models.py`), spoken to through the PulseAudio virtual microphone; "
        f"{run['repeats']} fresh services per session and version, alternated; medians. Speech: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in run["speech_seconds"].items())
        + ". End of speech is the endpointer's decision, `end_silence_ms` (700) after the last speech frame;"
        " first audio is when the first synthesised sentence starts playing.",
        "",
        "### End of speech → first audio",
        "",
        "| request | " + " | ".join(labels) + " |",
        "|---|" + "---|" * len(labels),
    ]
    for step in steps:
        cells = []
        for label in labels:
            rows = rows_of(versions_[label], step)
            if not rows:
                cells.append("–")
            elif step == REMARK:
                ignored = sum(r["ignored"] is not None for r in rows)
                tokens = median([r["transcript_tokens"] for r in rows if r["transcript_tokens"] is not None])
                cells.append(
                    f"ignored {ignored}/{len(rows)}, {fmt(tokens)} tokens, CPU {fmt(cpu_of_remark(rows), ' s', 2)}"
                )
            else:
                total = median([r["end_to_first_audio_ms"] for r in rows if "end_to_first_audio_ms" in r])
                ok = sum(r["said_as_scripted"] for r in rows)
                cells.append(f"{fmt(total and total / 1000, ' s', 2)} ({ok}/{len(rows)} answered as scripted)")
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    for label in labels:
        per_step = {s: stage_ms(rows_of(versions_[label], s)) for s in ANSWERED}
        if all(v["transcript_prefill"] is None for v in per_step.values()):
            continue  # this version does not report its stages
        lines += ["", f"### Stages, {label} (ms, medians)", ""]
        lines += ["| stage | " + " | ".join(ANSWERED) + " |", "|---|" + "---|" * len(ANSWERED)]
        names = [
            *STAGES,
            ("answer tokens after the first, up to the first sentence", "to_first_sentence"),
            ("synthesis of the first sentence", "synthesis"),
            ("first sentence → first audio", "sentence_to_audio"),
            ("**end of speech → first audio**", "total"),
            ("sum of the unavoidable parts", "unavoidable"),
        ]
        for title, key in names:
            lines.append(f"| {title} | " + " | ".join(fmt(per_step[s].get(key)) for s in ANSWERED) + " |")
    lines += ["", "### The service's memory at the end of a session (MiB, medians)", ""]
    lines += ["| version | RSS | anonymous | mapped files |", "|---|---|---|---|"]
    for label in labels:
        seen = [r["memory_after_session"] for r in versions_[label] if "memory_after_session" in r]
        cells = [fmt(median([m.get(key) for m in seen if m.get(key) is not None])) for key in MEMORY_KEYS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += limits(run)
    lines += ["", targets(versions_) if CURRENT in versions_ else ""]
    return "\n".join(lines) + "\n"


def limits(run: dict[str, Any]) -> list[str]:
    """What the memory cgroups of the versions run in did, and the start in one too small."""
    lines = []
    limited = {label: [r["cgroup"] for r in rows if "cgroup" in r] for label, rows in run["versions"].items()}
    limited = {label: seen for label, seen in limited.items() if seen}
    if limited:
        lines += ["", "### In a memory cgroup (per session; the peak includes page cache)", ""]
        lines += ["| version | sessions | peak charged, GiB (max) | times the limit was reached (max) | OOM kills |"]
        lines += ["|---|---|---|---|---|"]
        for label, seen in limited.items():
            peak = max(g.get("peak_bytes", 0) for g in seen) / 2**30
            reached = max(g.get("limit_reached", 0) for g in seen)
            kills = sum(g.get("oom_kills", 0) for g in seen)
            lines.append(f"| {label} | {len(seen)} | {peak:.2f} | {reached} | {kills} |")
    refused = run.get("refused")
    if refused:
        lines += [
            "",
            f"Started in a {refused['limit_gib']} GiB cgroup, the service exited with code {refused['exit_code']} "
            f"after {refused['seconds']:.1f} s, in {refused['stderr_lines']} line(s): `{refused['last_line']}`",
        ]
    return lines


def targets(versions_: dict[str, list[dict[str, Any]]]) -> str:
    results = versions_[CURRENT]
    alone, after = stage_ms(rows_of(results, ALONE)), stage_ms(rows_of(results, AFTER))
    remark = cpu_of_remark(rows_of(results, REMARK))
    full = median([r["transcript_cpu_ms"] / 1000 for r in rows_of(results, REMARK_FULL) if r["transcript_cpu_ms"]])
    asked = median([r["transcript_cpu_ms"] / 1000 for r in rows_of(results, REMARK_ASKED) if r["transcript_cpu_ms"]])
    # A version that transcribed the remark in full in wake-phrase mode: its CPU was measured the same way.
    whole = {
        label: cpu_of_remark(rows_of(rows, REMARK))
        for label, rows in versions_.items()
        if rows_of(rows, REMARK) and all(not r["stopped_early"] for r in rows_of(rows, REMARK))
    }
    lines = ["### Targets (this checkout)", "", "| measure | measured | target | met |", "|---|---|---|---|"]
    if alone["total"] and alone["unavoidable"]:
        ratio = alone["total"] / alone["unavoidable"]
        lines.append(
            f"| 3 s question: end of speech → first audio against the sum of its unavoidable parts | "
            f"{alone['total'] / 1000:.2f} s / {alone['unavoidable'] / 1000:.2f} s = {ratio:.2f}x | ≤ 1.15x | "
            f"{'yes' if ratio <= 1.15 else 'no'} |"
        )
    if remark is not None and full:
        share = remark / full
        lines.append(
            f"| CPU of a 5 s remark not addressed (all the service's threads, from its first sound to its end) "
            f"against a full transcript of it (the same remark in the long session, its transcript's CPU) | "
            f"{remark:.2f} s / {full:.2f} s = {100 * share:.0f}% | ≤ 25% | {'yes' if share <= 0.25 else 'no'} |"
        )
    if remark is not None and asked:
        share = remark / asked
        lines.append(
            f"| … against the same remark asked by push-to-talk in wake-phrase mode (its full transcript's CPU) "
            f"| {remark:.2f} s / {asked:.2f} s = {100 * share:.0f}% | ≤ 25% | {'yes' if share <= 0.25 else 'no'} |"
        )
    for label, cpu in whole.items():
        if remark is not None and cpu:
            share = remark / cpu
            lines.append(
                f"| … against the remark transcribed in full in wake-phrase mode by {label} (measured the same way) "
                f"| {remark:.2f} s / {cpu:.2f} s = {100 * share:.0f}% | ≤ 25% | {'yes' if share <= 0.25 else 'no'} |"
            )
    if alone["total"] and after["total"]:
        late = (after["total"] - alone["total"]) / 1000
        waited = after["end_to_model_call"] or 0.0
        lines.append(
            f"| 3 s question right after the remark, later than alone | {late:+.2f} s ({after['total'] / 1000:.2f} "
            f"against {alone['total'] / 1000:.2f} s; it waited {waited:.1f} ms for the model, alone "
            f"{alone['end_to_model_call'] or 0.0:.1f} ms) | ≤ +0.5 s | {'yes' if late <= 0.5 else 'no'} |"
        )
    return "\n".join(lines) + "\n"


# -- main ------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, help="scripted models are built and kept here")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--baseline", action="append", default=[], metavar="REF[:SESSIONS]", help="earlier code to compare"
    )
    parser.add_argument("--sessions", nargs="*", default=[s.name for s in SESSIONS], help="which sessions to run")
    parser.add_argument(
        "--baseline-models",
        metavar="AUDIO_DIR,VL_DIR",
        help="the folders the baselines run on (converted by their code; default: the scripted ones)",
    )
    parser.add_argument(
        "--other-models",
        action="append",
        default=[],
        metavar="LABEL=AUDIO_DIR,VL_DIR",
        help="also run this checkout on these model folders (e.g. an earlier conversion), alternated",
    )
    parser.add_argument(
        "--memory-limit",
        type=float,
        metavar="GIB",
        help="also run this checkout in a memory cgroup of GIB, alternated, and start it once in one of half that",
    )
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the raw numbers to FILE")
    parser.add_argument("--render", type=Path, metavar="FILE", help="only print the tables of an earlier --json")
    args = parser.parse_args()
    if args.render:
        print(render(json.loads(args.render.read_text())))
        return 0
    sys.path.insert(0, str(ROOT / "tests"))  # the tests' OS facilities: PulseAudio virtual mic, espeak-ng speech
    from cli_runner import headless_env
    from facilities import pulse_virtual_mic, xvfb

    if args.workdir is None:
        parser.error("--workdir is required")
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.workdir.mkdir(parents=True, exist_ok=True)
    models = ensure_models(args.workdir)
    work = args.workdir / "latency"
    work.mkdir(exist_ok=True)
    wavs = speech_wavs(work)
    chosen = [s for s in SESSIONS if s.name in args.sessions]
    began = time.monotonic()
    with (
        versions(args.baseline, work, model_folders(args.baseline_models) if args.baseline_models else None) as runs,
        pulse_virtual_mic(speaker="speaker") as pulse,
        silence_into(pulse),
        xvfb(1920, 1080) as display,
    ):
        env = headless_env(work / "home", **pulse.env(), DISPLAY=display)
        runs += [other_models(given) for given in args.other_models]
        refused = None
        if args.memory_limit:
            limit = int(args.memory_limit * 2**30)
            runs.append(Version(f"this checkout in {args.memory_limit:g} GiB", ROOT, memory_limit=limit))
            refused = refused_at_start(env, work, models, limit // 2, args.timeout)
            progress(f"in {limit / 2**31:.1f} GiB: {refused}")
        for repeat in range(args.repeats):
            for session in chosen:
                for version in runs if repeat % 2 == 0 else runs[::-1]:  # A B, B A: drift hits both alike
                    if version.sessions is not None and session.name not in version.sessions:
                        continue
                    progress(f"repeat {repeat + 1}/{args.repeats}: {session.name} on {version.label}")
                    run_session(version, session, env, work, pulse, wavs, models, args.timeout)
        run = {
            "machine": machine(),
            "repeats": args.repeats,
            "models": models,
            "speech_seconds": {k: round(v[1], 2) for k, v in wavs.items()},
            "versions": {v.label: v.results for v in runs},
            "refused": refused,
            "total_s": round(time.monotonic() - began, 1),
        }
    print(render(run))
    if args.json:
        args.json.write_text(json.dumps(run, indent=1, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
