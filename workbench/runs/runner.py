"""`workbench run`: check a spec, claim its folder, and hand its runs to execute.py or pipeline.py.

Everything that can be checked from files (the spec, every parameter name and
type, the Jupyter kernel) is checked before a folder is made or a kernel
started. `--resume` finds the folder to continue instead of making one.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

from workbench.config import ConfigError
from workbench.modules.scale_settings import launched_rank
from workbench.runs.execute import RunResult, execute_run, kept
from workbench.runs.outputs import NOTEBOOK_FILE, PARAMS_FILE, PLAN_FILE, SPEC_FILE, STATUS_FILE  # noqa: F401 - re-exported
from workbench.runs.parameters import notebook_parameters
from workbench.runs.pipeline import PipelineResult, run_pipeline
from workbench.runs.plan import Plan, make_plan
from workbench.runs.resume import ResumeError, check_same_spec, folder_to_resume, run_status
from workbench.runs.spec import Spec, load_spec

DEFAULT_RUNS_SUBDIR = Path("experiments") / "runs"


class KernelNotFoundError(ConfigError):
    """The Jupyter kernel a run needs is not installed."""


def run_spec(
    spec_path: str | Path,
    *,
    runs_dir: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    kernel_name: str = "workbench",
    log_output: bool = False,
    jobs: int = 1,
    resume: bool | str | Path = False,
    progress: bool = False,
) -> RunResult | PipelineResult:
    """Run the spec's notebook(s) with their parameters (and `overrides`) into a new folder.

    `log_output` streams each notebook's output (papermill's cell banners included); `progress` shows a
    progress bar of cells per run instead. With `resume` (True: the spec's newest folder; or a folder), continue an
    earlier execution instead: completed runs are kept, the others run again
    in their own folders, training from the state their last attempt saved.

    Raises ConfigError subclasses for a bad spec, parameters or kernel, before
    anything is written. A notebook that raises gives status "failed" (the
    executed notebook with the traceback stays in its folder) and, in a
    pipeline, the runs that do not depend on it still run.
    """
    spec = load_spec(spec_path).with_parameters(overrides)
    runs_dir = Path(runs_dir or spec.project_root / DEFAULT_RUNS_SUBDIR).resolve()
    if launched_rank() > 0:
        with scratch_for_other_rank(runs_dir, spec, resume) as (scratch, resume):
            return _run_spec_into(spec, scratch, overrides, kernel_name, log_output, jobs, resume, progress=False)
    return _run_spec_into(spec, runs_dir, overrides, kernel_name, log_output, jobs, resume, progress)


def _run_spec_into(spec: Spec, runs_dir: Path, overrides: dict[str, Any] | None, kernel_name: str, log_output: bool,
                   jobs: int, resume: bool | str | Path, progress: bool) -> RunResult | PipelineResult:
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
            return kept(run)
        return execute_run(run, spec, kernel_name=kernel_name, log_output=log_output, progress=progress)
    return run_pipeline(plan, kernel_name=kernel_name, log_output=log_output and jobs == 1, jobs=jobs,
                        resume=bool(resume), progress=progress)


@contextmanager
def scratch_for_other_rank(runs_dir: Path, spec: Spec, resume: bool | str | Path) -> Iterator[tuple[Path, Any]]:
    """Where a rank other than 0 of a torchrun or SLURM job runs the spec: a scratch folder, deleted after.

    Under such a launcher every process runs `workbench run`, and every rank must execute the same
    notebooks to take every training step with rank 0. Rank 0 writes the run folder; the others
    write their copies here. To resume, a rank copies the folder first: each needs the training state.
    """
    with tempfile.TemporaryDirectory(prefix=f"workbench-rank-{launched_rank()}-") as scratch:
        scratch = Path(scratch)
        if resume:
            folder = folder_to_resume(runs_dir, spec, None if resume is True else Path(resume))
            resume = Path(shutil.copytree(folder, scratch / folder.name))
        yield scratch, resume


def scale_overrides(spec_path: str | Path, scale: dict[str, int]) -> dict[str, int]:
    """`--devices` / `--num-nodes` as overrides: in a pipeline, for the stages whose notebooks take them.

    Pretraining and fine-tuning stages take them, a summary's notebook does not; a plain spec gets
    them as they are, so a notebook without them is refused by the parameter check, naming the valid ones.
    """
    if not scale:
        return {}
    spec = load_spec(spec_path)
    if len(spec.stages) == 1:
        return dict(scale)
    takers = [stage.name for stage in spec.stages if set(scale) <= set(notebook_parameters(stage.notebook))]
    if not takers:
        raise ConfigError(f"{spec.path}: no stage's notebook takes {', '.join(scale)}; stages are: "
                          f"{', '.join(s.name for s in spec.stages)}")
    return {f"{stage}.{key}": value for stage in takers for key, value in scale.items()}


def dry_run(spec_path: str | Path, *, runs_dir: str | Path | None = None,
            overrides: dict[str, Any] | None = None) -> Plan:
    """The checked plan of a spec, with nothing written or executed."""
    spec = load_spec(spec_path).with_parameters(overrides)
    runs_dir = Path(runs_dir or spec.project_root / DEFAULT_RUNS_SUBDIR).resolve()
    return make_plan(spec, runs_dir / f"<run-id: {spec.name}>")

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
