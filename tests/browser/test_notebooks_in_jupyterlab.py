"""pretrain, finetune, compare and finetune-summary in a real JupyterLab: each shows the views its sections
promise, keeps the kernel busy while it trains, survives a reload, and leaves `git status` clean after a save.
(probe.ipynb, with its widgets, has its own test beside this one.)"""

from __future__ import annotations

import pytest
from browser_lab import LabPage
from day_in_lab import plot_count, researchers_day, wait_for_plots

pytestmark = pytest.mark.slow

TRAINING = "LiveCurves("  # the training cells of pretrain and finetune build their live curves


def traces(cell) -> int:
    return cell.locator(".js-plotly-plot .scatterlayer .trace").count()


def pretrain_views(lab: LabPage, phase: str, saved: list) -> None:
    wait_for_plots(lab, 1)
    live = lab.cell(TRAINING)
    assert traces(live) >= 2, "the training cell left no loss curves (train and validation)"
    assert "val_bpb" in lab.cell("NBVAL_CHECK_OUTPUT").inner_text(), "the metrics cell shows no val_bpb"
    assert lab.page.locator(".jp-OutputArea-output").filter(has_text="--- sample 0").count() == 1, "no samples"
    lab.screenshot(live, f"pretrain-live-curves-{phase}", saved)


def finetune_views(lab: LabPage, phase: str, saved: list) -> None:
    wait_for_plots(lab, 1)
    live = lab.cell(TRAINING)
    assert traces(live) >= 2, "the training cell left no curves"
    confusion = lab.cell("confusion_matrix_figure(")
    assert plot_count(confusion) >= 1, "the fine-tuning notebook draws no confusion matrix"
    shape = confusion.locator(".js-plotly-plot").first.evaluate(
        "el => { const d = el.data[0]; return {type: d.type, x: d.x.length, y: d.y.length,"
        " rows: d.z.length, cols: [...new Set(d.z.map(r => r.length))]}; }")
    n = shape["x"]
    assert shape["type"] == "heatmap" and n >= 2, shape
    assert shape["y"] == n and shape["rows"] == n and shape["cols"] == [n], (
        f"the confusion matrix is not one cell per class pair ({n} classes): {shape}")
    assert confusion.locator(".js-plotly-plot .heatmaplayer").count() == 1
    lab.screenshot(confusion, f"finetune-confusion-{phase}", saved)
    lab.screenshot(live, f"finetune-live-curves-{phase}", saved)


def compare_views(lab: LabPage, phase: str, saved: list) -> None:
    wait_for_plots(lab, 2)
    assert "run(s)" in lab.cell("NBVAL_CHECK_OUTPUT").inner_text()
    table = lab.cell('table[["id"')
    assert table.locator("table tbody tr").count() >= 2, "the runs table has fewer than 2 rows"
    metric = lab.cell("metric_vs_parameter_figure(")
    assert plot_count(metric) >= 1 and traces(metric) >= 1, "no metric-against-parameter figure"
    curves = lab.cell("overlay_curves(")
    assert traces(curves) >= 2, "the loss curves of the runs are not overlaid"
    for name, cell in (("table", table), ("metric", metric), ("curves", curves)):
        lab.screenshot(cell, f"compare-{name}-{phase}", saved)


def summary_views(lab: LabPage, phase: str, saved: list) -> None:
    wait_for_plots(lab, 1)
    assert "completed run(s)" in lab.cell("NBVAL_CHECK_OUTPUT").inner_text()
    figure = lab.cell("label_efficiency_figure(")
    assert traces(figure) >= 1, "no label-efficiency figure"
    lab.screenshot(figure, f"finetune-summary-figure-{phase}", saved)


@pytest.mark.parametrize(("notebook", "views", "training"), [
    ("pretrain", pretrain_views, (TRAINING,)),
    ("finetune", finetune_views, (TRAINING,)),
    ("compare", compare_views, ()),
    ("finetune-summary", summary_views, ()),
])
def test_notebook_in_jupyterlab(page, jupyterlab, worktree, notebook, views, training):
    url, token = jupyterlab
    researchers_day(LabPage(page, url, token, f"notebooks/{notebook}.ipynb"), worktree, views=views,
                    training_markers=training)
