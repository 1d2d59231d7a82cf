"""probe.ipynb in a real JupyterLab, driven by headless Chromium: every view renders and follows its control,
before and after a reload of the tab with the kernel alive; the kernel reads busy while the models train; a
save leaves `git status` clean. Screenshots of each view go to $WORKBENCH_ARTIFACTS (default
tests/browser/artifacts/) and their paths are printed.
"""

from __future__ import annotations

import pytest
from browser_lab import LabPage
from day_in_lab import researchers_day, wait_for_plots

pytestmark = pytest.mark.slow

VIEWS = {  # screenshot name -> text found in the cell that builds the view
    "live-curves": "LiveCurves(title=",
    "playground": "GenerationPlayground(",
    "logit-lens": "LogitLensWidget(",
    "attention": "AttentionWidget(",
    "confusion": "ConfusionExplorer(",
    "examples": "ExampleBrowser(",
    "token-head": "TokenHeadBrowser(",
    "embeddings": "EmbeddingWidget(",
    "run-picker": "RunPicker(",
}
WIDGET_FIGURES = ("GenerationPlayground(", "LogitLensWidget(", "AttentionWidget(", "ConfusionExplorer(",
                  "ExampleBrowser(", "EmbeddingWidget(", "RunPicker(")


def press_right(lab: LabPage, slider) -> None:
    slider.locator(".noUi-handle, input[type=range]").first.focus()
    lab.page.keyboard.press("ArrowRight")


def probe_views(lab: LabPage, phase: str, saved: list) -> None:
    page, cell = lab.page, lab.cell
    # Every view rendered: plotly figures drawn as SVG, widgets as DOM controls; none stuck loading.
    wait_for_plots(lab, 10, timeout_ms=90_000)
    for marker in WIDGET_FIGURES:
        target = cell(marker)
        target.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=60_000)
        assert "Loading widget" not in target.inner_text(), f"{marker} still says 'Loading widget...' ({phase})"
    assert cell("LiveCurves(title=").locator(".js-plotly-plot .scatterlayer .trace").count() >= 2
    assert cell("GenerationPlayground(").locator(".wb-token").count() > 0
    assert cell("GenerationPlayground(").locator(".widget-slider").count() >= 5
    assert cell("LogitLensWidget(").locator(".js-plotly-plot .heatmaplayer").count() >= 1
    assert cell("TokenHeadBrowser(").locator(".wb-token-head .wb-token").count() > 0
    assert cell("EmbeddingWidget(").locator(".js-plotly-plot .scatterlayer .point").count() > 10
    assert cell("RunPicker(").locator("select[multiple]").count() == 1
    for name, marker in VIEWS.items():
        lab.screenshot(cell(marker), f"probe-{name}-{phase}", saved)

    # The playground charts the alternatives of a sampled token, and its token slider picks another one.
    playground = cell("GenerationPlayground(")
    chart_title = playground.locator(".js-plotly-plot .gtitle").first
    before = chart_title.text_content()
    assert before != "no sampled token", f"the playground's chart lost its token ({phase})"
    press_right(lab, playground.locator(".widget-slider").filter(has_text="token #"))
    page.wait_for_function("([el, old]) => el.textContent !== old", arg=[chart_title.element_handle(), before],
                           timeout=20_000)

    # The attention layer slider moves the readout and the heatmap with it.
    attention = cell("AttentionWidget(")
    title = attention.locator(".js-plotly-plot .gtitle").first
    layer = attention.locator(".widget-slider").filter(has_text="layer")
    start = int(layer.locator(".widget-readout").first.inner_text().strip())
    assert title.text_content() == f"attention, layer {start} head 0", (
        f"the heatmap does not show the slider's layer {start} ({phase}): {title.text_content()!r}")
    press_right(lab, layer)
    moved = start + 1
    page.wait_for_function(f"(el) => el.textContent === 'attention, layer {moved} head 0'",
                           arg=title.element_handle(), timeout=20_000)
    assert layer.locator(".widget-readout").first.inner_text().strip() == str(moved)
    lab.screenshot(attention, f"probe-attention-after-slider-{phase}", saved)
    # Leave it as found, so the reloaded page starts from layer 0 again.
    layer.locator(".noUi-handle, input[type=range]").first.focus()
    page.keyboard.press("ArrowLeft")
    page.wait_for_function(f"(el) => el.textContent === 'attention, layer {start} head 0'",
                           arg=title.element_handle(), timeout=20_000)

    # Clicking a confusion-matrix cell lists that cell's examples under it.
    confusion = cell("ConfusionExplorer(")
    confusion.scroll_into_view_if_needed()
    # The fullest cell, read from the figure's own data in the page (rows: true classes, top first).
    counts = confusion.locator(".js-plotly-plot").first.evaluate("el => el.data[0].customdata")
    n = len(counts)
    true, predicted = max(((i, j) for i in range(n) for j in range(n)), key=lambda c: counts[c[0]][c[1]])
    box = confusion.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * (predicted + 0.5) / n, box["y"] + box["height"] * (true + 0.5) / n)
    caption = confusion.locator(f"text=/^{counts[true][predicted]} examples of/").first
    caption.wait_for(timeout=20_000)
    assert confusion.locator(".wb-examples tr").count() == 1 + min(50, counts[true][predicted])
    lab.screenshot(confusion, f"probe-confusion-after-click-{phase}", saved)


def test_probe_notebook_runs_and_its_widgets_respond_in_jupyterlab(page, jupyterlab, worktree):
    url, token = jupyterlab
    researchers_day(LabPage(page, url, token, "notebooks/probe.ipynb"), worktree, views=probe_views,
                    training_markers=("LiveCurves(",))
