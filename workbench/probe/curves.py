"""Loss curves as plotly figures, from the rows a TrainingRecorder keeps."""

from __future__ import annotations

from typing import Iterable

import plotly.graph_objects as go

X_AXES = {"step": "step", "tokens": "tokens seen", "time_s": "wall time (s)"}


def curve(history: Iterable[dict], metric: str, x: str = "step") -> tuple[list[float], list[float]]:
    """The (x, y) points of one metric; rows that did not log it are skipped."""
    if x not in X_AXES:
        raise ValueError(f"x axis {x!r} is not one of: {', '.join(X_AXES)}")
    points = [(row[x], row[metric]) for row in history if row.get(metric) is not None]
    return [p[0] for p in points], [p[1] for p in points]


def loss_curve_figure(history: list[dict], *, x: str = "step", title: str = "loss") -> go.Figure:
    """Train and validation loss against steps, tokens or wall time."""
    figure = go.Figure()
    for metric, style in (("train_loss", dict(width=1)), ("val_loss", dict(width=2))):
        xs, ys = curve(history, metric, x)
        if xs:
            figure.add_scatter(x=xs, y=ys, mode="lines+markers" if metric == "val_loss" else "lines",
                               name=metric, line=style)
    figure.update_layout(title=title, xaxis_title=X_AXES[x], yaxis_title="cross-entropy (nats/token)",
                         template="plotly_white", height=380)
    return figure
