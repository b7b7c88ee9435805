"""Can a tray icon be shown here: a pystray backend, and a tray host to show it."""

from __future__ import annotations

import importlib.util
import logging
import shutil
import subprocess
from dataclasses import dataclass

from ..screen.display import DisplayServer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrayProbe:
    backends: tuple[str, ...]  # pystray backends that can load here, best first
    host: bool | None  # a tray host is running; None when it cannot be told
    detail: str


def available_backends() -> tuple[str, ...]:
    """pystray backends whose libraries import; gtk/appindicator have real menus, xorg has none."""
    found = []
    if importlib.util.find_spec("gi") is not None:
        try:
            import gi

            gi.require_version("Gtk", "3.0")
            from gi.repository import Gtk  # noqa: F401

            found.append("gtk")
            for namespace in ("AyatanaAppIndicator3", "AppIndicator3"):
                try:
                    gi.require_version(namespace, "0.1")
                    found.insert(0, "appindicator")
                    break
                except ValueError:
                    continue
        except (ImportError, ValueError):
            pass
    if importlib.util.find_spec("Xlib") is not None:
        found.append("xorg")
    return tuple(found)


def x11_tray_host(display_name: str) -> bool | None:
    """Whether an X11 system tray (the _NET_SYSTEM_TRAY_S<n> selection owner) exists."""
    try:
        from Xlib import X, display
    except ImportError:
        return None
    try:
        d = display.Display(display_name)
    except Exception:
        return None
    try:
        atom = d.intern_atom(f"_NET_SYSTEM_TRAY_S{d.get_default_screen()}")
        return d.get_selection_owner(atom) != X.NONE
    finally:
        d.close()


def status_notifier_host() -> bool | None:
    """Whether a StatusNotifier (AppIndicator) host is on the session bus, as Wayland desktops use."""
    gdbus = shutil.which("gdbus")
    if gdbus is None:
        return None
    try:
        out = subprocess.run(
            [
                gdbus,
                "call",
                "--session",
                "--dest",
                "org.freedesktop.DBus",
                "--object-path",
                "/org/freedesktop/DBus",
                "--method",
                "org.freedesktop.DBus.NameHasOwner",
                "org.kde.StatusNotifierWatcher",
            ],
            capture_output=True,
            text=True,
            timeout=3,
        )
    except (subprocess.SubprocessError, OSError):
        return None
    if out.returncode != 0:
        return None
    return "true" in out.stdout


def probe_tray(display: DisplayServer) -> TrayProbe:
    backends = available_backends()
    if display.kind == "none":
        return TrayProbe(backends, False, "no display")
    if display.kind in ("windows", "macos"):
        return TrayProbe(("win32",) if display.kind == "windows" else ("darwin",), True, "native tray")
    if display.kind == "x11":
        host = x11_tray_host(display.name)
        detail = {True: "X11 system tray found", False: "no X11 system tray running", None: "cannot ask X11"}[host]
        return TrayProbe(backends, host, detail)
    host = status_notifier_host()
    detail = {
        True: "StatusNotifier host found",
        False: "no StatusNotifier host (GNOME needs the AppIndicator extension)",
        None: "cannot ask the session bus",
    }[host]
    return TrayProbe(backends, host, detail)
