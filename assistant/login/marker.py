"""The ownership header on every file install writes: proof that a file is ours and unedited.

Two comment lines go at the top of the file (after an XML declaration): a sentence for people and
`assistant-login v1 sha256=<hash of the rest> made-dirs=<n>`. The hash tells an untouched file from one
the user edited; a file without the header is someone else's and is never overwritten or removed.
`made-dirs` counts the parent folders install created, so uninstall removes exactly those.
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass

NOTE = "Written by 'assistant service install'; 'assistant service uninstall' removes it. Do not edit."
_MARKER = re.compile(r"assistant-login v1 sha256=([0-9a-f]{64}) made-dirs=(\d+)")


class Ownership(enum.Enum):
    OURS = "ours"  # header present and the content matches its hash
    EDITED = "edited"  # header present, content changed since install wrote it
    FOREIGN = "foreign"  # no header: not written by install


@dataclass(frozen=True)
class Header:
    digest: str
    made_dirs: int


def digest(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _comment(text: str, style: str) -> str:
    return f"<!-- {text} -->" if style == "xml" else f"# {text}"


def add_header(body: str, style: str, made_dirs: int) -> str:
    """The file's full text: the header lines inserted into `body`."""
    lines = [_comment(NOTE, style), _comment(f"assistant-login v1 sha256={digest(body)} made-dirs={made_dirs}", style)]
    head, sep, rest = body.partition("\n")
    if style == "xml" and head.startswith("<?xml"):
        return head + sep + "\n".join(lines) + "\n" + rest
    return "\n".join(lines) + "\n" + body


def split_header(text: str, style: str) -> tuple[Header | None, str]:
    """The header (None when absent) and the body it was computed over."""
    note = _comment(NOTE, style)
    kept: list[str] = []
    header: Header | None = None
    found_note = False
    for line in text.splitlines(keepends=True):
        stripped = line.rstrip("\r\n")
        match = _MARKER.search(stripped)
        if header is None and match and stripped == _comment(match.group(0), style):
            header = Header(match.group(1), int(match.group(2)))
            continue
        if not found_note and stripped == note:
            found_note = True
            continue
        kept.append(line)
    return header, "".join(kept)


def ownership(text: str, style: str) -> tuple[Ownership, Header | None, str]:
    header, body = split_header(text, style)
    if header is None:
        return Ownership.FOREIGN, None, text
    return (Ownership.OURS if digest(body) == header.digest else Ownership.EDITED), header, body
