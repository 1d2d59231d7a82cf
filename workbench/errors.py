"""The one root of every error the workbench raises on purpose.

Two kinds, because a caller answers them differently: a `RequestError` means
what was asked is wrong (a misspelt setting, a value out of range, a spec that
names nothing): fix the request. A `ResourceError` means what was asked is fine
but something it needs is missing or broken (a truncated checkpoint, an
unreachable hub): the message and `path` name it. The CLI prints one line for
either; a bad request exits 2.
"""

from __future__ import annotations

import os


class WorkbenchError(Exception):
    """Any error the workbench raises on purpose (never a bug)."""


class RequestError(WorkbenchError, ValueError):
    """What was asked is wrong: a name, a type, a value, a combination. Fix the request."""


class ResourceError(WorkbenchError, RuntimeError):
    """Something a valid request needs is missing, unreadable or unreachable; `path` names it when it is a file."""

    def __init__(self, message: str, path: str | os.PathLike | None = None) -> None:
        super().__init__(message)
        self.path = path
