"""`assistant convert` from the command line: summary, bad input, interruption, a full disk.

Every failure exits non-zero with one line on stderr and leaves nothing in the output's folder.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time

import pytest

from cli_runner import headless_env, run_cli
from facilities import small_disk

pytestmark = pytest.mark.slow


def env_for(tmp_path):
    return headless_env(tmp_path, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))


def convert_vl(tmp_path, source, out, *extra: str):
    """`assistant convert vl --source SOURCE --out OUT ...` in a private, offline environment."""
    return run_cli(
        "convert", "vl", "--source", str(source), "--out", str(out), *extra, env=env_for(tmp_path), timeout=600
    )


def one_line(result) -> str:
    """The one error line; anything else on stderr may only be progress."""
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("assistant:")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    noise = [line for line in lines[:-1] if not line.startswith("[convert") and "Loading weights" not in line and line]
    assert not noise, result.stderr
    return errors[0]


def test_convert_prints_stages_and_a_summary(tiny_qwen2vl_dir, tmp_path):
    out = tmp_path / "models" / "vl"
    result = convert_vl(tmp_path, tiny_qwen2vl_dir, out, "--group-size", "16")
    assert result.returncode == 0, result.stderr
    for stage in ("loading the checkpoint", "exporting image_embedding_merger", "compressing language_model"):
        assert stage in result.stderr
    assert "Converted in" in result.stdout and "int4_asym, group 16, ratio 1.0" in result.stdout
    for name in ("language_model", "image_embedding", "image_embedding_merger", "text_embeddings"):
        assert name in result.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "qwen2-vl" and manifest["source"] == str(tiny_qwen2vl_dir)
    again = convert_vl(tmp_path, tiny_qwen2vl_dir, out, "--group-size", "16")
    assert again.returncode == 0 and "Already converted" in again.stdout and "nothing to do" in again.stderr


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("wrong model", "is a qwen2-audio checkpoint, not qwen2-vl; use: assistant convert audio"),
        ("not a checkpoint", "is not a Hugging Face checkpoint"),
        ("missing folder", "does not exist"),
        ("bad group size", "INT4 group size 128 does not divide"),
        ("unwritable output", "cannot create"),
        ("offline hub id", "--source DIR"),
        ("int4 head without int4 weights", "--int4-head needs --weights int4"),
    ],
)
def test_bad_input_exits_2_and_leaves_nothing(tiny_qwen2audio_dir, tiny_qwen2vl_dir, tmp_path, case, expected):
    out = tmp_path / "out" / "vl"
    source = str(tiny_qwen2vl_dir)
    extra = ["--group-size", "16"]
    if case == "wrong model":
        source = str(tiny_qwen2audio_dir)
    elif case == "not a checkpoint":
        (tmp_path / "junk").mkdir()
        (tmp_path / "junk" / "notes.txt").write_text("hello")
        source = str(tmp_path / "junk")
    elif case == "missing folder":
        source = str(tmp_path / "nowhere")
    elif case == "bad group size":
        extra = []
    elif case == "unwritable output":
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "file").write_text("a file, not a folder")
        out = tmp_path / "out" / "file" / "vl"
    elif case == "offline hub id":
        source = "Qwen/Qwen2-VL-2B-Instruct"
    elif case == "int4 head without int4 weights":
        extra = ["--weights", "int8", "--int4-head"]
    result = convert_vl(tmp_path, source, out, *extra)
    assert result.returncode == 2, result.stderr
    assert expected in one_line(result)
    leftovers = [p.name for p in (tmp_path / "out").iterdir()] if (tmp_path / "out").exists() else []
    assert leftovers in ([], ["file"]), leftovers


def test_sigterm_mid_conversion_leaves_nothing(tiny_qwen2vl_dir, tmp_path):
    out = tmp_path / "out" / "vl"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "assistant",
            "convert",
            "vl",
            "--source",
            str(tiny_qwen2vl_dir),
            "--out",
            str(out),
            "--group-size",
            "16",
        ],
        env=env_for(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        staging = list((tmp_path / "out").glob(".vl.partial-*")) if (tmp_path / "out").exists() else []
        if staging and any(staging[0].glob("*.xml")):  # a sub-model is being written
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    else:
        proc.kill()
        pytest.fail("the conversion never started writing")
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "stopped by SIGTERM" in stderr
    assert list((tmp_path / "out").iterdir()) == []


def test_a_disk_that_fills_up_during_the_conversion_exits_nonzero_and_leaves_nothing(tiny_qwen2vl_dir, tmp_path):
    """The checks before the work see room; then another program fills the disk while the export runs."""
    with small_disk(tmp_path / "disk", "32m") as disk:
        out = disk / "vl"
        command = ["convert", "vl", "--source", str(tiny_qwen2vl_dir), "--out", str(out), "--weights", "f32"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "assistant", *command],
            env=env_for(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 120
        while not list(disk.glob(".vl.partial-*")):  # past the checks, writing
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.01)
        filler = disk / "another-program.bin"
        with filler.open("wb") as f, contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * (1 << 16))
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 1, stderr
        lines = [line for line in stderr.strip().splitlines() if line.startswith("assistant:")]
        assert len(lines) == 1 and "disk is full" in lines[0], stderr
        assert [p.name for p in disk.iterdir()] == [filler.name]
