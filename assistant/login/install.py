"""Install, uninstall and inspect the login files: file operations with ownership checks.

Install writes one file under the user's home, marked as ours (see `marker`), then enables it.
It never touches a file it did not write, and writing the same content again changes nothing.
Uninstall disables, removes that file and the folders install created for it, and nothing else.
"""

from __future__ import annotations

import getpass
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError
from . import service_manager
from .commands import Runner, system_runner
from .kinds import Kind, home_dir, target_path
from .marker import Header, Ownership, add_header, ownership
from .templates import render

log = logging.getLogger(__name__)

# Both would start the assistant at login: only one of them may be installed at a time.
_EXCLUSIVE = {Kind.SYSTEMD: Kind.AUTOSTART, Kind.AUTOSTART: Kind.SYSTEMD}


@dataclass
class Outcome:
    """What one install or uninstall did, as lines for the user."""

    kind: Kind
    path: Path
    changed: bool
    lines: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class KindStatus:
    kind: Kind
    path: Path
    installed: str  # "yes", "no", "edited" (ours, changed since), "foreign file"
    enabled: str
    running: str


@dataclass(frozen=True)
class Interpreter:
    """What the login file runs: `python -m assistant run` (pythonw.exe on Windows: no console window)."""

    python: str
    pythonw: str | None = None

    @classmethod
    def current(cls) -> Interpreter:
        exe = Path(sys.executable)
        windowless = exe.with_name("pythonw.exe")
        return cls(str(exe), str(windowless) if windowless.exists() else None)


def _windows_user(env: Mapping[str, str]) -> str:
    user = env.get("USERNAME") or getpass.getuser()
    domain = env.get("USERDOMAIN")
    return f"{domain}\\{user}" if domain else user


def _read(path: Path, kind: Kind) -> tuple[Ownership, Header | None, str]:
    try:
        text = path.read_text(encoding=kind.spec.encoding)
    except (OSError, UnicodeError):
        return Ownership.FOREIGN, None, ""
    return ownership(text, kind.spec.comment)


def _not_ours(path: Path, kind: Kind) -> UsageError:
    return UsageError(
        f"{path} exists and was not written by 'assistant service install'; it is left alone: "
        f"move it away (or remove it) and run 'assistant service install --kind {kind.value}' again"
    )


def _missing_parents(folder: Path) -> int:
    count = 0
    while not folder.exists():
        count += 1
        folder = folder.parent
    return count


def _write(path: Path, text: str, encoding: str) -> None:
    """Write next to the target and rename: a crash leaves the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding=encoding, newline="\n") as f:
        f.write(text)
    os.replace(tmp, path)


def install(
    kind: Kind,
    *,
    env: Mapping[str, str] | None = None,
    interpreter: Interpreter | None = None,
    runner: Runner = system_runner,
) -> Outcome:
    env = os.environ if env is None else env
    interpreter = interpreter or Interpreter.current()
    path = target_path(kind, env)
    other = _EXCLUSIVE.get(kind)
    if other is not None:
        other_path = target_path(other, env)
        if other_path.exists() and _read(other_path, other)[0] is not Ownership.FOREIGN:
            raise UsageError(
                f"the {other.spec.description} is installed ({other_path}) and both would start the assistant: "
                f"run 'assistant service uninstall --kind {other.value}' first"
            )
    home = home_dir(env)
    body = render(kind, interpreter.python, home, pythonw=interpreter.pythonw, user_id=_windows_user(env))
    made_dirs = _missing_parents(path.parent)
    outcome = Outcome(kind, path, changed=True)
    if path.exists() or path.is_symlink():
        owner, header, old_body = _read(path, kind)
        if owner is Ownership.FOREIGN:
            raise _not_ours(path, kind)
        if owner is Ownership.EDITED:
            raise UsageError(
                f"{path} was written by 'assistant service install' but has been edited since; it is left alone: "
                "keep your changes elsewhere, remove it, and install again"
            )
        assert header is not None
        made_dirs = header.made_dirs
        if old_body == body:
            outcome.changed = False
            outcome.lines.append(f"already installed, unchanged: {path} ({kind.spec.description})")
    if outcome.changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write(path, add_header(body, kind.spec.comment, made_dirs), kind.spec.encoding)
        log.info("wrote %s", path)
        outcome.lines.append(f"wrote {path} ({kind.spec.description})")
    outcome.lines.extend(service_manager.activate(kind, path, runner, changed=outcome.changed))
    return outcome


def uninstall(
    kind: Kind, *, env: Mapping[str, str] | None = None, runner: Runner = system_runner, strict: bool = True
) -> Outcome:
    """Remove what install wrote. `strict`: a foreign file of our name is an error (else it is skipped)."""
    env = os.environ if env is None else env
    path = target_path(kind, env)
    outcome = Outcome(kind, path, changed=False)
    if not (path.exists() or path.is_symlink()):
        outcome.lines.append(f"not installed: {path} ({kind.spec.description})")
        return outcome
    owner, header, _ = _read(path, kind)
    if owner is Ownership.FOREIGN:
        if strict:
            raise UsageError(
                f"{path} was not written by 'assistant service install'; it is left alone (remove it yourself if "
                "you want it gone)"
            )
        outcome.lines.append(f"left alone: {path} (not written by 'assistant service install')")
        return outcome
    assert header is not None
    outcome.lines.extend(service_manager.deactivate(kind, path, runner))
    path.unlink()
    log.info("removed %s", path)
    outcome.changed = True
    edited = " (it had been edited since install)" if owner is Ownership.EDITED else ""
    outcome.lines.append(f"removed {path}{edited}")
    outcome.lines.extend(service_manager.after_removal(kind, path, runner))
    folder = path.parent
    for _ in range(header.made_dirs):
        try:
            folder.rmdir()  # only when empty: anything else put there since stays
        except OSError:
            break
        outcome.lines.append(f"removed the empty folder {folder}")
        folder = folder.parent
    return outcome


def installed_kinds(env: Mapping[str, str] | None = None) -> list[Kind]:
    """Kinds whose file install wrote (edited or not)."""
    env = os.environ if env is None else env
    found = []
    for kind in Kind:
        path = target_path(kind, env)
        if path.exists() and _read(path, kind)[0] is not Ownership.FOREIGN:
            found.append(kind)
    return found


def status(kind: Kind, *, env: Mapping[str, str] | None = None, runner: Runner = system_runner) -> KindStatus:
    env = os.environ if env is None else env
    path = target_path(kind, env)
    if not path.exists():
        return KindStatus(kind, path, "no", "no", "-")
    owner = _read(path, kind)[0]
    installed = {Ownership.OURS: "yes", Ownership.EDITED: "edited", Ownership.FOREIGN: "foreign file"}[owner]
    state = service_manager.probe(kind, path, runner)
    return KindStatus(kind, path, installed, state.enabled, state.running)
