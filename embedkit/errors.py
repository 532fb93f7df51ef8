"""Typed errors the library raises; the CLI turns them into one-line messages and exit code 2.

Nothing below ``cli/`` prints or exits: it raises one of these, and the message is already the
whole line a user sees (``path:line: problem``), so no traceback is ever needed to explain it.
"""
from __future__ import annotations


class EmbedkitError(Exception):
    """Base class: every error a user can cause by what they give us."""


class InputError(EmbedkitError):
    """A problem with an input file or stream: names the file, the line (when known) and the problem."""

    def __init__(self, path: object, problem: str, line: int | None = None):
        self.path = "<stdin>" if str(path) == "-" else str(path)
        self.line = line
        self.problem = problem
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {problem}")


class UsageError(EmbedkitError):
    """A bad value or combination of options that is not about a file's content."""


class OutputError(EmbedkitError):
    """The output cannot be written (unwritable folder, disk full...)."""


class TrainingError(EmbedkitError):
    """Training cannot go on (for example NaN/inf appeared); the message says what to change."""
