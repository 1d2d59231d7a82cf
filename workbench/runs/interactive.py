"""Interactive runs: a notebook run by hand in JupyterLab leaves the same run folder `workbench run` does.

    out = open_run(output_dir, "pretrain", globals())   # after the parameters cell
    ...                                                  # the notebook writes its records into `out`
    finish_run(out)                                      # the last cell

With `output_dir` set (papermill, `workbench run`, or a folder typed in by hand) both only return that
folder: the runner writes the records. With `output_dir = ""`, `open_run` makes a new folder in
<project>/experiments/runs/ (the project found from the working directory, as `workbench runs` finds
it; `$WORKBENCH_RUNS_DIR` instead when set; a temporary folder outside any project) holding
params.yaml, a spec.yaml that repeats the run with `workbench run`, environment.json and a status.json
marked `interactive: true`. The kernel holds the run's lock while it lives, so a kernel that dies
before `finish_run` reads as "killed"; a cell that raises marks the run failed (a later `finish_run`
still completes it), and opening another run in the same kernel marks an unfinished one interrupted.
`finish_run` marks it completed, records the environment again (with the data record the notebook
wrote) and writes MODEL_CARD.md.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from workbench.runs.environment import write_environment
from workbench.runs.lock import take_run_lock
from workbench.runs.parameters import RESERVED
from workbench.runs.run_records import running_status, write_end, write_start
from workbench.runs.spec import find_project_root
from workbench.runs.tracking import finish_records

RUNS_DIR_VARIABLE = "WORKBENCH_RUNS_DIR"  # where interactive runs go instead of <project>/experiments/runs
RUNS_SUBDIR = Path("experiments") / "runs"
_NOT_PARAMETERS = frozenset({"In", "Out", "exit", "quit", "get_ipython"})  # IPython's own names in globals()


@dataclass
class _OpenRun:
    folder: Path
    project_root: Path
    params: dict[str, Any]
    status: dict[str, Any]
    clock: float  # time.monotonic() at the start
    lock: int  # the descriptor that holds the run's lock
    unwatch: Callable[[], None]


_open_runs: dict[Path, _OpenRun] = {}


def open_run(output_dir: str | os.PathLike | None, notebook: str, params: Mapping[str, Any] | Any) -> Path:
    """The folder the notebook writes into: `output_dir` when set, else a new interactive run folder.

    `notebook` is the notebook's name ("pretrain", for notebooks/pretrain.ipynb) or its path. `params` is the
    notebook's namespace (`globals()`: only the names its parameters cell declares are recorded), a mapping
    of its parameters, or its settings dataclass.
    """
    if output_dir:
        folder = Path(output_dir)
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    _close_open_runs("interrupted", "not finished: the notebook opened a new run in the same kernel")
    from workbench.runs.runner import create_run_dir  # here: the runner is not needed to save a dict

    root = find_project_root(Path.cwd())
    folder = create_run_dir(_runs_dir(root), Path(notebook).stem)
    path = _notebook_path(notebook, root)
    values = {**_parameters(params, path), RESERVED: str(folder)}
    inside = root is not None and folder.resolve().is_relative_to(root)
    shown = None if path is None else str(path.relative_to(root)) if inside and path.is_relative_to(root) else str(path)
    status = running_status(folder.name, notebook=shown, interactive=True, attempt=1)
    lock = take_run_lock(folder)
    project_root = root or folder
    write_start(folder, spec_text=_spec_text(folder, Path(notebook).stem, shown, values), params=values,
                status=status, project_root=project_root)
    run = _OpenRun(folder, project_root, values, status, time.monotonic(), lock, unwatch=lambda: None)
    run.unwatch = _watch_cells(run)
    _open_runs[folder] = run
    return folder


def finish_run(out: str | os.PathLike) -> Path:
    """Mark the interactive run in `out` completed and write its model card; only returns `out` otherwise."""
    run = _open_runs.pop(Path(out), None)
    if run is None:
        return Path(out)
    write_environment(run.folder, run.project_root, run.params)  # again, now with the notebook's data.json
    _end(run, "completed", None)
    finish_records(run.folder)  # the model card, then the tracking server's artifacts
    return run.folder


def _end(run: _OpenRun, outcome: str, error: str | None) -> None:
    run.unwatch()
    write_end(run.folder, run.status, run.clock, outcome, error)
    os.close(run.lock)  # closing releases the lock


def _close_open_runs(outcome: str, error: str) -> None:
    for folder in list(_open_runs):
        run = _open_runs.pop(folder)
        if run.status["status"] == "running":
            _end(run, outcome, error)
        else:  # a cell failed and the run already says so: keep that, let the lock go
            run.unwatch()
            os.close(run.lock)


def _watch_cells(run: _OpenRun) -> Callable[[], None]:
    """Mark the run failed (interrupted, for Ctrl-C or the stop button) when a cell raises; returns the undo."""
    try:
        from IPython import get_ipython
    except ImportError:
        return lambda: None
    shell = get_ipython()
    if shell is None:
        return lambda: None

    def after_cell(result) -> None:
        error = result.error_in_exec or result.error_before_exec
        if error is None or run.folder not in _open_runs:
            return
        outcome = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
        write_end(run.folder, run.status, run.clock, outcome, f"{type(error).__name__}: {error}")

    shell.events.register("post_run_cell", after_cell)
    return lambda: shell.events.unregister("post_run_cell", after_cell)


def _runs_dir(root: Path | None) -> Path:
    if os.environ.get(RUNS_DIR_VARIABLE):
        return Path(os.environ[RUNS_DIR_VARIABLE]).resolve()
    if root is not None:
        return root / RUNS_SUBDIR
    return Path(tempfile.mkdtemp(prefix="workbench-runs-"))


def _notebook_path(notebook: str, root: Path | None) -> Path | None:
    """The notebook's file: a path as given, else <project>/notebooks/<name>.ipynb or <cwd>/<name>.ipynb."""
    name = Path(notebook).with_suffix(".ipynb")
    candidates = [Path(notebook)] if notebook.endswith(".ipynb") else []
    candidates += [*([root / "notebooks" / name.name] if root is not None else []), Path.cwd() / name.name]
    return next((path.resolve() for path in candidates if path.is_file()), None)


def _parameters(params: Mapping[str, Any] | Any, notebook: Path | None) -> dict[str, Any]:
    """The parameters to record, as plain values: those the notebook's parameters cell declares when it can
    be read, else every plain, public value of the mapping."""
    if dataclasses.is_dataclass(params) and not isinstance(params, type):
        values = dataclasses.asdict(params)
    else:
        declared = _declared(notebook)
        values = {name: value for name, value in params.items() if name != RESERVED and (
            name in declared if declared is not None else
            not name.startswith("_") and name not in _NOT_PARAMETERS and _is_plain(value))}
    return json.loads(json.dumps(values, default=str))  # tuples to lists, paths to text: what YAML can hold


def _declared(notebook: Path | None) -> set[str] | None:
    if notebook is None:
        return None
    from workbench.runs.parameters import ParameterError, notebook_parameters

    try:
        return set(notebook_parameters(notebook))
    except (ParameterError, OSError, ValueError):
        return None


def _is_plain(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False


def _spec_text(folder: Path, name: str, notebook: str | None, values: dict[str, Any]) -> str | None:
    """A spec that runs this notebook again with these parameters; None when the notebook's file is unknown."""
    if notebook is None:
        return None
    record = {
        "name": f"{name}-interactive",
        "description": f"interactive run {folder.name} of {notebook}, repeated by `workbench run`",
        "notebook": notebook,
        "parameters": {k: v for k, v in values.items() if k != RESERVED},
    }
    return yaml.safe_dump(record, sort_keys=False)
