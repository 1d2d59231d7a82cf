"""The reload-safe FigureWidget: a small front-end loader, one bundle model per kernel, and a full state that is
the figure as it is now (what a reconnecting JupyterLab tab restores). The browser test reloads a real tab."""

from __future__ import annotations

import re

import ipywidgets as widgets
import plotly.graph_objects as go

from workbench.probe.figure_widget import BUNDLE, FigureWidget, plotly_bundle


def test_each_figure_sends_a_small_loader_and_names_the_one_bundle_model():
    first, second = FigureWidget(go.Figure(go.Bar(y=[1]))), FigureWidget()
    assert len(first._esm) < 5_000 < len(plotly_bundle().source)
    assert first._bundle_model == second._bundle_model == plotly_bundle().model_id
    assert first.get_state("_esm")["_esm"] == first._esm


def test_a_closed_bundle_model_is_made_again():
    before = plotly_bundle()
    before.close()
    after = plotly_bundle()
    assert after is not before and after.comm is not None
    assert FigureWidget()._bundle_model == after.model_id


def test_the_full_state_is_the_figure_as_it_is_now_not_as_it_was_built():
    figure = FigureWidget(go.Figure(go.Heatmap(z=[[0, 1]]), layout=dict(title="layer 0 head 0")))
    with figure.batch_update():
        figure.data[0].z = [[5, 6]]
        figure.layout.title.text = "layer 1 head 0"
    state = figure.get_state()
    assert state["_widget_data"][0]["z"] == [[5, 6]]
    assert state["_widget_layout"]["title"]["text"] == "layer 1 head 0"
    assert isinstance(figure, go.FigureWidget) and isinstance(figure, widgets.DOMWidget)


def test_plotlys_widget_module_still_has_the_shape_the_loader_expects():
    """The loader calls the bundle's default export per model: a factory of {initialize, render}."""
    tail = BUNDLE.read_text(encoding="utf-8")[-200_000:]
    assert re.search(r"export\{[^}]*\bas default\}", tail), "plotly's widgetbundle.js no longer has a default export"
    assert re.search(r"initialize\(\w+\)\{\w+=new \w+\(\w+\.model", tail), "its default no longer initializes by model"
