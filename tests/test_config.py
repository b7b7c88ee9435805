"""Configuration: packaged defaults, user overrides, and one-line errors naming key and file."""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from pathlib import Path

import pytest

from assistant.config import ConfigError, Settings, default_config_text, load_settings

from cli_runner import headless_env, run_cli

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def private_xdg(tmp_path, monkeypatch):
    for name, sub in (
        ("HOME", ""),
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_CACHE_HOME", "cache"),
    ):
        monkeypatch.setenv(name, str(tmp_path / sub))


def write(tmp_path: Path, text: str, name: str = "user.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_packaged_defaults_are_the_repository_file():
    assert default_config_text() == (REPO / "config" / "default.toml").read_text(encoding="utf-8")


def test_every_key_in_default_toml_is_a_setting_and_back():
    data = tomllib.loads(default_config_text())
    hints = typing.get_type_hints(Settings)
    for section in dataclasses.fields(Settings):
        if section.name == "sources":
            continue
        assert set(data[section.name]) == {f.name for f in dataclasses.fields(hints[section.name])}, section.name
    assert {f.name for f in dataclasses.fields(Settings)} - {"sources"} == set(data)


def test_required_keys_exist_with_documented_defaults(tmp_path):
    s = load_settings()
    assert s.models.audio_source == "Qwen/Qwen2-Audio-7B-Instruct"
    assert s.models.vl_source == "Qwen/Qwen2-VL-2B-Instruct"
    assert s.models.audio_dir == tmp_path / "data" / "assistant" / "models" / "Qwen2-Audio-7B-Instruct-ov"
    assert s.models.vl_dir.parent == s.models.audio_dir.parent
    assert s.runtime.device == "CPU"
    assert s.runtime.inference_precision == "auto"
    assert s.runtime.cache_dir == tmp_path / "cache" / "assistant" / "openvino"
    assert s.activation.mode == "wake_phrase"
    assert s.tts.enabled is True and s.tray.enabled is True
    assert s.screen.save_dir is None
    assert s.sources == ()


def test_user_file_in_xdg_config_home_overrides(tmp_path):
    user = tmp_path / ".config" / "assistant" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text('[tts]\nenabled = false\n[runtime]\ndevice = "GPU.1"\n', encoding="utf-8")
    s = load_settings()
    assert s.tts.enabled is False
    assert s.runtime.device == "GPU.1"
    assert s.tts.rate == 175  # untouched keys keep their defaults
    assert s.sources == (user,)


def test_explicit_config_file_wins_and_expands_paths(tmp_path):
    path = write(
        tmp_path,
        '[models]\nvl_dir = "~/models/vl"\naudio_dir = "$HOME/a"\n'
        '[audio]\ninput_device = 3\noutput_device = "USB"\n[screen]\nmonitor = 2\n',
    )
    s = load_settings(path)
    assert s.models.vl_dir == tmp_path / "models" / "vl"
    assert s.models.audio_dir == tmp_path / "a"
    assert s.audio.input_device == 3 and s.audio.output_device == "USB"
    assert s.screen.monitor == 2
    assert s.sources == (path,)


def test_int_accepted_for_float_and_lists_become_tuples(tmp_path):
    s = load_settings(write(tmp_path, '[activation]\nfollow_up_s = 5\nwake_phrases = ["computer"]\n'))
    assert s.activation.follow_up_s == 5.0 and isinstance(s.activation.follow_up_s, float)
    assert s.activation.wake_phrases == ("computer",)


def test_sampling_defaults_to_the_model_folders_own_settings():
    generation = load_settings().generation
    assert generation.sampling == "model"
    # No sampling options at all: generate() then uses the folder's generation_config.json.
    assert generation.sampling_options() == {}
    assert generation.sampling_options(greedy=True) == {"do_sample": False}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {"do_sample": True, "temperature": 0.7, "top_p": 0.9}),
        ("temperature = 1.2\ntop_p = 0.5\n", {"do_sample": True, "temperature": 1.2, "top_p": 0.5}),
        ("temperature = 0\n", {"do_sample": False}),
    ],
)
def test_sampling_config_uses_temperature_and_top_p_and_greedy_wins(tmp_path, text, expected):
    generation = load_settings(write(tmp_path, f'[generation]\nsampling = "config"\n{text}')).generation
    assert generation.sampling_options() == expected
    assert generation.sampling_options(greedy=True) == {"do_sample": False}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[audio]\nvad_agressiveness = 2\n", "unknown key 'vad_agressiveness' in [audio]"),
        ("[sound]\nx = 1\n", "unknown section [sound]"),
        ("tray = true\n", "'tray' must be a [tray] section"),
        ('[audio]\nvad_aggressiveness = "high"\n', "[audio] vad_aggressiveness must be a whole number"),
        ("[audio]\nvad_aggressiveness = 7\n", "[audio] vad_aggressiveness must be between 0 and 3"),
        ("[tts]\nenabled = 1\n", "[tts] enabled must be true or false"),
        ("[generation]\nmax_new_tokens = 1.5\n", "[generation] max_new_tokens must be a whole number"),
        ('[activation]\nmode = "sometimes"\n', '[activation] mode must be one of "wake_phrase"'),
        ('[generation]\nsampling = "random"\n', '[generation] sampling must be one of "model", "config"'),
        ("[routing]\nscreen_phrases = [1, 2]\n", "[routing] screen_phrases must be a list of strings"),
        ('[runtime]\ndevice = "TPU"\n', '[runtime] device must be "CPU", "GPU", "GPU.N", "NPU" or "AUTO"'),
        ('[screen]\nmonitor = "left"\n', '[screen] monitor must be "pointer", "all" or a monitor number'),
        ("[models]\nvl_dir = 3\n", "[models] vl_dir must be a path"),
        ("[tts\nenabled = true\n", "not valid TOML"),
    ],
)
def test_bad_values_name_the_key_and_the_file(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    message = str(err.value)
    assert expected in message
    assert str(path) in message
    assert "\n" not in message


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_command_line_exits_2_with_one_line_naming_key_and_file(tmp_path):
    path = write(tmp_path, "[tray]\nenabled = true\ncolour = 'blue'\n")
    result = run_cli("doctor", "--config", str(path), env=headless_env(tmp_path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "colour" in lines[0] and str(path) in lines[0]
    assert result.stdout == ""


def test_command_line_reports_a_bad_user_file_in_xdg_config_home(tmp_path):
    user = tmp_path / ".config" / "assistant" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text("[tts]\nrate = 'fast'\n", encoding="utf-8")
    result = run_cli("doctor", env=headless_env(tmp_path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "[tts] rate" in result.stderr and str(user) in result.stderr


def test_open_config_creates_an_editable_file_of_commented_defaults(tmp_path, monkeypatch):
    """The tray's "Open config" with no user file yet: a file holding every default, commented out, that
    loads to exactly the defaults; with a file already in use, that file is the one opened."""
    from assistant import open_config
    from assistant.config import user_config_path

    opened = []
    monkeypatch.setattr(open_config, "open_with_desktop", opened.append)
    defaults = load_settings()
    path = open_config.open_config(defaults)
    assert path == user_config_path() and opened == [path]
    text = path.read_text(encoding="utf-8")
    assert "# max_new_tokens = 256" in text and not any(
        line.strip() and not line.lstrip().startswith("#") for line in text.splitlines()
    )
    assert dataclasses.replace(load_settings(path), sources=()) == defaults  # every default, nothing else
    mine = write(tmp_path, "[tts]\nrate = 150\n")
    assert open_config.open_config(load_settings(mine)) == mine


def wrong_values(default: object) -> list[str]:
    """TOML values of another type than a key's default (an inline table is no key's type)."""
    wrong = ["{ wrong = true }"]
    if isinstance(default, bool):
        wrong.append("1")
    elif isinstance(default, (int, float)):
        wrong.append('"many"')
    elif isinstance(default, list):
        wrong.append("true")
    else:
        wrong.append("[1, 2]")
    return wrong


EVERY_KEY = [
    (section, key, value)
    for section, keys in tomllib.loads(default_config_text()).items()
    for key, value in keys.items()
]


@pytest.mark.parametrize(("section", "key", "default"), EVERY_KEY, ids=[f"{s}.{k}" for s, k, _ in EVERY_KEY])
def test_every_key_given_the_wrong_type_is_one_line_naming_it(tmp_path, section, key, default):
    for value in wrong_values(default):
        path = write(tmp_path, f"[{section}]\n{key} = {value}\n")
        with pytest.raises(ConfigError) as err:
            load_settings(path)
        message = str(err.value)
        assert f"[{section}] {key}" in message and str(path) in message and "\n" not in message, (value, message)
