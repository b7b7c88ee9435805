"""Telling the platform's service manager about an installed file: enable, disable, and ask its state.

systemd: `systemctl --user` (enable works even without a running user manager: it only makes the
symlink); launchd: `launchctl bootstrap/bootout gui/<uid>`; Windows: `schtasks`; XDG autostart has no
manager, the session reads the folder at login. A missing tool is never an error: the file is in place,
and a note says what to run by hand.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .commands import Runner
from .kinds import LAUNCHD_LABEL, SYSTEMD_UNIT, WINDOWS_TASK, Kind
from .process import assistant_running


@dataclass(frozen=True)
class State:
    enabled: str  # "yes", "no" or "unknown" (no tool to ask)
    running: str


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _systemctl(*args: str) -> list[str]:
    return ["systemctl", "--user", *args]


def _gui_domain() -> str:
    return f"gui/{os.getuid() if hasattr(os, 'getuid') else 0}"


def activate(kind: Kind, path: Path, runner: Runner, *, changed: bool) -> list[str]:
    """Enable the installed file; returns what was done, one line each (notes start with 'note:')."""
    if kind is Kind.SYSTEMD:
        return _systemd_activate(runner, changed)
    if kind is Kind.LAUNCHD:
        return _launchd_activate(path, runner, changed)
    if kind is Kind.WINDOWS:
        return _windows_activate(path, runner)
    return ["starts at your next graphical login (XDG autostart needs no enabling)"]


def deactivate(kind: Kind, path: Path, runner: Runner) -> list[str]:
    """Disable (and stop) before the file is removed."""
    if kind is Kind.SYSTEMD:
        lines = []
        active = runner(_systemctl("is-active", SYSTEMD_UNIT))
        if active is not None and active.stdout.strip() in ("active", "activating", "reloading"):
            stop = runner(_systemctl("stop", SYSTEMD_UNIT))
            lines.append("stopped assistant.service" if stop and stop.ok else "note: could not stop assistant.service")
        disable = runner(_systemctl("disable", SYSTEMD_UNIT))
        if disable is not None and disable.ok:
            lines.append("disabled assistant.service (systemctl --user disable)")
        else:
            wants = path.parent / "graphical-session.target.wants" / SYSTEMD_UNIT
            if wants.is_symlink():
                wants.unlink()
                lines.append(f"removed {wants}")
        return lines
    if kind is Kind.LAUNCHD:
        done = runner(["launchctl", "bootout", f"{_gui_domain()}/{LAUNCHD_LABEL}"])
        return [f"unloaded {LAUNCHD_LABEL} (launchctl bootout)"] if done is not None and done.ok else []
    if kind is Kind.WINDOWS:
        done = runner(["schtasks", "/Delete", "/TN", WINDOWS_TASK, "/F"])
        if done is None:
            return [f"note: schtasks not found; if the task is registered, run: schtasks /Delete /TN {WINDOWS_TASK} /F"]
        return [f"deleted the scheduled task {WINDOWS_TASK}"] if done.ok else []
    return []


def after_removal(kind: Kind, path: Path, runner: Runner) -> list[str]:
    """Let the manager forget the removed file; an empty .wants folder means nothing to systemd."""
    if kind is not Kind.SYSTEMD:
        return []
    wants_dir = path.parent / "graphical-session.target.wants"
    if wants_dir.is_dir() and not any(wants_dir.iterdir()):
        wants_dir.rmdir()
    reload = runner(_systemctl("daemon-reload"))
    return ["reloaded the systemd user manager"] if reload is not None and reload.ok else []


def probe(kind: Kind, path: Path, runner: Runner) -> State:
    """Enabled and running, as far as this machine can tell."""
    if kind is Kind.SYSTEMD:
        return _systemd_probe(path, runner)
    if kind is Kind.LAUNCHD:
        return _launchd_probe(runner)
    if kind is Kind.WINDOWS:
        return _windows_probe(runner)
    return State(_yes(_autostart_enabled(path)), _yes(assistant_running()))


def _systemd_activate(runner: Runner, changed: bool) -> list[str]:
    lines: list[str] = []
    if changed:
        reload = runner(_systemctl("daemon-reload"))
        if reload is None:
            return [f"note: systemctl not found; enable it later with: systemctl --user enable {SYSTEMD_UNIT}"]
        if reload.ok:
            lines.append("reloaded the systemd user manager (systemctl --user daemon-reload)")
        else:
            lines.append(
                f"note: no systemd user manager reachable ({reload.reason()}); it reads the unit at your next login"
            )
    enabled = runner(_systemctl("is-enabled", SYSTEMD_UNIT))
    if enabled is not None and enabled.stdout.strip() == "enabled":
        lines.append(f"{SYSTEMD_UNIT} is already enabled")
        return lines
    enable = runner(_systemctl("enable", SYSTEMD_UNIT))
    if enable is None:
        lines.append(f"note: systemctl not found; enable it later with: systemctl --user enable {SYSTEMD_UNIT}")
    elif enable.ok:
        lines.append(
            f"enabled {SYSTEMD_UNIT}: it starts with your graphical session "
            "(start it now with: systemctl --user start assistant)"
        )
    else:
        lines.append(f"note: could not enable ({enable.reason()}); run: systemctl --user enable {SYSTEMD_UNIT}")
    return lines


def _systemd_probe(path: Path, runner: Runner) -> State:
    enabled_result = runner(_systemctl("is-enabled", SYSTEMD_UNIT))
    if enabled_result is not None and enabled_result.stdout.strip():
        enabled = _yes(enabled_result.stdout.strip() == "enabled")
    else:
        enabled = _yes((path.parent / "graphical-session.target.wants" / SYSTEMD_UNIT).is_symlink())
    active = runner(_systemctl("is-active", SYSTEMD_UNIT))
    state = active.stdout.strip() if active is not None else ""
    running = _yes(state == "active") if state else "unknown"  # no user manager reachable
    return State(enabled, running)


def _autostart_enabled(path: Path) -> bool:
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except OSError:
        return False
    return "Hidden=true" not in lines and "X-GNOME-Autostart-enabled=false" not in lines


def _launchd_activate(path: Path, runner: Runner, changed: bool) -> list[str]:
    domain = _gui_domain()
    if changed:
        runner(["launchctl", "bootout", f"{domain}/{LAUNCHD_LABEL}"])  # a previous version, if loaded
    loaded = runner(["launchctl", "print", f"{domain}/{LAUNCHD_LABEL}"])
    if loaded is not None and loaded.ok:
        return [f"{LAUNCHD_LABEL} is already loaded"]
    done = runner(["launchctl", "bootstrap", domain, str(path)])
    if done is None:
        return ["note: launchctl not found (not macOS?); the agent loads at your next login"]
    if done.ok:
        return [f"loaded {LAUNCHD_LABEL} (launchctl bootstrap {domain}): it runs now and at every login"]
    return [f"note: could not load it ({done.reason()}); run: launchctl bootstrap {domain} {path}"]


def _launchd_probe(runner: Runner) -> State:
    done = runner(["launchctl", "print", f"{_gui_domain()}/{LAUNCHD_LABEL}"])
    if done is None:
        return State("unknown", _yes(assistant_running()))
    return State(_yes(done.ok), _yes(done.ok and "state = running" in done.stdout))


def _windows_activate(path: Path, runner: Runner) -> list[str]:
    command = f"schtasks /Create /TN {WINDOWS_TASK} /XML {path}"
    done = runner(["schtasks", "/Create", "/TN", WINDOWS_TASK, "/XML", str(path), "/F"])
    if done is None:
        return [f"note: schtasks not found (not Windows?); register it with: {command}"]
    if done.ok:
        return [f"registered the scheduled task {WINDOWS_TASK}: it starts at your next logon"]
    return [f"note: could not register the task ({done.reason()}); run: {command}"]


def _windows_probe(runner: Runner) -> State:
    done = runner(["schtasks", "/Query", "/TN", WINDOWS_TASK, "/FO", "LIST"])
    if done is None:
        return State("unknown", _yes(assistant_running()))
    if not done.ok:
        return State("no", _yes(assistant_running()))
    status = next(
        (line.split(":", 1)[1].strip() for line in done.stdout.splitlines() if line.startswith("Status:")), ""
    )
    return State(_yes(status != "Disabled"), _yes(status == "Running"))
