"""The run picker: choose runs from the registry and overlay their curves, smoothed, against steps, tokens or time."""

from __future__ import annotations

from pathlib import Path

import ipywidgets as widgets
import plotly.graph_objects as go

from workbench.probe.compare import overlay_curves
from workbench.probe.curves import X_AXES
from workbench.runs.outputs import read_json
from workbench.runs.registry import list_runs


def run_histories(runs_dir: str | Path) -> dict[str, list[dict]]:
    """run id -> its history.json rows, for every run in the registry that has curves."""
    histories = {}
    for record in list_runs(runs_dir):
        path = Path(record.run_dir) / "history.json"
        if path.is_file():
            rows = read_json(path)
            if rows:
                histories[record.run_id] = rows
    return histories


def logged_metrics(histories: dict[str, list[dict]]) -> list[str]:
    """Every numeric column the histories hold besides the x axes, losses first."""
    names = {key for rows in histories.values() for row in rows for key, value in row.items()
             if key not in X_AXES and isinstance(value, (int, float))}
    return sorted(names, key=lambda name: (not name.endswith("loss"), name))


class RunPicker(widgets.VBox):
    """A multi-select of runs, a metric, a smoothing slider and an x-axis choice over the overlaid curves."""

    def __init__(self, histories: dict[str, list[dict]], *, selected: list[str] | None = None) -> None:
        if not histories:
            raise ValueError("no runs with curves to pick from (is the registry empty?)")
        self.histories = histories
        names = list(histories)
        metrics = logged_metrics(histories)
        self.runs = widgets.SelectMultiple(options=names, value=tuple(selected or names[-3:]), description="runs",
                                           rows=min(8, len(names)), layout=widgets.Layout(width="45%"))
        self.metric = widgets.Dropdown(options=metrics, value="train_loss" if "train_loss" in metrics else metrics[0],
                                       description="metric")
        self.smoothing = widgets.FloatSlider(value=0.0, min=0.0, max=0.99, step=0.01, description="smoothing",
                                             continuous_update=False)
        self.x = widgets.ToggleButtons(options=[("steps", "step"), ("tokens", "tokens"), ("wall time", "time_s")],
                                       value="step", description="x axis")
        self.figure = go.FigureWidget(self.current_figure())
        for control in (self.runs, self.metric, self.smoothing, self.x):
            control.observe(self._redraw, names="value")
        super().__init__([widgets.HBox([self.runs, widgets.VBox([self.metric, self.smoothing, self.x])]), self.figure])

    @classmethod
    def from_registry(cls, runs_dir: str | Path, **options) -> "RunPicker":
        return cls(run_histories(runs_dir), **options)

    def current_figure(self) -> go.Figure:
        chosen = {name: self.histories[name] for name in self.runs.value}
        return overlay_curves(chosen, metric=self.metric.value, x=self.x.value, smoothing=self.smoothing.value)

    def _redraw(self, change=None) -> None:
        new = self.current_figure()
        with self.figure.batch_update():
            self.figure.data = []
            self.figure.add_traces(list(new.data))
            self.figure.layout.title.text = new.layout.title.text
            self.figure.layout.xaxis.title.text = new.layout.xaxis.title.text
            self.figure.layout.yaxis.title.text = new.layout.yaxis.title.text
