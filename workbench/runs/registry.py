"""List run folders, filter them, and summarise them as a text table or a pandas DataFrame.

Runs die part-way and folders get copied around by hand, so listing never
trusts a folder: anything unreadable shows as status "unknown" (or its field
as missing) instead of hiding the other runs behind a traceback.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Iterable, Mapping

from workbench.config import ConfigError
from workbench.runs.run_folder import STATUSES, THROUGHPUT_UNITS, RunFolder, Throughput, is_number, runs_in, sweep_runs

# zlib_bpb sits beside val_bpb: the compressor a language model should beat on the same text; baseline_val_loss
# beside an MAE's val_loss: predicting every hidden patch as its mean.
HEADLINE_PREFERENCE = (
    "val_loss", "val_bpb", "val_accuracy", "zlib_bpb", "baseline_val_loss", "test_macro_f1", "test_accuracy", "test_r2",
    "val_ppl", "train_loss",
)
MAX_HEADLINE_METRICS = 4


@dataclass
class RunRecord:
    """One run folder as `workbench runs` sees it (read through its RunFolder)."""

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
    compute: dict | None = None  # compute.json: steps, tokens or examples, training time, device
    kind: str = "other"  # pretraining, vision-pretraining, fine-tuning or other (run_folder.KINDS)
    interactive: bool = False  # run from JupyterLab rather than by `workbench run`
    throughput: Throughput | None = None  # tokens/s (pretraining), images/s (vision pretraining), examples/s


def list_runs(runs_dir: str | Path) -> list[RunRecord]:
    """Every run folder under `runs_dir` (a sweep's runs one by one), oldest first; [] if it does not exist."""
    return [_record(run) for run in runs_in(runs_dir)]


def read_run(run_dir: Path, run_id: str | None = None) -> RunRecord:
    """The record for one folder; status "unknown" when status.json is missing or corrupt."""
    return _record(RunFolder(run_dir, run_id=run_id))


# RunRecord fields that RunFolder names otherwise; every other field is the RunFolder attribute of its name.
_FOLDER_NAMES = {"run_id": "id", "spec": "spec_name", "run_dir": "path"}


def _record(run: RunFolder) -> RunRecord:
    return RunRecord(**{f.name: getattr(run, _FOLDER_NAMES.get(f.name, f.name)) for f in fields(RunRecord)})


# -- filtering -----------------------------------------------------------------------------------------------


def filter_runs(
    records: list[RunRecord],
    *,
    spec: str | None = None,
    stage: str | None = None,
    status: str | None = None,
    params: Mapping[str, object] | None = None,
    interactive: bool | None = None,
) -> list[RunRecord]:
    """The records that match every filter given (None: no filter on that field).

    `params` maps a parameter name (dots reach into nested values: `model_overrides.n_layer`) to the
    value params.yaml must hold; numbers compare by value, so `1e-3` matches `0.001`. A spec, stage,
    parameter or parameter value that no listed run has is a ConfigError naming the ones that exist,
    so a typo is not mistaken for "no such runs". A known status that no run has is simply no match.
    `interactive` keeps only the runs made in JupyterLab (True) or only those of `workbench run` (False).
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
        and (interactive is None or r.interactive is interactive)
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
    if is_number(value):
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
    "id", "spec", "stage", "status", "kind", "interactive", "started", "wall_time_s", "train_steps", "train_tokens",
    "train_time_s", "tokens_per_s", "train_examples_seen", "examples_per_s", "train_images", "images_per_s", "device",
    "path",
)
# Parameters that name where a run wrote, not how it ran: left out of the table.
UNINFORMATIVE_PARAMS = ("output_dir",)


def runs_table(runs: Iterable[RunRecord | str | os.PathLike] | str | os.PathLike):
    """One row per run, as a pandas DataFrame, for comparing runs in a notebook.

    `runs` is a list of RunRecords or run folders (a sweep's folder, which holds plan.json, stands
    for all its runs), or a single runs directory or sweep folder. Columns: TABLE_COLUMNS
    (wall time from status.json; steps, training time, tokens and tokens/s, and for fine-tuning the
    examples seen and examples/s, from compute.json), then `param.<name>` for every parameter in
    params.yaml (nested ones as `param.a.b`; output_dir left out) and `metric.<name>` for every numeric
    scalar in metrics.json. A value a run lacks is missing (NaN/None), so failed and still-running
    runs keep their row. Fine-tuning's `train_tokens` count non-padding tokens; an old fine-tuning
    run, whose "tokens" were examples, has them under `train_examples_seen` instead.
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
        values = {repr(v) for v in table[column].tolist() if not is_missing(v)}
        if len(values) > 1:
            varied.append(column)
    return varied


def is_missing(value: object) -> bool:
    """A table cell a run has no value for (None or NaN)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _records(runs) -> list[RunRecord]:
    if isinstance(runs, (str, os.PathLike)):
        folder = Path(runs)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such runs directory")
        return [_record(run) for run in (sweep_runs(folder) if RunFolder(folder).is_sweep else runs_in(folder))]
    records = []
    for item in runs:
        if isinstance(item, RunRecord):
            records.append(item)
            continue
        folder = Path(item)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such run folder")
        records += [_record(run) for run in (sweep_runs(folder) if RunFolder(folder).is_sweep else [RunFolder(folder)])]
    return records


_COMPUTE_COLUMNS = ("train_steps", "train_tokens", "train_time_s", "tokens_per_s", "train_examples_seen",
                    "examples_per_s", "train_images", "images_per_s")


def _table_row(record: RunRecord) -> dict:
    compute = record.compute or {}
    row = {
        "id": record.run_id,
        "spec": record.spec,
        "stage": record.stage,
        "status": record.status,
        "kind": record.kind,
        "interactive": record.interactive,
        "started": record.started,
        "wall_time_s": record.wall_time_s,
        **{name: compute[name] if is_number(compute.get(name)) else None for name in _COMPUTE_COLUMNS},
        "device": compute.get("device") if isinstance(compute.get("device"), str) else None,
        "path": str(record.run_dir),
    }
    if record.throughput is not None:  # a rate computed from the counts when compute.json lacks it
        row[f"{record.throughput.unit}_per_s"] = record.throughput.per_second
    for name, value in _flatten(record.params or {}).items():
        if name not in UNINFORMATIVE_PARAMS:
            row[f"param.{name}"] = value
    for name, value in (record.metrics or {}).items():
        if is_number(value):
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
    numeric = {k: v for k, v in (metrics or {}).items() if is_number(v)}
    preferred = [k for k in HEADLINE_PREFERENCE if k in numeric]
    ordered = preferred + sorted(k for k in numeric if k not in HEADLINE_PREFERENCE)
    return {k: numeric[k] for k in ordered[:MAX_HEADLINE_METRICS]}


def format_runs_table(records: list[RunRecord]) -> str:
    """A plain aligned text table: run id, spec, (stage,) status, wall time, (throughput,) headline metrics.

    The stage column appears when some run belongs to a multi-stage spec (its stage is not its spec's name),
    the throughput column (tokens/s or examples/s, labelled) when some run recorded it. A run made in
    JupyterLab shows "interactive" for its spec.
    """
    columns = _metric_columns(records)
    staged = any(r.stage is not None and r.stage != r.spec for r in records)
    timed = any(r.throughput is not None for r in records)
    header = ["run", "spec", *(["stage"] if staged else []), "status", "wall time", *(["throughput"] if timed else []),
              *columns]
    rows = [
        [r.run_id, r.spec or ("interactive" if r.interactive else "-"), *([r.stage or "-"] if staged else []),
         r.status, format_seconds(r.wall_time_s), *([str(r.throughput or "-")] if timed else [])]
        + [format_number(r.metrics[c]) if r.metrics and is_number(r.metrics.get(c)) else "-" for c in columns]
        for r in records
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    return "\n".join(lines)


def compute_phrase(record: RunRecord) -> str | None:
    """What training cost, in the unit of its kind: "15,360 training tokens in 3.0 s (5120 tokens/s)", or
    "1,728 training examples in 63.3 s (27.3 examples/s)" for fine-tuning (images for vision pretraining);
    None when not recorded."""
    compute, rate = record.compute or {}, record.throughput
    count = compute.get(next((count for unit, count, _ in THROUGHPUT_UNITS.values() if rate and rate.unit == unit),
                             "train_tokens"))
    if rate is None or not is_number(count) or not is_number(compute.get("train_time_s")):
        return None
    return f"{count:,} training {rate.unit} in {compute['train_time_s']:.1f} s ({rate})"


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
            if is_number(value):
                union.setdefault(key, value)
    return list(headline_metrics(union))
