"""Screenshots: mss on X11, Windows and macOS; the desktop portal or grim on Wayland. Kept in memory."""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from io import BytesIO

from PIL import Image

from ..errors import AssistantError
from .display import DisplayServer, detect_display_server

log = logging.getLogger(__name__)


class ScreenCaptureUnavailable(AssistantError):
    """Nothing on this session can take a screenshot; the message says why and what to do."""


@dataclass(frozen=True)
class Monitor:
    index: int  # 1-based, as mss numbers them
    left: int
    top: int
    width: int
    height: int


def _pick_monitor(monitors: list[Monitor], which: str | int, pointer: tuple[int, int] | None) -> Monitor:
    """Pure choice of a monitor: a 1-based number, the one under the pointer, or the first."""
    if isinstance(which, int):
        for m in monitors:
            if m.index == which:
                return m
        raise ScreenCaptureUnavailable(
            f"monitor {which} does not exist (this desktop has {len(monitors)}); fix [screen] monitor"
        )
    if which == "pointer" and pointer is not None:
        x, y = pointer
        for m in monitors:
            if m.left <= x < m.left + m.width and m.top <= y < m.top + m.height:
                return m
    return monitors[0]


def _x11_pointer(display_name: str) -> tuple[int, int] | None:
    try:
        from Xlib import display as xdisplay

        d = xdisplay.Display(display_name)
        try:
            p = d.screen().root.query_pointer()
            return int(p.root_x), int(p.root_y)
        finally:
            d.close()
    except Exception:  # no pointer position is not an error: fall back to the first monitor
        return None


def capture_screen(which: str | int = "pointer", display: DisplayServer | None = None) -> Image.Image:
    """One screenshot as an RGB image, of the chosen monitor or of all of them."""
    display = display or detect_display_server()
    if display.kind == "none":
        raise ScreenCaptureUnavailable("no display (neither DISPLAY nor WAYLAND_DISPLAY is set); cannot see the screen")
    if display.kind == "wayland":
        return _capture_wayland()
    return _capture_mss(which, display)


def _capture_mss(which: str | int, display: DisplayServer) -> Image.Image:
    import mss

    try:
        # mss.MSS replaced the mss.mss() factory in mss 10.2.
        options = {"display": display.name} if display.kind == "x11" else {}
        with mss.MSS(**options) as sct:
            raw_monitors = sct.monitors
            if which == "all":
                region = raw_monitors[0]
            else:
                monitors = [
                    Monitor(i, m["left"], m["top"], m["width"], m["height"]) for i, m in enumerate(raw_monitors) if i
                ]
                pointer = _x11_pointer(display.name) if which == "pointer" and display.kind == "x11" else None
                m = _pick_monitor(monitors, which, pointer)
                region = {"left": m.left, "top": m.top, "width": m.width, "height": m.height}
            shot = sct.grab(region)
    except ScreenCaptureUnavailable:
        raise
    except Exception as exc:
        raise ScreenCaptureUnavailable(
            f"cannot capture the screen on {display.kind} {display.name} ({exc}); check that the display is reachable"
        ) from None
    return Image.frombytes("RGB", shot.size, shot.bgra, "raw", "BGRX")


def _capture_wayland() -> Image.Image:
    """The screenshot portal (GNOME, KDE, and wlroots with xdg-desktop-portal-wlr), else grim."""
    from .portal import PortalRefused, PortalUnavailable, capture_with_portal

    try:
        return capture_with_portal()
    except PortalRefused as exc:
        raise ScreenCaptureUnavailable(f"the desktop's screenshot portal gave no picture: {exc}") from None
    except PortalUnavailable as exc:
        portal_problem = str(exc)
    # mss cannot read a Wayland screen; grim works on wlroots compositors (Sway, Hyprland).
    grim = shutil.which("grim")
    if grim is None:
        raise ScreenCaptureUnavailable(
            f"cannot capture the Wayland screen: {portal_problem}, and grim is not installed; "
            "install xdg-desktop-portal for your desktop (or grim on Sway/Hyprland)"
        )
    try:
        png = subprocess.run([grim, "-t", "png", "-"], capture_output=True, check=True, timeout=10).stdout
        image = Image.open(BytesIO(png))
        return image.convert("RGB")
    except (subprocess.SubprocessError, OSError) as exc:
        raise ScreenCaptureUnavailable(f"grim could not capture the screen ({exc})") from None
