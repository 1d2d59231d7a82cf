"""One process per run folder, and telling a killed run from a running one.

A run holds an advisory lock on `<run folder>/.lock` while it executes. The
kernel is a child process, but Python opens files non-inheritable, so the lock
lives and dies with the `workbench run` process that took it: a status.json
that still says "running" while nobody holds the lock belongs to a run that
was killed (SIGKILL, a crash, a reboot) and may be resumed.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from workbench.config import ConfigError
from workbench.runs.outputs import LOCK_FILE


class RunBusyError(ConfigError):
    """Another process is executing this run folder."""


@contextmanager
def hold_run_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run's lock for the block; RunBusyError at once if another process holds it."""
    fd = take_run_lock(run_dir)
    try:
        yield
    finally:
        os.close(fd)  # closing releases the lock


def take_run_lock(run_dir: Path) -> int:
    """Lock the run for as long as the returned descriptor stays open (or the process lives): an
    interactive run holds it for the kernel's life. RunBusyError at once if another process holds it."""
    fd = os.open(Path(run_dir) / LOCK_FILE, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise RunBusyError(f"{run_dir}: another workbench process (pid {owner}) is executing this run") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def is_executing(run_dir: Path) -> bool:
    """True while some process holds the run's lock."""
    path = Path(run_dir) / LOCK_FILE
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def effective_status(run_dir: Path, recorded: str) -> str:
    """The recorded status, except that a "running" run whose process is gone is "killed"."""
    if recorded == "running" and not is_executing(run_dir):
        return "killed"
    return recorded
