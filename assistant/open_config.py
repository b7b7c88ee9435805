"""The tray's "Open config": the user's configuration file in the desktop's editor.

A user without a file yet gets one holding every default, commented out, so there is
something to edit; the file the service actually reads is the one opened.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .config import Settings, default_config_text, user_config_path

log = logging.getLogger(__name__)


def config_file_to_edit(settings: Settings) -> Path:
    """The file the settings came from, or the user's file, created with the defaults commented out."""
    if settings.sources:
        return settings.sources[-1]
    path = user_config_path()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        defaults = default_config_text().splitlines()
        lines = [line if not line.strip() or line.startswith("#") else f"# {line}" for line in defaults]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        log.info("wrote %s with the defaults commented out", path)
    return path


def open_with_desktop(path: Path) -> None:
    """Open a file the way a double click would; errors are logged, not raised (a tray click)."""
    try:
        if sys.platform == "win32":
            os.startfile(path)  # type: ignore[attr-defined]
            return
        opener = "open" if sys.platform == "darwin" else "xdg-open"
        if shutil.which(opener) is None:
            log.warning("cannot open %s: %s is not installed; edit the file yourself", path, opener)
            return
        subprocess.Popen([opener, str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError as exc:
        log.warning("cannot open %s: %s", path, exc)


def open_config(settings: Settings) -> Path:
    path = config_file_to_edit(settings)
    open_with_desktop(path)
    return path
