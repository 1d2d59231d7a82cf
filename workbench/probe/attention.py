"""Attention weights over a prompt: one head as a heatmap, and every head in small."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from workbench.probe.figure_widget import FigureWidget
from workbench.probe.lens import LABELS, position_labels
from workbench.probe.tokens import prompt_ids, token_label


@torch.no_grad()
def attention_maps(model, tokenizer, prompt: str) -> dict:
    """tokens (one label per position) and weights, a (layers, heads, T, T) array: row = query, column = key."""
    model.eval()
    idx = prompt_ids(model, tokenizer, prompt)
    out = model(idx, output_attentions=True)
    weights = np.stack([a[0].float().cpu().numpy() for a in out.attentions])
    return {"tokens": [token_label(tokenizer, i) for i in idx[0].tolist()], "weights": weights}


def _check(maps: dict, layer: int, head: int) -> None:
    layers, heads = maps["weights"].shape[:2]
    if not 0 <= layer < layers:
        raise ValueError(f"layer {layer} is out of range: the model has layers 0..{layers - 1}")
    if not 0 <= head < heads:
        raise ValueError(f"head {head} is out of range: each layer has heads 0..{heads - 1}")


def attention_figure(maps: dict, layer: int, head: int) -> go.Figure:
    _check(maps, layer, head)
    labels = position_labels(maps["tokens"])
    figure = go.Figure(go.Heatmap(
        z=maps["weights"][layer, head], x=labels, y=labels, colorscale="Blues", zmin=0, zmax=1,
        colorbar=dict(title="weight"), hovertemplate="query %{y}<br>key %{x}<br>weight %{z:.3f}<extra></extra>",
    ))
    figure.update_layout(title=f"attention, layer {layer} head {head}", xaxis_title="key (attended to)",
                         yaxis_title="query", yaxis=dict(autorange="reversed"), template="plotly_white",
                         height=520, width=560)
    return figure


def attention_grid_figure(maps: dict) -> go.Figure:
    """Every head of every layer in small: rows are layers, columns heads."""
    layers, heads = maps["weights"].shape[:2]
    figure = make_subplots(rows=layers, cols=heads, horizontal_spacing=0.02, vertical_spacing=0.03,
                           subplot_titles=[f"L{layer} H{h}" for layer in range(layers) for h in range(heads)])
    for layer in range(layers):
        for h in range(heads):
            figure.add_heatmap(z=maps["weights"][layer, h], row=layer + 1, col=h + 1, colorscale="Blues", zmin=0,
                               zmax=1, showscale=False,
                               hovertemplate=f"L{layer} H{h}<br>query %{{y}} key %{{x}}<br>%{{z:.3f}}<extra></extra>")
    figure.update_xaxes(showticklabels=False)
    figure.update_yaxes(showticklabels=False, autorange="reversed")
    figure.update_layout(title="all heads (rows: layers, columns: heads)", height=120 * layers + 80,
                         width=120 * heads + 80, template="plotly_white", margin=dict(l=20, r=20, t=60, b=20))
    return figure


class AttentionWidget(widgets.VBox):
    """A prompt box, layer and head sliders over one head's heatmap, and the grid of all heads below."""

    def __init__(self, model, tokenizer, prompt: str = "def add(a, b):\n    return a + b") -> None:
        self.model, self.tokenizer = model, tokenizer
        self.maps = attention_maps(model, tokenizer, prompt)
        layers, heads = self.maps["weights"].shape[:2]
        self.prompt = widgets.Text(value=prompt, description="prompt", continuous_update=False, style=LABELS,
                                   layout=widgets.Layout(width="60%"))
        self.layer = widgets.IntSlider(value=0, min=0, max=layers - 1, description="layer", style=LABELS)
        self.head = widgets.IntSlider(value=0, min=0, max=heads - 1, description="head", style=LABELS)
        self.message = widgets.HTML()
        self.figure = FigureWidget(attention_figure(self.maps, 0, 0))
        self.grid = FigureWidget(attention_grid_figure(self.maps))
        self.prompt.observe(self._new_prompt, names="value")
        self.layer.observe(self._redraw, names="value")
        self.head.observe(self._redraw, names="value")
        super().__init__([self.prompt, widgets.HBox([self.layer, self.head]), self.message, self.figure, self.grid])

    def _new_prompt(self, change=None) -> None:
        try:
            self.maps = attention_maps(self.model, self.tokenizer, self.prompt.value)
        except ValueError as error:
            self.message.value = f"<b>{error}</b>"
            return
        self.message.value = ""
        self._redraw()
        new = attention_grid_figure(self.maps)
        with self.grid.batch_update():
            for trace, fresh in zip(self.grid.data, new.data, strict=False):
                trace.z = fresh.z

    def _redraw(self, change=None) -> None:
        new = attention_figure(self.maps, self.layer.value, self.head.value)
        with self.figure.batch_update():
            heat = self.figure.data[0]
            heat.z, heat.x, heat.y = new.data[0].z, new.data[0].x, new.data[0].y
            self.figure.layout.title.text = new.layout.title.text
