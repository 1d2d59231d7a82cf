"""Execute one planned run into its folder with papermill, leaving a status.json however it ends.

The run holds its folder's lock while it executes (see lock.py). Each step
leaves a file behind, so a run that dies part-way still says what it was,
what it ran on, and where it stopped. A rerun (`--resume`) keeps the earlier
attempt's executed notebook beside the new one.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from workbench.runs.environment import now_iso, write_environment
from workbench.runs.lock import hold_run_lock
from workbench.runs.outputs import ATTEMPT_NOTEBOOK_PATTERN, NOTEBOOK_FILE, SPEC_FILE, STATUS_FILE, write_json
from workbench.runs.parameters import RESERVED, papermill_inference_quiet, validate_parameters
from workbench.runs.plan import PlannedRun
from workbench.runs.run_folder import RunFolder
from workbench.runs.run_records import running_status, write_end, write_start
from workbench.runs.spec import Spec
from workbench.runs.tracking import finish_records

stopping = threading.Event()  # set while Ctrl-C is interrupting a sweep's kernels (pipeline.py)


@dataclass
class RunResult:
    """How a run ended; `workbench run` turns `status` into its exit code."""

    run_id: str
    run_dir: Path
    status: str  # "completed", "failed" or "skipped"
    metrics: dict | None
    error: str | None
    failed_cell: int | None = None  # execution count ("In [n]") of the cell that raised

    @property
    def notebook(self) -> Path:
        """The executed notebook; on failure it holds the traceback."""
        return self.run_dir / NOTEBOOK_FILE


def execute_run(run: PlannedRun, spec: Spec, *, kernel_name: str, log_output: bool,
                progress: bool = False) -> RunResult:
    """Execute one planned run into its folder; always leaves a status.json saying how it ended."""
    import papermill  # here, not at the top: notebooks import workbench.runs without it

    run_dir = run.folder
    run_dir.mkdir(parents=True, exist_ok=True)
    with hold_run_lock(run_dir):
        return _execute_locked(run, spec, kernel_name=kernel_name, log_output=log_output, papermill=papermill,
                               progress=progress)


def _execute_locked(run: PlannedRun, spec: Spec, *, kernel_name: str, log_output: bool, papermill,
                    progress: bool) -> RunResult:
    run_dir = run.folder
    resolved = validate_parameters(run.notebook, run.parameters)
    resolved[RESERVED] = str(run_dir)
    status = _running_status(run_dir, spec, run)
    status["attempt"] = _keep_earlier_attempt(run_dir)
    clock = time.monotonic()
    try:
        _start(run_dir, spec, run, resolved, status)
        with papermill_inference_quiet():  # names and types were checked above, with a real parser
            papermill.execute_notebook(
                str(run.notebook),
                str(run_dir / NOTEBOOK_FILE),
                parameters=resolved,
                kernel_name=kernel_name,
                # the kernel starts in the project root (nbclient's resources path), not through papermill's
                # cwd=, which chdirs this whole process: parallel runs, one thread each, raced on it and left
                # the caller in a project folder when they ended
                resources={"metadata": {"path": str(spec.project_root)}},
                log_output=log_output,
                progress_bar={"desc": run.folder.name, "leave": True} if progress else False,
                # the kernel's own log (its "running over TCP without encryption" warning: the kernel talks
                # to this process alone, on localhost) is noise in a run's output; errors still show
                extra_arguments=["--IPKernelApp.log_level=ERROR"],
            )
        write_environment(run_dir, spec.project_root, resolved)  # again, now with the notebook's data.json
        metrics = _read_metrics(run_dir)
    except papermill.PapermillExecutionError as e:
        error = f"{e.ename}: {e.evalue}"
        # A kernel we interrupted (Ctrl-C) raises KeyboardInterrupt, or SystemExit from Lightning's handler.
        outcome = "interrupted" if e.ename == "KeyboardInterrupt" or stopping.is_set() else "failed"
        write_end(run_dir, status, clock, outcome, error, failed_cell=e.exec_count)
        return RunResult(status["run_id"], run_dir, outcome, None, error, failed_cell=e.exec_count)
    except KeyboardInterrupt as e:
        write_end(run_dir, status, clock, "interrupted", "interrupted (KeyboardInterrupt)")
        e.add_note(f"run folder (kept): {run_dir}")
        e.add_note(f"continue it with: workbench run {run_dir / SPEC_FILE} --resume {run_dir}")
        raise
    except Exception as e:
        if stopping.is_set():  # a kernel interrupted while it started, e.g.: the run was stopped, not broken
            error = f"interrupted ({type(e).__name__}: {e})"
            write_end(run_dir, status, clock, "interrupted", error)
            return RunResult(status["run_id"], run_dir, "interrupted", None, error)
        write_end(run_dir, status, clock, "failed", f"{type(e).__name__}: {e}")
        e.add_note(f"run folder (kept): {run_dir}")
        raise
    write_end(run_dir, status, clock, "completed", None)
    finish_records(run_dir, stacklevel=1)  # the model card, then the tracking server's artifacts
    return RunResult(status["run_id"], run_dir, "completed", metrics, None)


def _running_status(run_dir: Path, spec: Spec, run: PlannedRun) -> dict[str, Any]:
    return running_status(run_dir.name, spec=spec.name, stage=run.stage, varied=run.varied, spec_path=str(spec.path),
                          notebook=str(run.notebook))


def _start(run_dir: Path, spec: Spec, run: PlannedRun, resolved: dict[str, Any], status: dict[str, Any]) -> None:
    """Write what the run is about to do: spec, parameters, "running" status, environment.

    Every run folder gets a spec.yaml that repeats it alone: the spec itself
    for a single run, a one-run spec with the resolved parameters for a run
    of a pipeline or sweep.
    """
    outside = not run_dir.resolve().is_relative_to(spec.project_root)  # --runs-dir elsewhere: full paths
    text = spec.to_yaml(absolute=outside) if spec.single_run else single_run_spec(spec, run, absolute=outside)
    write_start(run_dir, spec_text=text, params=resolved, status=status, project_root=spec.project_root)



def single_run_spec(spec: Spec, run: PlannedRun, absolute: bool = False) -> str:
    """A spec that runs just `run` again: its notebook with its resolved parameters (seed included)."""
    record = {
        "name": f"{spec.name}.{run.folder.name}",
        "description": f"run {run.folder.name} (stage {run.stage}) of spec {spec.name}, on its own",
        "notebook": spec.shown(run.notebook, absolute),
        "parameters": run.parameters,
    }
    return yaml.safe_dump(record, sort_keys=False)


def _keep_earlier_attempt(run_dir: Path) -> int:
    """Number this attempt; an earlier attempt's executed notebook is kept as notebook.attempt-<n>.ipynb."""
    earlier = sorted(run_dir.glob(ATTEMPT_NOTEBOOK_PATTERN.format("*")))
    attempt = len(earlier) + 1
    if (run_dir / NOTEBOOK_FILE).exists():
        (run_dir / NOTEBOOK_FILE).rename(run_dir / ATTEMPT_NOTEBOOK_PATTERN.format(attempt))
        attempt += 1
    return attempt


def kept(run: PlannedRun) -> RunResult:
    """A run completed by an earlier attempt: its result as recorded, executed again only if asked."""
    return RunResult(run.folder.name, run.folder, "completed", _read_metrics(run.folder), None)


def skip(run: PlannedRun, spec: Spec, reason: str) -> RunResult:
    run.folder.mkdir(parents=True, exist_ok=True)
    status = _running_status(run.folder, spec, run)
    status.update(status="skipped", finished=now_iso(), error=reason)
    write_json(run.folder / STATUS_FILE, status)
    return RunResult(run.folder.name, run.folder, "skipped", None, reason)


def _read_metrics(run_dir: Path) -> dict | None:
    return RunFolder(run_dir).metrics
