"""Execute an experiment spec into a fresh run folder with papermill.

Everything that can be checked from files (the spec, every parameter name and
type, the Jupyter kernel) is checked before a folder is made or a kernel
started. After that, each step leaves a file behind, so a run that dies
part-way still says what it was, what it ran on, and where it stopped.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from workbench.config import ConfigError
from workbench.runs.environment import now_iso, write_environment
from workbench.runs.outputs import METRICS_FILE, read_json, write_json
from workbench.runs.parameters import RESERVED, papermill_inference_quiet, validate_parameters
from workbench.runs.spec import Spec, load_spec

DEFAULT_RUNS_SUBDIR = Path("experiments") / "runs"
SPEC_FILE = "spec.yaml"
PARAMS_FILE = "params.yaml"
STATUS_FILE = "status.json"
NOTEBOOK_FILE = "notebook.ipynb"


class KernelNotFoundError(ConfigError):
    """The Jupyter kernel a run needs is not installed."""


@dataclass
class RunResult:
    """How a run ended; `workbench run` turns `status` into its exit code."""

    run_id: str
    run_dir: Path
    status: str  # "completed" or "failed"
    metrics: dict | None
    error: str | None
    failed_cell: int | None = None  # execution count ("In [n]") of the cell that raised

    @property
    def notebook(self) -> Path:
        """The executed notebook; on failure it holds the traceback."""
        return self.run_dir / NOTEBOOK_FILE


def run_spec(
    spec_path: str | Path,
    *,
    runs_dir: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    kernel_name: str = "workbench",
    log_output: bool = False,
) -> RunResult:
    """Run the spec's notebook with its parameters (and `overrides`) into a new run folder.

    Raises ConfigError subclasses for a bad spec, parameters or kernel, before
    anything is written. A notebook that raises gives a RunResult with status
    "failed"; the executed notebook with the traceback stays in the folder.
    """
    import papermill  # here, not at the top: notebooks import workbench.runs without it

    spec = load_spec(spec_path).with_parameters(overrides)
    resolved = validate_parameters(spec.notebook, spec.parameters)
    check_kernel(kernel_name)

    run_dir = create_run_dir(Path(runs_dir or spec.project_root / DEFAULT_RUNS_SUBDIR).resolve(), spec.name)
    resolved[RESERVED] = str(run_dir)
    status = _running_status(run_dir, spec)
    clock = time.monotonic()
    try:
        _start(run_dir, spec, resolved, status)
        with papermill_inference_quiet():  # names and types were checked above, with a real parser
            papermill.execute_notebook(
                str(spec.notebook),
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


def _running_status(run_dir: Path, spec: Spec) -> dict[str, Any]:
    return {
        "run_id": run_dir.name,
        "spec": spec.name,
        "spec_path": str(spec.path),
        "notebook": str(spec.notebook),
        "status": "running",
        "started": now_iso(),
        "finished": None,
        "wall_time_s": None,
        "error": None,
        "failed_cell": None,
    }


def _start(run_dir: Path, spec: Spec, resolved: dict[str, Any], status: dict[str, Any]) -> None:
    """Write what the run is about to do: spec, parameters, "running" status, environment."""
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


def _read_metrics(run_dir: Path) -> dict | None:
    path = run_dir / METRICS_FILE
    return read_json(path) if path.exists() else None
