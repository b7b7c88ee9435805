"""Running the platform's service tools (systemctl, launchctl, schtasks) behind one small interface.

Install and status take a `Runner`, so tests can swap in a fake and a machine without the tool
still gets its file written, with a note saying what to run by hand.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def reason(self) -> str:
        text = (self.stderr or self.stdout).strip()
        return text.splitlines()[-1] if text else f"exit code {self.returncode}"


# None means the program is not installed on this machine.
Runner = Callable[[Sequence[str]], CommandResult | None]


def system_runner(argv: Sequence[str], timeout: float = 30.0) -> CommandResult | None:
    """Run a real program; None when it is not on PATH."""
    program = shutil.which(argv[0])
    if program is None:
        log.debug("%s is not installed", argv[0])
        return None
    try:
        done = subprocess.run([program, *argv[1:]], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("%s failed: %s", " ".join(argv), exc)
        return CommandResult(127, "", str(exc))
    log.debug("%s -> %d %s%s", " ".join(argv), done.returncode, done.stdout.strip(), done.stderr.strip())
    return CommandResult(done.returncode, done.stdout, done.stderr)
