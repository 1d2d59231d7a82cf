"""Atomic JSON files, and the helpers a notebook calls to write into its run folder.

A run can die at any moment (a kernel crash, Ctrl-C, a full disk). Every JSON
file is therefore written to a temporary name in the same directory and then
renamed over the target, so a reader sees the old file or the new one, never
half of one. Only the standard library is imported here: notebooks import this
module and should not pay for papermill or torch to save a dict.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from workbench.errors import ResourceError
from workbench.files import atomic_write

# The files of a run folder (README: "The run folder"). Only this module spells them; RunFolder
# (run_folder.py) reads them, execute.py and interactive.py write them.
SPEC_FILE = "spec.yaml"
PARAMS_FILE = "params.yaml"
STATUS_FILE = "status.json"
NOTEBOOK_FILE = "notebook.ipynb"
ATTEMPT_NOTEBOOK_PATTERN = "notebook.attempt-{}.ipynb"  # an earlier attempt's executed notebook (--resume)
PLAN_FILE = "plan.json"  # in the folder of a multi-run spec
METRICS_FILE = "metrics.json"
DATA_FILE = "data.json"
COMPUTE_FILE = "compute.json"
HISTORY_FILE = "history.json"
DETAILS_FILE = "details.json"  # fine-tuning: {"validation": {...}, "test": {...}}, non-scalar results
ENVIRONMENT_FILE = "environment.json"
AUDIT_FILE = "audit.json"  # what the audit (workbench/audit/) measured of the run's model
MODEL_CARD_FILE = "MODEL_CARD.md"
LIVE_CURVES_FILE = "live-curves.html"
LOCK_FILE = ".lock"
# tracking.json (where else the run was logged: MLflow's run id) and tensorboard/ (every run's event files) are
# written by the training side, so they are spelled in modules/tracking_settings.py, which imports no torch.
TRAINING_STATE_DIR = "training-state"  # pretraining's resumable state
CHECKPOINT_DIR = "checkpoint"  # pretraining's model (modules/checkpoint.py's format)
FINETUNED_DIR = "finetuned"  # fine-tuning's model (modules/finetuned.py's format)
WEIGHTS_FILE = "model.safetensors"  # in either model folder
MODEL_CONFIG_FILE = "config.json"  # in checkpoint/: architecture name and its config


class OutputError(ResourceError):
    """A run-folder file is missing or unreadable."""


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write `obj` as pretty, key-sorted JSON to `path`, atomically."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=_plain) + "\n"
    with atomic_write(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file, with an error that names the file when it is missing or corrupt."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OutputError(f"{path}: file not found") from None
    except OSError as e:
        raise OutputError(f"{path}: cannot read ({e.strerror})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise OutputError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None


def output_folder(output_dir: str | os.PathLike | None, name: str = "run") -> Path:
    """The folder a notebook writes into: `output_dir` when set (by `workbench run`), else a fresh temp folder.

    Run interactively or by nbval with the default `output_dir = ""`, a notebook
    must not litter the repository or pose as a run in experiments/runs.
    """
    if output_dir:
        folder = Path(output_dir)
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return Path(tempfile.mkdtemp(prefix=f"workbench-{name}-"))


def save_metrics(output_dir: str | os.PathLike, metrics: dict) -> Path:
    """Record a run's final metrics; `workbench runs` shows the numeric top-level ones."""
    return write_json(Path(output_dir) / METRICS_FILE, metrics)


def save_data_record(output_dir: str | os.PathLike, record: dict) -> Path:
    """Record what data the run saw (dataset, split, fingerprint); copied into environment.json."""
    return write_json(Path(output_dir) / DATA_FILE, record)


def save_compute_record(output_dir: str | os.PathLike, record: dict) -> Path:
    """Record what the run cost (steps, tokens, seconds, device)."""
    return write_json(Path(output_dir) / COMPUTE_FILE, record)


def save_details(output_dir: str | os.PathLike, details: dict) -> Path:
    """Record fine-tuning's non-scalar results, {"validation": {...}, "test": {...}}; read back with
    `RunFolder(run).details("test")["confusion_matrix"]`."""
    return write_json(Path(output_dir) / DETAILS_FILE, details)


def save_audit(output_dir: str | os.PathLike, audit: dict) -> Path:
    """Record what the audit measured of a run's model (memorization, private data, bias); the card reads it."""
    return write_json(Path(output_dir) / AUDIT_FILE, audit)


def save_history(output_dir: str | os.PathLike, history: list[dict]) -> Path:
    """Record the curves: one row per logged step or evaluation, for plots after the fact."""
    return write_json(Path(output_dir) / HISTORY_FILE, history)


def _plain(value: Any) -> Any:
    """json.dumps fallback: numpy/torch scalars via .item(), arrays via .tolist(), paths as str."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON: {value!r}")
