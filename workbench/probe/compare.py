"""Put several runs side by side: loss curves overlaid, a metric against a parameter.

A sweep answers its question only when its runs are read together; these
figures take the rows a TrainingRecorder keeps (history.json) and the table
`workbench.runs.registry.runs_table` builds, and draw them on shared axes.
"""

from __future__ import annotations

import math
import os
import statistics
from pathlib import Path
from typing import Mapping, Sequence

import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from workbench.probe.curves import X_AXES, check_x, loss_unit, panel_of

PALETTE = qualitative.Plotly


def smooth(values: Sequence[float], weight: float) -> list[float]:
    """TensorBoard's smoothing: an exponential moving average, debiased so early points are not pulled to 0.

    `weight` in [0, 1): 0 returns the values unchanged, 0.9 averages over roughly the last ten points.
    A NaN or infinite value is passed through and does not enter the average.
    """
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight < 1:
        raise ValueError(f"smoothing weight must be a number in [0, 1) (0 = none, 0.9 = heavy), got {weight!r}")
    smoothed, last, count = [], 0.0, 0
    for value in values:
        value = float(value)
        if not math.isfinite(value):
            smoothed.append(value)
            continue
        last = last * weight + (1 - weight) * value
        count += 1
        smoothed.append(last / (1 - weight**count))
    return smoothed


def overlay_curves(
    histories: Mapping[str, list[dict]],
    *,
    metric: str = "train_loss",
    x: str = "step",
    smoothing: float = 0.0,
    kinds: Mapping[str, str | None] | None = None,
) -> go.Figure:
    """One line per run (labelled by its key) of `metric` against step, tokens seen or wall time.

    Rows that did not log `metric` are skipped (train and validation rows interleave). With
    `smoothing` > 0 each run's raw curve stays, faint, under its smoothed line, in the same colour.
    A loss means something else per task (nats per token of a language model, per example of a
    classifier), so runs whose losses differ in unit are drawn in panels of their own, never on one
    axis. A run's unit comes from `kinds` (label -> task kind, None for pretraining) or else from its
    history (a perplexity or bits per byte marks a language model).
    """
    check_x(x)
    smooth([], smoothing)  # check the weight before drawing anything
    drawn = {}
    for i, (label, history) in enumerate(histories.items()):
        points = [(row[x], row[metric]) for row in history if row.get(metric) is not None and x in row]
        if points:
            drawn[label] = (i, points)
    units = {label: _unit(metric, histories[label], label, kinds) for label in drawn}
    panels = list(dict.fromkeys(units.values())) or [None]
    figure = make_subplots(rows=len(panels), cols=1, shared_xaxes=True, vertical_spacing=0.12 / len(panels))
    for label, (i, points) in drawn.items():
        row = panels.index(units[label]) + 1
        xs, ys = [p[0] for p in points], [float(p[1]) for p in points]
        colour = PALETTE[i % len(PALETTE)]
        if smoothing > 0:
            figure.add_scatter(x=xs, y=ys, mode="lines", name=f"{label} (raw)", legendgroup=label,
                               showlegend=False, opacity=0.25, line=dict(color=colour, width=1), hoverinfo="skip",
                               row=row, col=1)
            ys = smooth(ys, smoothing)
        figure.add_scatter(x=xs, y=ys, mode="lines", name=label, legendgroup=label,
                           line=dict(color=colour, width=2), row=row, col=1)
    for row, unit in enumerate(panels, start=1):
        figure.update_yaxes(title_text=f"{metric} ({unit})" if unit else metric, row=row, col=1)
    figure.update_xaxes(title_text=X_AXES[x], row=len(panels), col=1)
    suffix = f" (smoothed {smoothing:g})" if smoothing > 0 else ""
    figure.update_layout(title=f"{metric}{suffix}", template="plotly_white", height=400 + 260 * (len(panels) - 1),
                         legend_title_text="run")
    return figure


def _unit(metric: str, history: list[dict], label: str, kinds: Mapping[str, str | None] | None) -> str | None:
    """The unit a run's `metric` is in, where it depends on the run's task (a loss); None where it does not
    or is not known."""
    if panel_of(metric) != "loss":
        return None
    if kinds is not None and label in kinds:
        return loss_unit(kinds[label])
    if any(row.get("val_ppl") is not None or row.get("val_bpb") is not None for row in history):
        return loss_unit("causal_lm")
    return None


def run_histories(runs, label_by: Sequence[str] | None = None) -> dict[str, list[dict]]:
    """history.json of each run, keyed by a label, for overlay_curves and the run picker.

    `runs` is a `runs_table` DataFrame or anything `runs_table` takes (a runs directory, a sweep's
    folder, run folders); a runs directory that does not exist yet holds no runs. The label is the
    run's folder name (its whole id where two runs share a folder name) plus the values of `label_by`
    (bare parameter names or `param.*` columns; default: the parameters that differ between the runs),
    e.g. `compare-quick-001 (learning_rate=0.01)`. Runs without a readable, non-empty history.json are
    left out.
    """
    return {label: run.history for label, run in _labelled_runs(runs, label_by) if run.history}


def run_task_kinds(runs, label_by: Sequence[str] | None = None) -> dict[str, str | None]:
    """The task kind each run's loss belongs to, keyed as run_histories keys it: a fine-tuning task's kind,
    None for pretraining on a corpus; runs that record neither are left out. overlay_curves keeps losses of
    different kinds apart."""
    from workbench.runs.run_folder import FINETUNING, PRETRAINING

    kinds = {}
    for label, run in _labelled_runs(runs, label_by):
        if run.kind == FINETUNING and run.task_kind:
            kinds[label] = run.task_kind
        elif run.kind == PRETRAINING:
            kinds[label] = None
    return kinds


def _labelled_runs(runs, label_by: Sequence[str] | None):
    """(label, RunFolder) for each run of `runs` (see run_histories)."""
    import pandas as pd

    from workbench.runs.registry import is_missing, runs_table, varied_parameters
    from workbench.runs.run_folder import RunFolder

    if not isinstance(runs, pd.DataFrame):
        if isinstance(runs, (str, os.PathLike)) and not Path(runs).is_dir():
            return []
        runs = runs_table(runs)
    columns = [_column(runs, name, "param.") for name in label_by] if label_by is not None else varied_parameters(runs)
    names = [str(run_id).rsplit("/", 1)[-1] for run_id in runs["id"]]
    labelled = []
    for (_, row), name in zip(runs.iterrows(), names, strict=True):
        values = ", ".join(f"{c.removeprefix('param.')}={row[c]}" for c in columns if not is_missing(row[c]))
        label = (name if names.count(name) == 1 else str(row["id"])) + (f" ({values})" if values else "")
        labelled.append((label, RunFolder(row["path"])))
    return labelled


def metric_vs_parameter_figure(table, metric: str, parameter: str, color: str | None = None) -> go.Figure:
    """`metric` against `parameter`, one marker per run and a line through the mean at each value.

    `table` is a `runs_table` DataFrame (or anything `pandas.DataFrame` accepts). Names may be given
    bare (`val_loss`, `learning_rate`) or as columns (`metric.val_loss`, `param.learning_rate`).
    `color` (a parameter) splits the runs into one line each, e.g. one per strategy. Runs without
    the metric (failed, still running) are left out. The x axis is logarithmic when the values are
    positive numbers spanning a factor of 20 or more, as learning rates and label fractions do.
    """
    import pandas as pd

    table = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)
    y_col = _column(table, metric, "metric.")
    x_col = _column(table, parameter, "param.")
    group_col = _column(table, color, "param.") if color is not None else None
    rows = table[table[y_col].notna()]
    groups = [(None, rows)] if group_col is None else list(rows.groupby(group_col, dropna=False, sort=True))
    figure = go.Figure()
    for i, (key, group) in enumerate(groups):
        colour = PALETTE[i % len(PALETTE)]
        name = str(key) if group_col else metric
        xs, ys = group[x_col].tolist(), group[y_col].astype(float).tolist()
        ids = group["id"].tolist() if "id" in group else [""] * len(xs)
        means = _means_by_value(xs, ys)
        figure.add_scatter(x=xs, y=ys, mode="markers", name=name, legendgroup=name, showlegend=False,
                           marker=dict(color=colour, size=8, opacity=0.6), text=ids,
                           hovertemplate=f"%{{text}}<br>{parameter} %{{x}}<br>{metric} %{{y:.4g}}<extra></extra>")
        figure.add_scatter(x=[m[0] for m in means], y=[m[1] for m in means], mode="lines", name=name,
                           legendgroup=name, line=dict(color=colour, width=2), hoverinfo="skip")
    values = [v for v in rows[x_col].tolist() if _is_number(v)]
    log_x = len(values) == len(rows) > 1 and min(values) > 0 and max(values) / min(values) >= 20
    figure.update_layout(title=f"{metric} against {parameter}", xaxis_title=parameter, yaxis_title=metric,
                         xaxis_type="log" if log_x else None, template="plotly_white", height=400,
                         legend_title_text=color or "", showlegend=group_col is not None)
    return figure


def _column(table, name: str, prefix: str) -> str:
    """The table column for a bare or prefixed name; a clear error listing what the table has."""
    for candidate in (name, prefix + name):
        if candidate in table.columns:
            return candidate
    choices = sorted(c.removeprefix(prefix) for c in table.columns if c.startswith(prefix))
    kind = "metric" if prefix == "metric." else "parameter"
    raise KeyError(f"no {kind} {name!r} in the runs table; {kind}s: {', '.join(choices) or '(none)'}")


def _means_by_value(xs: list, ys: list[float]) -> list[tuple[object, float]]:
    """Mean of y at each distinct x (over seeds), in x order (numbers numerically, others as text)."""
    by_value: dict[object, list[float]] = {}
    for x_value, y_value in zip(xs, ys, strict=False):
        by_value.setdefault(x_value, []).append(y_value)
    order = sorted(by_value, key=lambda v: (0, v, "") if _is_number(v) else (1, 0, str(v)))
    return [(v, statistics.fmean(by_value[v])) for v in order]


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
