"""Execute an experiment spec into a fresh run folder with papermill.

Everything that can be checked from files (the spec, every parameter name and
type, the Jupyter kernel) is checked before a folder is made or a kernel
started. After that, each step leaves a file behind, so a run that dies
part-way still says what it was, what it ran on, and where it stopped.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import threading
import time
from contextlib import contextmanager
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import yaml

from workbench.config import ConfigError
from workbench.files import atomic_write
from workbench.runs.environment import now_iso, write_environment
from workbench.runs.lock import RunBusyError, hold_run_lock
from workbench.runs.outputs import (METRICS_FILE, NOTEBOOK_FILE, PARAMS_FILE, PLAN_FILE, SPEC_FILE, STATUS_FILE,
                                    read_json, write_json)
from workbench.runs.parameters import RESERVED, papermill_inference_quiet, validate_parameters
from workbench.runs.plan import Plan, PlannedRun, make_plan
from workbench.runs.resume import ResumeError, check_same_spec, folder_to_resume, run_status
from workbench.runs.spec import Spec, load_spec

DEFAULT_RUNS_SUBDIR = Path("experiments") / "runs"
_stopping = threading.Event()  # set while Ctrl-C is interrupting the kernels


class KernelNotFoundError(ConfigError):
    """The Jupyter kernel a run needs is not installed."""


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


@dataclass
class PipelineResult:
    """How every run of a multi-run spec ended; completed only if all did."""

    run_dir: Path  # the experiment folder holding one folder per run
    results: list[RunResult]

    @property
    def status(self) -> str:
        return "completed" if all(r.status == "completed" for r in self.results) else "failed"

    @property
    def run_id(self) -> str:
        return self.run_dir.name


def run_spec(
    spec_path: str | Path,
    *,
    runs_dir: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    kernel_name: str = "workbench",
    log_output: bool = False,
    jobs: int = 1,
    resume: bool | str | Path = False,
) -> RunResult | PipelineResult:
    """Run the spec's notebook(s) with their parameters (and `overrides`) into a new folder.

    With `resume` (True: the spec's newest folder; or a folder), continue an
    earlier execution instead: completed runs are kept, the others run again
    in their own folders, training from the state their last attempt saved.

    Raises ConfigError subclasses for a bad spec, parameters or kernel, before
    anything is written. A notebook that raises gives status "failed" (the
    executed notebook with the traceback stays in its folder) and, in a
    pipeline, the runs that do not depend on it still run.
    """
    spec = load_spec(spec_path).with_parameters(overrides)
    runs_dir = Path(runs_dir or spec.project_root / DEFAULT_RUNS_SUBDIR).resolve()
    if resume:
        if overrides:
            raise ResumeError("--resume continues runs as they were started; it takes no -p overrides")
        folder = folder_to_resume(runs_dir, spec, None if resume is True else Path(resume))
        stored = load_spec(folder / SPEC_FILE, project_root=spec.project_root)
        if resume is True:
            check_same_spec(spec, stored, folder)
        spec, root = stored, folder
        make_plan(spec, root)  # every problem (a notebook changed since?), before any kernel
        check_kernel(kernel_name)
    else:
        make_plan(spec, runs_dir / "<run-id>")  # every problem, before any folder or kernel
        check_kernel(kernel_name)
        root = create_run_dir(runs_dir, spec.name)
    plan = make_plan(spec, root, validate=False)
    if spec.single_run:
        run = plan.runs[0]
        if resume and run_status(run.folder) == "completed":
            return _kept(run)
        return execute_run(run, spec, kernel_name=kernel_name, log_output=log_output)
    return run_pipeline(plan, kernel_name=kernel_name, log_output=log_output and jobs == 1, jobs=jobs,
                        resume=bool(resume))


def dry_run(spec_path: str | Path, *, runs_dir: str | Path | None = None,
            overrides: dict[str, Any] | None = None) -> Plan:
    """The checked plan of a spec, with nothing written or executed."""
    spec = load_spec(spec_path).with_parameters(overrides)
    runs_dir = Path(runs_dir or spec.project_root / DEFAULT_RUNS_SUBDIR).resolve()
    return make_plan(spec, runs_dir / f"<run-id: {spec.name}>")


def execute_run(run: PlannedRun, spec: Spec, *, kernel_name: str, log_output: bool) -> RunResult:
    """Execute one planned run into its folder; always leaves a status.json saying how it ended."""
    import papermill  # here, not at the top: notebooks import workbench.runs without it

    run_dir = run.folder
    run_dir.mkdir(parents=True, exist_ok=True)
    with hold_run_lock(run_dir):
        return _execute_locked(run, spec, kernel_name=kernel_name, log_output=log_output, papermill=papermill)


def _execute_locked(run: PlannedRun, spec: Spec, *, kernel_name: str, log_output: bool, papermill) -> RunResult:
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
                cwd=str(spec.project_root),
                log_output=log_output,
                progress_bar=False,
            )
        write_environment(run_dir, spec.project_root, resolved)  # again, now with the notebook's data.json
        metrics = _read_metrics(run_dir)
    except papermill.PapermillExecutionError as e:
        error = f"{e.ename}: {e.evalue}"
        # A kernel we interrupted (Ctrl-C) raises KeyboardInterrupt, or SystemExit from Lightning's handler.
        outcome = "interrupted" if e.ename == "KeyboardInterrupt" or _stopping.is_set() else "failed"
        _finish(run_dir, status, clock, outcome, error, failed_cell=e.exec_count)
        return RunResult(status["run_id"], run_dir, outcome, None, error, failed_cell=e.exec_count)
    except KeyboardInterrupt as e:
        _finish(run_dir, status, clock, "interrupted", "interrupted (KeyboardInterrupt)")
        e.add_note(f"run folder (kept): {run_dir}")
        e.add_note(f"continue it with: workbench run {run_dir / SPEC_FILE} --resume {run_dir}")
        raise
    except Exception as e:
        if _stopping.is_set():  # a kernel interrupted while it started, e.g.: the run was stopped, not broken
            error = f"interrupted ({type(e).__name__}: {e})"
            _finish(run_dir, status, clock, "interrupted", error)
            return RunResult(status["run_id"], run_dir, "interrupted", None, error)
        _finish(run_dir, status, clock, "failed", f"{type(e).__name__}: {e}")
        e.add_note(f"run folder (kept): {run_dir}")
        raise
    _finish(run_dir, status, clock, "completed", None)
    return RunResult(status["run_id"], run_dir, "completed", metrics, None)


def run_pipeline(plan: Plan, *, kernel_name: str, log_output: bool, jobs: int = 1,
                 printer=print, resume: bool = False) -> PipelineResult:
    """Run every planned run, `jobs` at a time, each once its references have completed.

    A run whose reference failed is skipped (and says so in its status.json);
    runs that do not depend on a failure go on. With `resume`, runs already
    completed in `plan.root` are kept. Ctrl-C interrupts the running kernels,
    marks their runs interrupted, starts nothing more, and re-raises.
    """
    if jobs < 1:
        raise ConfigError(f"jobs must be at least 1, got {jobs}")
    spec = plan.spec
    if not resume:
        (plan.root / SPEC_FILE).write_text(spec.to_yaml(), encoding="utf-8")
        write_json(plan.root / PLAN_FILE, {
            "spec": spec.name,
            "runs": [{"stage": r.stage, "folder": r.folder.name, "varied": r.varied,
                      "depends_on": [d.name for d in r.depends_on]} for r in plan.runs],
        })
    results: dict[Path, RunResult] = {}
    pending = list(plan.runs)
    if resume:
        for run in list(pending):
            if run_status(run.folder) == "completed":
                pending.remove(run)
                results[run.folder] = _kept(run)
                printer(f"kept      {run.label} (completed earlier)")
    with _threads_per_kernel(jobs), ThreadPoolExecutor(max_workers=jobs) as pool:
        running: dict[Future, PlannedRun] = {}
        try:
            _schedule(plan, pending, running, results, pool, jobs, kernel_name, log_output, printer)
        except KeyboardInterrupt as interrupt:
            _interrupt_kernels(running, results, printer)
            interrupt.add_note(f"experiment folder (kept): {plan.root}")
            interrupt.add_note(f"continue it with: workbench run {plan.root / SPEC_FILE} --resume {plan.root}")
            raise
    return PipelineResult(plan.root, [results[run.folder] for run in plan.runs])


def _schedule(plan: Plan, pending: list[PlannedRun], running: dict[Future, PlannedRun],
              results: dict[Path, RunResult], pool: ThreadPoolExecutor, jobs: int, kernel_name: str,
              log_output: bool, printer) -> None:
    """Start runs whose references completed, `jobs` at a time, until every run has a result."""
    spec = plan.spec
    while pending or running:
        for run in list(pending):
            states = [results[d].status if d in results else None for d in run.depends_on]
            if any(state not in (None, "completed") for state in states):
                pending.remove(run)
                results[run.folder] = _skip(run, spec, "a run it refers to did not complete")
                printer(f"skipped   {run.label}")
            elif all(state == "completed" for state in states) and len(running) < jobs:
                pending.remove(run)
                printer(f"running   {run.label}")
                running[pool.submit(_execute_or_busy, run, spec, kernel_name, log_output)] = run
        if not running:
            continue
        done, _ = wait(running, return_when=FIRST_COMPLETED)
        for future in done:
            run = running.pop(future)
            results[run.folder] = future.result()
            printer(f"{results[run.folder].status:<9} {run.label}")


def _execute_or_busy(run: PlannedRun, spec: Spec, kernel_name: str, log_output: bool) -> RunResult:
    """execute_run, except that a run another process is executing is left to it (status "busy")."""
    try:
        return execute_run(run, spec, kernel_name=kernel_name, log_output=log_output)
    except RunBusyError as busy:
        return RunResult(run.folder.name, run.folder, "busy", None, str(busy))


def _interrupt_kernels(running: dict[Future, PlannedRun], results: dict[Path, RunResult], printer) -> None:
    """Ctrl-C reached this process, not necessarily its kernels: interrupt them and let the runs record it."""
    import psutil  # a dependency of ipykernel

    _stopping.set()
    try:
        deadline = time.monotonic() + 60
        # Again every second: a kernel still starting up when the first signal went out needs its own.
        while not all(future.done() for future in running) and time.monotonic() < deadline:
            for child in psutil.Process().children(recursive=True):
                try:
                    child.send_signal(signal.SIGINT)
                except psutil.Error:
                    pass
            wait(running, timeout=1.0)
        for future, run in running.items():
            try:
                results[run.folder] = future.result(timeout=0)
            except Exception as error:  # noqa: BLE001 - the run's own status.json says what happened
                printer(f"could not stop {run.label} cleanly: {error}")
                continue
            printer(f"{results[run.folder].status:<9} {run.label}")
    finally:
        _stopping.clear()


def check_kernel(kernel_name: str) -> None:
    """Fail fast, with the install command, if the Jupyter kernel is missing."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    manager = KernelSpecManager()
    try:
        manager.get_kernel_spec(kernel_name)  # raises NoSuchKernel (there is no find_kernel_spec)
    except NoSuchKernel:
        installed = ", ".join(sorted(manager.find_kernel_specs())) or "none"
        raise KernelNotFoundError(
            f"Jupyter kernel {kernel_name!r} is not installed (installed: {installed}); run `make install`, "
            f"or `python -m ipykernel install --sys-prefix --name {kernel_name}` in the project's environment"
        ) from None


def create_run_dir(runs_dir: Path, spec_name: str) -> Path:
    """A new, empty `<runs_dir>/<YYYYmmdd-HHMMSS>-<spec>-<hex4>`; never one another run holds."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for _ in range(64):
        candidate = runs_dir / f"{stamp}-{spec_name}-{secrets.token_hex(2)}"
        try:
            candidate.mkdir()  # atomic: of two concurrent runs, exactly one gets the name
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"could not find a free run folder name in {runs_dir} for {stamp}-{spec_name}-*")


def _running_status(run_dir: Path, spec: Spec, run: PlannedRun) -> dict[str, Any]:
    return {
        "run_id": run_dir.name,
        "spec": spec.name,
        "stage": run.stage,
        "varied": run.varied,
        "spec_path": str(spec.path),
        "notebook": str(run.notebook),
        "status": "running",
        "pid": os.getpid(),  # of the `workbench run` process; .lock tells whether it still runs
        "host": socket.gethostname(),
        "started": now_iso(),
        "finished": None,
        "wall_time_s": None,
        "error": None,
        "failed_cell": None,
    }


def _start(run_dir: Path, spec: Spec, run: PlannedRun, resolved: dict[str, Any], status: dict[str, Any]) -> None:
    """Write what the run is about to do: spec, parameters, "running" status, environment.

    Every run folder gets a spec.yaml that repeats it alone: the spec itself
    for a single run, a one-run spec with the resolved parameters for a run
    of a pipeline or sweep.
    """
    text = spec.to_yaml() if spec.single_run else single_run_spec(spec, run)
    with atomic_write(run_dir / SPEC_FILE) as temporary:
        temporary.write_text(text, encoding="utf-8")
    (run_dir / PARAMS_FILE).write_text(yaml.safe_dump(resolved, sort_keys=False), encoding="utf-8")
    write_json(run_dir / STATUS_FILE, status)
    write_environment(run_dir, spec.project_root, resolved)


def _finish(
    run_dir: Path, status: dict, clock: float, outcome: str, error: str | None, failed_cell: int | None = None
) -> None:
    status.update(
        status=outcome,
        finished=now_iso(),
        wall_time_s=round(time.monotonic() - clock, 3),
        error=error,
        failed_cell=failed_cell,
    )
    write_json(run_dir / STATUS_FILE, status)


@contextmanager
def _threads_per_kernel(jobs: int) -> Iterator[None]:
    """Share the cores between parallel kernels: N kernels of all-core torch each oversubscribe
    the machine and run slower together than one after another (measured: 130 s against 97 s)."""
    if jobs == 1 or "OMP_NUM_THREADS" in os.environ:
        yield
        return
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    try:
        yield
    finally:
        del os.environ["OMP_NUM_THREADS"]


def single_run_spec(spec: Spec, run: PlannedRun) -> str:
    """A spec that runs just `run` again: its notebook with its resolved parameters (seed included)."""
    record = {
        "name": f"{spec.name}.{run.folder.name}",
        "description": f"run {run.folder.name} (stage {run.stage}) of spec {spec.name}, on its own",
        "notebook": spec.shown(run.notebook),
        "parameters": run.parameters,
    }
    return yaml.safe_dump(record, sort_keys=False)


def _keep_earlier_attempt(run_dir: Path) -> int:
    """Number this attempt; an earlier attempt's executed notebook is kept as notebook.attempt-<n>.ipynb."""
    earlier = sorted(run_dir.glob("notebook.attempt-*.ipynb"))
    attempt = len(earlier) + 1
    if (run_dir / NOTEBOOK_FILE).exists():
        (run_dir / NOTEBOOK_FILE).rename(run_dir / f"notebook.attempt-{attempt}.ipynb")
        attempt += 1
    return attempt


def _kept(run: PlannedRun) -> RunResult:
    """A run completed by an earlier attempt: its result as recorded, executed again only if asked."""
    return RunResult(run.folder.name, run.folder, "completed", _read_metrics(run.folder), None)


def _skip(run: PlannedRun, spec: Spec, reason: str) -> RunResult:
    run.folder.mkdir(parents=True, exist_ok=True)
    status = _running_status(run.folder, spec, run)
    status.update(status="skipped", finished=now_iso(), error=reason)
    write_json(run.folder / STATUS_FILE, status)
    return RunResult(run.folder.name, run.folder, "skipped", None, reason)


def _read_metrics(run_dir: Path) -> dict | None:
    path = run_dir / METRICS_FILE
    return read_json(path) if path.exists() else None
