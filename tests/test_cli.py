"""The command-line contract: every subcommand, --help, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.cli import build_parser

from cli_runner import headless_env, run_cli

SUBCOMMANDS = ["run", "ask", "convert", "devices", "doctor", "selftest", "service"]


def test_parser_knows_the_whole_contract():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert sorted(sub.choices) == sorted(SUBCOMMANDS)
    run = parser.parse_args(["run", "--input", "a.wav", "--realtime", "--no-tray", "--events", "-", "--exit-at-end"])
    assert (run.input, run.realtime, run.no_tray, run.events, run.exit_at_end) == ("a.wav", True, True, "-", True)
    ask = parser.parse_args(
        [
            "ask",
            "--audio",
            "q.wav",
            "--image",
            "a.png",
            "--image",
            "b.png",
            "--video",
            "v.mp4",
            "--screen",
            "--text",
            "what",
            "--greedy",
            "--max-new-tokens",
            "7",
            "--json",
            "--no-speak",
            "--config",
            "c.toml",
        ]
    )
    assert ask.image == ["a.png", "b.png"] and ask.video == ["v.mp4"] and ask.max_new_tokens == 7
    assert ask.screen and ask.greedy and ask.json and ask.no_speak and ask.config == "c.toml"
    conv = parser.parse_args(
        [
            "convert",
            "vl",
            "--source",
            "d",
            "--out",
            "o",
            "--weights",
            "int8",
            "--group-size",
            "64",
            "--ratio",
            "0.8",
            "--sym",
            "--int4-head",
            "--force",
        ]
    )
    assert (conv.target, conv.weights, conv.group_size, conv.ratio, conv.sym, conv.int4_head, conv.force) == (
        "vl",
        "int8",
        64,
        0.8,
        True,
        True,
        True,
    )
    defaults = parser.parse_args(["convert", "all"])
    assert (defaults.weights, defaults.group_size, defaults.ratio, defaults.sym, defaults.int4_head) == (
        "int4",
        128,
        1.0,
        False,
        False,
    )
    svc = parser.parse_args(["service", "install", "--kind", "autostart"])
    assert (svc.action, svc.kind) == ("install", "autostart")


@pytest.mark.parametrize("command", [[], *[[c] for c in SUBCOMMANDS]])
def test_help_works_for_every_subcommand(tmp_path, command):
    result = run_cli(*command, "--help", env=headless_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "usage: assistant" in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["frobnicate"], "invalid choice"),
        (["convert"], "the following arguments are required: target"),
        (["convert", "vl", "--weights", "int3"], "invalid choice: 'int3'"),
        (["ask", "--max-new-tokens", "many"], "invalid int value"),
        (["doctor", "--no-such-flag"], "unrecognized arguments"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(tmp_path, argv, expected):
    result = run_cli(*argv, env=headless_env(tmp_path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0] and "--help" in lines[0]


def test_no_subcommand_prints_help_and_exits_2(tmp_path):
    result = run_cli(env=headless_env(tmp_path))
    assert result.returncode == 2
    assert "doctor" in result.stdout


def test_console_script_and_module_are_the_same_program(tmp_path):
    script = Path(sys.executable).parent / "assistant"
    if not script.exists():
        if os.environ.get("CI"):
            pytest.fail(f"no console script at {script}: the install step did not install the package")
        pytest.skip("the package is not installed with its console script (pip install -e .)")
    env = headless_env(tmp_path)
    via_script = subprocess.run([str(script), "--version"], capture_output=True, text=True, env=env)
    via_module = run_cli("--version", env=env)
    assert via_script.returncode == via_module.returncode == 0
    assert via_script.stdout == via_module.stdout
    assert via_script.stdout.startswith("assistant ")


def test_internal_failure_exits_1_with_one_line(tmp_path, monkeypatch, capsys):
    from assistant import cli

    def boom(args):
        raise RuntimeError("the model exploded\nsecond line")

    monkeypatch.setitem(cli.HANDLERS, "devices", boom)
    assert cli.main(["devices"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the model exploded" in err and "--verbose" in err


@pytest.mark.slow
def test_selftest_runs_every_stage_on_tiny_models(tmp_path):
    result = run_cli("selftest", env=headless_env(tmp_path, HF_HUB_OFFLINE="1"), timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    for stage in (
        "build",
        "convert",
        "speak question",
        "voice activity",
        "transcript",
        "route",
        "answer",
        "screen model",
        "voice",
    ):
        assert f"ok   {stage}" in result.stdout, result.stdout
    assert "All stages worked." in result.stdout


@pytest.fixture
def no_models(tmp_path):
    """A config whose model folders are empty (a fresh install), and a wav file to listen to."""
    import numpy as np
    import soundfile

    models = tmp_path / "models"
    (models / "audio-ov").mkdir(parents=True)
    (models / "vl-ov").mkdir()
    config = tmp_path / "config.toml"
    config.write_text(f'[models]\naudio_dir = "{models / "audio-ov"}"\nvl_dir = "{models / "vl-ov"}"\n')
    wav = tmp_path / "some.wav"
    soundfile.write(wav, np.zeros(16000, np.float32), 16000)
    return config, wav


@pytest.mark.parametrize("source", ["file", "mic"])
def test_run_without_converted_models_names_convert_all_in_one_line(tmp_path, no_models, source):
    # The headless environment has no microphone: "mic" shows the models are checked before it is opened.
    config, wav = no_models
    argv = ["run", "--config", str(config), "--no-tray", *(["--input", str(wav)] if source == "file" else [])]
    result = run_cli(*argv, env=headless_env(tmp_path))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("assistant: error: no converted models yet in ")
    assert lines[0].endswith(f"; run: assistant convert all --config {config}")
    assert result.stdout == ""


def test_run_without_converted_models_stops_before_anything_slow(tmp_path, no_models):
    """Nothing of the audio, model or service machinery is even imported before the answer."""
    config, wav = no_models
    argv = ["run", "--config", str(config), "--no-tray", "--input", str(wav)]
    code = (
        "import sys, json\n"
        "from assistant.cli import main\n"
        f"code = main({argv!r})\n"
        "slow = sorted(m for m in sys.modules if m.split('.')[0] in ('openvino', 'sounddevice', 'numpy')"
        " or m.startswith(('assistant.daemon', 'assistant.audio', 'assistant.models.qwen')))\n"
        "print(json.dumps({'code': code, 'slow': slow[:5]}), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=headless_env(tmp_path), capture_output=True, text=True, timeout=120
    )
    assert json.loads(result.stderr.strip().splitlines()[-1]) == {"code": 2, "slow": []}, result.stderr
