"""Live loss curves: a Lightning callback that redraws a plotly FigureWidget in place while training runs.

Reading a logged metric syncs with the device, so the callback reads them at
most `max_redraws_per_s` times a second (not every step) and redraws the figure
at the same moments; it also waits long enough after each redraw that the time
spent in it stays under `max_overhead` of the time in between (slow redraws,
under load or with many points, are spaced further apart). In JupyterLab the figure is a FigureWidget updated in
place; at the end of fit its display is replaced by a static plotly figure drawn from the training
recorder's whole history (not the throttled sample drawn live), so a notebook executed headless by
papermill keeps the curves, and an HTML copy (plotly.js inlined, works offline) can be written into the
run folder. `add_final(metrics)` then marks the final evaluation (metrics.json) on the same figure.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Mapping

import lightning as L
import numpy as np
import plotly.graph_objects as go
import torch
from lightning.pytorch.trainer.states import TrainerFn

from workbench.errors import RequestError
from workbench.probe.curves import history_series, loss_unit, training_figure
from workbench.probe.figure_widget import FigureWidget

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


class LiveCurves(L.Callback):
    """Draws every scalar the LightningModule logs (train and validation) and the learning rate against the
    step, as it trains, one panel per unit (`workbench.probe.curves.training_figure`).

    `figure` is the FigureWidget (None outside a notebook kernel unless `widget=True`);
    `points` holds what was drawn live, metric -> (steps, values); `history` the recorder's rows, taken
    at the end of fit; `hook_seconds` is the time spent inside this callback's hooks, to measure its overhead.
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
            raise RequestError(f"max_redraws_per_s must be > 0, got {max_redraws_per_s!r}")
        if not 0 < max_overhead <= 1:
            raise RequestError(f"max_overhead must be in (0, 1] (a fraction of training time), got {max_overhead!r}")
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
        self.history: list[dict] | None = None
        self.final: dict[str, Any] | None = None
        self.unit = loss_unit(None)
        self.periodic = "a few validation batches"
        self.figure: FigureWidget | None = None
        self._drawn: tuple[str, ...] = ()
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
        # The step's scalars (train_loss, grad_norm) are the module's `step_metrics`, not logged through Lightning.
        logged = {**trainer.callback_metrics, **getattr(trainer.lightning_module, "step_metrics", {})}
        for key, value in logged.items():
            if prefix and not key.startswith(prefix):
                continue
            if not prefix and key.startswith("val_"):
                continue  # validation values change only at validation; read them there
            self._add(key, step, _scalar(value))
        if not prefix and trainer.optimizers:
            self._add("lr", step, _scalar(trainer.optimizers[0].param_groups[0]["lr"]))
        self._dirty = True

    def _add(self, metric: str, step: int, number: float | None) -> None:
        if number is None:
            return
        xs, ys = self.points.setdefault(metric, ([], []))
        if xs and xs[-1] == step:
            ys[-1] = number
        else:
            xs.append(step)
            ys.append(number)

    def series(self) -> dict[str, tuple[list[float], list[float]]]:
        """What the figure draws: the recorder's whole history once fit has ended (a point per recorded step),
        with the live points of any metric it does not record; the live points before that."""
        if self.history is None:
            return self.points
        series = history_series(self.history)
        for metric, points in self.points.items():
            series.setdefault(metric, points)
        return series

    def static_figure(self) -> go.Figure:
        return training_figure(self.series(), final=self.final, unit=self.unit, title=self.title,
                               periodic=self.periodic)

    def _redraw(self) -> None:
        if self.figure is None or not self._dirty:
            return
        self.redraws += 1
        self._dirty = False
        if tuple(self.points) != self._drawn:  # a new metric may need a new panel: lay the figure out again
            self._drawn = tuple(self.points)
            fresh = training_figure(self.points, unit=self.unit, title=self.title, periodic=self.periodic)
            with self.figure.batch_update():
                self.figure.data = []
                self.figure.layout = fresh.layout
                self.figure.add_traces(list(fresh.data))
            return
        with self.figure.batch_update():
            for trace, (xs, ys) in zip(self.figure.data, self.points.values(), strict=False):
                # Arrays, not lists: plotly validates a list element by element (~10 ms for 1000 points).
                trace.x, trace.y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)

    # -- hooks ----------------------------------------------------------------------------------------------

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        started = time.perf_counter()
        self.unit = loss_unit(getattr(pl_module, "task_kind", None))  # a fine-tuning module knows its task
        self.periodic = _periodic_batches(trainer.limit_val_batches)
        if self.use_widget:
            self.figure = FigureWidget(self.static_figure())
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
        """Take the last values and the recorder's whole history, then leave a static figure behind
        (papermill keeps it) and the HTML copy."""
        started = time.perf_counter()
        self._read(trainer, prefix=None)
        self._redraw()
        self.history = _recorded_history(trainer)
        self._leave(self.static_figure())
        self.hook_seconds += time.perf_counter() - started

    def add_final(self, metrics: Mapping[str, Any]) -> None:
        """Mark the final evaluation (the outcome's metrics, as saved in metrics.json) on the figure left
        after training and in the HTML copy: its val_/test_ values as stars, named "(final)"."""
        self.final = dict(metrics)
        self._leave(self.static_figure())

    def _leave(self, figure: go.Figure) -> None:
        if self._handle is not None:
            self._handle.update(static_bundle(figure), raw=True)
        if self.html_path is not None:
            self.write_html(self.html_path, figure)

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


def _recorded_history(trainer: L.Trainer) -> list[dict] | None:
    """The rows of the training recorder among the trainer's callbacks (any callback keeping a `history`
    list, as `workbench.modules.recorder.TrainingRecorder` does); None without one."""
    for callback in trainer.callbacks:
        history = getattr(callback, "history", None)
        if not isinstance(callback, LiveCurves) and isinstance(history, list):
            return list(history)
    return None


def _periodic_batches(limit: int | float) -> str:
    """What a periodic evaluation covers, from the trainer's limit_val_batches."""
    if isinstance(limit, int):
        return f"{limit} validation batch{'es' if limit != 1 else ''}"
    return "the whole validation split" if limit >= 1.0 else f"{limit:.0%} of the validation split"


def _in_notebook_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None
