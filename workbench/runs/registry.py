"""List run folders, filter them, and summarise them as a text table or a pandas DataFrame.

Runs die part-way and folders get copied around by hand, so listing never
trusts a folder: anything unreadable shows as status "unknown" (or its field
as missing) instead of hiding the other runs behind a traceback.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Iterable, Mapping

import yaml

from workbench.config import ConfigError
from workbench.runs.lock import effective_status
from workbench.runs.outputs import COMPUTE_FILE, METRICS_FILE, PARAMS_FILE, PLAN_FILE, STATUS_FILE, OutputError, read_json

# What status.json can say, plus "killed" (running, but no process holds the run's lock) and
# "unknown" (no readable status.json).
STATUSES = ("running", "completed", "failed", "interrupted", "skipped", "killed", "unknown")

# zlib_bpb sits beside val_bpb: the compressor a language model should beat on the same text.
HEADLINE_PREFERENCE = (
    "val_loss", "val_bpb", "zlib_bpb", "test_macro_f1", "test_accuracy", "test_r2", "val_ppl", "train_loss",
)
MAX_HEADLINE_METRICS = 4


@dataclass
class RunRecord:
    """One run folder as `workbench runs` sees it."""

    run_id: str
    spec: str | None
    status: str
    started: str | None
    wall_time_s: float | None
    metrics: dict | None
    run_dir: Path
    stage: str | None = None
    params: dict | None = None  # params.yaml: the parameters injected into the notebook
    varied: dict = field(default_factory=dict)  # what this run of a sweep changed (status.json)
    spec_path: str | None = None  # the spec file it was run from
    compute: dict | None = None  # compute.json: tokens, training time, device


def list_runs(runs_dir: str | Path) -> list[RunRecord]:
    """Every run folder under `runs_dir`, oldest first; [] if the directory does not exist."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    records = []
    for folder in _subfolders(runs_dir):
        if (folder / PLAN_FILE).is_file():  # a sweep or pipeline: one run per subfolder
            records += [read_run(run, run_id=f"{folder.name}/{run.name}") for run in _subfolders(folder)]
        else:
            records.append(read_run(folder))
    return sorted(records, key=_start_time)


def _subfolders(folder: Path) -> list[Path]:
    return [d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")]


def read_run(run_dir: Path, run_id: str | None = None) -> RunRecord:
    """The record for one folder; status "unknown" when status.json is missing or corrupt."""
    try:
        status = read_json(run_dir / STATUS_FILE)
        if not isinstance(status, dict):
            raise OutputError(f"{run_dir / STATUS_FILE}: expected a JSON object")
    except OutputError:
        status = {}
    metrics, compute = _optional_json(run_dir / METRICS_FILE), _optional_json(run_dir / COMPUTE_FILE)
    wall = status.get("wall_time_s")
    recorded = status.get("status") if isinstance(status.get("status"), str) else "unknown"
    return RunRecord(
        run_id=run_id or run_dir.name,
        spec=_text(status.get("spec")),
        status=effective_status(run_dir, recorded),
        started=_text(status.get("started")),
        wall_time_s=float(wall) if _is_number(wall) else None,
        metrics=metrics,
        run_dir=run_dir,
        stage=_text(status.get("stage")),
        params=_read_params(run_dir / PARAMS_FILE),
        varied=status.get("varied") if isinstance(status.get("varied"), dict) else {},
        spec_path=_text(status.get("spec_path")),
        compute=compute,
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _optional_json(path: Path) -> dict | None:
    """A JSON object file, or None when it is missing, corrupt or not an object."""
    try:
        value = read_json(path) if path.is_file() else None
    except OutputError:
        return None
    return value if isinstance(value, dict) else None


def _read_params(path: Path) -> dict | None:
    """params.yaml (safe_load: a run folder is data, never code), or None when missing or unreadable."""
    try:
        value = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return value if isinstance(value, dict) else None


# -- filtering -----------------------------------------------------------------------------------------------


def filter_runs(
    records: list[RunRecord],
    *,
    spec: str | None = None,
    stage: str | None = None,
    status: str | None = None,
    params: Mapping[str, object] | None = None,
) -> list[RunRecord]:
    """The records that match every filter given (None: no filter on that field).

    `params` maps a parameter name (dots reach into nested values: `model_overrides.n_layer`) to the
    value params.yaml must hold; numbers compare by value, so `1e-3` matches `0.001`. A spec, stage,
    parameter or parameter value that no listed run has is a ConfigError naming the ones that exist,
    so a typo is not mistaken for "no such runs". A known status that no run has is simply no match.
    """
    if status is not None and status not in STATUSES:
        raise ConfigError(f"unknown status {status!r}; valid: {', '.join(STATUSES)}")
    _check_exists("spec", spec, [r.spec for r in records])
    _check_exists("stage", stage, [r.stage for r in records])
    for key, wanted in (params or {}).items():
        values = [_param(r.params, key) for r in records]
        present = [v for v in values if v is not _MISSING]
        if not present:
            names = sorted({name for r in records for name in _flatten(r.params or {})})
            raise ConfigError(f"no run has a parameter {key!r}; parameters: {', '.join(names) or '(none)'}")
        if not any(_same_value(v, wanted) for v in present):
            shown = sorted({_show(v) for v in present})
            raise ConfigError(f"no run has {key}={_show(wanted)}; values of {key}: {', '.join(shown)}")
    return [
        r for r in records
        if (spec is None or r.spec == spec)
        and (stage is None or r.stage == stage)
        and (status is None or r.status == status)
        and all(_same_value(_param(r.params, k), v) for k, v in (params or {}).items())
    ]


_MISSING = object()


def _check_exists(what: str, wanted: str | None, values: list[str | None]) -> None:
    if wanted is not None and wanted not in values:
        names = sorted({v for v in values if v is not None})
        raise ConfigError(f"no run of {what} {wanted!r}; {what}s: {', '.join(names) or '(none recorded)'}")


def _param(params: dict | None, key: str) -> object:
    """params[key], following dots into nested dicts; _MISSING when absent."""
    value: object = params or {}
    if isinstance(value, dict) and key in value:
        return value[key]
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _same_value(have: object, wanted: object) -> bool:
    """Equal as YAML values; numbers by value (a command line's `1e-3` is the text YAML 1.1 reads)."""
    if have is _MISSING:
        return False
    if isinstance(have, bool) or isinstance(wanted, bool):
        return have is wanted
    a, b = _as_number(have), _as_number(wanted)
    if a is not None and b is not None:
        return a == b
    return have == wanted


def _as_number(value: object) -> float | None:
    if _is_number(value):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _show(value: object) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


# -- the DataFrame ---------------------------------------------------------------------------------------------

# Columns every runs_table has, before the param.* and metric.* ones.
TABLE_COLUMNS = (
    "id", "spec", "stage", "status", "started", "wall_time_s", "train_steps", "train_tokens", "train_time_s",
    "tokens_per_s", "device", "path",
)
# Parameters that name where a run wrote, not how it ran: left out of the table.
UNINFORMATIVE_PARAMS = ("output_dir",)


def runs_table(runs: Iterable[RunRecord | str | os.PathLike] | str | os.PathLike):
    """One row per run, as a pandas DataFrame, for comparing runs in a notebook.

    `runs` is a list of RunRecords or run folders (a sweep's folder, which holds plan.json, stands
    for all its runs), or a single runs directory or sweep folder. Columns: TABLE_COLUMNS
    (wall time from status.json; steps, tokens, training time and tokens/s from compute.json),
    then `param.<name>` for every parameter in params.yaml (nested ones as `param.a.b`; output_dir
    left out) and `metric.<name>` for every numeric scalar in metrics.json. A value a run lacks is
    missing (NaN/None), so failed and still-running runs keep their row.
    """
    import pandas as pd

    rows = [_table_row(record) for record in _records(runs)]
    params = _ordered_union(k for row in rows for k in row if k.startswith("param."))
    metrics = _ordered_union(k for row in rows for k in row if k.startswith("metric."))
    return pd.DataFrame(rows, columns=[*TABLE_COLUMNS, *params, *metrics])


def varied_parameters(table) -> list[str]:
    """The `param.*` columns with more than one value among the runs that have them: what a comparison is about.

    A parameter only some runs have (another stage's) is not counted as varying by its absence.
    """
    varied = []
    for column in (c for c in table.columns if c.startswith("param.")):
        values = {repr(v) for v in table[column].tolist() if not _is_missing(v)}
        if len(values) > 1:
            varied.append(column)
    return varied


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _records(runs) -> list[RunRecord]:
    if isinstance(runs, (str, os.PathLike)):
        folder = Path(runs)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such runs directory")
        if (folder / PLAN_FILE).is_file():
            return _sweep_runs(folder)
        return list_runs(folder)
    records = []
    for item in runs:
        if isinstance(item, RunRecord):
            records.append(item)
            continue
        folder = Path(item)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such run folder")
        records += _sweep_runs(folder) if (folder / PLAN_FILE).is_file() else [read_run(folder)]
    return records


def _sweep_runs(folder: Path) -> list[RunRecord]:
    runs = [read_run(run, run_id=f"{folder.name}/{run.name}") for run in _subfolders(folder)]
    return sorted(runs, key=_start_time)


def _table_row(record: RunRecord) -> dict:
    compute = record.compute or {}
    tokens, seconds = compute.get("train_tokens"), compute.get("train_time_s")
    tokens_per_s = compute.get("tokens_per_s")
    if not _is_number(tokens_per_s) and _is_number(tokens) and _is_number(seconds) and seconds > 0:
        tokens_per_s = tokens / seconds
    row = {
        "id": record.run_id,
        "spec": record.spec,
        "stage": record.stage,
        "status": record.status,
        "started": record.started,
        "wall_time_s": record.wall_time_s,
        "train_steps": compute.get("train_steps") if _is_number(compute.get("train_steps")) else None,
        "train_tokens": tokens if _is_number(tokens) else None,
        "train_time_s": seconds if _is_number(seconds) else None,
        "tokens_per_s": tokens_per_s if _is_number(tokens_per_s) else None,
        "device": compute.get("device") if isinstance(compute.get("device"), str) else None,
        "path": str(record.run_dir),
    }
    for name, value in _flatten(record.params or {}).items():
        if name not in UNINFORMATIVE_PARAMS:
            row[f"param.{name}"] = value
    for name, value in (record.metrics or {}).items():
        if _is_number(value):
            row[f"metric.{name}"] = value
    return row


def _flatten(values: dict, prefix: str = "") -> dict:
    """Nested dicts as dotted keys: {"a": {"b": 1}} -> {"a.b": 1}; an empty dict stays a value."""
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _ordered_union(keys: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(keys))


# -- the text table --------------------------------------------------------------------------------------------


def headline_metrics(metrics: dict | None) -> dict[str, float]:
    """The top-level numeric scalars of metrics.json, preferred keys first, at most four."""
    numeric = {k: v for k, v in (metrics or {}).items() if _is_number(v)}
    preferred = [k for k in HEADLINE_PREFERENCE if k in numeric]
    ordered = preferred + sorted(k for k in numeric if k not in HEADLINE_PREFERENCE)
    return {k: numeric[k] for k in ordered[:MAX_HEADLINE_METRICS]}


def format_runs_table(records: list[RunRecord]) -> str:
    """A plain aligned text table: run id, spec, (stage,) status, wall time, headline metrics.

    The stage column appears when some run belongs to a multi-stage spec (its stage is not its spec's name).
    """
    columns = _metric_columns(records)
    staged = any(r.stage is not None and r.stage != r.spec for r in records)
    header = ["run", "spec", *(["stage"] if staged else []), "status", "wall time", *columns]
    rows = [
        [r.run_id, r.spec or "-", *([r.stage or "-"] if staged else []), r.status, format_seconds(r.wall_time_s)]
        + [format_number(r.metrics[c]) if r.metrics and _is_number(r.metrics.get(c)) else "-" for c in columns]
        for r in records
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    return "\n".join(lines)


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m{rest:02d}s"


def format_number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:.4g}"


def _metric_columns(records: list[RunRecord]) -> list[str]:
    """Headline metrics over all runs, so one table has one set of columns."""
    union = {}
    for record in records:
        for key, value in (record.metrics or {}).items():
            if _is_number(value):
                union.setdefault(key, value)
    return list(headline_metrics(union))


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _start_time(record: RunRecord) -> tuple[float, str]:
    try:
        when = datetime.fromisoformat(record.started).timestamp()
    except (TypeError, ValueError):
        when = record.run_dir.stat().st_mtime
    return when, record.run_id
