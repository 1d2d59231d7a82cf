"""Run every run of a multi-run spec: in dependency order, `jobs` at a time, Ctrl-C stopping cleanly."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from workbench.config import ConfigError
from workbench.runs.execute import RunResult, execute_run, kept, skip, stopping
from workbench.runs.lock import RunBusyError
from workbench.runs.outputs import PLAN_FILE, SPEC_FILE, write_json
from workbench.runs.plan import Plan, PlannedRun
from workbench.runs.resume import run_status
from workbench.runs.spec import Spec


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


def run_pipeline(plan: Plan, *, kernel_name: str, log_output: bool, jobs: int = 1,
                 printer=print, resume: bool = False, progress: bool = False) -> PipelineResult:
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
        outside = not plan.root.resolve().is_relative_to(spec.project_root)  # --runs-dir elsewhere: full paths
        (plan.root / SPEC_FILE).write_text(spec.to_yaml(absolute=outside), encoding="utf-8")
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
                results[run.folder] = kept(run)
                printer(f"kept      {run.label} (completed earlier)")
    stop = threading.Event()
    with _threads_per_kernel(jobs), ThreadPoolExecutor(max_workers=jobs) as pool, _ctrl_c_sets(stop):
        running: dict[Future, PlannedRun] = {}
        try:
            _schedule(plan, pending, running, results, pool, jobs, kernel_name, log_output, printer, stop,
                      progress=progress and jobs == 1)
        except KeyboardInterrupt as interrupt:
            _interrupt_kernels(running, results, printer)
            interrupt.add_note(f"experiment folder (kept): {plan.root}")
            interrupt.add_note(f"continue it with: workbench run {plan.root / SPEC_FILE} --resume {plan.root}")
            raise
    return PipelineResult(plan.root, [results[run.folder] for run in plan.runs])


def _schedule(plan: Plan, pending: list[PlannedRun], running: dict[Future, PlannedRun],
              results: dict[Path, RunResult], pool: ThreadPoolExecutor, jobs: int, kernel_name: str,
              log_output: bool, printer, stop: threading.Event, progress: bool = False) -> None:
    """Start runs whose references completed, `jobs` at a time, until every run has a result.

    Ctrl-C only sets `stop`; it is turned into KeyboardInterrupt here, between two waits.
    """
    spec = plan.spec
    while pending or running:
        if stop.is_set():
            raise KeyboardInterrupt
        for run in list(pending):
            states = [results[d].status if d in results else None for d in run.depends_on]
            if any(state not in (None, "completed") for state in states):
                pending.remove(run)
                results[run.folder] = skip(run, spec, "a run it refers to did not complete")
                printer(f"skipped   {run.label}")
            elif all(state == "completed" for state in states) and len(running) < jobs:
                pending.remove(run)
                printer(f"running   {run.label}")
                running[pool.submit(_execute_or_busy, run, spec, kernel_name, log_output, progress)] = run
        if not running:
            continue
        done, _ = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)
        for future in done:
            run = running.pop(future)
            results[run.folder] = future.result()
            printer(f"{results[run.folder].status:<9} {run.label}")


@contextmanager
def _ctrl_c_sets(stop: threading.Event) -> Iterator[None]:
    """In the main thread, a first Ctrl-C sets `stop` instead of raising wherever Python happens to be
    (possibly inside a lock that concurrent.futures holds, which then never frees: a hang seen in a
    test); a second Ctrl-C raises at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(signum, frame) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = signal.signal(signal.SIGINT, request_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _execute_or_busy(run: PlannedRun, spec: Spec, kernel_name: str, log_output: bool,
                     progress: bool = False) -> RunResult:
    """execute_run, except that a run another process is executing is left to it (status "busy")."""
    try:
        return execute_run(run, spec, kernel_name=kernel_name, log_output=log_output, progress=progress)
    except RunBusyError as busy:
        return RunResult(run.folder.name, run.folder, "busy", None, str(busy))


def _interrupt_kernels(running: dict[Future, PlannedRun], results: dict[Path, RunResult], printer) -> None:
    """Ctrl-C reached this process, not necessarily its kernels: interrupt them and let the runs record it."""
    import psutil  # a dependency of ipykernel

    stopping.set()
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
        stopping.clear()


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
