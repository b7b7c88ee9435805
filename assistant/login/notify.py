"""The systemd readiness protocol (sd_notify), written out: one datagram to $NOTIFY_SOCKET.

Under `Type=notify` systemd waits for `READY=1` before it calls the assistant started, so the
listening service sends it once both models are loaded. Every function is a no-op (returning False)
when the assistant was not started by systemd, and a failure to notify is logged, never raised:
the assistant itself must not fail because its supervisor went away.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


def _address(env: Mapping[str, str]) -> str | None:
    path = env.get("NOTIFY_SOCKET", "")
    if path.startswith("@"):
        return "\0" + path[1:]  # Linux abstract namespace
    if path.startswith("/"):
        return path
    if path:
        log.debug("NOTIFY_SOCKET %r is not a unix socket path; not notifying", path)
    return None


def notify(*fields: str, env: Mapping[str, str] | None = None) -> bool:
    """Send `KEY=value` fields in one message; True when it was sent."""
    address = _address(os.environ if env is None else env)
    if address is None or not hasattr(socket, "AF_UNIX"):
        return False
    message = "\n".join(fields).encode("utf-8")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(message)
    except OSError as exc:
        log.warning("could not notify systemd (%s): %s", "; ".join(fields), exc)
        return False
    log.debug("notified systemd: %s", "; ".join(fields))
    return True


def notify_ready(status: str | None = None, env: Mapping[str, str] | None = None) -> bool:
    """The models are loaded and the assistant listens."""
    return notify("READY=1", *([f"STATUS={status}"] if status else []), env=env)


def notify_stopping(env: Mapping[str, str] | None = None) -> bool:
    """Shutdown has begun (sent on SIGTERM, before releasing devices)."""
    return notify("STOPPING=1", env=env)


def notify_status(status: str, env: Mapping[str, str] | None = None) -> bool:
    """A one-line state shown by `systemctl --user status assistant`."""
    return notify(f"STATUS={status}", env=env)


def notify_watchdog(env: Mapping[str, str] | None = None) -> bool:
    """Still alive (only needed if the unit sets WatchdogSec=)."""
    return notify("WATCHDOG=1", env=env)


def notify_extend_timeout(seconds: float, env: Mapping[str, str] | None = None) -> bool:
    """Ask for more start-up time while loading slow models (beyond the unit's TimeoutStartSec)."""
    return notify(f"EXTEND_TIMEOUT_USEC={int(seconds * 1_000_000)}", env=env)


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings systemd expects of this process, or None when not watched."""
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 1_000_000
