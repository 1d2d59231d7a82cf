"""Read a sweep's run folders back and draw what it found.

The headline of a fine-tuning sweep: a metric against the fraction of labels
used, one line per base and strategy, mean and spread over seeds. If
pretraining pays, the pretrained lines sit above scratch, most of all on the
left.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path
from typing import Iterable

import plotly.graph_objects as go

from workbench.runs.run_folder import RunFolder


def base_label(base: str) -> str:
    """A short name for a `base` parameter: scratch, minilm, pretrained, or the folder's name.

    A workbench base names its architecture too ("pretrained encoder", "scratch decoder", "pretrained vit"),
    so a sweep that compares architectures keeps them apart instead of pooling their seeds.
    """
    if base in ("minilm", "scratch"):
        return base
    scratch = base.startswith("scratch:")
    weights, source = ("scratch", base.removeprefix("scratch:")) if scratch else ("pretrained", base)
    folder = RunFolder(source)
    if weights == "pretrained" and not (folder.has_checkpoint or folder.is_checkpoint):
        return Path(base).name
    record = folder.checkpoint_config or folder.own_model_config
    architecture = record.get("architecture") if isinstance(record, dict) else None
    return f"{weights} {architecture}" if isinstance(architecture, str) else weights


def collect_runs(run_dirs: Iterable[str | Path]) -> list[dict]:
    """One row per completed run: its parameters and its metrics (failed runs are left out)."""
    rows = []
    for run in map(RunFolder, run_dirs):
        if run.status != "completed" or run.metrics is None:
            continue
        metrics = {k: v for k, v in run.metrics.items() if isinstance(v, (int, float))}
        rows.append({"run": run.path.name, **(run.params or {}), **metrics})
    return rows


def summarise(
    rows: list[dict], metric: str, by: tuple[str, ...] = ("base", "strategy", "label_fraction")
) -> list[dict]:
    """Mean, standard deviation and count of `metric` for each group of rows (groups of seeds)."""
    groups: dict[tuple, list[float]] = defaultdict(list)
    for row in rows:
        if metric not in row:
            raise KeyError(f"run {row['run']} has no metric {metric!r}; it has: {', '.join(sorted(row))}")
        key = tuple(base_label(row[k]) if k == "base" else row[k] for k in by)
        groups[key].append(row[metric])
    summary = []
    for key, values in sorted(groups.items(), key=lambda item: tuple(map(str, item[0]))):
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        group = dict(zip(by, key, strict=True))
        summary.append({**group, "mean": statistics.fmean(values), "std": spread, "n": len(values)})
    return summary


def label_efficiency_figure(rows: list[dict], metric: str = "test_macro_f1", *, title: str | None = None) -> go.Figure:
    """`metric` against label fraction (log axis), one line per base and strategy, error bars = std over seeds."""
    figure = go.Figure()
    lines: dict[tuple, list[dict]] = defaultdict(list)
    for point in summarise(rows, metric):
        lines[(point["base"], point["strategy"])].append(point)
    for (base, strategy), points in sorted(lines.items()):
        points.sort(key=lambda p: p["label_fraction"])
        figure.add_scatter(
            x=[p["label_fraction"] for p in points],
            y=[p["mean"] for p in points],
            error_y=dict(type="data", array=[p["std"] for p in points], visible=True),
            mode="lines+markers",
            name=f"{base} · {strategy}",
            line=dict(dash="solid" if base.startswith("pretrained") else "dot" if base.startswith("scratch")
                      else "dash"),
            customdata=[[p["n"]] for p in points],
            hovertemplate="label fraction %{x}<br>" + metric
            + " %{y:.4f} ± %{error_y.array:.4f}<br>%{customdata[0]} seed(s)",
        )
    fractions = sorted({row["label_fraction"] for row in rows})
    figure.update_layout(
        title=title or f"{metric} against labelled fraction",
        xaxis=dict(title="fraction of training labels", type="log",
                   tickvals=fractions, ticktext=[f"{f:g}" for f in fractions]),
        yaxis_title=metric, template="plotly_white", height=420,
    )
    return figure
