"""Will the configured models fit? Their need (models/memory_needs.py) against this machine's memory.

`assistant run` asks before it loads anything: a need beyond what the machine (or the memory cgroup the
service runs in) can ever give is a one-line error at start-up, not an OOM kill in the middle of an
answer; a need beyond what is free right now is a one-line warning. `assistant doctor` reports the same.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .config import Settings
from .errors import UsageError
from .models.memory_needs import GIB, MemoryNeed, cpu_widens_f16, model_need, service_need

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MemoryFit:
    need: MemoryNeed
    limit: int  # the most this process could have
    limit_source: str
    available: int  # what it can have now
    fp16_encoders: tuple[str, ...] = ()  # "audio"/"vl": converted with 16-bit encoders, which take 2-4x the room

    @property
    def impossible(self) -> bool:
        return self.need.total > self.limit

    @property
    def tight(self) -> bool:
        return self.need.total > self.available

    def summary(self) -> str:
        largest = sorted(self.need.parts.items(), key=lambda kv: -kv[1])[:3]
        parts = ", ".join(f"{name} {size / GIB:.1f}" for name, size in largest)
        return f"the models need ~{self.need.total / GIB:.1f} GiB of memory ({parts} GiB)"


def way_out(settings: Settings, with_vl: bool, fp16_encoders: tuple[str, ...] = ()) -> str:
    ways = []
    if fp16_encoders:
        target = fp16_encoders[0] if len(fp16_encoders) == 1 else "all"
        ways.append(f"converting again with INT8 encoders (assistant convert {target} --force)")
    if with_vl:
        ways += [
            f"a smaller [screen] max_pixels (now {settings.screen.max_pixels})",
            "the screen model off ([screen] enabled = false)",
        ]
    if settings.runtime.device.upper().startswith("CPU"):
        ways.append('the other device ([runtime] device = "GPU")')
    ways.append("close other programs")
    return "; or ".join(ways)


def memory_fit(settings: Settings, with_vl: bool) -> MemoryFit | None:
    """The configured models' need and this machine's room, None when it cannot be told (a device other than
    the CPU holds the weights; a folder without a manifest: its own error comes first)."""
    from .daemon.conversation import HISTORY_AUDIO_S, HISTORY_TURNS
    from .models.manifest import InvalidModelFolder, read_manifest
    from .system_memory import available_memory, memory_limit

    if not settings.runtime.device.upper().startswith("CPU"):
        return None
    folders = [("qwen2-audio", settings.models.audio_dir)]
    if with_vl:
        folders.append(("qwen2-vl", settings.models.vl_dir))
    widens = cpu_widens_f16()
    needs, fp16_encoders = [], []
    for kind, folder in folders:
        try:
            manifest = read_manifest(folder, kind)  # type: ignore[arg-type]
            need = model_need(
                folder,
                manifest,
                widens_f16=widens,
                history_turns=HISTORY_TURNS,
                history_audio_s=HISTORY_AUDIO_S,
                max_new_tokens=settings.generation.max_new_tokens,
                max_pixels=settings.screen.max_pixels,
            )
        except (InvalidModelFolder, OSError, ValueError, KeyError):  # its own error comes first; no estimate
            return None
        needs.append(need)
        if manifest.compression.get("encoders") == "fp16":
            fp16_encoders.append("audio" if kind == "qwen2-audio" else "vl")
    limit, source = memory_limit()
    return MemoryFit(service_need(needs), limit, source, available_memory(), tuple(fp16_encoders))


def check_memory_before_start(settings: Settings, with_vl: bool) -> None:
    """Refuse a start that cannot fit; warn, in one line with the way out, when it does not fit right now."""
    fit = memory_fit(settings, with_vl)
    if fit is None:
        return
    if fit.impossible:
        raise UsageError(
            f"{fit.summary()}, but {fit.limit_source} is {fit.limit / GIB:.1f} GiB; "
            f"try {way_out(settings, with_vl, fit.fp16_encoders)}"
        )
    if fit.tight:
        log.warning(
            "%s, but only %.1f GiB is free now: answers may be slow or the service killed; try %s",
            fit.summary(),
            fit.available / GIB,
            way_out(settings, with_vl, fit.fp16_encoders),
        )
