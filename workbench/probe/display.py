"""Show a widget with a static fallback, so a notebook executed headless (papermill, nbval) still holds a figure.

JupyterLab renders the richest output it can: the live widget where a kernel
serves it; a reader without one (an executed notebook opened later) gets the
plotly figure or the HTML stored beside it in the same output.
"""

from __future__ import annotations

import json

import plotly.graph_objects as go
from IPython.display import display

WIDGET_MIMETYPE = "application/vnd.jupyter.widget-view+json"
PLOTLY_MIMETYPE = "application/vnd.plotly.v1+json"


def fallback_bundle(widget, *, figure: go.Figure | None = None, html: str | None = None) -> dict:
    """The widget's own mime bundle plus a static copy of `figure` (plotly JSON) or `html`."""
    bundle = dict(widget._repr_mimebundle_() or {})
    if figure is not None:
        bundle[PLOTLY_MIMETYPE] = json.loads(go.Figure(figure).to_json())
        bundle[PLOTLY_MIMETYPE].setdefault("config", {})
    if html is not None:
        bundle["text/html"] = html
    return bundle


def show(widget, *, figure: go.Figure | None = None, html: str | None = None) -> None:
    display(fallback_bundle(widget, figure=figure, html=html), raw=True)
