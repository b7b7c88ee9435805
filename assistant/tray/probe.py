"""Can a tray icon be shown here: a pystray backend, and a tray host to show it."""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass

from ..screen.display import DisplayServer, detect_display_server

log = logging.getLogger(__name__)


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


def choose_backends(
    display: DisplayServer,
    backends: tuple[str, ...],
    xembed_host: bool | None,
    sni_host: bool | None,
    session_bus: bool = True,
) -> tuple[tuple[str, ...], str]:
    """(pystray backends to try, best first; why): empty when no icon can be shown here, and why not."""
    available = backends
    if not session_bus:  # pystray's GTK backends talk to the session bus (notifications) and fail without one
        backends = tuple(b for b in backends if b not in ("gtk", "appindicator"))
    if display.kind == "none":
        return (), "no display"
    if display.kind in ("windows", "macos"):
        return ("win32" if display.kind == "windows" else "darwin",), "native tray"
    if sni_host and "appindicator" in backends:
        return ("appindicator",), "StatusNotifier host"
    if display.kind == "wayland":
        if sni_host is False:
            return (), "no StatusNotifier host (GNOME needs the AppIndicator extension)"
        return (), "no AppIndicator library (install gir1.2-ayatanaappindicator3-0.1 and python3-gi)"
    if xembed_host is False:
        return (), "no system tray running on this X11 display"
    found = tuple(b for b in ("gtk", "xorg") if b in backends)
    if not found:
        return (), "no pystray backend (install python3-gi, or python-xlib)"
    host = "X11 system tray" if xembed_host else "X11 (cannot tell whether a system tray runs)"
    if found[0] == "xorg":  # pystray's xorg backend shows an icon but has no menu
        gone = "no D-Bus session bus" if "gtk" in available else "no PyGObject (install python3-gi)"
        return found, f"{host}; {gone}, so no menu"
    return found, host


def has_session_bus(environ: dict[str, str] | None = None) -> bool:
    """A D-Bus session bus to talk to: its address is set, or the user bus socket exists."""
    env = os.environ if environ is None else environ
    if env.get("DBUS_SESSION_BUS_ADDRESS"):
        return True
    runtime = env.get("XDG_RUNTIME_DIR")
    return bool(runtime) and os.path.exists(os.path.join(runtime, "bus"))


@dataclass(frozen=True)
class TrayPlan:
    backends: tuple[str, ...]  # pystray backends to try, best first; empty: no icon can be shown here
    why: str
    host_confirmed: bool  # a tray host answered (false when there is none, or it could not be asked)


def plan_tray(display: DisplayServer | None = None) -> TrayPlan:
    """What the service will try on this desktop, and why; the doctor reports the same."""
    display = display or detect_display_server()
    xembed = x11_tray_host(display.name) if display.kind == "x11" else None
    sni = status_notifier_host() if display.kind in ("x11", "wayland") else None
    backends, why = choose_backends(display, available_backends(), xembed, sni, has_session_bus())
    native = display.kind in ("windows", "macos")
    return TrayPlan(backends, why, bool(native or xembed or (sni and "appindicator" in backends)))
