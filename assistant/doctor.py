"""`assistant doctor`: check, for real, everything the assistant needs on this machine.

Each check returns findings (ok / warning / problem, with what to do). A warning is a
feature that will be missing (screen questions, tray icon); a problem stops the assistant
from working, and makes the doctor exit 1.
"""

from __future__ import annotations

import enum
import importlib.metadata
import logging
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from .config import Settings

log = logging.getLogger(__name__)

GIB = 1024**3
# Resident memory on top of a model's weight files once it has answered: the CPU plugin's repacked
# weights, KV cache, activations, kernels. Measured here in the service with both full-size models
# (benchmarks/RESULTS.md): 13.7-14.3 GiB for 8.85 GiB of files; Qwen2-VL-2B alone 4.8 GiB for 2.5.
RUNTIME_OVERHEAD_BYTES = {"qwen2-audio": int(3.4 * GIB), "qwen2-vl": int(2.3 * GIB)}
# What each model needs when no manifest gives its files' size (the converted real models' files).
NOMINAL_MODEL_BYTES = {"qwen2-audio": int(6.1 * GIB), "qwen2-vl": int(2.5 * GIB)}
KEY_PACKAGES = (
    "openvino",
    "transformers",
    "tokenizers",
    "numpy",
    "sounddevice",
    "webrtcvad-wheels",
    "mss",
    "pystray",
    "pyttsx3",
    "nncf",
    "torch",
    "torchvision",
)


class Status(enum.Enum):
    OK = "ok"
    WARNING = "warning"
    PROBLEM = "problem"


@dataclass(frozen=True)
class Finding:
    topic: str
    status: Status
    detail: str
    fix: str = ""


def _ok(topic: str, detail: str) -> Finding:
    return Finding(topic, Status.OK, detail)


def check_python() -> list[Finding]:
    version = platform.python_version()
    findings = [_ok("python", f"Python {version} ({sys.executable})")]
    try:
        requirements = importlib.metadata.requires("assistant") or []
    except importlib.metadata.PackageNotFoundError:
        requirements = []
    wanted = {}
    for line in requirements:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            wanted[req.name.lower()] = req
    names = list(dict.fromkeys([*KEY_PACKAGES, *wanted]))
    for name in names:
        req = wanted.get(name.lower())
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            findings.append(Finding(f"package {name}", Status.PROBLEM, "not installed", "run: bash scripts/install.sh"))
            continue
        if req is not None and req.specifier and not req.specifier.contains(installed, prereleases=True):
            findings.append(
                Finding(
                    f"package {name}",
                    Status.PROBLEM,
                    f"{installed}, but {req.specifier} is tested",
                    f"run: pip install '{name}{req.specifier}'",
                )
            )
        elif name in KEY_PACKAGES:
            findings.append(_ok(f"package {name}", installed))
    return findings


def check_openvino(settings: Settings) -> list[Finding]:
    from .models.ov_devices import list_openvino_devices

    try:
        devices = list_openvino_devices()
    except Exception as exc:
        return [
            Finding("openvino", Status.PROBLEM, f"cannot start OpenVINO ({exc})", "reinstall: bash scripts/install.sh")
        ]
    listed = ", ".join(f"{d.name} ({d.full_name})" for d in devices) or "none"
    findings = [_ok("openvino devices", listed)]
    wanted = settings.runtime.device
    names = {d.name for d in devices} | {d.name.split(".")[0] for d in devices}
    if wanted != "AUTO" and wanted not in names:
        findings.append(
            Finding(
                "openvino device",
                Status.PROBLEM,
                f"configured device {wanted} is not available",
                f"set [runtime] device to one of: {', '.join(sorted(names))} or AUTO",
            )
        )
    return findings


def check_audio(settings: Settings) -> list[Finding]:
    from .audio.devices import AudioUnavailable, find_device, list_audio_devices

    try:
        devices = list_audio_devices()
    except AudioUnavailable as exc:
        return [Finding("audio", Status.PROBLEM, str(exc), "install libportaudio2 (bash scripts/install.sh)")]
    findings = []
    for kind, wanted in (("input", settings.audio.input_device), ("output", settings.audio.output_device)):
        device = find_device(devices, wanted, kind=kind)
        topic = "microphone" if kind == "input" else "speaker"
        if device is not None:
            findings.append(_ok(topic, f"[{device.index}] {device.name} ({device.host_api})"))
            continue
        if wanted != "":
            fix = f"no {kind} device matches {wanted!r}; see `assistant devices` and fix [audio] {kind}_device"
        elif kind == "input":
            fix = "connect a microphone, or check that PulseAudio/PipeWire runs in this session"
        else:
            fix = "connect speakers or headphones, or set [tts] enabled = false"
        status = Status.PROBLEM if kind == "input" or settings.tts.enabled else Status.WARNING
        findings.append(Finding(topic, status, f"no audio {kind} device found", fix))
    return findings


def check_display() -> list[Finding]:
    from .screen.capture import ScreenCaptureUnavailable, capture_screen
    from .screen.display import detect_display_server

    display = detect_display_server()
    if not display.available:
        return [
            Finding(
                "display",
                Status.WARNING,
                "no display server (headless)",
                "screen questions and the tray icon need a desktop session (DISPLAY or WAYLAND_DISPLAY)",
            )
        ]
    findings = [_ok("display", f"{display.kind} {display.name}")]
    try:
        shot = capture_screen("pointer", display)
        findings.append(_ok("screenshot", f"{shot.width}x{shot.height} captured"))
    except ScreenCaptureUnavailable as exc:
        findings.append(Finding("screenshot", Status.WARNING, str(exc), "screen questions will not work until fixed"))
    return findings


def check_tray(settings: Settings) -> list[Finding]:
    from .screen.display import detect_display_server
    from .tray.probe import plan_tray

    if not settings.tray.enabled:
        return [_ok("tray", "disabled in the configuration")]
    display = detect_display_server()
    if not display.available:
        return [
            Finding(
                "tray",
                Status.WARNING,
                "no display: the assistant runs without a tray icon",
                "run it inside a desktop session to get the icon",
            )
        ]
    plan = plan_tray(display)
    if not plan.backends or not plan.host_confirmed:
        fix = (
            "on GNOME install the AppIndicator extension; elsewhere start the panel's system tray; "
            "the assistant runs without an icon until then"
        )
        return [Finding("tray", Status.WARNING, plan.why, fix)]
    return [_ok("tray", f"{plan.backends[0]} backend; {plan.why}")]


def check_voices(settings: Settings) -> list[Finding]:
    from .speech.voices import SpeechUnavailable, list_voices

    try:
        voices = list_voices()
    except SpeechUnavailable as exc:
        status = Status.PROBLEM if settings.tts.enabled else Status.WARNING
        return [Finding("voices", status, str(exc), "install espeak-ng, or set [tts] enabled = false")]
    if not voices:
        return [
            Finding(
                "voices",
                Status.PROBLEM if settings.tts.enabled else Status.WARNING,
                "the speech engine has no voices",
                "install espeak-ng voices (espeak-ng-data)",
            )
        ]
    wanted = settings.tts.voice
    if wanted and not any(wanted in (v.id, v.name) for v in voices):
        return [
            Finding(
                "voices",
                Status.PROBLEM,
                f"voice {wanted!r} not found among {len(voices)} voices",
                "set [tts] voice to a listed name, or empty for the default",
            )
        ]
    sample = ", ".join(v.name for v in voices[:5])
    return [_ok("voices", f"{len(voices)} voices ({sample}{', ...' if len(voices) > 5 else ''})")]


def check_models(settings: Settings) -> tuple[list[Finding], int]:
    """Findings for both model folders, and the bytes of RAM they need."""
    from .config import explicit_config_file
    from .models.manifest import InvalidModelFolder, not_converted_yet, nothing_converted, read_manifest

    findings = []
    needed = 0
    folders: list[tuple[str, Path]] = [("qwen2-audio", settings.models.audio_dir), ("qwen2-vl", settings.models.vl_dir)]
    if all(not_converted_yet(folder) for _, folder in folders):
        # A fresh install: one finding with the one command that converts both, as `assistant run` says.
        error = nothing_converted(settings.models.audio_dir, settings.models.vl_dir, explicit_config_file(settings))
        detail, _, command = str(error).rpartition("; run: ")
        fix = f"run: {command}"
        needed = sum(NOMINAL_MODEL_BYTES[kind] + RUNTIME_OVERHEAD_BYTES[kind] for kind, _ in folders)
        return [Finding("models", Status.PROBLEM, detail, fix)], needed
    for kind, folder in folders:
        try:
            manifest = read_manifest(folder, kind)  # type: ignore[arg-type]
        except InvalidModelFolder as exc:
            findings.append(
                Finding(f"model {kind}", Status.PROBLEM, str(exc).split(";")[0], str(exc).split("; ", 1)[-1])
            )
            needed += NOMINAL_MODEL_BYTES[kind] + RUNTIME_OVERHEAD_BYTES[kind]
            continue
        mode = manifest.compression.get("mode", "none")
        findings.append(_ok(f"model {kind}", f"{folder} ({manifest.weight_bytes / GIB:.1f} GiB, weights {mode})"))
        needed += manifest.weight_bytes + RUNTIME_OVERHEAD_BYTES[kind]
    return findings, needed


def check_memory(settings: Settings, needed: int) -> list[Finding]:
    """The configured models' need (from their manifests, as `assistant run` works it out) against this
    machine's memory; `needed` is the rough figure for models not converted yet."""
    from .memory_check import memory_fit, way_out
    from .system_memory import available_memory, memory_limit

    with_vl = settings.screen.enabled
    fit = memory_fit(settings, with_vl)
    if fit is None:
        limit, source = memory_limit()
        available = available_memory()
        detail = f"{available / GIB:.1f} GiB free of {limit / GIB:.1f} GiB; the models need ~{needed / GIB:.1f} GiB"
        impossible, tight = needed > limit, needed > available
    else:
        limit, source, available = fit.limit, fit.limit_source, fit.available
        detail = f"{available / GIB:.1f} GiB free of {limit / GIB:.1f} GiB ({source}); {fit.summary()}"
        impossible, tight = fit.impossible, fit.tight
    ways = way_out(settings, with_vl, fit.fp16_encoders if fit else ())
    if impossible:
        return [Finding("memory", Status.PROBLEM, detail, f"{source} is too small: try {ways}")]
    if tight:
        return [Finding("memory", Status.PROBLEM, detail, f"too little is free now: try {ways}")]
    return [_ok("memory", detail)]


def run_checks(settings: Settings) -> list[Finding]:
    findings: list[Finding] = []
    config = ", ".join(str(p) for p in settings.sources) or "built-in defaults (no user config file)"
    findings.append(_ok("config", config))
    steps: list[Callable[[], list[Finding]]] = [
        check_python,
        lambda: check_openvino(settings),
        lambda: check_audio(settings),
        check_display,
        lambda: check_tray(settings),
        lambda: check_voices(settings),
    ]
    for step in steps:
        try:
            findings.extend(step())
        except Exception as exc:  # one broken probe must not hide the other findings
            log.debug("check failed", exc_info=True)
            findings.append(Finding(getattr(step, "__name__", "check"), Status.PROBLEM, f"check crashed: {exc}"))
    model_findings, needed = check_models(settings)
    findings.extend(model_findings)
    findings.extend(check_memory(settings, needed))
    return findings
