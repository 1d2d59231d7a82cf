"""Training curves as plotly figures, one panel per unit, from the rows a TrainingRecorder keeps.

A loss in nats, bits per byte, a perplexity, an accuracy and a gradient norm do not share an axis: each
unit gets its own panel (bounded scores on a linear 0..1 axis), and the loss panel says what its loss
averages over (a token, an example). Evaluations during training (a few batches, to watch progress) and
the final evaluation (the one in metrics.json) are drawn and named apart, so their different values
explain themselves.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.errors import RequestError

X_AXES = {"step": "step", "tokens": "tokens seen", "time_s": "wall time (s)"}
COUNTERS = ("examples", "epoch")  # history columns that count progress, like the x axes: not curves to draw

# What one unit of each task kind's loss averages over.
LOSS_UNITS = {
    "causal_lm": "nats/token",
    "sequence_classification": "nats/example",
    "token_classification": "nats/labelled token",
    "regression": "squared error",
}
SCORE_SUFFIXES = ("accuracy", "f1", "precision", "recall")
# Panel key -> axis title; the order they are stacked in.
PANELS = {
    "loss": "loss",
    "bpb": "bits per byte",
    "perplexity": "perplexity",
    "score": "score (0 to 1)",
    "r2": "R²",
    "mse": "squared error",
    "grad_norm": "gradient norm",
    "lr": "learning rate",
    "other": "other",
}

Series = Mapping[str, tuple[list[float], list[float]]]


def loss_unit(task_kind: str | None) -> str:
    """The unit of a task kind's loss; None (a pretraining run) is a causal LM."""
    kind = task_kind or "causal_lm"
    if kind not in LOSS_UNITS:
        raise RequestError(f"no loss unit for task kind {kind!r}; kinds: {', '.join(LOSS_UNITS)}")
    return LOSS_UNITS[kind]


def outcome_loss_unit(outcome) -> str:
    """A fine-tuning outcome's loss unit comes from its task; a pretraining outcome has none and is a causal LM."""
    task = getattr(outcome, "task", None)
    return loss_unit(getattr(task, "kind", None))


def panel_of(metric: str, unit: str = "nats/token") -> str:
    """The panel a metric is drawn in (a key of PANELS)."""
    name = metric.split("_", 1)[1] if metric.startswith(("train_", "val_", "test_")) else metric
    if name.endswith("loss"):
        return "loss"
    if name.endswith("bpb"):
        return "bpb"
    if name in ("ppl", "perplexity"):
        return "perplexity"
    if name.endswith(SCORE_SUFFIXES):
        return "score"
    if name == "r2":
        return "r2"
    if name == "mse":
        return "loss" if unit == LOSS_UNITS["regression"] else "mse"
    if name in ("grad_norm", "lr"):
        return name
    return "other"


def curve(history: Iterable[dict], metric: str, x: str = "step") -> tuple[list[float], list[float]]:
    """The (x, y) points of one metric; rows that did not log it are skipped."""
    check_x(x)
    points = [(row[x], row[metric]) for row in history if row.get(metric) is not None and x in row]
    return [p[0] for p in points], [p[1] for p in points]


def history_series(history: Iterable[dict], x: str = "step") -> dict[str, tuple[list[float], list[float]]]:
    """Every numeric column of the rows (besides the x axes and counters) as (x, y) points, in the order first
    logged."""
    check_x(x)
    rows = list(history)
    names: dict[str, None] = {}
    for row in rows:
        for key, value in row.items():
            if key not in X_AXES and key not in COUNTERS and _is_number(value):
                names.setdefault(key)
    return {name: curve(rows, name, x) for name in names}


def check_x(x: str) -> None:
    if x not in X_AXES:
        raise RequestError(f"x axis {x!r} is not one of: {', '.join(X_AXES)}")


def training_figure(
    series: Series,
    *,
    final: Mapping[str, object] | None = None,
    unit: str = "nats/token",
    x: str = "step",
    title: str = "training",
    periodic: str = "a few validation batches",
) -> go.Figure:
    """Every metric of `series` (metric -> (xs, ys)) in the panel of its unit, stacked over a shared x axis.

    Train metrics are lines; periodic validation values (over `periodic`, said under the title) are lines
    with markers, named "(periodic)"; the val_/test_ scalars of `final` (a metrics.json) are stars at the
    last x, named "(final)". Each trace's `meta` holds the metric it draws.
    """
    check_x(x)
    finals = _final_points(final or {}, series, unit)
    used = {panel_of(metric, unit) for metric in series} | {panel_of(metric, unit) for metric in finals}
    panels = [key for key in PANELS if key in used] or ["loss"]
    rows = {key: i + 1 for i, key in enumerate(panels)}
    weights = [2.0 if key == "loss" else 1.0 for key in panels]
    figure = make_subplots(rows=len(panels), cols=1, shared_xaxes=True, vertical_spacing=0.1 / len(panels),
                           row_heights=[w / sum(weights) for w in weights])
    for metric, (xs, ys) in series.items():
        evaluated = metric.startswith(("val_", "test_"))
        figure.add_scatter(x=list(xs), y=list(ys), name=f"{metric} (periodic)" if evaluated else metric,
                           mode="lines+markers" if evaluated else "lines", meta={"metric": metric},
                           row=rows[panel_of(metric, unit)], col=1)
    last_x = max((xs[-1] for xs, _ in series.values() if len(xs)), default=0)
    for metric, value in finals.items():
        figure.add_scatter(x=[last_x], y=[value], name=f"{metric} (final)", mode="markers",
                           marker=dict(symbol="star", size=13, line=dict(width=1, color="black")),
                           meta={"metric": metric, "final": True},
                           hovertemplate=f"{metric} %{{y:.4f}}<br>final evaluation (metrics.json)<extra></extra>",
                           row=rows[panel_of(metric, unit)], col=1)
    for key, row in rows.items():
        axis_title = f"loss ({unit})" if key == "loss" else PANELS[key]
        figure.update_yaxes(title_text=axis_title, row=row, col=1, exponentformat="e" if key == "lr" else None)
        if key == "score":
            figure.update_yaxes(range=[0, 1.02], row=row, col=1)
    figure.update_xaxes(title_text=X_AXES[x], row=len(panels), col=1)
    note = _note(series, finals, periodic)
    figure.update_layout(title=dict(text=title, subtitle=dict(text=note) if note else None), template="plotly_white",
                         height=260 + 200 * len(panels), uirevision="training", legend=dict(groupclick="toggleitem"))
    return figure


def loss_curve_figure(
    history: list[dict],
    *,
    x: str = "step",
    title: str = "loss",
    final: Mapping[str, object] | None = None,
    unit: str = "nats/token",
) -> go.Figure:
    """Train and validation loss against steps, tokens or wall time, with the final evaluation's loss if given."""
    series = {metric: curve(history, metric, x) for metric in ("train_loss", "val_loss")}
    series = {metric: points for metric, points in series.items() if points[0]}
    losses_only = {k: v for k, v in (final or {}).items() if panel_of(k, unit) == "loss"}
    return training_figure(series, final=losses_only, unit=unit, x=x, title=title)


def outcome_figure(outcome, *, x: str = "step", title: str = "training") -> go.Figure:
    """A pretraining or fine-tuning outcome's whole history, every metric in its panel, and its final evaluation."""
    return training_figure(history_series(outcome.history, x), final=outcome.metrics,
                           unit=outcome_loss_unit(outcome), x=x, title=title)


def _note(series: Series, finals: Mapping[str, float], periodic: str) -> str:
    """Says which evaluation is which: the periodic ones cover fewer batches than the final one."""
    parts = []
    if any(metric.startswith(("val_", "test_")) for metric in series):
        parts.append(f"periodic: {periodic} at each evaluation during training")
    if finals:
        parts.append("final (★): the evaluation after training, as in metrics.json")
    return " · ".join(parts)


def _final_points(final: Mapping[str, object], series: Series, unit: str) -> dict[str, float]:
    """The evaluation scalars of a metrics.json that have a panel; counts, sizes and yardsticks are left out."""
    return {key: float(value) for key, value in final.items()
            if key.startswith(("val_", "test_")) and _is_number(value) and panel_of(key, unit) != "other"}


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
