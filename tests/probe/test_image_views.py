"""The vision views: attention over patches on the image, embeddings with thumbnails, the image confusion matrix."""

import numpy as np
import pytest
import torch

from workbench.models.vit import ViT, ViTConfig
from workbench.probe.image_views import (
    ImageConfusionExplorer,
    ImageEmbeddingWidget,
    PatchAttentionWidget,
    image_confusion_figure,
    image_prediction_rows,
    montage,
    patch_attention,
    patch_attention_figure,
    thumbnail_uri,
)


def tiny_vit(pooling: str = "cls") -> ViT:
    torch.manual_seed(0)
    return ViT(ViTConfig.from_preset("tiny", pooling=pooling)).eval()


def digits(n: int = 12):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (8, 8), dtype=np.uint8) for _ in range(n)]
    pixels = torch.tensor(np.stack(images), dtype=torch.float32).unsqueeze(1) / 255
    return images, pixels


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_patch_attention_is_the_query_row_over_the_patches(pooling):
    vit = tiny_vit(pooling)
    _, pixels = digits(1)
    with torch.no_grad():
        weights = vit(pixels, output_attentions=True).attentions[-1][0]
    prefix = vit.config.num_prefix_tokens
    for head, query in ((None, None), (1, 5)):
        grid = patch_attention(vit, pixels[0], head=head, query=query)
        assert grid.shape == (4, 4)
        heads = weights.mean(0) if head is None else weights[head]
        row = heads[prefix + query] if query is not None else (heads[0] if prefix else heads.mean(0))
        assert np.allclose(grid.ravel(), row[prefix:].numpy(), atol=1e-6)  # row-major: patch r * 4 + c
    with pytest.raises(ValueError, match="query patch 16 is out of range: the image has 16 patches"):
        patch_attention(vit, pixels[0], query=16)
    with pytest.raises(ValueError, match="head 2 is out of range"):
        patch_attention(vit, pixels[0], head=2)


def test_the_attention_figure_lays_the_map_over_the_image_and_outlines_the_query():
    images, pixels = digits(1)
    grid = np.arange(16, dtype=float).reshape(4, 4) / 16
    figure = patch_attention_figure(images[0], grid, query=6)
    image, overlay = figure.data
    assert np.array_equal(np.asarray(image.z), images[0]) and np.array_equal(np.asarray(overlay.z), grid)
    assert list(overlay.x) == [0.5, 2.5, 4.5, 6.5]  # patch centres of 2-pixel patches on the 8-pixel image
    (shape,) = figure.layout.shapes
    assert (shape.x0, shape.x1, shape.y0, shape.y1) == (3.5, 5.5, 1.5, 3.5)  # patch 6: row 1, column 2


def test_the_attention_widget_redraws_for_another_query():
    images, pixels = digits(3)
    widget = PatchAttentionWidget(tiny_vit(), images, pixels)
    # The summary choices are selected, not blank: a Dropdown value of None would read as no selection.
    assert (widget.head.label, widget.query.label) == ("mean of heads", "class token")
    assert "None" not in widget.figure.layout.title.text
    before = np.asarray(widget.figure.data[1].z).copy()
    widget.query.value = 3
    assert not np.allclose(np.asarray(widget.figure.data[1].z), before)
    assert len(widget.figure.layout.shapes) == 1 and "patch 3" in widget.figure.layout.title.text


def test_hovering_a_point_shows_its_own_image():
    images, pixels = digits(12)
    labels = [i % 3 for i in range(12)]
    widget = ImageEmbeddingWidget(tiny_vit(), images, pixels, labels, ["zero", "one", "two"])
    assert sum(len(trace.x) for trace in widget.figure.data) == 12
    shown = widget.show(7)
    assert thumbnail_uri(images[7], 128) in shown and "image 7: one" in shown


def test_each_cell_of_the_image_confusion_matrix_shows_its_most_confident_images():
    images, _ = digits(6)
    rows = [{"index": i, "label": i % 2, "predicted": 0, "confidence": c, "label_name": "", "predicted_name": ""}
            for i, c in enumerate([0.9, 0.8, 0.7, 0.95, 0.6, 0.5])]
    figure = image_confusion_figure(rows, images, ["even", "odd"])
    assert [(image.x, image.y) for image in figure.layout.images] == [(0, 0), (0, 1)]  # no image in empty cells
    odd_first = montage([images[3], images[1], images[5]])
    assert figure.layout.images[1].source == thumbnail_uri(odd_first)
    explorer = ImageConfusionExplorer(rows, images, ["even", "odd"])
    cell = explorer.select(1, 0)
    assert [r["index"] for r in cell] == [3, 1, 5] and "3</b> images of <b>odd" in explorer.caption.value
    assert explorer.gallery.value.count("<img") == 3
    assert explorer.select(0, 1) == [] and "no images" in explorer.gallery.value


def test_prediction_rows_come_from_the_classifier():
    _, pixels = digits(5)
    logits = torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 0.0], [0.0, 1.0], [5.0, 0.0]])
    rows = image_prediction_rows(lambda x: logits[: len(x)], pixels, [0, 1, 1, 0, 0], ["a", "b"], batch_size=5)
    assert [r["predicted"] for r in rows] == [0, 1, 0, 1, 0]
    assert rows[4]["confidence"] == pytest.approx(torch.tensor([5.0, 0.0]).softmax(0)[0].item())
