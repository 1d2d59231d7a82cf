"""Part d's curves in one figure: validation loss against wall time, nanoGPT's beside the workbench's.

Saved next to the results as `<stem>-curves.plotly.json`: a few kilobytes (an HTML page with
plotly.js inlined is 4.8 MB a run), it opens as a figure in JupyterLab, the workbench's home, and
`plotly.io.read_json(path).show()` shows it anywhere. The
dotted lines mark the two targets: 1.88 (issue 6, time to quality) and the loss the best recipe
must reach within the wall time of nanoGPT's whole 2000-step run (issue 15).
"""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go

from benchmarks.quality import BUDGET_TARGET, TARGET_LOSS

RUNS = (("nanogpt", "nanoGPT reference"), ("recipe", "workbench, nanoGPT's recipe"), ("best", "workbench, best recipe"))


def curves_figure(results: dict) -> go.Figure:
    figure = go.Figure()
    for key, name in RUNS:
        if key in results:
            curve = results[key]["curve"]
            figure.add_scatter(x=[t for _, t, _ in curve], y=[v for *_, v in curve], mode="lines+markers",
                               name=name, customdata=[s for s, *_ in curve],
                               hovertemplate="step %{customdata}, %{x:.1f} s: %{y:.4f}")
    for loss, label in ((TARGET_LOSS, f"{TARGET_LOSS} (issue 6)"), (BUDGET_TARGET, f"{BUDGET_TARGET} (issue 15)")):
        figure.add_hline(y=loss, line_dash="dot", annotation_text=label)
    if "nanogpt" in results:
        figure.add_vline(x=results["nanogpt"]["wall_s"], line_dash="dot", annotation_text="nanoGPT's 2000 steps end")
    figure.update_layout(title="Tiny Shakespeare (char): validation loss against wall time, one benchmark run",
                         xaxis_title="seconds since training started (evaluations included)",
                         yaxis_title="val loss (nanoGPT's estimate_loss)", template="plotly_white")
    return figure


def write_curves(results: dict, path: Path) -> Path:
    curves_figure(results).write_json(path)
    return path
