"""Run the real command line in a subprocess with a controlled environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def headless_env(home: Path, **extra: str) -> dict[str, str]:
    """An environment with no display, no sound server and a private HOME/XDG tree."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "XDG_SESSION_TYPE")}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local/share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        # Point PulseAudio clients at nothing, so no daemon of the host (or autospawn) is used.
        PULSE_SERVER="unix:/nonexistent/pulse/native",
    )
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args],
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",  # the assistant writes UTF-8 (Python's UTF-8 mode) even where the locale is C
        errors="replace",
        timeout=timeout,
    )
