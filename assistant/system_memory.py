"""How much memory this process may use: the machine's available RAM and swap, within its cgroup's limit
(a systemd slice's MemoryMax, a container's limit)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import psutil


def available_memory() -> int:
    """Memory this process can still use: what it holds, plus available RAM and free swap, within the limit
    of its cgroup."""
    own = psutil.Process().memory_info().rss
    available = psutil.virtual_memory().available + psutil.swap_memory().free
    cgroup = _cgroup_room()
    if cgroup is None:
        return own + available
    limit, room = cgroup
    return min(limit, own + min(available, room))


def memory_limit() -> tuple[int, str]:
    """The most memory this process could ever have, and what sets it: its cgroup's limit, or the machine's
    RAM and swap."""
    machine = psutil.virtual_memory().total + psutil.swap_memory().total
    cgroup = _cgroup_room()
    if cgroup is not None and cgroup[0] < machine:
        return cgroup[0], "its memory cgroup's limit"
    return machine, "this machine's RAM and swap"


def _cgroup_room() -> tuple[int, int] | None:
    """(limit, room left) of this process's cgroup memory (v2 or v1), None when unlimited."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # cgroup v2
            base = Path("/sys/fs/cgroup") / path.lstrip("/")
            room = _room(base / "memory.max", base / "memory.current", base / "memory.stat", "inactive_file")
        elif "memory" in controllers.split(","):
            base = Path("/sys/fs/cgroup/memory") / path.lstrip("/")
            room = _room(
                base / "memory.limit_in_bytes",
                base / "memory.usage_in_bytes",
                base / "memory.stat",
                "total_inactive_file",
            )
        else:
            continue
        if room is not None:
            return room
    return None


def _room(limit_file: Path, usage_file: Path, stat_file: Path, reclaimable_key: str) -> tuple[int, int] | None:
    """Limit less usage; the usage counts page cache, of which the inactive part is given back on demand."""
    try:
        limit_text = limit_file.read_text().strip()
        if limit_text == "max" or int(limit_text) >= 1 << 60:  # v1 writes "no limit" as a huge number
            return None
        usage = int(usage_file.read_text().strip())
    except (OSError, ValueError):
        return None
    reclaimable = 0
    with contextlib.suppress(OSError, ValueError):
        for line in stat_file.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == reclaimable_key:
                reclaimable = int(value)
    limit = int(limit_text)
    return limit, max(0, limit - usage + reclaimable)
