"""Errors the command line turns into one line on stderr and an exit code."""


class AssistantError(Exception):
    """A failure the user can act on; the message says what to do. Exit code 1."""

    exit_code = 1


class UsageError(AssistantError):
    """Bad usage or bad input (a flag, a file, a config value). Exit code 2."""

    exit_code = 2
