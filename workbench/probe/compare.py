"""Put several runs side by side: loss curves overlaid, a metric against a parameter.

A sweep answers its question only when its runs are read together; these
figures take the rows a TrainingRecorder keeps (history.json) and the table
`workbench.runs.registry.runs_table` builds, and draw them on shared axes.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Mapping, Sequence

import plotly.graph_objects as go
from plotly.colors import qualitative

from workbench.probe.curves import X_AXES
from workbench.runs.outputs import HISTORY_FILE, OutputError, read_json

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
) -> go.Figure:
    """One line per run (labelled by its key) of `metric` against step, tokens seen or wall time.

    Rows that did not log `metric` are skipped (train and validation rows interleave). With
    `smoothing` > 0 each run's raw curve stays, faint, under its smoothed line, in the same colour.
    """
    if x not in X_AXES:
        raise ValueError(f"x axis {x!r} is not one of: {', '.join(X_AXES)}")
    smooth([], smoothing)  # check the weight before drawing anything
    figure = go.Figure()
    for i, (label, history) in enumerate(histories.items()):
        points = [(row[x], row[metric]) for row in history if row.get(metric) is not None and x in row]
        if not points:
            continue
        xs, ys = [p[0] for p in points], [float(p[1]) for p in points]
        colour = PALETTE[i % len(PALETTE)]
        if smoothing > 0:
            figure.add_scatter(x=xs, y=ys, mode="lines", name=f"{label} (raw)", legendgroup=label,
                               showlegend=False, opacity=0.25, line=dict(color=colour, width=1), hoverinfo="skip")
            ys = smooth(ys, smoothing)
        figure.add_scatter(x=xs, y=ys, mode="lines", name=label, legendgroup=label,
                           line=dict(color=colour, width=2))
    suffix = f" (smoothed {smoothing:g})" if smoothing > 0 else ""
    figure.update_layout(title=f"{metric}{suffix}", xaxis_title=X_AXES[x], yaxis_title=metric,
                         template="plotly_white", height=400, legend_title_text="run")
    return figure


def run_histories(table, label_by: Sequence[str] | None = None) -> dict[str, list[dict]]:
    """history.json of every run in a `runs_table`, keyed by a label for overlay_curves.

    The label is the run's folder name plus the values of `label_by` (bare parameter names or
    `param.*` columns; default: the parameters that differ between the runs), e.g.
    `compare-quick-001 (learning_rate=0.01)`. Runs without a readable history.json are left out.
    """
    from workbench.runs.registry import varied_parameters

    columns = [_column(table, name, "param.") for name in label_by] if label_by is not None else varied_parameters(table)
    histories = {}
    for _, row in table.iterrows():
        try:
            history = read_json(Path(row["path"]) / HISTORY_FILE)
        except OutputError:
            continue
        if not isinstance(history, list):
            continue
        values = ", ".join(f"{c.removeprefix('param.')}={row[c]}" for c in columns)
        label = str(row["id"]).rsplit("/", 1)[-1] + (f" ({values})" if values else "")
        histories[label] = history
    return histories


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
    for x_value, y_value in zip(xs, ys):
        by_value.setdefault(x_value, []).append(y_value)
    order = sorted(by_value, key=lambda v: (0, v, "") if _is_number(v) else (1, 0, str(v)))
    return [(v, statistics.fmean(by_value[v])) for v in order]


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
