"""A user's first run, for real: `assistant convert` downloads from a hub, then `assistant run` answers.

The hub is `hub_server.StandInHub` on loopback, serving the hub-layout tiny checkpoints under the real
repository names; `huggingface_hub` talks to it through ``HF_ENDPOINT`` on its ordinary code path. Every
failure a first run meets (a cut connection, a mistyped or gated id, a hub that never answers, no
network, an incomplete cache offline, a small disk, little memory) ends in one line and exit code 2
with no half-written model folder.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from assistant.testing import build_hub_qwen2audio, build_hub_qwen2vl

from cli_runner import headless_env, run_cli
from facilities import memory_cgroup, small_disk
from hub_server import StandInHub
from speech import SAMPLE_RATE, spoken

pytestmark = pytest.mark.slow

VL_ID = "Qwen/Qwen2-VL-2B-Instruct"
AUDIO_ID = "Qwen/Qwen2-Audio-7B-Instruct"
SHARD = "model-00001-of-00002.safetensors"
# The tiny models' layers are 64 wide: the default INT4 group of 128 does not divide them.
GROUP = ("--group-size", "16")


@pytest.fixture(scope="module")
def hub_folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hub")
    return {VL_ID: build_hub_qwen2vl(root / "vl"), AUDIO_ID: build_hub_qwen2audio(root / "audio")}


def hub_env(home: Path, endpoint: str, **extra: str) -> dict[str, str]:
    """A private user (HOME, XDG folders, hub cache in ~/.cache/huggingface) whose hub is `endpoint`."""
    env = headless_env(home, HF_ENDPOINT=endpoint, HF_HUB_ETAG_TIMEOUT="3", HF_HUB_DOWNLOAD_TIMEOUT="3")
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HF_HOME", "HF_HUB_CACHE"):
        env.pop(key, None)
    env.update(extra)
    return env


def hub_cache(home: Path) -> Path:
    return home / ".cache" / "huggingface" / "hub"


def model_dirs(home: Path) -> dict[str, Path]:
    models = home / ".local" / "share" / "assistant" / "models"
    return {AUDIO_ID: models / "Qwen2-Audio-7B-Instruct-ov", VL_ID: models / "Qwen2-VL-2B-Instruct-ov"}


def convert(home: Path, endpoint: str, target: str = "all", *extra: str, env: dict | None = None):
    return run_cli("convert", target, *GROUP, *extra, env=env or hub_env(home, endpoint), timeout=900)


def error_line(result) -> str:
    """The one `assistant:` line, which must be the last on stderr."""
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("assistant:")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    return errors[0]


def nothing_converted(home: Path) -> bool:
    models = home / ".local" / "share" / "assistant" / "models"
    return not models.exists() or not any(models.iterdir())


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_first_run_downloads_converts_and_answers_a_spoken_request(hub_folders, tmp_path):
    with StandInHub(hub_folders) as hub:
        first = convert(tmp_path, hub.url)
        assert first.returncode == 0, first.stderr
        # The progress bars of the download, even though stderr is not a terminal here.
        assert f"Downloading {VL_ID}" in first.stderr and f"Downloading {AUDIO_ID}" in first.stderr
        assert "100%" in first.stderr
        for repo_id, folder in model_dirs(tmp_path).items():
            manifest = json.loads((folder / "manifest.json").read_text())
            assert manifest["source"] == repo_id and manifest["revision"] == hub.commit(repo_id)
        # Each repository's first shard came over the wire once, whole.
        assert hub.bytes_served(SHARD) == sum((f / SHARD).stat().st_size for f in hub_folders.values())
        requests = len(hub.requests)

        again = convert(tmp_path, hub.url)
        assert again.returncode == 0, again.stderr
        assert again.stdout.count("Already converted") == 2 and "nothing to do" in again.stderr
        assert len(hub.requests) == requests  # not even a look at the hub

    # The hub is gone: the service answers from the converted folders alone.
    question = spoken("What is the capital of Peru?")
    pause = np.zeros(SAMPLE_RATE, np.float32)
    soundfile.write(tmp_path / "question.wav", np.concatenate([pause, question, pause, pause]), SAMPLE_RATE)
    config = tmp_path / "config.toml"
    # The random transcript may contain any phrase; only the voice route is under test here (no screen).
    config.write_text(
        '[generation]\nmax_new_tokens = 6\n[activation]\nmode = "always"\n[tts]\nenabled = false\n'
        '[routing]\nscreen_phrases = ["zzz no such phrase zzz"]\n'
    )
    env = hub_env(tmp_path, f"http://127.0.0.1:{closed_port()}")
    run = run_cli(
        "run",
        "--config",
        str(config),
        "--input",
        str(tmp_path / "question.wav"),
        "--events",
        "-",
        "--exit-at-end",
        "--no-tray",
        env=env,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    names = [json.loads(line)["event"] for line in run.stdout.splitlines() if line.startswith("{")]
    for name in ("listening", "speech_end", "transcript", "route", "answer", "stopped"):
        assert name in names, run.stdout


def test_a_download_cut_halfway_through_a_shard_resumes_on_the_next_run(hub_folders, tmp_path):
    shard_size = (hub_folders[VL_ID] / SHARD).stat().st_size
    half = shard_size // 2
    with StandInHub(hub_folders) as hub:
        hub.faults.cut[SHARD] = half
        cut = convert(tmp_path, hub.url, "vl")
        assert cut.returncode == 2, cut.stderr
        assert "run the same command again: it resumes where it stopped" in error_line(cut)
        assert nothing_converted(tmp_path)
        partial = list((hub_cache(tmp_path) / "models--Qwen--Qwen2-VL-2B-Instruct" / "blobs").glob("*.incomplete"))
        assert [p.stat().st_size for p in partial] == [half]

        hub.faults.cut.clear()
        hub.requests.clear()
        resumed = convert(tmp_path, hub.url, "vl")
        assert resumed.returncode == 0, resumed.stderr
        shard_gets = [r for r in hub.downloads(SHARD) if r.path.startswith("/blobs/")]
        assert [r.range for r in shard_gets] == [f"bytes={half}-"]
        assert sum(r.served for r in shard_gets) == shard_size - half  # the rest only, not from the start
    assert (model_dirs(tmp_path)[VL_ID] / "manifest.json").is_file()


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("mistyped id", "was not found on the Hugging Face hub"),
        ("mistyped id, logged in (404)", "was not found on the Hugging Face hub"),
        ("gated, no token", "is gated: accept its licence"),
        ("gated, token without access", "is gated: accept its licence"),
        ("hub never answers", "did not answer within 3 s"),
        ("no network", "cannot reach the Hugging Face hub"),
    ],
)
def test_hub_failures_are_one_line_and_exit_2(hub_folders, tmp_path, case, expected):
    with StandInHub(hub_folders) as hub:
        endpoint, extra = hub.url, ()
        if case.startswith("mistyped id"):
            extra = ("--source", "Qwen/Qwen2-VL-2B-Instruc")
            hub.missing_status = 404 if "404" in case else 401
        elif case.startswith("gated"):
            hub.gate(VL_ID, 401 if case == "gated, no token" else 403)
        elif case == "hub never answers":
            hub.faults.hang = True
        elif case == "no network":
            endpoint = f"http://127.0.0.1:{closed_port()}"
        started = time.monotonic()
        result = convert(tmp_path, endpoint, "vl", *extra)
        took = time.monotonic() - started
    assert result.returncode == 2, result.stderr
    line = error_line(result)
    assert expected in line
    if case.startswith("gated"):
        assert "hf auth login" in line
    if case == "hub never answers":
        assert took < 60, took  # bounded by HF_HUB_ETAG_TIMEOUT, not forever
    assert nothing_converted(tmp_path)
    staging = list((tmp_path / ".local" / "share" / "assistant" / "models").glob(".*"))
    assert staging == []


def test_a_checkpoint_in_the_hub_cache_is_used_without_downloading(hub_folders, tmp_path):
    converted = model_dirs(tmp_path)[VL_ID]
    with StandInHub(hub_folders) as hub:
        assert convert(tmp_path, hub.url, "vl").returncode == 0
        # The user removed the converted folder, not the download: convert looks, fetches nothing.
        _remove(converted)
        hub.requests.clear()
        cached = convert(tmp_path, hub.url, "vl")
        assert cached.returncode == 0, cached.stderr
        assert "already in the hub cache" in cached.stderr
        assert [r.path for r in hub.downloads() if "config.json" not in r.path] == []

    offline = hub_env(tmp_path, f"http://127.0.0.1:{closed_port()}", HF_HUB_OFFLINE="1")
    for env in (offline, hub_env(tmp_path, f"http://127.0.0.1:{closed_port()}")):  # offline, and no network
        _remove(converted)
        result = convert(tmp_path, "", "vl", env=env)
        assert result.returncode == 0, result.stderr
        assert (converted / "manifest.json").is_file()

    # An incomplete cache offline: the line names what is missing and how to get it.
    _remove(converted)
    snapshot = next((hub_cache(tmp_path) / "models--Qwen--Qwen2-VL-2B-Instruct" / "snapshots").iterdir())
    (snapshot / "model-00002-of-00002.safetensors").unlink()
    result = convert(tmp_path, "", "vl", env=offline)
    assert result.returncode == 2
    line = error_line(result)
    assert "missing model-00002-of-00002.safetensors" in line and "unset HF_HUB_OFFLINE" in line
    assert nothing_converted(tmp_path)


def _remove(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def test_too_little_disk_for_the_download_is_refused_before_downloading(hub_folders, tmp_path):
    with small_disk(tmp_path / "small", "128k") as disk, StandInHub(hub_folders) as hub:
        env = hub_env(tmp_path, hub.url, HF_HUB_CACHE=str(disk / "hub"))
        result = convert(tmp_path, hub.url, "vl", env=env)
        assert result.returncode == 2, result.stderr
        line = error_line(result)
        assert "not enough disk space to download Qwen/Qwen2-VL-2B-Instruct" in line
        assert "HF_HUB_CACHE" in line and "bigger machine" in line
        # Only the config was fetched: the weights were never asked for.
        assert [r for r in hub.downloads() if "config.json" not in r.path] == []
    assert nothing_converted(tmp_path)


def test_too_little_disk_for_the_conversion_is_refused_before_downloading(hub_folders, tmp_path):
    with small_disk(tmp_path / "small", "256k") as disk, StandInHub(hub_folders) as hub:
        result = convert(tmp_path, hub.url, "vl", "--out", str(disk / "vl"))
        assert result.returncode == 2, result.stderr
        line = error_line(result)
        assert f"not enough disk space for {VL_ID}" in line and "--out" in line
        assert [r for r in hub.downloads() if "config.json" not in r.path] == []
        assert list(disk.iterdir()) == []


def test_too_little_memory_is_refused_before_the_long_work(hub_folders, tmp_path):
    """In a 1 GiB memory cgroup (as a systemd slice or a container limits it) the tiny model's estimated
    1.5 GiB is refused at once; with room for it the same conversion runs."""
    source = hub_folders[VL_ID]
    command = ["convert", "vl", "--source", str(source), "--out", str(tmp_path / "vl"), *GROUP]
    env = hub_env(tmp_path, f"http://127.0.0.1:{closed_port()}")
    with memory_cgroup(1 << 30) as cgroup:
        result = _run_wrapped(cgroup.wrap, command, env)
    assert result.returncode == 2, result.stderr
    line = error_line(result)
    assert "not enough memory to convert" in line and "GiB are available" in line and "bigger machine" in line
    assert not (tmp_path / "vl").exists()
    with memory_cgroup(6 << 30) as cgroup:
        result = _run_wrapped(cgroup.wrap, command, env)
    assert result.returncode == 0, result.stderr


def _run_wrapped(wrap, command: list[str], env: dict[str, str]):
    import subprocess
    import sys

    return subprocess.run(
        wrap([sys.executable, "-m", "assistant", *command]),
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=600,
    )
