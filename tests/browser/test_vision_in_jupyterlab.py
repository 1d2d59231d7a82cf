"""pretrain-vision and finetune-vision in a real JupyterLab, driven by headless Chromium: the MAE's curves and
reconstructions; attention over patches drawn on the image and following its layer slider; the PCA of pooled
image states showing an image beside the plot on hover; the image confusion matrix whose cells hold montages
and list their images on a click. Before and after a reload of the tab with the kernel alive; a save leaves
`git status` clean. Screenshots go to $WORKBENCH_ARTIFACTS (default tests/browser/artifacts/), paths printed.
"""

from __future__ import annotations

import pytest
from browser_lab import LabPage
from day_in_lab import researchers_day, wait_for_plots

pytestmark = pytest.mark.slow

TRAINING = "LiveCurves("
ATTENTION, EMBEDDINGS, CONFUSION = "PatchAttentionWidget(vit", "ImageEmbeddingWidget(vit", "ImageConfusionExplorer(rows"


def pretrain_vision_views(lab: LabPage, phase: str, saved: list) -> None:
    wait_for_plots(lab, 2)
    live = lab.cell(TRAINING)
    assert live.locator(".js-plotly-plot .scatterlayer .trace").count() >= 2, "no train and validation curves"
    reconstructions = lab.cell("reconstruction_figure(")
    # Each shown image three times (original, what the encoder saw, the reconstruction), as image traces drawn.
    plot = reconstructions.locator(".js-plotly-plot").first
    traces = plot.evaluate("el => el.data.filter(t => t.type === 'image').length")
    assert traces >= 3 * 4 and traces % 3 == 0, f"{traces} image traces: not three rows of reconstructions"
    assert plot.locator("image").count() >= traces, "the reconstructions' images are not drawn"
    lab.screenshot(live, f"pretrain-vision-live-curves-{phase}", saved)
    lab.screenshot(reconstructions, f"pretrain-vision-reconstructions-{phase}", saved)


def finetune_vision_views(lab: LabPage, phase: str, saved: list) -> None:
    page, cell = lab.page, lab.cell
    wait_for_plots(lab, 4, timeout_ms=90_000)
    for marker in (ATTENTION, EMBEDDINGS, CONFUSION):
        cell(marker).locator(".js-plotly-plot .main-svg").first.wait_for(timeout=60_000)
        assert "Loading widget" not in cell(marker).inner_text(), f"{marker} still says 'Loading widget...' ({phase})"

    # Attention over patches: the image under a translucent map, the title following the layer slider.
    attention = cell(ATTENTION)
    assert attention.locator(".js-plotly-plot .heatmaplayer .hm").count() == 2, "not the image and its attention map"
    title = attention.locator(".js-plotly-plot .gtitle").first
    layer = attention.locator(".widget-slider").filter(has_text="layer")
    start = int(layer.locator(".widget-readout").first.inner_text().strip())
    assert title.text_content() == f"layer {start}, mean of heads, query class token", title.text_content()
    shown = attention.locator("select").evaluate_all(
        "els => els.map(e => e.options[e.selectedIndex]?.text.replace(/\\u00a0/g, ' '))")
    assert shown == ["mean of heads", "class token"], f"the dropdowns show {shown}"
    lab.screenshot(attention, f"finetune-vision-patch-attention-{phase}", saved)
    layer.locator(".noUi-handle, input[type=range]").first.focus()
    page.keyboard.press("ArrowLeft")  # the last layer is shown first
    page.wait_for_function(f"(el) => el.textContent.startsWith('layer {start - 1},')", arg=title.element_handle(),
                           timeout=20_000)
    lab.screenshot(attention, f"finetune-vision-patch-attention-after-slider-{phase}", saved)
    layer.locator(".noUi-handle, input[type=range]").first.focus()
    page.keyboard.press("ArrowRight")  # as found, so the reloaded page starts from the same layer
    page.wait_for_function(f"(el) => el.textContent.startsWith('layer {start},')", arg=title.element_handle(),
                           timeout=20_000)

    # Embeddings: hovering over a point shows that image beside the plot.
    embeddings = cell(EMBEDDINGS)
    embeddings.scroll_into_view_if_needed()
    points = embeddings.locator(".js-plotly-plot .scatterlayer .point")
    assert points.count() > 10, f"only {points.count()} points in the embedding"
    box = points.first.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    embeddings.locator("figcaption").filter(has_text="image ").first.wait_for(timeout=20_000)
    assert embeddings.locator("img[src^='data:image/png']").count() >= 1
    lab.screenshot(embeddings, f"finetune-vision-embeddings-hover-{phase}", saved)

    # The confusion matrix holds montages of images, and a click on a cell lists all of its images.
    confusion = cell(CONFUSION)
    confusion.scroll_into_view_if_needed()
    assert confusion.locator(".js-plotly-plot .layer-above image, .js-plotly-plot image").count() >= 2, \
        "the confusion matrix's cells show no images"
    lab.screenshot(confusion, f"finetune-vision-image-confusion-{phase}", saved)
    counts = confusion.locator(".js-plotly-plot").first.evaluate("el => el.data[0].customdata")
    n = len(counts)
    true, predicted = max(((i, j) for i in range(n) for j in range(n)), key=lambda c: counts[c[0]][c[1]])
    box = confusion.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * (predicted + 0.5) / n, box["y"] + box["height"] * (true + 0.5) / n)
    confusion.locator(f"text=/^{counts[true][predicted]} images of/").first.wait_for(timeout=20_000)
    assert confusion.locator("figure img").count() == min(60, counts[true][predicted])
    lab.screenshot(confusion, f"finetune-vision-image-confusion-after-click-{phase}", saved)


@pytest.mark.parametrize(("notebook", "views"), [
    ("pretrain-vision", pretrain_vision_views),
    ("finetune-vision", finetune_vision_views),
])
def test_vision_notebook_in_jupyterlab(page, jupyterlab, worktree, notebook, views):
    url, token = jupyterlab
    researchers_day(LabPage(page, url, token, f"notebooks/{notebook}.ipynb"), worktree, views=views,
                    training_markers=(TRAINING,))
