"""Head views on a module in memory: the rows, cells, tokens and projections drawn are the model's own outputs."""

import itertools
import math

import numpy as np
import pytest
import torch

from workbench.data.text_encoders import WorkbenchTextEncoder
from workbench.heads import build_head
from workbench.models.backbone import DecoderBackbone
from workbench.modules.finetune import FinetuneModule
from workbench.probe.embeddings import (
    EmbeddingWidget,
    class_marker,
    embedding_figure,
    pca_projection,
    pooled_hidden_states,
)
from workbench.probe.head_views import (
    ConfusionExplorer,
    ExampleBrowser,
    TokenHeadBrowser,
    confusion_from_rows,
    examples_in_cell,
    prediction_rows,
    token_head_html,
    token_predictions,
)

LABELS = ["alpha", "beta", "gamma"]
TEXTS = ["abc def", "x = 1", "print(a)", "b + c", "def f():", "zz", "a.b.c", "q, r"]
TRUTH = [0, 1, 2, 0, 1, 2, 0, 1]


def module_for(tiny_model, kind):
    model, tokenizer = tiny_model
    torch.manual_seed(1)
    backbone = DecoderBackbone(model)
    head = build_head(kind, backbone.hidden_size, num_labels=3, pooling="mean")
    module = FinetuneModule(backbone, head, None, None, kind, label_names=LABELS).eval()
    return module, WorkbenchTextEncoder(tokenizer, 32)


def test_rows_are_the_module_probabilities_and_cells_partition_them(tiny_model):
    module, encoder = module_for(tiny_model, "sequence_classification")
    rows = prediction_rows(module, encoder, TEXTS, TRUTH, LABELS)
    for row, text in zip(rows, TEXTS, strict=False):
        ids = torch.tensor([encoder.encode([text])[0].ids])
        expected = module(ids, torch.ones_like(ids)).softmax(-1)[0]
        assert row["probs"] == pytest.approx(expected.tolist(), rel=1e-4, abs=1e-6)
        assert row["predicted"] == int(expected.argmax())
        assert row["confidence"] == pytest.approx(float(expected.max()), rel=1e-4)
    matrix = confusion_from_rows(rows, 3)
    assert sum(map(sum, matrix)) == len(TEXTS)
    for t in range(3):
        for p in range(3):
            cell = examples_in_cell(rows, t, p)
            assert len(cell) == matrix[t][p]
            assert [r["confidence"] for r in cell] == sorted((r["confidence"] for r in cell), reverse=True)
    with pytest.raises(ValueError, match="8 texts but 2 labels"):
        prediction_rows(module, encoder, TEXTS, [0, 1], LABELS)


def test_clicking_a_cell_lists_its_examples(tiny_model):
    module, encoder = module_for(tiny_model, "sequence_classification")
    rows = prediction_rows(module, encoder, TEXTS, TRUTH, LABELS)
    explorer = ConfusionExplorer(rows, LABELS)
    heat = explorer.figure.data[0]
    assert [list(r) for r in heat.customdata] == confusion_from_rows(rows, 3)
    row = rows[2]
    cell = explorer.select(row["label"], row["predicted"])
    assert row in cell and explorer.selected == (row["label"], row["predicted"])
    assert f"<b>{len(cell)}</b> examples" in explorer.caption.value
    assert "print(a)" in explorer.examples.value

    class Points:  # what plotly passes to a click handler
        xs, ys = [LABELS[0]], [LABELS[2]]

    explorer._clicked(heat, Points(), None)
    assert explorer.selected == (2, 0)


def test_the_example_browser_shows_each_example_and_narrows_to_mistakes(tiny_model):
    module, encoder = module_for(tiny_model, "sequence_classification")
    rows = prediction_rows(module, encoder, TEXTS, TRUTH, LABELS)
    browser = ExampleBrowser(rows, LABELS)
    browser.index.value = 3
    assert "b + c" in browser.text.value and list(browser.figure.data[0].y) == pytest.approx(rows[3]["probs"])
    browser.only.value = "mistakes"
    mistakes = [r for r in rows if r["label"] != r["predicted"]]
    assert browser.index.max == len(mistakes) - 1
    browser.index.value = 0
    assert f"example {mistakes[0]['index']}" in browser.text.value


def test_token_heads_colour_each_token_by_its_predicted_label(tiny_model):
    module, encoder = module_for(tiny_model, "token_classification")
    text = "x = 1"
    tokens = token_predictions(module, encoder, text, LABELS, char_labels=[0, 2, 1, 2, 0])
    ids = torch.tensor([encoder.encode([text])[0].ids])
    probs = module(ids, torch.ones_like(ids)).softmax(-1)[0]
    assert "".join(t["text"] for t in tokens) == text
    assert [t["predicted"] for t in tokens] == probs.argmax(-1).tolist()
    assert [t["label"] for t in tokens] == [0, 2, 1, 2, 0]
    html = token_head_html(tokens, LABELS)
    assert html.count('class="wb-token"') == len(tokens) + len(LABELS)  # the tokens and the legend
    browser = TokenHeadBrowser(module, encoder, [text, "abc"], LABELS)
    before = browser.view.value
    browser.index.value = 1
    assert browser.view.value != before and len(browser.tokens) == 3


def test_pca_projection_matches_an_svd_and_the_figure_draws_it(tiny_model):
    rng = np.random.default_rng(0)
    points = rng.normal(size=(30, 5)) * [5, 2, 1, 0.1, 0.1]
    projection = pca_projection(points)
    assert projection["coords"].shape == (30, 2)
    assert projection["explained"][0] > projection["explained"][1] > 0
    centred = points - points.mean(0)
    variance = np.linalg.svd(centred, compute_uv=False) ** 2
    assert np.allclose(projection["explained"], variance[:2] / variance.sum())
    assert np.allclose(projection["coords"].var(0, ddof=0) * 30, variance[:2])
    with pytest.raises(ValueError, match="at least 2 rows"):
        pca_projection(points[:1])
    labels = [i % 3 for i in range(30)]
    texts = [f"text {i}" for i in range(30)]
    figure = embedding_figure(projection, texts, labels, LABELS)
    first = figure.data[0]
    members = [i for i in range(30) if labels[i] == 0]
    assert list(first.customdata) == members and np.allclose(first.x, projection["coords"][members, 0])


def test_embedding_widget_projects_pooled_states_and_redraws_on_pooling(tiny_model):
    module, encoder = module_for(tiny_model, "sequence_classification")
    vectors = pooled_hidden_states(module.backbone, encoder, TEXTS, pooling="last")
    ids = torch.tensor([encoder.encode([TEXTS[0]])[0].ids])
    assert np.allclose(vectors[0], module.backbone(ids, torch.ones_like(ids))[0, -1].detach().numpy(), atol=1e-5)
    widget = EmbeddingWidget(module.backbone, encoder, TEXTS, TRUTH, LABELS)
    before = list(widget.figure.data[0].x)
    widget.pooling.value = "last"
    expected = pca_projection(vectors)["coords"]
    assert list(widget.figure.data[0].x) != before
    assert np.allclose(widget.figure.data[0].x, expected[[0, 3, 6], 0])


def cie_lab(colour: str) -> tuple[float, float, float]:
    """sRGB hex -> CIE L*a*b* (D65), where a distance of ~2 is just noticeable and ~20 plainly different."""
    rgb = [int(colour.lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    r, g, b = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    xyz = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047, 0.2126 * r + 0.7152 * g + 0.0722 * b, (
        0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883
    fx, fy, fz = [t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116 for t in xyz]
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def test_fourteen_classes_get_fourteen_plainly_different_colours():
    names = [f"package{k}" for k in range(14)]  # docstring-topic has 14
    labels = list(range(14)) * 2
    projection = pca_projection(np.random.default_rng(0).normal(size=(28, 4)))
    figure = embedding_figure(projection, [f"t{i}" for i in range(28)], labels, names)
    colours = [trace.marker.color for trace in figure.data]
    assert len(colours) == 14 == len(set(colours))
    closest = min(math.dist(cie_lab(a), cie_lab(b)) for a, b in itertools.combinations(colours, 2))
    assert closest > 20  # the old palette had two lavenders 7.6 apart among its first 14
    many = [class_marker(k) for k in range(60)]
    assert len({(m["color"], m["symbol"]) for m in many}) == 60  # past 24 classes the shape changes


def test_head_view_labels_are_shown_at_full_width(tiny_model, labelled_controls):
    module, encoder = module_for(tiny_model, "sequence_classification")
    rows = prediction_rows(module, encoder, TEXTS, TRUTH, LABELS)
    token_module, _ = module_for(tiny_model, "token_classification")
    views = [ExampleBrowser(rows, LABELS), TokenHeadBrowser(token_module, encoder, TEXTS[:2], LABELS),
             EmbeddingWidget(module.backbone, encoder, TEXTS, TRUTH, LABELS)]
    controls = [c for view in views for c in labelled_controls(view)]
    assert {"show", "example", "text", "pooling"} <= {c.description for c in controls}
    assert all(c.style.description_width == "initial" for c in controls)
