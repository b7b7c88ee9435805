"""Mapped weights files dropped from resident memory: which mappings, and that the data survives."""

from __future__ import annotations

import mmap
import os
import re
from pathlib import Path

import numpy as np
import pytest

from assistant.models.mapped_weights import read_only_mappings, release_mapped_weights

MAPS = """\
55d0c0000000-55d0c0021000 r--p 00000000 fe:00 1 /usr/bin/python3.11
7f3e64000000-7f3e64200000 rwxp 00000000 00:00 0
7f3e64200000-7f3e9be21000 r--s 00000000 fe:00 5466221                    /cache/ov/1014.blob
7f3ea0c00000-7f3eefe29000 r--p 00000000 fe:00 5466220                    /models/audio/language_model.bin
7f3ef0000000-7f3ef0100000 rw-p 00000000 fe:00 5466222                    /models/audio/written.bin
7f3ef1000000-7f3ef1100000 r--s 00000000 fe:00 5466223                    /elsewhere/other.blob
"""


def test_only_read_only_mappings_of_files_in_the_folders_are_chosen():
    found = read_only_mappings(MAPS, [Path("/cache/ov"), Path("/models/audio")])
    assert [m.path for m in found] == ["/cache/ov/1014.blob", "/models/audio/language_model.bin"]
    assert found[0].start == 0x7F3E64200000 and found[0].size == 0x7F3E9BE21000 - 0x7F3E64200000


def resident_kib(path: Path) -> int:
    """RSS of this process's mappings of `path`, from /proc/self/smaps."""
    total, current = 0, None
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            current = line.split(maxsplit=5)[-1] if len(line.split()) >= 6 else ""
        elif line.startswith("Rss:") and current == str(path):
            total += int(line.split()[1])
    return total


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="Linux /proc")
def test_released_pages_leave_the_resident_set_and_read_back_the_same(tmp_path):
    weights = np.random.default_rng(0).integers(0, 255, 32 << 20, dtype=np.uint8)
    path = tmp_path / "weights.blob"
    weights.tofile(path)
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        view = np.frombuffer(mapped, dtype=np.uint8)
        assert int(view.sum()) == int(weights.sum())  # every page touched: resident
        assert resident_kib(path) >= 30 << 10
        assert release_mapped_weights([tmp_path]) >= 32 << 20
        assert resident_kib(path) < 1 << 10
        assert np.array_equal(view, weights)  # faulted back in, unchanged
        del view


def filesystem_of(path: Path) -> str:
    """The type of the filesystem `path` is on (the longest mount point above it)."""
    mounts = [line.split()[1:3] for line in Path("/proc/mounts").read_text().splitlines()]
    above = [(point, kind) for point, kind in mounts if path.resolve().is_relative_to(point)]
    return max(above, key=lambda m: len(m[0]))[1]


def cached_fraction(path: Path) -> float:
    """Share of a file's pages in the page cache (mincore on a fresh private mapping)."""
    import ctypes

    size = path.stat().st_size
    pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY) as mapped:
        address = ctypes.addressof(ctypes.c_char.from_buffer(mapped))
        vector = (ctypes.c_ubyte * pages)()
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
        assert libc.mincore(ctypes.c_void_p(address), ctypes.c_size_t(size), vector) == 0
        return sum(v & 1 for v in vector) / pages


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="Linux /proc")
def test_released_files_leave_the_page_cache_too(tmp_path):
    """In a memory cgroup the page cache is charged to the service: the released files' pages go."""
    if filesystem_of(tmp_path) == "tmpfs":
        pytest.skip("tmp is a tmpfs: its pages are the files")
    weights = np.random.default_rng(1).integers(0, 255, 16 << 20, dtype=np.uint8)
    path = tmp_path / "weights.blob"
    with path.open("wb") as out:
        weights.tofile(out)
        out.flush()
        os.fsync(out.fileno())  # clean pages, as a model file's are: dirty ones cannot be dropped
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        assert int(np.frombuffer(mapped, dtype=np.uint8).sum()) == int(weights.sum())
        assert cached_fraction(path) > 0.9
        release_mapped_weights([tmp_path])
        assert cached_fraction(path) < 0.1
        assert np.array_equal(np.frombuffer(mapped, dtype=np.uint8), weights)  # read again from the disk
