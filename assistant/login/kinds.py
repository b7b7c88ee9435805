"""The four kinds of login integration and where each one's file lives under the user's home."""

from __future__ import annotations

import enum
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class KindSpec:
    template: str  # file name in service/
    description: str
    comment: str  # "#" for line comments, "xml" for <!-- --> comments
    encoding: str = "utf-8"


class Kind(enum.Enum):
    SYSTEMD = "systemd"
    AUTOSTART = "autostart"
    LAUNCHD = "launchd"
    WINDOWS = "windows"

    @property
    def spec(self) -> KindSpec:
        return _SPECS[self]


_SPECS = {
    Kind.SYSTEMD: KindSpec("assistant.service", "systemd user unit", "#"),
    Kind.AUTOSTART: KindSpec("assistant.desktop", "XDG autostart entry", "#"),
    Kind.LAUNCHD: KindSpec("com.assistant.plist", "macOS LaunchAgent", "xml"),
    # UTF-16 with a byte-order mark, as Task Scheduler itself exports tasks.
    Kind.WINDOWS: KindSpec("assistant-logon-task.xml", "Windows logon task", "xml", "utf-16"),
}

SYSTEMD_UNIT = "assistant.service"
LAUNCHD_LABEL = "com.assistant"
WINDOWS_TASK = "Assistant"


def home_dir(env: Mapping[str, str]) -> Path:
    return Path(env.get("HOME") or env.get("USERPROFILE") or Path.home())


def config_home(env: Mapping[str, str]) -> Path:
    value = env.get("XDG_CONFIG_HOME", "")
    return Path(value) if os.path.isabs(value) else home_dir(env) / ".config"


def target_path(kind: Kind, env: Mapping[str, str]) -> Path:
    """Where install writes this kind's file: always under the user's home, never system-wide."""
    if kind is Kind.SYSTEMD:
        return config_home(env) / "systemd" / "user" / SYSTEMD_UNIT
    if kind is Kind.AUTOSTART:
        return config_home(env) / "autostart" / "assistant.desktop"
    if kind is Kind.LAUNCHD:
        return home_dir(env) / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"
    local = env.get("LOCALAPPDATA")
    base = Path(local) if local else home_dir(env) / "AppData" / "Local"
    return base / "assistant" / Kind.WINDOWS.spec.template


def user_manager_running(env: Mapping[str, str]) -> bool:
    """A systemd user manager listens on $XDG_RUNTIME_DIR/systemd/private while it runs."""
    runtime = env.get("XDG_RUNTIME_DIR")
    return bool(runtime) and Path(runtime, "systemd", "private").exists()


def default_kind(env: Mapping[str, str], platform: str = sys.platform) -> Kind:
    """The platform's usual login integration; on Linux the systemd unit only when a user manager runs."""
    if platform == "darwin":
        return Kind.LAUNCHD
    if platform.startswith("win"):
        return Kind.WINDOWS
    return Kind.SYSTEMD if user_manager_running(env) else Kind.AUTOSTART
