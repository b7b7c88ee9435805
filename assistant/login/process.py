"""Is an `assistant run` of this user alive? For kinds whose service manager cannot tell us."""

from __future__ import annotations

import os
from collections.abc import Sequence

import psutil


def is_assistant_run(cmdline: Sequence[str]) -> bool:
    """`python -m assistant run ...` or `assistant run ...`."""
    args = list(cmdline)
    if any(args[i : i + 3] == ["-m", "assistant", "run"] for i in range(len(args) - 2)):
        return True
    return len(args) >= 2 and os.path.basename(args[0]) in ("assistant", "assistant.exe") and args[1] == "run"


def assistant_running() -> bool:
    me = os.getpid()
    my_uid = os.getuid() if hasattr(os, "getuid") else None
    for proc in psutil.process_iter(["pid", "cmdline", "uids"]):
        info = proc.info
        if info.get("pid") == me:
            continue
        uids = info.get("uids")
        if my_uid is not None and uids is not None and uids.real != my_uid:
            continue
        if is_assistant_run(info.get("cmdline") or []):
            return True
    return False
