"""Weights files the process maps but no longer reads, kept out of its resident memory.

OpenVINO maps the compiled-model cache's blobs (or, without a cache, the IR `.bin` files) into memory,
and the CPU plugin copies what it computes with into memory of its own as it compiles and first runs each
sub-model. After the warm-up the mapped pages are a second copy of the weights, counted in the RSS that
`top` shows next to the assistant (5.4 GiB of its 13.7 with both full-size models; 10.4 of 22 on a CPU
without bf16, where the encoders' f16 weights are widened to f32). `release_mapped_weights` drops those
pages from the process with madvise(MADV_DONTNEED): on a read-only mapping nothing is lost, and a later
read faults them back in. Then it drops the files' pages from the page cache too (posix_fadvise
DONTNEED): in a memory cgroup (a systemd slice, a container) they are charged to the service, and at the
limit every allocation of the service reclaimed them first, which made answers 15-50% slower in 9 GiB.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MADV_DONTNEED = 4


@dataclass(frozen=True)
class FileMapping:
    start: int
    end: int
    path: str

    @property
    def size(self) -> int:
        return self.end - self.start


def read_only_mappings(maps: str, folders: Iterable[Path]) -> list[FileMapping]:
    """The read-only mappings in /proc/PID/maps text of files under `folders` (writable ones are skipped:
    dropping a private mapping's written pages would lose them)."""
    roots = [Path(f).resolve() for f in folders]
    found = []
    for line in maps.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) < 6 or "w" in fields[1] or not fields[5].startswith("/"):
            continue
        path = Path(fields[5])
        if not any(path.is_relative_to(root) for root in roots):
            continue
        start, end = (int(x, 16) for x in fields[0].split("-"))
        found.append(FileMapping(start, end, fields[5]))
    return found


def release_mapped_weights(folders: Iterable[Path]) -> int:
    """Drop this process's resident pages of read-only mapped files under `folders`; the bytes mapped.

    Linux only; elsewhere (or when madvise fails) nothing happens but a debug line.
    """
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return 0
    mappings = read_only_mappings(maps, folders)
    if not mappings:
        return 0
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    released = 0
    for m in mappings:
        if libc.madvise(ctypes.c_void_p(m.start), ctypes.c_size_t(m.size), MADV_DONTNEED) == 0:
            released += m.size
        else:
            log.debug("madvise(%s) failed: errno %d", m.path, ctypes.get_errno())
    for path in sorted({m.path for m in mappings}):
        drop_from_page_cache(path)
    log.info("released %.1f GiB of mapped weights files from memory", released / (1 << 30))
    return released


def drop_from_page_cache(path: str) -> None:
    """Ask the kernel to drop a file's clean cached pages (those no process maps); best effort."""
    if not hasattr(os, "posix_fadvise"):
        return
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
