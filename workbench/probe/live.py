"""Live loss curves: a Lightning callback that redraws a plotly FigureWidget in place while training runs.

Reading a logged metric syncs with the device, so the callback reads them at
most `max_redraws_per_s` times a second (not every step) and redraws the figure
at the same moments; it also waits long enough after each redraw that the time
spent in it stays under `max_overhead` of the time in between (slow redraws,
under load or with many points, are spaced further apart). In JupyterLab the figure is a FigureWidget updated in
place; at the end of fit its display is replaced by a static plotly figure, so
a notebook executed headless by papermill keeps the curves, and an HTML copy
(plotly.js inlined, works offline) can be written into the run folder.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import plotly.graph_objects as go
import torch
from lightning.pytorch.trainer.states import TrainerFn
from plotly.subplots import make_subplots

PLOTLY_MIMETYPE = "application/vnd.plotly.v1+json"


def _scalar(value: Any) -> float | None:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            return None
        value = value.item()
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def is_loss(metric: str) -> bool:
    return metric.endswith("loss")


def live_figure(points: dict[str, tuple[list[float], list[float]]], *, title: str = "training") -> go.Figure:
    """Losses on top (nats/token), every other logged metric below on a log axis; one line per metric."""
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35], vertical_spacing=0.08)
    for metric, (xs, ys) in points.items():
        validation = metric.startswith("val_")
        figure.add_scatter(x=list(xs), y=list(ys), name=metric, mode="lines+markers" if validation else "lines",
                           row=1 if is_loss(metric) else 2, col=1)
    figure.update_layout(title=title, template="plotly_white", height=480, uirevision="live")
    figure.update_yaxes(title_text="loss (nats/token)", row=1, col=1)
    figure.update_yaxes(title_text="other metrics", type="log", row=2, col=1)
    figure.update_xaxes(title_text="step", row=2, col=1)
    return figure


class LiveCurves(L.Callback):
    """Draws every scalar the LightningModule logs (train and validation) against the step, as it trains.

    `figure` is the FigureWidget (None outside a notebook kernel unless `widget=True`);
    `points` holds what was drawn, metric -> (steps, values); `hook_seconds` is the time
    spent inside this callback's hooks, to measure its overhead.
    """

    def __init__(
        self,
        *,
        max_redraws_per_s: float = 4.0,
        max_overhead: float = 0.01,
        html_path: str | os.PathLike | None = None,
        title: str = "training",
        display: bool | None = None,
        widget: bool | None = None,
        clock=time.monotonic,
    ) -> None:
        if not max_redraws_per_s > 0:
            raise ValueError(f"max_redraws_per_s must be > 0, got {max_redraws_per_s!r}")
        if not 0 < max_overhead <= 1:
            raise ValueError(f"max_overhead must be in (0, 1] (a fraction of training time), got {max_overhead!r}")
        self.min_interval = 1.0 / max_redraws_per_s
        self.max_overhead = max_overhead
        self._interval = self.min_interval
        self.html_path = Path(html_path) if html_path else None
        self.title = title
        in_kernel = _in_notebook_kernel()
        self.display = in_kernel if display is None else display
        self.use_widget = in_kernel if widget is None else widget
        self.clock = clock
        self.points: dict[str, tuple[list[float], list[float]]] = {}
        self.figure: go.FigureWidget | None = None
        self.redraws = 0
        self.reads = 0
        self.hook_seconds = 0.0
        self._last_read = -math.inf
        self._handle = None
        self._dirty = False

    # -- what was logged ------------------------------------------------------------------------------------

    def _read(self, trainer: L.Trainer, prefix: str | None) -> None:
        """Append the current value of every scalar logged metric (only validation ones when prefix="val_")."""
        self.reads += 1
        step = trainer.global_step
        for key, value in trainer.callback_metrics.items():
            if prefix and not key.startswith(prefix):
                continue
            if not prefix and key.startswith("val_"):
                continue  # validation values change only at validation; read them there
            number = _scalar(value)
            if number is None:
                continue
            xs, ys = self.points.setdefault(key, ([], []))
            if xs and xs[-1] == step:
                ys[-1] = number
            else:
                xs.append(step)
                ys.append(number)
        self._dirty = True

    def static_figure(self) -> go.Figure:
        return live_figure(self.points, title=self.title)

    def _redraw(self) -> None:
        if self.figure is None or not self._dirty:
            return
        self.redraws += 1
        self._dirty = False
        names = [trace.name for trace in self.figure.data]
        with self.figure.batch_update():
            for metric, (xs, ys) in self.points.items():
                if metric in names:
                    trace = self.figure.data[names.index(metric)]
                    # Arrays, not lists: plotly validates a list element by element (~10 ms for 1000 points).
                    trace.x, trace.y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
                else:
                    validation = metric.startswith("val_")
                    self.figure.add_scatter(x=list(xs), y=list(ys), name=metric,
                                            mode="lines+markers" if validation else "lines",
                                            row=1 if is_loss(metric) else 2, col=1)

    # -- hooks ----------------------------------------------------------------------------------------------

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        started = time.perf_counter()
        if self.use_widget:
            self.figure = go.FigureWidget(self.static_figure())
        if self.display:
            # Raw bundles: a plotly object's own display hook would ignore the display id, and the
            # end-of-fit update would add a second output instead of replacing this one.
            from IPython.display import display

            shown = self.figure if self.figure is not None else None
            bundle = shown._repr_mimebundle_() if shown is not None else static_bundle(self.static_figure())
            self._handle = display(bundle, raw=True, display_id=True)
        self.hook_seconds += time.perf_counter() - started

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        started = time.perf_counter()
        now = self.clock()
        if now - self._last_read >= self._interval or trainer.global_step == trainer.max_steps:
            self._last_read = now
            self._read(trainer, prefix=None)
            self._redraw()
            cost = time.perf_counter() - started
            self._interval = max(self.min_interval, cost / self.max_overhead)
        self.hook_seconds += time.perf_counter() - started

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        started = time.perf_counter()
        self._read(trainer, prefix="val_")
        self._redraw()
        self.hook_seconds += time.perf_counter() - started

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Take the last values, then leave a static figure behind (papermill keeps it) and the HTML copy."""
        started = time.perf_counter()
        self._read(trainer, prefix=None)
        self._redraw()
        figure = self.static_figure()
        if self._handle is not None:
            self._handle.update(static_bundle(figure), raw=True)
        if self.html_path is not None:
            self.write_html(self.html_path, figure)
        self.hook_seconds += time.perf_counter() - started

    def write_html(self, path: str | os.PathLike, figure: go.Figure | None = None) -> Path:
        """A self-contained page (plotly.js inlined) that opens offline; written atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        (figure or self.static_figure()).write_html(temporary, include_plotlyjs=True, full_html=True)
        os.replace(temporary, path)
        return path


def static_bundle(figure: go.Figure) -> dict:
    """A plotly figure as the mime bundle JupyterLab's plotly renderer draws without a kernel."""
    data = json.loads(figure.to_json())
    data.setdefault("config", {})
    return {PLOTLY_MIMETYPE: data, "text/plain": f"<plotly figure: {figure.layout.title.text}>"}


def _in_notebook_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None
