"""Audio devices as PortAudio (through sounddevice) sees them."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType

from ..errors import AssistantError

log = logging.getLogger(__name__)


class AudioUnavailable(AssistantError):
    """PortAudio cannot be loaded or initialised."""


@dataclass(frozen=True)
class AudioDevice:
    index: int
    name: str
    host_api: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float
    is_default_input: bool
    is_default_output: bool


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """ALSA prints probe failures straight to fd 2 while PortAudio scans cards; hide them."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def load_sounddevice() -> ModuleType:
    """Import sounddevice, turning a missing PortAudio into a clear error."""
    try:
        with _quiet_native_stderr():
            import sounddevice
    except OSError as exc:
        raise AudioUnavailable(
            f"PortAudio is not available ({exc}); install it: sudo apt-get install libportaudio2"
        ) from None
    return sounddevice


def list_audio_devices() -> list[AudioDevice]:
    sd = load_sounddevice()
    with _quiet_native_stderr():
        try:
            raw = sd.query_devices()
            apis = sd.query_hostapis()
        except Exception as exc:  # PortAudio reports problems as plain exceptions
            raise AudioUnavailable(f"PortAudio could not list devices ({exc})") from None
        default_in, default_out = _default_indexes(sd)
    devices = []
    for info in raw:
        devices.append(
            AudioDevice(
                index=int(info["index"]),
                name=str(info["name"]),
                host_api=str(apis[info["hostapi"]]["name"]),
                max_input_channels=int(info["max_input_channels"]),
                max_output_channels=int(info["max_output_channels"]),
                default_samplerate=float(info["default_samplerate"]),
                is_default_input=int(info["index"]) == default_in,
                is_default_output=int(info["index"]) == default_out,
            )
        )
    return devices


def _default_indexes(sd: ModuleType) -> tuple[int, int]:
    try:
        default_in, default_out = sd.default.device
    except Exception:
        return -1, -1
    return int(default_in if default_in is not None else -1), int(default_out if default_out is not None else -1)


def find_device(devices: list[AudioDevice], wanted: str | int, *, kind: str) -> AudioDevice | None:
    """The device a config value names: "" is the default, a number an index, text part of a name."""
    usable = [d for d in devices if (d.max_input_channels if kind == "input" else d.max_output_channels) > 0]
    if wanted == "":
        for d in usable:
            if d.is_default_input if kind == "input" else d.is_default_output:
                return d
        return usable[0] if usable else None
    if isinstance(wanted, int):
        return next((d for d in usable if d.index == wanted), None)
    needle = wanted.casefold()
    return next((d for d in usable if needle in d.name.casefold()), None)
