"""The confusion-matrix figure of a fine-tuned classifier (its clickable view is head_views.ConfusionExplorer)."""

from __future__ import annotations

import plotly.graph_objects as go


def confusion_matrix_figure(matrix: list[list[int]], label_names: list[str], *,
                            title: str = "confusion matrix") -> go.Figure:
    """Rows are true classes, columns predicted; each row is also shown as a share of its class."""
    if len(matrix) != len(label_names) or any(len(row) != len(label_names) for row in matrix):
        raise ValueError(f"a {len(label_names)}-class confusion matrix must be {len(label_names)} x {len(label_names)}")
    shares = [[count / max(1, sum(row)) for count in row] for row in matrix]
    figure = go.Figure(go.Heatmap(
        z=shares, x=label_names, y=label_names, colorscale="Blues", zmin=0, zmax=1,
        customdata=matrix, colorbar=dict(title="share of row"),
        hovertemplate="true %{y}<br>predicted %{x}<br>%{customdata} examples (%{z:.0%} of the class)<extra></extra>",
    ))
    figure.update_layout(title=title, xaxis_title="predicted", yaxis_title="true", template="plotly_white",
                         height=max(400, 22 * len(label_names) + 150), yaxis=dict(autorange="reversed"))
    return figure
