"""What every run folder is given when its run starts and ends, whoever runs it: `workbench run`
(execute.py, through papermill) or a notebook in JupyterLab (interactive.py).

A run can die between any two writes, so the start writes what the run is about to do (its spec,
parameters, a "running" status, the environment) before anything runs, and the end rewrites the
status with how it ended.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

import yaml

from workbench.files import atomic_write
from workbench.runs.environment import now_iso, write_environment
from workbench.runs.outputs import PARAMS_FILE, SPEC_FILE, STATUS_FILE, write_json


def running_status(run_id: str, **fields: Any) -> dict[str, Any]:
    """status.json of a run that starts now in this process; `fields` add or override (spec, stage, ...)."""
    return {
        "run_id": run_id,
        "spec": None,
        "stage": None,
        "varied": {},
        "spec_path": None,
        "notebook": None,
        "status": "running",
        "pid": os.getpid(),  # of the process that holds the run's lock; .lock tells whether it still runs
        "host": socket.gethostname(),
        "started": now_iso(),
        "finished": None,
        "wall_time_s": None,
        "error": None,
        "failed_cell": None,
        **fields,
    }


def write_start(run_dir: Path, *, spec_text: str | None, params: dict[str, Any], status: dict[str, Any],
                project_root: Path) -> None:
    """spec.yaml (when there is one), params.yaml, the "running" status.json and environment.json."""
    if spec_text is not None:
        with atomic_write(run_dir / SPEC_FILE) as temporary:
            temporary.write_text(spec_text, encoding="utf-8")
    with atomic_write(run_dir / PARAMS_FILE) as temporary:
        temporary.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    write_json(run_dir / STATUS_FILE, status)
    write_environment(run_dir, project_root, params)


def write_end(run_dir: Path, status: dict[str, Any], clock: float, outcome: str, error: str | None,
              failed_cell: int | None = None) -> None:
    """The status rewritten with how the run ended; `clock` is the time.monotonic() taken at its start."""
    status.update(
        status=outcome,
        finished=now_iso(),
        wall_time_s=round(time.monotonic() - clock, 3),
        error=error,
        failed_cell=failed_cell,
    )
    write_json(run_dir / STATUS_FILE, status)
