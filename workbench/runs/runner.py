"""Execute an experiment spec into a fresh run folder with papermill.

Everything that can be checked from files (the spec, every parameter name and
type, the Jupyter kernel) is checked before a folder is made or a kernel
started. After that, each step leaves a file behind, so a run that dies
part-way still says what it was, what it ran on, and where it stopped.
"""

from __future__ import annotations

import os
import secrets
import time
from contextlib import contextmanager
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import yaml

from workbench.config import ConfigError
from workbench.runs.environment import now_iso, write_environment
from workbench.runs.outputs import METRICS_FILE, read_json, write_json
from workbench.runs.parameters import RESERVED, papermill_inference_quiet, validate_parameters
from workbench.runs.plan import Plan, PlannedRun, make_plan
from workbench.runs.spec import Spec, load_spec

DEFAULT_RUNS_SUBDIR = Path("experiments") / "runs"
SPEC_FILE = "spec.yaml"
PARAMS_FILE = "params.yaml"
STATUS_FILE = "status.json"
NOTEBOOK_FILE = "notebook.ipynb"
PLAN_FILE = "plan.json"


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
) -> RunResult | PipelineResult:
    """Run the spec's notebook(s) with their parameters (and `overrides`) into a new folder.

    Raises ConfigError subclasses for a bad spec, parameters or kernel, before
    anything is written. A notebook that raises gives status "failed" (the
    executed notebook with the traceback stays in its folder) and, in a
    pipeline, the runs that do not depend on it still run.
    """
    spec = load_spec(spec_path).with_parameters(overrides)
    runs_dir = Path(runs_dir or spec.project_root / DEFAULT_RUNS_SUBDIR).resolve()
    make_plan(spec, runs_dir / "<run-id>")  # every problem, before any folder or kernel
    check_kernel(kernel_name)
    root = create_run_dir(runs_dir, spec.name)
    plan = make_plan(spec, root, validate=False)
    if spec.single_run:
        return execute_run(plan.runs[0], spec, kernel_name=kernel_name, log_output=log_output)
    return run_pipeline(plan, kernel_name=kernel_name, log_output=log_output and jobs == 1, jobs=jobs)


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
    resolved = validate_parameters(run.notebook, run.parameters)
    resolved[RESERVED] = str(run_dir)
    status = _running_status(run_dir, spec, run)
    clock = time.monotonic()
    try:
        _start(run_dir, spec, resolved, status)
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
        _finish(run_dir, status, clock, "failed", error, failed_cell=e.exec_count)
        return RunResult(status["run_id"], run_dir, "failed", None, error, failed_cell=e.exec_count)
    except KeyboardInterrupt as e:
        _finish(run_dir, status, clock, "interrupted", "interrupted (KeyboardInterrupt)")
        e.add_note(f"run folder (kept): {run_dir}")
        raise
    except Exception as e:
        _finish(run_dir, status, clock, "failed", f"{type(e).__name__}: {e}")
        e.add_note(f"run folder (kept): {run_dir}")
        raise
    _finish(run_dir, status, clock, "completed", None)
    return RunResult(status["run_id"], run_dir, "completed", metrics, None)


def run_pipeline(plan: Plan, *, kernel_name: str, log_output: bool, jobs: int = 1,
                 printer=print) -> PipelineResult:
    """Run every planned run, `jobs` at a time, each once its references have completed.

    A run whose reference failed is skipped (and says so in its status.json);
    runs that do not depend on a failure go on.
    """
    if jobs < 1:
        raise ConfigError(f"jobs must be at least 1, got {jobs}")
    spec = plan.spec
    (plan.root / SPEC_FILE).write_text(spec.to_yaml(), encoding="utf-8")
    write_json(plan.root / PLAN_FILE, {
        "spec": spec.name,
        "runs": [{"stage": r.stage, "folder": r.folder.name, "varied": r.varied,
                  "depends_on": [d.name for d in r.depends_on]} for r in plan.runs],
    })
    results: dict[Path, RunResult] = {}
    pending = list(plan.runs)
    with _threads_per_kernel(jobs), ThreadPoolExecutor(max_workers=jobs) as pool:
        running: dict[Future, PlannedRun] = {}
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
                    running[pool.submit(execute_run, run, spec, kernel_name=kernel_name,
                                        log_output=log_output)] = run
            if not running:
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                run = running.pop(future)
                results[run.folder] = future.result()
                printer(f"{results[run.folder].status:<9} {run.label}")
    return PipelineResult(plan.root, [results[run.folder] for run in plan.runs])


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
        "started": now_iso(),
        "finished": None,
        "wall_time_s": None,
        "error": None,
        "failed_cell": None,
    }


def _start(run_dir: Path, spec: Spec, resolved: dict[str, Any], status: dict[str, Any]) -> None:
    """Write what the run is about to do: spec, parameters, "running" status, environment."""
    if spec.single_run:
        (run_dir / SPEC_FILE).write_text(spec.to_yaml(), encoding="utf-8")
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


def _skip(run: PlannedRun, spec: Spec, reason: str) -> RunResult:
    run.folder.mkdir(parents=True, exist_ok=True)
    status = _running_status(run.folder, spec, run)
    status.update(status="skipped", finished=now_iso(), error=reason)
    write_json(run.folder / STATUS_FILE, status)
    return RunResult(run.folder.name, run.folder, "skipped", None, reason)


def _read_metrics(run_dir: Path) -> dict | None:
    path = run_dir / METRICS_FILE
    return read_json(path) if path.exists() else None
