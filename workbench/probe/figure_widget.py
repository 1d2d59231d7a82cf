"""A plotly FigureWidget that survives a reload of the JupyterLab tab while its kernel lives.

plotly 7's FigureWidget is an anywidget whose front-end module (`_esm`) is the whole 5 MB plotly bundle, sent
and evaluated once per figure. When a tab reconnects, JupyterLab restores every widget model of the kernel at
once; each figure then evaluates its own copy, and anywidget gives up on any model not ready within 2 s
("[anywidget] Failed to initialize model."), leaving "Loading widget..." behind. And the state it restores
is the figure as it was built: plotly sends later changes as deltas and never updates `_widget_data`.

Here every figure's `_esm` is a small loader that evaluates the bundle once per page, taken from one bundle
model per kernel, and the state a reconnecting page asks for is the figure as it is now. The Python API is
plotly's own: `FigureWidget(figure)`, `batch_update()`, `on_click`, trace and layout assignment.
"""

from __future__ import annotations

from copy import deepcopy
from pathlib import Path

import ipywidgets as widgets
import plotly
import plotly.graph_objects as go
import traitlets

BUNDLE = Path(plotly.__file__).parent / "package_data" / "widgetbundle.js"

# Evaluates plotly's widget module once per page (cached on globalThis by plotly version) and gives each
# figure model its own instance of it, exactly as anywidget would with the module as the figure's own _esm.
LOADER = """
const CACHE = Symbol.for("workbench.plotly-widget-module");

async function bundleModel(manager, id) {
  for (let attempt = 0; attempt < 400; attempt++) {
    try {
      const found = await manager.get_model(id);
      if (found) return found;
    } catch (error) { /* not registered yet: restored models arrive in any order */ }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`[workbench] plotly bundle model ${id} never arrived`);
}

async function evaluate(model) {
  const carrier = await bundleModel(model.widget_manager, model.get("_bundle_model"));
  const url = URL.createObjectURL(new Blob([carrier.get("source")], { type: "text/javascript" }));
  try {
    return await import(/* webpackIgnore: true */ url);
  } finally {
    URL.revokeObjectURL(url);
  }
}

function plotlyModule(model) {
  const cache = (globalThis[CACHE] ??= new Map());
  const version = model.get("_bundle_version");
  if (!cache.has(version)) {
    const loading = evaluate(model);
    loading.catch(() => cache.delete(version));
    cache.set(version, loading);
  }
  return cache.get(version);
}

export default () => {
  let figure;
  return {
    async initialize({ model }) {
      figure = (await plotlyModule(model)).default();
      return figure.initialize({ model });
    },
    render(context) {
      return figure.render(context);
    },
  };
};
"""


class PlotlyBundle(widgets.Widget):
    """A view-less widget model holding plotly's widget module, so a page receives it once per kernel."""

    source = traitlets.Unicode().tag(sync=True)
    version = traitlets.Unicode().tag(sync=True)


_bundle: PlotlyBundle | None = None


def plotly_bundle() -> PlotlyBundle:
    """The kernel's one bundle model (made again if something closed it, e.g. `Widget.close_all()`)."""
    global _bundle
    if _bundle is None or _bundle.comm is None:
        _bundle = PlotlyBundle(source=BUNDLE.read_text(encoding="utf-8"), version=plotly.__version__)
    return _bundle


class FigureWidget(go.FigureWidget):
    """`go.FigureWidget` with a small front-end loader and a state that is always the current figure."""

    _esm = LOADER
    _bundle_model = traitlets.Unicode().tag(sync=True)
    _bundle_version = traitlets.Unicode(plotly.__version__).tag(sync=True)

    @traitlets.default("_bundle_model")
    def _default_bundle_model(self) -> str:
        return plotly_bundle().model_id

    def get_state(self, key=None, drop_defaults=False):
        """The whole state (what a reconnecting page restores from) carries the figure as it is now.

        The values are put in place without a change event: the page that is open already has them."""
        if key is None and hasattr(self, "_layout_obj"):
            self._trait_values["_widget_data"] = deepcopy(self._data)
            self._trait_values["_widget_layout"] = deepcopy(self._layout_obj._props)
        return super().get_state(key, drop_defaults)
