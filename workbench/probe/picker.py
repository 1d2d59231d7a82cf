"""The run picker: choose runs from the registry and overlay their curves, smoothed, against steps, tokens or time."""

from __future__ import annotations

from pathlib import Path

import ipywidgets as widgets
import plotly.graph_objects as go

from workbench.probe.compare import overlay_curves, run_histories, run_task_kinds
from workbench.probe.curves import X_AXES
from workbench.probe.figure_widget import FigureWidget


def logged_metrics(histories: dict[str, list[dict]]) -> list[str]:
    """Every numeric column the histories hold besides the x axes, losses first."""
    names = {key for rows in histories.values() for row in rows for key, value in row.items()
             if key not in X_AXES and isinstance(value, (int, float))}
    return sorted(names, key=lambda name: (not name.endswith("loss"), name))


LABELS = {"description_width": "initial"}  # labels at their full width, not cut to "temperat…"


class RunPicker(widgets.VBox):
    """A multi-select of runs, a metric, a smoothing slider and an x-axis choice over the overlaid curves.

    `kinds` (run -> task kind, None for pretraining) keeps losses of different units in separate panels."""

    def __init__(self, histories: dict[str, list[dict]], *, selected: list[str] | None = None,
                 kinds: dict[str, str | None] | None = None) -> None:
        if not histories:
            raise ValueError("no runs with curves to pick from (is the registry empty?)")
        self.histories = histories
        self.kinds = kinds
        names = list(histories)
        metrics = logged_metrics(histories)
        self.runs = widgets.SelectMultiple(options=names, value=tuple(selected or names[-3:]), description="runs",
                                           rows=min(8, len(names)), layout=widgets.Layout(width="45%"), style=LABELS)
        self.metric = widgets.Dropdown(options=metrics, value="train_loss" if "train_loss" in metrics else metrics[0],
                                       description="metric", style=LABELS)
        self.smoothing = widgets.FloatSlider(value=0.0, min=0.0, max=0.99, step=0.01, description="smoothing",
                                             continuous_update=False, style=LABELS)
        self.x = widgets.ToggleButtons(options=[("steps", "step"), ("tokens", "tokens"), ("wall time", "time_s")],
                                       value="step", description="x axis", style=LABELS)
        self.figure = FigureWidget(self.current_figure())
        for control in (self.runs, self.metric, self.smoothing, self.x):
            control.observe(self._redraw, names="value")
        super().__init__([widgets.HBox([self.runs, widgets.VBox([self.metric, self.smoothing, self.x])]), self.figure])

    @classmethod
    def from_registry(cls, runs_dir: str | Path, **options) -> "RunPicker":
        options.setdefault("kinds", run_task_kinds(runs_dir))
        return cls(run_histories(runs_dir), **options)

    def current_figure(self) -> go.Figure:
        chosen = {name: self.histories[name] for name in self.runs.value}
        return overlay_curves(chosen, metric=self.metric.value, x=self.x.value, smoothing=self.smoothing.value,
                              kinds=self.kinds)

    def _redraw(self, change=None) -> None:
        new = self.current_figure()  # the panels may change with the runs chosen: the whole layout is replaced
        with self.figure.batch_update():
            self.figure.data = []
            self.figure.layout = new.layout
            self.figure.add_traces(list(new.data))
