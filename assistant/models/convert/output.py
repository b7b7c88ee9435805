"""Write a conversion into a hidden folder beside the target and rename it into place at the end.

Whatever stops the work (an exception, Ctrl-C, SIGTERM, a full disk) removes the staging
folder, so the target is either the old complete model or the new complete one.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from ...errors import AssistantError, UsageError

log = logging.getLogger(__name__)

PARTIAL_MARK = ".partial-"


class ConversionInterrupted(AssistantError):
    """The conversion was stopped by a signal; nothing was left behind."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_partials(target: Path) -> None:
    """Staging folders of conversions that were killed (SIGKILL, power loss) are removed."""
    for stale in target.parent.glob(f".{target.name}{PARTIAL_MARK}*"):
        pid_text = stale.name.rsplit(PARTIAL_MARK, 1)[-1]
        if pid_text.isdigit() and not _pid_alive(int(pid_text)):
            log.info("removing the leftovers of an interrupted conversion: %s", stale)
            shutil.rmtree(stale, ignore_errors=True)


def prepare_parent(target: Path) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {target.parent} ({exc.strerror}); choose another --out folder") from None
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write to {target.parent} (permission denied); choose another --out folder")


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """Turn SIGTERM (and SIGINT) into an exception in the main thread, so clean-up runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise ConversionInterrupted(f"conversion stopped by {signal.Signals(signum).name}; nothing was written")

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextlib.contextmanager
def staged_output(target: Path) -> Iterator[Path]:
    """Yield an empty staging folder; on success it replaces `target` in one rename."""
    target = Path(target)
    prepare_parent(target)
    _remove_stale_partials(target)
    staging = target.parent / f".{target.name}{PARTIAL_MARK}{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        with _signals_raise():
            yield staging
            _swap_into_place(staging, target)
    except KeyboardInterrupt:
        raise ConversionInterrupted("conversion interrupted; nothing was written") from None
    except (UsageError, ConversionInterrupted):
        raise
    except Exception as exc:
        # OpenVINO and NNCF report a full disk as their own errors, not always as ENOSPC.
        if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or _disk_nearly_full(target.parent):
            raise AssistantError(f"the disk is full writing {target.parent}; free space and run again") from None
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _disk_nearly_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < 1 << 20
    except OSError:
        return False


def _swap_into_place(staging: Path, target: Path) -> None:
    if not target.exists():
        staging.rename(target)
        return
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    shutil.rmtree(old, ignore_errors=True)
    target.rename(old)
    try:
        staging.rename(target)
    except OSError:
        old.rename(target)
        raise
    shutil.rmtree(old, ignore_errors=True)
