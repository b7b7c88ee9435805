"""`assistant run` end to end on the tiny models: a spoken file through endpointing, transcript,
activation, routing and answer, with the event log; speech out on a virtual speaker; SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile

from cli_runner import headless_env, run_cli
from facilities import memory_cgroup, pulse_virtual_mic
from speech import SAMPLE_RATE, spoken

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def files(vl_f32, audio_f32, tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    first, second = spoken("What is the capital of Peru?"), spoken("How do I say thank you in Japanese?")
    silence = lambda s: np.zeros(int(s * SAMPLE_RATE), np.float32)  # noqa: E731
    audio = np.concatenate([silence(1.0), first, silence(2.0), second, silence(1.5)])
    soundfile.write(root / "two-questions.wav", audio, SAMPLE_RATE)
    truths = []
    offset = 1.0
    for part, gap in ((first, 2.0), (second, 1.5)):
        loud = np.flatnonzero(np.abs(part) > 0.02)
        truths.append((offset + loud[0] / SAMPLE_RATE, offset + (loud[-1] + 1) / SAMPLE_RATE))
        offset += len(part) / SAMPLE_RATE + gap
    soundfile.write(root / "silence.wav", silence(60.0), SAMPLE_RATE)
    (root / "corrupt.wav").write_bytes(b"RIFF....WAVEfmt nonsense")

    def config(mode="always", tts=False):
        path = root / f"config-{mode}-{tts}.toml"
        path.write_text(
            f'[models]\naudio_dir = "{audio_f32}"\nvl_dir = "{vl_f32}"\n[runtime]\ninference_precision = "f32"\n'
            f'[generation]\nmax_new_tokens = 6\nsampling = "config"\ntemperature = 0.0\n[activation]\nmode = "{mode}"\n'
            f"[tts]\nenabled = {'true' if tts else 'false'}\n"
        )
        return path

    return {"root": root, "truths": truths, "config": config, "vl_dir": vl_f32}


def run_file(files, config, name: str = "two-questions.wav", env: dict | None = None):
    """`assistant run` over a file to its end, with the event log on stdout."""
    return run_cli(
        "run",
        "--config",
        str(config),
        "--input",
        str(files["root"] / name),
        "--events",
        "-",
        "--exit-at-end",
        "--no-tray",
        env=env or headless_env(files["root"]),
        timeout=600,
    )


def start_run(files, *args: str, env: dict | None = None) -> subprocess.Popen:
    """`assistant run` in the background (the default config), its event log on stdout."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "assistant",
            "run",
            "--config",
            str(files["config"]()),
            "--events",
            "-",
            "--no-tray",
            *args,
        ],
        env=env or headless_env(files["root"]),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def events_of(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def test_a_file_with_two_questions_is_answered_with_the_event_log(files):
    result = run_file(files, files["config"]())
    assert result.returncode == 0, result.stderr
    events = events_of(result.stdout)
    names = [e["event"] for e in events]
    assert names[0] == "listening" and names[-1] == "stopped"
    assert names.index("warmed_up") < names.index("transcript")  # both models ran once before the first request
    # ... and then their mapped weights files left the resident set: the CPU plugin holds its own copy.
    assert next(e for e in events if e["event"] == "warmed_up")["released_bytes"] > 0
    for name in ("speech_start", "speech_end", "transcript", "route", "answer"):
        assert names.count(name) == 2, names
    ends = [e for e in events if e["event"] == "speech_end"]
    for event, (start, end) in zip(ends, files["truths"], strict=True):
        assert abs(event["start"] - start) <= 0.15 and abs(event["end"] - end) <= 0.15, (event, start, end)
        assert event["t"] == event["end"]  # file positions, not wall-clock time
    assert all(e["route"] == "voice" for e in events if e["event"] == "route")
    assert all(isinstance(e["text"], str) for e in events if e["event"] in ("transcript", "answer"))
    # Each answer comes after its own question's transcript, in file order.
    order = [e["event"] for e in events if e["event"] in ("speech_end", "transcript", "answer")]
    assert order.index("answer") > order.index("transcript") > order.index("speech_end")


def test_without_the_screen_model_it_says_so_in_one_line_and_answers(files, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(
        files["config"]().read_text().replace(f'vl_dir = "{files["vl_dir"]}"', f'vl_dir = "{tmp_path / "no-vl"}"')
    )
    result = run_file(files, config)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "screen questions are off" in line]
    assert len(warnings) == 1, result.stderr
    assert f"no converted Qwen2-VL model at {tmp_path / 'no-vl'}; run: assistant convert vl" in warnings[0]
    assert "assistant convert all" not in result.stderr
    names = [e["event"] for e in events_of(result.stdout)]
    assert names.count("answer") == 2 and names[-1] == "stopped", names


def test_without_the_wake_phrase_nothing_is_answered(files):
    result = run_file(files, files["config"]("wake_phrase"))
    assert result.returncode == 0, result.stderr
    names = [e["event"] for e in events_of(result.stdout)]
    assert names.count("transcript") == 2 and names.count("ignored") == 2 and "answer" not in names
    # Neither transcript could start with a wake phrase: each stopped within a few tokens of its budget
    # (50+ for these 2 s questions), where the `always` mode transcribes them whole.
    heard = [e for e in events_of(result.stdout) if e["event"] == "transcript"]
    assert all(e["stopped_early"] and e["tokens"] <= 8 for e in heard), heard
    always = [e for e in events_of(run_file(files, files["config"]()).stdout) if e["event"] == "transcript"]
    assert all(not e["stopped_early"] for e in always)
    assert sum(e["tokens"] for e in always) > 2 * sum(e["tokens"] for e in heard), (always, heard)


def test_answers_are_spoken_on_the_speaker(files):
    with pulse_virtual_mic() as pulse:
        env = headless_env(files["root"], **pulse.env())
        result = run_file(files, files["config"](tts=True), env=env)
    assert result.returncode == 0, result.stderr
    names = [e["event"] for e in events_of(result.stdout)]
    assert names.count("speak_start") == names.count("speak_end") == names.count("answer") == 2, names


def test_sigterm_stops_within_two_seconds(files):
    proc = start_run(files, "--input", str(files["root"] / "silence.wav"), "--realtime")
    line = proc.stdout.readline()  # "listening": the models are loaded and audio flows
    assert json.loads(line)["event"] == "listening"
    time.sleep(0.5)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    took = time.monotonic() - sent
    assert proc.returncode == 0, err
    assert took < 2.0, took
    assert json.loads(out.strip().splitlines()[-1])["event"] == "stopped"


def test_a_corrupt_input_file_is_one_clear_line(files):
    result = run_cli(
        "run",
        "--config",
        str(files["config"]()),
        "--input",
        str(files["root"] / "corrupt.wav"),
        "--no-tray",
        env=headless_env(files["root"]),
        timeout=300,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "corrupt.wav" in lines[0]


def test_exit_at_end_needs_a_file(files):
    result = run_cli(
        "run",
        "--config",
        str(files["config"]()),
        "--exit-at-end",
        "--no-tray",
        env=headless_env(files["root"]),
        timeout=300,
    )
    assert result.returncode == 2 and "--exit-at-end needs --input" in result.stderr


def test_headless_machine_without_a_microphone_says_so(files):
    result = run_cli(
        "run", "--config", str(files["config"]()), "--no-tray", env=headless_env(files["root"]), timeout=300
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "microphone" in lines[0], result.stderr


@pytest.mark.skipif(not os.path.exists("/usr/bin/pactl"), reason="needs PulseAudio (scripts/install.sh --test)")
def test_the_microphone_source_is_used_when_no_file_is_given(files):
    with pulse_virtual_mic() as pulse:
        proc = start_run(files, env=headless_env(files["root"], **pulse.env()))
        try:
            assert json.loads(proc.stdout.readline())["event"] == "listening"
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err


def test_systemd_readiness_is_sent_once_the_models_are_loaded(files, tmp_path):
    """Type=notify: READY=1 over NOTIFY_SOCKET after loading, STOPPING=1 on the way out."""
    import socket

    address = str(tmp_path / "notify.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(address)
    server.settimeout(120)
    try:
        result = run_file(files, files["config"](), env=headless_env(files["root"], NOTIFY_SOCKET=address))
        messages = [server.recv(4096).decode() for _ in range(2)]
    finally:
        server.close()
    assert result.returncode == 0, result.stderr
    assert "READY=1" in messages[0] and "STOPPING=1" in messages[1]


def test_in_a_memory_cgroup_too_small_it_refuses_at_start_and_in_one_big_enough_it_answers(files):
    """The models' need (worked out from their manifests, ~0.35-0.4 GiB for the tiny ones) against the memory
    cgroup's limit, as a systemd slice or a container sets it: 300 MiB is refused before anything is
    loaded, in one line naming the need; in 1 GiB both questions are answered, nobody OOM-killed."""
    command = ["run", "--config", str(files["config"]()), "--input", str(files["root"] / "two-questions.wav")]
    command += ["--events", "-", "--exit-at-end", "--no-tray"]
    env = headless_env(files["root"])
    with memory_cgroup(300 << 20) as cgroup:
        started = time.monotonic()
        result = subprocess.run(
            cgroup.wrap([sys.executable, "-m", "assistant", *command]), env=env, capture_output=True, text=True
        )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert re.search(r"the models need ~0\.[34] GiB of memory", lines[0]), lines[0]
    assert "memory cgroup's limit is 0.3 GiB" in lines[0]
    assert "[screen] enabled = false" in lines[0]
    assert "listening" not in result.stdout  # refused before the models were loaded
    assert time.monotonic() - started < 30
    with memory_cgroup(1 << 30) as cgroup:
        result = subprocess.run(
            cgroup.wrap([sys.executable, "-m", "assistant", *command]),
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert result.returncode == 0, result.stderr
    assert [e["event"] for e in events_of(result.stdout)].count("answer") == 2


def test_with_the_screen_off_the_vl_model_is_not_needed(files, tmp_path):
    """`[screen] enabled = false` (the way out of too little memory): no Qwen2-VL folder is looked for or
    loaded, and nobody is warned about it."""
    config = tmp_path / "config.toml"
    text = files["config"]().read_text().replace(f'vl_dir = "{files["vl_dir"]}"', f'vl_dir = "{tmp_path / "no-vl"}"')
    config.write_text(text + "[screen]\nenabled = false\n")
    result = run_file(files, config)
    assert result.returncode == 0, result.stderr
    assert not [line for line in result.stderr.splitlines() if "WARNING" in line], result.stderr
    assert "no-vl" not in result.stderr
    assert [e["event"] for e in events_of(result.stdout)].count("answer") == 2
