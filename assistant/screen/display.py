"""Which display server this session has (X11, Wayland, a native desktop, or none)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Literal

DisplayKind = Literal["x11", "wayland", "windows", "macos", "none"]


@dataclass(frozen=True)
class DisplayServer:
    kind: DisplayKind
    name: str  # e.g. ":0", "wayland-0"; empty when none

    @property
    def available(self) -> bool:
        return self.kind != "none"


def detect_display_server(environ: dict[str, str] | None = None, platform: str | None = None) -> DisplayServer:
    """Decide from the session's environment; pure, so it is testable without a display."""
    env = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if platform == "win32":
        return DisplayServer("windows", "desktop")
    if platform == "darwin":
        return DisplayServer("macos", "desktop")
    # A Wayland session usually also sets DISPLAY (XWayland), but X11 capture sees only X clients there.
    if env.get("WAYLAND_DISPLAY") or env.get("XDG_SESSION_TYPE") == "wayland":
        return DisplayServer("wayland", env.get("WAYLAND_DISPLAY", "wayland"))
    if env.get("DISPLAY"):
        return DisplayServer("x11", env["DISPLAY"])
    return DisplayServer("none", "")
