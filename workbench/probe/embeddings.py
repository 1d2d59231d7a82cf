"""Where a base puts texts: pooled hidden states projected onto their first two principal components."""

from __future__ import annotations

from typing import Sequence

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.colors import qualitative

from workbench.heads.pooling import pool
from workbench.probe.figure_widget import FigureWidget
from workbench.probe.tokens import padded_batches

POOLINGS = ("mean", "last", "first")
# 24 colours told apart at a glance (no two closer than CIE76 ΔE 26): a class count like docstring-topic's
# 14 never repeats one. Beyond 24 the marker shape changes, so each class keeps its own look.
CLASS_COLOURS = qualitative.Dark24
CLASS_SYMBOLS = ("circle", "diamond", "square", "triangle-up", "cross")


def class_marker(k: int) -> dict:
    """Colour and shape of class `k`'s markers: distinct for every class up to 24 x 5."""
    return {"color": CLASS_COLOURS[k % len(CLASS_COLOURS)],
            "symbol": CLASS_SYMBOLS[(k // len(CLASS_COLOURS)) % len(CLASS_SYMBOLS)]}


@torch.no_grad()
def pooled_hidden_states(backbone, text_encoder, texts: Sequence[str], *, pooling: str = "mean",
                         batch_size: int = 64) -> np.ndarray:
    """(N, hidden) array: each text's final hidden states pooled over its real tokens."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling {pooling!r} is not one of: {', '.join(POOLINGS)}")
    if not texts:
        raise ValueError("no texts to embed")
    backbone.eval()
    device = next(backbone.parameters()).device
    encoded = text_encoder.encode(list(texts))
    vectors = []
    for _, ids, mask in padded_batches(encoded, text_encoder.pad_id, batch_size):
        hidden = backbone(ids.to(device), mask.to(device))
        vectors.append(pool(hidden, mask.to(device), pooling).float().cpu().numpy())
    return np.concatenate(vectors)


def pca_projection(vectors: np.ndarray, components: int = 2) -> dict:
    """The centred vectors on their top principal axes: coords (N, components) and each axis's share of variance."""
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[0] < 2:
        raise ValueError(f"PCA needs a 2-D array of at least 2 rows, got shape {vectors.shape}")
    centred = vectors - vectors.mean(axis=0)
    _, singular, axes = np.linalg.svd(centred, full_matrices=False)
    # A sign convention, so the same data always gives the same picture.
    signs = np.sign(axes[:components, np.abs(axes[:components]).argmax(axis=1)].diagonal())
    signs[signs == 0] = 1
    axes = axes[:components] * signs[:, None]
    variance = singular**2
    return {"coords": centred @ axes.T, "explained": (variance[:components] / max(variance.sum(), 1e-30)).tolist()}


def embedding_figure(projection: dict, texts: Sequence[str], labels: Sequence[int], label_names: list[str],
                     *, title: str = "pooled hidden states, PCA", max_chars: int = 120) -> go.Figure:
    coords = projection["coords"]
    figure = go.Figure()
    for k, name in enumerate(label_names):
        members = [i for i, label in enumerate(labels) if label == k]
        if not members:
            continue
        hover = [texts[i][:max_chars].replace("\n", "<br>") for i in members]
        figure.add_scatter(x=coords[members, 0], y=coords[members, 1], mode="markers", name=name,
                           marker=dict(**class_marker(k), size=7, line=dict(width=0.5, color="white")),
                           text=hover, customdata=members, hovertemplate=f"<b>{name}</b><br>%{{text}}<extra></extra>")
    pc1, pc2 = projection["explained"][:2]
    figure.update_layout(title=title, xaxis_title=f"PC1 ({pc1:.0%} of variance)", yaxis_title=f"PC2 ({pc2:.0%})",
                         template="plotly_white", height=520)
    return figure


class EmbeddingWidget(widgets.VBox):
    """The PCA scatter with a pooling selector."""

    def __init__(self, backbone, text_encoder, texts: Sequence[str], labels: Sequence[int], label_names: list[str],
                 pooling: str = "mean") -> None:
        self.backbone, self.text_encoder = backbone, text_encoder
        self.texts, self.labels, self.label_names = list(texts), list(labels), label_names
        self.pooling = widgets.ToggleButtons(options=list(POOLINGS), value=pooling, description="pooling",
                                            style={"description_width": "initial"})
        self.projection = self._project()
        self.figure = FigureWidget(embedding_figure(self.projection, self.texts, self.labels, label_names))
        self.pooling.observe(self._redraw, names="value")
        super().__init__([self.pooling, self.figure])

    def _project(self) -> dict:
        vectors = pooled_hidden_states(self.backbone, self.text_encoder, self.texts, pooling=self.pooling.value)
        return pca_projection(vectors)

    def _redraw(self, change=None) -> None:
        self.projection = self._project()
        new = embedding_figure(self.projection, self.texts, self.labels, self.label_names)
        with self.figure.batch_update():
            for trace, fresh in zip(self.figure.data, new.data, strict=False):
                trace.x, trace.y = fresh.x, fresh.y
            self.figure.layout.xaxis.title.text = new.layout.xaxis.title.text
            self.figure.layout.yaxis.title.text = new.layout.yaxis.title.text
