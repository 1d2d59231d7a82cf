"""Which experiment folder `workbench run SPEC --resume` continues, and what in it is done.

Resuming re-runs the spec *as it ran* (the spec.yaml stored in the folder)
into the same run folders. Completed runs are kept as they are; killed,
interrupted, failed and skipped ones run again, and a training notebook
continues from the training state its previous attempt saved.
"""

from __future__ import annotations

from pathlib import Path

from workbench.config import ConfigError
from workbench.runs.outputs import SPEC_FILE, STATUS_FILE
from workbench.runs.run_folder import RunFolder, lookup
from workbench.runs.spec import Spec, load_spec


class ResumeError(ConfigError):
    """Nothing to resume, or the folder does not match the spec."""


def experiment_folders(runs_dir: Path, spec_name: str) -> list[Path]:
    """The folders `workbench run` made for `spec_name`, oldest first (names start with a timestamp)."""
    found = []
    for folder in sorted(Path(runs_dir).glob(f"*-{spec_name}-*")):
        run = RunFolder(folder)
        if lookup(run.plan if run.is_sweep else run.status_record, "spec") == spec_name:
            found.append(folder)  # never an interactive run: no spec ran it
    return found


def folder_to_resume(runs_dir: Path, spec: Spec, folder: Path | None) -> Path:
    """`folder` if given (checked), else the newest experiment folder of `spec`."""
    if folder is not None:
        folder = Path(folder).resolve()
        if not (folder / SPEC_FILE).is_file():
            raise ResumeError(f"{folder}: not a run folder of `workbench run` (no {SPEC_FILE} in it)")
        return folder
    folders = experiment_folders(runs_dir, spec.name)
    if not folders:
        raise ResumeError(f"no run of spec {spec.name!r} in {runs_dir} to resume; run it without --resume")
    return folders[-1]


def check_same_spec(current: Spec, stored: Spec, folder: Path) -> None:
    """Refuse to continue a folder whose spec has since changed: its runs would match neither."""
    if current.to_yaml() != stored.to_yaml():
        raise ResumeError(
            f"{current.path} has changed since {folder.name} ran it. Resume the folder as it ran with "
            f"`workbench run {folder / SPEC_FILE} --resume {folder}`, or start afresh without --resume"
        )


def run_status(run_dir: Path) -> str:
    """completed / failed / interrupted / skipped / killed / running, or "not started"."""
    if not (run_dir / STATUS_FILE).exists():
        return "not started"
    return RunFolder(run_dir).status


def unfinished_note(spec_path: str | Path, runs_dir: str | Path | None = None) -> str | None:
    """A one-line hint when the spec's newest folder has runs that did not finish, else None.

    `workbench run SPEC` always starts afresh; this tells the user that
    `--resume` would continue instead. Any problem reading the spec is left
    to the run itself to report.
    """
    try:
        spec = load_spec(spec_path)
    except ConfigError:
        return None
    runs_dir = Path(runs_dir or spec.project_root / "experiments" / "runs")
    folders = experiment_folders(runs_dir, spec.name)
    if not folders:
        return None
    newest = folders[-1]
    runs = [newest] if (newest / STATUS_FILE).exists() and not RunFolder(newest).is_sweep else sorted(
        p for p in newest.iterdir() if p.is_dir()
    )
    states = [run_status(run) for run in runs]
    unfinished = [s for s in states if s not in ("completed", "running")]
    if not unfinished:
        return None
    counts = ", ".join(f"{states.count(s)} {s}" for s in dict.fromkeys(unfinished))
    return (f"note: the newest run of {spec.name} ({newest.name}) did not finish ({counts}); "
            f"this starts a new one. `workbench run {spec_path} --resume` would continue it instead.")
