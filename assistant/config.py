"""Typed settings: the packaged defaults, overridden by the user's TOML file.

`config/default.toml` is the single source of default values; the dataclasses below only
declare each key's type and allowed values, so a key cannot have two defaults.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Union

from .errors import UsageError

APP_NAME = "assistant"


class ConfigError(UsageError):
    """A configuration file that cannot be used; the message names the file and key."""


def _choices(*values: str) -> dict[str, Any]:
    return {"choices": values}


def _range(low: float | None = None, high: float | None = None) -> dict[str, Any]:
    return {"min": low, "max": high}


@dataclass(frozen=True)
class ModelsSettings:
    audio_dir: Path
    vl_dir: Path
    audio_source: str
    vl_source: str


@dataclass(frozen=True)
class RuntimeSettings:
    device: str = field(
        metadata={"pattern": r"(CPU|NPU|AUTO|GPU(\.\d+)?)", "hint": '"CPU", "GPU", "GPU.N", "NPU" or "AUTO"'}
    )
    inference_precision: Literal["auto", "f32", "bf16", "f16"]
    performance_hint: Literal["LATENCY", "THROUGHPUT"]
    cache_dir: Path
    warm_up: bool
    decode_activations: Literal["int8", "same"]


@dataclass(frozen=True)
class AudioSettings:
    input_device: str | int
    output_device: str | int
    vad_aggressiveness: int = field(metadata=_range(0, 3))
    speech_start_ms: int = field(metadata=_range(0, 5000))
    end_silence_ms: int = field(metadata=_range(90, 10000))
    pre_roll_ms: int = field(metadata=_range(0, 5000))
    min_utterance_ms: int = field(metadata=_range(0, 30000))
    max_utterance_s: float = field(metadata=_range(1, 30))
    speaking_tail_ms: int = field(metadata=_range(0, 10000))


@dataclass(frozen=True)
class ActivationSettings:
    mode: Literal["wake_phrase", "push_to_talk", "always"]
    wake_phrases: tuple[str, ...]
    follow_up_s: float = field(metadata=_range(0, 600))


@dataclass(frozen=True)
class RoutingSettings:
    screen_phrases: tuple[str, ...]


@dataclass(frozen=True)
class ScreenSettings:
    enabled: bool
    max_pixels: int = field(metadata=_range(28 * 28 * 4, 3840 * 2160))
    monitor: str | int = field(metadata={"pattern": r"(pointer|all)", "hint": '"pointer", "all" or a monitor number'})
    save_dir: Path | None


@dataclass(frozen=True)
class TtsSettings:
    enabled: bool
    voice: str
    rate: int = field(metadata=_range(50, 500))


@dataclass(frozen=True)
class TraySettings:
    enabled: bool


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = field(metadata=_range(1, 8192))
    # "model": each model folder's generation_config.json; "config": temperature and top_p below.
    sampling: Literal["model", "config"]
    temperature: float = field(metadata=_range(0, 5))
    top_p: float = field(metadata=_range(0, 1))

    def sampling_options(self, greedy: bool = False) -> dict[str, Any]:
        """The sampling options for generate(): `greedy` always wins; with sampling = "model" none at
        all, so the model falls back to its folder's published defaults; with "config", temperature 0
        is greedy decoding."""
        if greedy:
            return {"do_sample": False}
        if self.sampling == "model":
            return {}
        if self.temperature == 0:
            return {"do_sample": False}
        return {"do_sample": True, "temperature": self.temperature, "top_p": self.top_p}


@dataclass(frozen=True)
class LoggingSettings:
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"]


@dataclass(frozen=True)
class Settings:
    models: ModelsSettings
    runtime: RuntimeSettings
    audio: AudioSettings
    activation: ActivationSettings
    routing: RoutingSettings
    screen: ScreenSettings
    tts: TtsSettings
    tray: TraySettings
    generation: GenerationSettings
    logging: LoggingSettings
    # Where the values came from: the packaged defaults, then the user's file if any.
    sources: tuple[Path, ...] = ()


# Empty path keys resolve to these places under the platform's user folders.
def data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def user_config_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "config.toml"


def explicit_config_file(settings: Settings) -> Path | None:
    """The file given with --config, when it is not the user's own file: other commands read it only
    when they are given it too, so a command suggested to the user must name it."""
    if settings.sources and settings.sources[-1] != user_config_path():
        return settings.sources[-1]
    return None


def _default_paths() -> dict[tuple[str, str], Path | None]:
    models = data_dir() / "models"
    return {
        ("models", "audio_dir"): models / "Qwen2-Audio-7B-Instruct-ov",
        ("models", "vl_dir"): models / "Qwen2-VL-2B-Instruct-ov",
        ("runtime", "cache_dir"): cache_dir() / "openvino",
        ("screen", "save_dir"): None,
    }


def default_config_text() -> str:
    return resources.files(__package__).joinpath("default.toml").read_text(encoding="utf-8")


def _parse_toml(text: str, source: Path | str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML ({exc}); fix the file or remove it") from None


def load_settings(config_file: Path | str | None = None) -> Settings:
    """Defaults overlaid with `config_file`, or with the user's file when it exists."""
    default_source = "<built-in default.toml>"
    merged = _parse_toml(default_config_text(), default_source)
    sources: list[Path] = []
    if config_file is not None:
        path = Path(config_file).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist; check the --config path")
    else:
        path = user_config_path()
        if not path.is_file():
            path = None  # type: ignore[assignment]
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot be read ({exc}); fix its permissions or encoding") from None
        _overlay(merged, _parse_toml(text, path), path)
        sources.append(path)
    return _build(merged, str(path) if path is not None else default_source, tuple(sources))


def _overlay(base: dict[str, Any], user: dict[str, Any], source: Path) -> None:
    for section, values in user.items():
        if section not in base:
            known = ", ".join(f"[{s}]" for s in base)
            raise ConfigError(f"{source}: unknown section [{section}] (known sections: {known})")
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: '{section}' must be a [{section}] section, not a single value")
        for key, value in values.items():
            if key not in base[section]:
                known = ", ".join(base[section])
                raise ConfigError(f"{source}: unknown key '{key}' in [{section}] (known keys: {known})")
            base[section][key] = value


def _build(merged: dict[str, Any], source: str, sources: tuple[Path, ...]) -> Settings:
    defaults = _default_paths()
    sections = {}
    for section_field in dataclasses.fields(Settings):
        if section_field.name == "sources":
            continue
        cls = _resolve(Settings, section_field.name)
        raw = merged.get(section_field.name, {})
        values = {}
        for f in dataclasses.fields(cls):
            if f.name not in raw:
                raise ConfigError(f"{source}: key '{f.name}' missing from [{section_field.name}]")
            where = f"{source}: [{section_field.name}] {f.name}"
            value = _check(raw[f.name], _resolve(cls, f.name), f.metadata, where)
            if isinstance(value, Path) or (value == "" and _is_path(_resolve(cls, f.name))):
                value = _resolve_path(value, defaults.get((section_field.name, f.name)))
            values[f.name] = value
        sections[section_field.name] = cls(**values)
    return Settings(**sections, sources=sources)


def _resolve(cls: type, name: str) -> Any:
    return typing.get_type_hints(cls)[name]


def _is_path(annotation: Any) -> bool:
    return annotation is Path or Path in typing.get_args(annotation)


def _resolve_path(value: Path | str, default: Path | None) -> Path | None:
    if value in ("", Path("")):
        return default
    return Path(os.path.expandvars(str(value))).expanduser()


def _describe(annotation: Any) -> str:
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return "a whole number"
    if annotation is float:
        return "a number"
    if annotation is str:
        return "a string"
    if annotation is Path:
        return "a path (string)"
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(f'"{c}"' for c in typing.get_args(annotation))
    if origin is tuple:
        return "a list of strings"
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(annotation) if a is not type(None))
    return str(annotation)


def _check(value: Any, annotation: Any, meta: Any, where: str) -> Any:
    """Return `value` converted to `annotation`, or raise ConfigError naming `where`."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        # Most specific first, so "3" stays a string and 3 stays a number.
        for member in sorted(members, key=lambda a: a is str):
            try:
                return _check(value, member, meta, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where} must be {meta.get('hint') or _describe(annotation)}, got {value!r}")
    ok = True
    if annotation is bool:
        ok = isinstance(value, bool)
    elif annotation is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif annotation is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif annotation in (str, Path):
        ok = isinstance(value, str)
        if ok and annotation is str and "pattern" in meta and not re.fullmatch(meta["pattern"], value):
            ok = False
        value = Path(value) if ok and annotation is Path and value else value
    elif origin is Literal:
        ok = value in typing.get_args(annotation)
    elif origin is tuple:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        value = tuple(value) if ok else value
    if not ok:
        raise ConfigError(f"{where} must be {meta.get('hint') or _describe(annotation)}, got {value!r}")
    low, high = meta.get("min"), meta.get("max")
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if numeric and ((low is not None and value < low) or (high is not None and value > high)):
        raise ConfigError(f"{where} must be between {low} and {high}, got {value!r}")
    return value
