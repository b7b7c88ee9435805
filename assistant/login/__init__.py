"""Login integration: start the assistant at login (systemd user unit, XDG autostart, LaunchAgent,
Windows logon task) from the templates in `service/`, and tell systemd when it is ready."""

from .commands import CommandResult, Runner, system_runner
from .install import Interpreter, KindStatus, Outcome, install, installed_kinds, status, uninstall
from .kinds import Kind, default_kind, target_path
from .notify import notify_ready, notify_status, notify_stopping, notify_watchdog

__all__ = [
    "CommandResult",
    "Interpreter",
    "Kind",
    "KindStatus",
    "Outcome",
    "Runner",
    "default_kind",
    "install",
    "installed_kinds",
    "notify_ready",
    "notify_status",
    "notify_stopping",
    "notify_watchdog",
    "status",
    "system_runner",
    "target_path",
    "uninstall",
]
