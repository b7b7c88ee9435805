"""Fill in the login files of `service/`: pure text in, text out, with each format's quoting rules.

Placeholders are `@NAME@`. Every value is quoted for the file it lands in (a systemd command line,
a desktop-entry Exec key, XML text), so an interpreter path with spaces, `%`, `$` or `&` still works.
"""

from __future__ import annotations

import re
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

from ..errors import AssistantError
from .kinds import Kind

_PLACEHOLDER = re.compile(r"@([A-Z_]+)@")
RUN_ARGS = ("-m", "assistant", "run")


def template_dir() -> Path:
    """`service/` beside the package (the repository checkout the assistant runs from)."""
    return Path(__file__).resolve().parents[2] / "service"


def read_template(kind: Kind) -> str:
    path = template_dir() / kind.spec.template
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AssistantError(
            f"login template {path} is missing ({exc.strerror}); run from a complete checkout of the assistant"
        ) from None


def fill(template: str, values: dict[str, str]) -> str:
    """Replace every `@NAME@`; a placeholder without a value is a bug in the template, so it fails loudly."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"no value for placeholder @{name}@")
        return values[name]

    return _PLACEHOLDER.sub(one, template)


def systemd_quote(arg: str, *, command: bool = False) -> str:
    """One word of an ExecStart= line: double-quoted when needed, `\\`, `"` and specifiers (%) escaped.

    `$` is doubled in arguments only: systemd expands variables in arguments, never in the command path
    (checked with systemd-analyze verify: a doubled `$` in the path stays doubled).
    """
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    if not command:
        escaped = escaped.replace("$", "$$")
    return f'"{escaped}"' if re.search(r"[\s\"\\']", arg) or escaped != arg or not arg else arg


def desktop_exec_quote(arg: str) -> str:
    """One argument of a desktop-entry Exec key (quoting, then the string-value escape of backslashes)."""
    reserved = set(" \t\n\"'\\><~|&;$*?#()`")
    if arg and not any(c in reserved for c in arg):
        quoted = arg
    else:
        inner = "".join("\\" + c if c in '"`$\\' else c for c in arg)
        quoted = f'"{inner}"'
    return quoted.replace("%", "%%").replace("\\", "\\\\")


def windows_quote(path: str) -> str:
    return f'"{path}"' if " " in path else path


def values_for(kind: Kind, python: str, home: Path, *, pythonw: str | None = None, user_id: str = "") -> dict[str, str]:
    """The placeholder values of one kind's template."""
    if kind is Kind.SYSTEMD:
        return {"EXEC_START": " ".join([systemd_quote(python, command=True), *map(systemd_quote, RUN_ARGS)])}
    if kind is Kind.AUTOSTART:
        return {"EXEC": " ".join(desktop_exec_quote(a) for a in (python, *RUN_ARGS))}
    if kind is Kind.LAUNCHD:
        return {
            "PYTHON": xml_escape(python),
            "HOME": xml_escape(str(home)),
            "LOG_DIR": xml_escape(str(home / "Library" / "Logs")),
        }
    return {
        "COMMAND": xml_escape(windows_quote(pythonw or python)),
        "WORKING_DIRECTORY": xml_escape(str(home)),
        "USER_ID": xml_escape(user_id),
    }


def render(kind: Kind, python: str, home: Path, *, pythonw: str | None = None, user_id: str = "") -> str:
    """The login file's text for this interpreter and home, ready for the ownership header."""
    return fill(read_template(kind), values_for(kind, python, home, pythonw=pythonw, user_id=user_id))
