"""RunFolder: the one reader of a run folder, for the registry, the model card and the comparison views.

Runs die part-way and folders are copied around by hand, so nothing here trusts a file: every accessor
answers None, which means "not recorded", when its file is missing, unreadable, or not the shape its
writer gives it (a JSON object, a list of rows). Each file is read at most once per RunFolder, and
records written by older versions are normalised here, so readers see one scheme:

- details.json: {"validation": {...}, "test": {...}} with unprefixed keys (`confusion_matrix`); the
  old scheme kept prefixed keys (`test_confusion_matrix`, and `val_*` under "test" too).
- compute.json of fine-tuning: `train_examples_seen` and `examples_per_s`; before fine-tuning counted
  them apart, its `train_tokens` and `tokens_per_s` counted examples, so they are renamed, not shown
  as tokens.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from workbench.modules.tracking_settings import TRACKING_FILE
from workbench.runs.lock import effective_status
from workbench.runs.outputs import (
    AUDIT_FILE,
    CHECKPOINT_DIR,
    COMPUTE_FILE,
    DATA_FILE,
    DETAILS_FILE,
    ENVIRONMENT_FILE,
    FINETUNED_DIR,
    HISTORY_FILE,
    METRICS_FILE,
    MODEL_CARD_FILE,
    MODEL_CONFIG_FILE,
    PARAMS_FILE,
    PLAN_FILE,
    SPEC_FILE,
    STATUS_FILE,
    WEIGHTS_FILE,
    OutputError,
    read_json,
)

# What status.json can say, plus "killed" (running, but no process holds the run's lock) and
# "unknown" (no readable status.json).
STATUSES = ("running", "completed", "failed", "interrupted", "skipped", "killed", "unknown")

# Kinds of run, told apart by what the run recorded. Fine-tuning is one kind whether it adapted a text base to a
# task or a vision base to an image set (`modality` tells them apart); pretraining on images is a kind of its own.
PRETRAINING, VISION_PRETRAINING, FINETUNING, OTHER = "pretraining", "vision-pretraining", "fine-tuning", "other"
KINDS = (PRETRAINING, VISION_PRETRAINING, FINETUNING, OTHER)
TEXT, IMAGE = "text", "image"
# What a kind's training is counted in: (unit, the count in compute.json, the rate in compute.json).
THROUGHPUT_UNITS = {FINETUNING: ("examples", "train_examples_seen", "examples_per_s"),
                    VISION_PRETRAINING: ("images", "train_images", "images_per_s")}
TOKENS = ("tokens", "train_tokens", "tokens_per_s")

DETAIL_SPLITS = {"validation": "val_", "test": "test_"}  # split -> the key prefix of the old scheme


@dataclass(frozen=True)
class Throughput:
    """Training speed in the unit the run's kind is measured in: tokens (pretraining) or examples (fine-tuning)."""

    per_second: float
    unit: str  # "tokens", "examples" or "images"

    def __str__(self) -> str:
        shown = f"{self.per_second:,.0f}" if self.per_second >= 100 else f"{self.per_second:.3g}"
        return f"{shown} {self.unit}/s"


class _Record:
    """A JSON-object or YAML-mapping file of the run folder as an attribute: read on first use and kept,
    None when not recorded."""

    def __init__(self, name: str, doc: str) -> None:
        self.name, self.__doc__ = name, doc

    def __set_name__(self, owner: type, attribute: str) -> None:
        self.attribute = attribute

    def __get__(self, run: RunFolder | None, owner: type | None = None) -> dict | None:
        if run is None:
            return self  # type: ignore[return-value]
        value = run._yaml(self.name) if self.name.endswith(".yaml") else run._json(self.name)
        run.__dict__[self.attribute] = value  # read once: the instance's value hides this descriptor from now on
        return value


class _Holds:
    """Whether the run folder holds a file (at `parts` below it), as a read-only attribute."""

    def __init__(self, *parts: str, doc: str) -> None:
        self.parts, self.__doc__ = parts, doc

    def __get__(self, run: RunFolder | None, owner: type | None = None) -> bool:
        if run is None:
            return self  # type: ignore[return-value]
        return run.path.joinpath(*self.parts).is_file()


class _StatusText:
    """A text field of status.json as a read-only attribute: its text, or None when not recorded."""

    def __init__(self, key: str, doc: str) -> None:
        self.key, self.__doc__ = key, doc

    def __get__(self, run: RunFolder | None, owner: type | None = None) -> str | None:
        if run is None:
            return self  # type: ignore[return-value]
        value = lookup(run.status_record, self.key)
        return value if isinstance(value, str) else None


class RunFolder:
    """One run folder, read lazily; None from any accessor means "not recorded"."""

    def __init__(self, path: str | os.PathLike, run_id: str | None = None) -> None:
        self.path = Path(path)
        self.id = run_id or self.path.name

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    # -- the records, each read once ------------------------------------------------------------------------

    status_record = _Record(STATUS_FILE, "status.json as written (see `status` for what it means now)")
    params = _Record(PARAMS_FILE, "params.yaml: the parameters injected into the notebook (safe_load: never code)")
    spec = _Record(SPEC_FILE, "spec.yaml: the spec that repeats this run alone")
    plan = _Record(PLAN_FILE, "plan.json of a multi-run spec's folder: the spec's name and its runs")
    metrics = _Record(METRICS_FILE, "metrics.json: the final metrics")
    data = _Record(DATA_FILE, "data.json: what the run trained on (corpus or task and base, tokenizer, settings)")
    environment = _Record(ENVIRONMENT_FILE, "environment.json: interpreter, machine, packages, git state, seed")
    audit = _Record(AUDIT_FILE, "audit.json: what the audit measured of the model (memorization, private data, bias)")
    tracking = _Record(TRACKING_FILE, "tracking.json: where else the run was logged ({'mlflow': {tracking_uri, "
                       "experiment_name, experiment_id, run_id}})")
    checkpoint_config = _Record(f"{CHECKPOINT_DIR}/{MODEL_CONFIG_FILE}", "a pretraining run's model architecture")
    own_model_config = _Record(MODEL_CONFIG_FILE, "a checkpoint folder's model architecture (the folder given "
                                                  "is the checkpoint/ itself)")
    _raw_compute = _Record(COMPUTE_FILE, "compute.json as written (see `compute`)")

    @cached_property
    def history(self) -> list[dict] | None:
        """history.json's rows (non-object rows dropped)."""
        rows = self._json(HISTORY_FILE, kind=list)
        return None if rows is None else [row for row in rows if isinstance(row, dict)]

    @cached_property
    def compute(self) -> dict | None:
        """compute.json, with an old fine-tuning record's example counts under their own names."""
        record = self._raw_compute
        if record is None or self.kind != FINETUNING or "train_examples_seen" in record:
            return record
        renamed = {k: v for k, v in record.items() if k not in ("train_tokens", "tokens_per_s")}
        for old, new in (("train_tokens", "train_examples_seen"), ("tokens_per_s", "examples_per_s")):
            if old in record:
                renamed[new] = record[old]
        return renamed

    def details(self, split: str) -> dict | None:
        """details.json's entries for `split` ("validation" or "test"), keys unprefixed: `confusion_matrix`, ..."""
        if split not in DETAIL_SPLITS:
            raise KeyError(f"no details split {split!r}; splits: {', '.join(DETAIL_SPLITS)}")
        return (self._details or {}).get(split)

    # -- what the records say -------------------------------------------------------------------------------

    @property
    def status(self) -> str:
        """One of STATUSES: as recorded, except that a "running" run nobody holds the lock of is "killed"."""
        recorded = self.recorded_status
        return effective_status(self.path, recorded) if recorded is not None else "unknown"

    # status.json's text fields, None when not recorded
    recorded_status = _StatusText("status", "what status.json says, whether or not its process still lives")
    spec_name = _StatusText("spec", "the spec that ran it (None for an interactive run)")
    stage = _StatusText("stage", "the stage of a multi-stage spec")
    spec_path = _StatusText("spec_path", "the spec file the run came from")
    notebook = _StatusText("notebook", "the notebook that ran")
    started = _StatusText("started", "ISO time with UTC offset")
    finished = _StatusText("finished", "ISO time with UTC offset")

    @property
    def wall_time_s(self) -> float | None:
        value = lookup(self.status_record, "wall_time_s")
        return float(value) if is_number(value) else None

    @property
    def varied(self) -> dict:
        """What this run of a sweep changed ({} for a single run)."""
        value = lookup(self.status_record, "varied")
        return value if isinstance(value, dict) else {}

    @property
    def interactive(self) -> bool:
        """Run from JupyterLab (runs/interactive.py), not by `workbench run`."""
        return lookup(self.status_record, "interactive") is True

    @property
    def started_at(self) -> float:
        """The start as a timestamp, for sorting (the folder's mtime when not recorded)."""
        try:
            return datetime.fromisoformat(self.started or "").timestamp()
        except ValueError:
            return self.path.stat().st_mtime

    @cached_property
    def kind(self) -> str:
        """PRETRAINING (a corpus), VISION_PRETRAINING (an image set), FINETUNING (a task or a base, text or
        images), or OTHER (a summary, a fabricated folder)."""
        data, compute = self.data or {}, self._raw_compute or {}
        if "task" in data or "base" in data or "train_examples_seen" in compute or self._details is not None:
            return FINETUNING
        if "image_set" in data:
            return VISION_PRETRAINING
        if "corpus" in data or lookup(self.metrics, "val_bpb") is not None:
            return PRETRAINING
        return OTHER

    @property
    def modality(self) -> str:
        """IMAGE for a run that trained on an image set (vision pretraining or fine-tuning), else TEXT."""
        return IMAGE if "image_set" in (self.data or {}) or lookup(self.data, "task", "modality") == IMAGE else TEXT

    @property
    def task_kind(self) -> str | None:
        """A fine-tuning run's task kind (sequence_classification, ...; data/tasks/base.py); None otherwise."""
        kind = lookup(self.data, "task", "kind")
        return kind if isinstance(kind, str) else None

    @cached_property
    def parameters(self) -> dict:
        """The parameters as run: params.yaml's values over the settings the recipe recorded in data.json."""
        settings = lookup(self.data, "settings")
        given = {k: v for k, v in (self.params or {}).items() if v is not None}
        return {**(settings if isinstance(settings, dict) else {}), **given}

    def param(self, name: str) -> Any:
        """One parameter as run (see `parameters`); None when not recorded."""
        return self.parameters.get(name)

    @property
    def git(self) -> dict:
        """environment.json's git state ({} when not recorded): commit, dirty, branch."""
        value = lookup(self.environment, "git")
        return value if isinstance(value, dict) else {}

    @property
    def throughput(self) -> Throughput | None:
        """Examples per second for fine-tuning, images per second for vision pretraining, tokens per second
        otherwise (from the counts when no rate is kept)."""
        compute = self.compute or {}
        unit, count, rate = THROUGHPUT_UNITS.get(self.kind, TOKENS)
        value, seconds = compute.get(rate), compute.get("train_time_s")
        if not is_number(value) and is_number(compute.get(count)) and is_number(seconds) and seconds > 0:
            value = compute[count] / seconds
        return Throughput(float(value), unit) if is_number(value) else None

    # -- what the folder holds ------------------------------------------------------------------------------

    is_training_run = _Holds(COMPUTE_FILE, doc="pretraining and fine-tuning write compute.json; a summary does not")
    is_sweep = _Holds(PLAN_FILE, doc="the folder of a multi-run spec (plan.json), holding one run folder each")
    is_checkpoint = _Holds(MODEL_CONFIG_FILE, doc="a model folder itself (a checkpoint/ given directly, an HF folder)")
    has_checkpoint = _Holds(CHECKPOINT_DIR, WEIGHTS_FILE, doc="a pretraining run's saved model (text or vision)")
    has_finetuned = _Holds(FINETUNED_DIR, WEIGHTS_FILE, doc="a fine-tuning run's saved model (`save_model`)")
    has_spec_file = _Holds(SPEC_FILE, doc="spec.yaml, the spec that repeats the run")
    has_model_card = _Holds(MODEL_CARD_FILE, doc="MODEL_CARD.md")

    @property
    def model_card_path(self) -> Path:
        return self.path / MODEL_CARD_FILE

    @property
    def spec_file(self) -> Path:
        return self.path / SPEC_FILE

    # -- reading --------------------------------------------------------------------------------------------

    @cached_property
    def _details(self) -> dict[str, dict] | None:
        record = self._json(DETAILS_FILE)
        if record is None:
            return None
        prefixes = tuple(DETAIL_SPLITS.values())
        details = {}
        for split, prefix in DETAIL_SPLITS.items():
            entries = record.get(split)
            if not isinstance(entries, dict):
                continue
            if entries and all(str(key).startswith(prefixes) for key in entries):  # the old, prefixed scheme
                entries = {key.removeprefix(prefix): v for key, v in entries.items() if key.startswith(prefix)}
            details[split] = entries
        return details

    def _json(self, name: str | Path, kind: type = dict) -> Any:
        path = self.path / name
        try:
            value = read_json(path) if path.is_file() else None
        except OutputError:
            return None
        return value if isinstance(value, kind) else None

    def _yaml(self, name: str) -> dict | None:
        try:
            value = yaml.safe_load((self.path / name).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return None
        return value if isinstance(value, dict) else None


def runs_in(folder: str | os.PathLike) -> list[RunFolder]:
    """The run folders directly below `folder`, a sweep's folder (plan.json) standing for its runs, oldest first.

    A sweep's runs get ids `<sweep folder>/<run folder>`. [] when `folder` does not exist.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    runs: list[RunFolder] = []
    for sub in _subfolders(folder):
        runs += sweep_runs(sub) if RunFolder(sub).is_sweep else [RunFolder(sub)]
    return sorted(runs, key=lambda run: (run.started_at, run.id))


def sweep_runs(folder: str | os.PathLike) -> list[RunFolder]:
    """The runs of one sweep's folder, oldest first, with ids `<sweep folder>/<run folder>`."""
    folder = Path(folder)
    runs = [RunFolder(sub, run_id=f"{folder.name}/{sub.name}") for sub in _subfolders(folder)]
    return sorted(runs, key=lambda run: (run.started_at, run.id))


def _subfolders(folder: Path) -> list[Path]:
    return [d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")]


def lookup(record: Any, *keys: str) -> Any:
    """record[k1][k2]..., or None when any level is missing or not a JSON object."""
    for key in keys:
        if not isinstance(record, dict):
            return None
        record = record.get(key)
    return record


def is_number(value: Any) -> bool:
    """A finite int or float, not a bool: what a record's numeric field must be to be shown as a number."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
