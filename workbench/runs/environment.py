"""What a run ran on: interpreter, machine, package versions, git state, seed and data.

Written into every run folder (before execution, and again after so that the
data record the notebook wrote is included), so that a result can be traced to
the code and environment that produced it without asking anyone.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from workbench.host import cpu_facts
from workbench.runs.outputs import DATA_FILE, ENVIRONMENT_FILE, read_json, write_json

RECORDED_PACKAGES = (
    "torch", "lightning", "datasets", "tokenizers", "safetensors", "numpy",
    "papermill", "nbformat", "ipykernel", "plotly", "ipywidgets", "workbench",
)  # fmt: skip


def environment_record(project_root: Path, params: dict[str, Any], run_dir: Path | None = None) -> dict[str, Any]:
    """The environment of this process, the project's git state, and the run's seed and data record."""
    data_file = Path(run_dir) / DATA_FILE if run_dir is not None else None
    return {
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": {**cpu_facts(), "logical_cores": os.cpu_count()},
        "torch": _torch(),
        "packages": {name: _version(name) for name in RECORDED_PACKAGES},
        "git": git_state(project_root),
        "seed": params.get("seed"),
        "data": read_json(data_file) if data_file is not None and data_file.exists() else None,
        "created": now_iso(),
    }


def write_environment(run_dir: Path, project_root: Path, params: dict[str, Any]) -> Path:
    return write_json(Path(run_dir) / ENVIRONMENT_FILE, environment_record(project_root, params, run_dir))


def git_state(directory: Path) -> dict[str, Any]:
    """Commit, dirty flag and branch of the repository holding `directory`; None fields outside git."""
    inside = _git(directory, "rev-parse", "--is-inside-work-tree") == "true"
    if not inside:
        return {"commit": None, "dirty": None, "branch": None}
    # Not `git status`: it calls a saved notebook whose size changed "modified" without passing it through
    # the nbstripout filter (nbstripout issue #65); `git diff HEAD` compares what git would store.
    changed = _git(directory, "diff", "HEAD", "--name-only")
    untracked = _git(directory, "ls-files", "--others", "--exclude-standard")
    return {
        "commit": _git(directory, "rev-parse", "HEAD"),  # None before the first commit
        "dirty": bool(changed or untracked) if changed is not None and untracked is not None else None,
        "branch": _git(directory, "symbolic-ref", "--short", "-q", "HEAD"),  # None when detached
    }


def now_iso() -> str:
    """Local time with its UTC offset, to the millisecond, so runs started in the same second still sort."""
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


def _git(directory: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=directory, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):  # git missing, or hung on a network mount
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _torch() -> dict[str, Any]:
    try:
        import torch  # here: a second of import time, and only runs need it
    except ImportError:
        return {"version": None, "num_threads": None, "cuda_available": None, "device_name": None}
    cuda = torch.cuda.is_available()
    return {
        "version": torch.__version__,
        "num_threads": torch.get_num_threads(),
        "cuda_available": cuda,
        "device_name": torch.cuda.get_device_name(0) if cuda else None,
    }


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None
