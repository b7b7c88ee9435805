"""The one exception preprocessing raises for bad input: a file it cannot read, an image it cannot use."""

from __future__ import annotations

from ...errors import UsageError


class PreprocessError(UsageError, ValueError):
    """Input the assistant cannot turn into model inputs; the message is one line that says why.

    A `ValueError` for library callers and a `UsageError` for the command line (exit code 2).
    """
