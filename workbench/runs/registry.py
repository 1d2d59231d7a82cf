"""List run folders and summarise them as a table.

Runs die part-way and folders get copied around by hand, so listing never
trusts a folder: anything unreadable shows as status "unknown" instead of
hiding the other runs behind a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from workbench.runs.outputs import METRICS_FILE, OutputError, read_json
from workbench.runs.runner import PLAN_FILE, STATUS_FILE

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
    try:
        metrics = read_json(run_dir / METRICS_FILE) if (run_dir / METRICS_FILE).exists() else None
    except OutputError:
        metrics = None
    wall = status.get("wall_time_s")
    return RunRecord(
        run_id=run_id or run_dir.name,
        spec=status.get("spec") if isinstance(status.get("spec"), str) else None,
        status=status.get("status") if isinstance(status.get("status"), str) else "unknown",
        started=status.get("started") if isinstance(status.get("started"), str) else None,
        wall_time_s=float(wall) if isinstance(wall, (int, float)) and not isinstance(wall, bool) else None,
        metrics=metrics if isinstance(metrics, dict) else None,
        run_dir=run_dir,
    )


def headline_metrics(metrics: dict | None) -> dict[str, float]:
    """The top-level numeric scalars of metrics.json, preferred keys first, at most four."""
    numeric = {k: v for k, v in (metrics or {}).items() if _is_number(v)}
    preferred = [k for k in HEADLINE_PREFERENCE if k in numeric]
    ordered = preferred + sorted(k for k in numeric if k not in HEADLINE_PREFERENCE)
    return {k: numeric[k] for k in ordered[:MAX_HEADLINE_METRICS]}


def format_runs_table(records: list[RunRecord]) -> str:
    """A plain aligned text table: run id, spec, status, wall time, headline metrics."""
    columns = _metric_columns(records)
    header = ["run", "spec", "status", "wall time", *columns]
    rows = [
        [r.run_id, r.spec or "-", r.status, format_seconds(r.wall_time_s)]
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
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _start_time(record: RunRecord) -> tuple[float, str]:
    try:
        when = datetime.fromisoformat(record.started).timestamp()
    except (TypeError, ValueError):
        when = record.run_dir.stat().st_mtime
    return when, record.run_id
