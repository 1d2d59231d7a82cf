"""Views of a fine-tuned head at work: which examples sit in each confusion-matrix cell, one example at a time
with its prediction and confidence, and token heads as coloured tokens.

They run the model in memory (a `FinetuneOutcome`'s module and its base's text encoder), since what a
researcher wants to look at is the model just trained.
"""

from __future__ import annotations

import html
from typing import Sequence

import ipywidgets as widgets
import plotly.graph_objects as go
import torch

from workbench.data.finetune_datamodule import token_labels
from workbench.probe.confusion import confusion_matrix_figure
from workbench.probe.figure_widget import FigureWidget
from workbench.probe.tokens import padded_batches, span

IGNORE = -100
LABELS = {"description_width": "initial"}  # widget labels at their full width, never cut short
LABEL_COLOURS = ["#a6cee3", "#b2df8a", "#fb9a99", "#fdbf6f", "#cab2d6", "#ffff99", "#1f78b4", "#33a02c",
                 "#e31a1c", "#ff7f00", "#6a3d9a", "#b15928", "#8dd3c7", "#bebada", "#80b1d3", "#fccde5"]


@torch.no_grad()
def class_probabilities(module, text_encoder, texts: Sequence[str], *, batch_size: int = 64) -> tuple[list, list]:
    """Softmax over the head's classes for each text: (probabilities, encodings). A sequence head gives one
    list of C per text, a token head one per id."""
    if not texts:
        raise ValueError("no texts to classify")
    module.eval()
    device = next(module.parameters()).device
    encoded = text_encoder.encode(list(texts))
    probabilities = []
    for chunk, ids, mask in padded_batches(encoded, text_encoder.pad_id, batch_size):
        probs = module(ids.to(device), mask.to(device)).float().softmax(-1).cpu()
        for row, item in enumerate(chunk):
            probabilities.append(probs[row].tolist() if probs.dim() == 2 else probs[row, : len(item.ids)].tolist())
    return probabilities, encoded


def prediction_rows(module, text_encoder, texts: Sequence[str], labels: Sequence[int],
                    label_names: list[str]) -> list[dict]:
    """One row per example of a sequence-classification task: text, true and predicted label, confidence,
    probabilities."""
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    probabilities, _ = class_probabilities(module, text_encoder, texts)
    if probabilities and not isinstance(probabilities[0][0], float):
        raise ValueError("prediction_rows needs a sequence-classification head; use token_predictions for a token head")
    rows = []
    for index, (text, label, probs) in enumerate(zip(texts, labels, probabilities, strict=False)):
        predicted = max(range(len(probs)), key=probs.__getitem__)
        rows.append({"index": index, "text": text, "label": int(label), "label_name": label_names[int(label)],
                     "predicted": predicted, "predicted_name": label_names[predicted],
                     "confidence": probs[predicted], "probs": probs})
    return rows


def outcome_rows(outcome, split: str = "test") -> list[dict]:
    """`prediction_rows` for one split of a fine-tuning outcome (a sequence-classification task)."""
    if outcome.task.kind != "sequence_classification":
        raise ValueError(
            f"the task {outcome.task.name!r} is {outcome.task.kind}; these rows need sequence_classification")
    data = outcome.task.splits[split]
    return prediction_rows(outcome.module, outcome.base.text_encoder, data["text"], data["label"],
                           outcome.task.label_names)


def confusion_from_rows(rows: list[dict], num_classes: int) -> list[list[int]]:
    matrix = [[0] * num_classes for _ in range(num_classes)]
    for row in rows:
        matrix[row["label"]][row["predicted"]] += 1
    return matrix


def examples_in_cell(rows: list[dict], true: int, predicted: int) -> list[dict]:
    """The examples of true class `true` the head called `predicted`, most confident first."""
    return sorted((r for r in rows if r["label"] == true and r["predicted"] == predicted),
                  key=lambda r: -r["confidence"])


def examples_table_html(rows: list[dict], *, limit: int = 50, max_chars: int = 160) -> str:
    if not rows:
        return "<i>no examples in this cell</i>"
    lines = ['<table class="wb-examples"><tr><th>#</th><th>text</th><th>true</th><th>predicted</th><th>p</th></tr>']
    for row in rows[:limit]:
        text = row["text"] if len(row["text"]) <= max_chars else row["text"][:max_chars] + "…"
        lines.append(f"<tr><td>{row['index']}</td><td><code>{html.escape(text)}</code></td>"
                     f"<td>{html.escape(row['label_name'])}</td><td>{html.escape(row['predicted_name'])}</td>"
                     f"<td>{row['confidence']:.3f}</td></tr>")
    more = f"<i>and {len(rows) - limit} more</i>" if len(rows) > limit else ""
    return "".join(lines) + "</table>" + more


def example_html(row: dict) -> str:
    verdict = "right" if row["label"] == row["predicted"] else "wrong"
    return (f'<div class="wb-example"><b>example {row["index"]}</b>: true <b>{html.escape(row["label_name"])}</b>, '
            f'predicted <b>{html.escape(row["predicted_name"])}</b> with p={row["confidence"]:.3f} ({verdict})'
            f'<pre style="white-space:pre-wrap">{html.escape(row["text"])}</pre></div>')


def probabilities_figure(row: dict, label_names: list[str]) -> go.Figure:
    colours = ["#2a9d8f" if i == row["label"] else "#999" for i in range(len(label_names))]
    figure = go.Figure(go.Bar(x=label_names, y=row["probs"], marker_color=colours,
                              hovertemplate="%{x}: %{y:.3f}<extra></extra>"))
    figure.update_layout(title=f"example {row['index']}: class probabilities (true class in green)",
                         yaxis=dict(title="probability", range=[0, 1]), template="plotly_white", height=320)
    return figure


class ConfusionExplorer(widgets.VBox):
    """The confusion matrix as a FigureWidget; clicking a cell lists its examples with text and probability."""

    def __init__(self, rows: list[dict], label_names: list[str], *,
                 title: str = "confusion matrix (click a cell)") -> None:
        self.rows, self.label_names = rows, label_names
        self.matrix = confusion_from_rows(rows, len(label_names))
        self.figure = FigureWidget(confusion_matrix_figure(self.matrix, label_names, title=title))
        self.figure.data[0].on_click(self._clicked)
        self.caption = widgets.HTML("<i>click a cell to list its examples</i>")
        self.examples = widgets.HTML()
        self.selected: tuple[int, int] | None = None
        super().__init__([self.figure, self.caption, self.examples])

    def _clicked(self, trace, points, selector) -> None:
        if points.xs and points.ys:
            self.select(self.label_names.index(points.ys[0]), self.label_names.index(points.xs[0]))

    def select(self, true: int, predicted: int) -> list[dict]:
        """What a click on cell (true, predicted) does."""
        cell = examples_in_cell(self.rows, true, predicted)
        self.selected = (true, predicted)
        self.caption.value = (f"<b>{len(cell)}</b> examples of <b>{html.escape(self.label_names[true])}</b> "
                              f"predicted <b>{html.escape(self.label_names[predicted])}</b>")
        self.examples.value = examples_table_html(cell)
        return cell


class ExampleBrowser(widgets.VBox):
    """One example at a time: its text, prediction and confidence, and all class probabilities;
    `only` narrows to the mistakes."""

    def __init__(self, rows: list[dict], label_names: list[str]) -> None:
        if not rows:
            raise ValueError("no examples to browse")
        self.rows, self.label_names = rows, label_names
        self.only = widgets.ToggleButtons(options=["all", "mistakes"], value="all", description="show", style=LABELS)
        self.index = widgets.IntSlider(value=0, min=0, max=len(rows) - 1, description="example",
                                       continuous_update=False, style=LABELS)
        self.text = widgets.HTML()
        self.figure = FigureWidget(probabilities_figure(rows[0], label_names))
        self.only.observe(self._filter, names="value")
        self.index.observe(self._show, names="value")
        super().__init__([widgets.HBox([self.only, self.index]), self.text, self.figure])
        self._filter()

    @property
    def shown(self) -> list[dict]:
        if self.only.value == "mistakes":
            return [r for r in self.rows if r["label"] != r["predicted"]] or self.rows
        return self.rows

    def _filter(self, change=None) -> None:
        self.index.max = len(self.shown) - 1
        self._show()

    def _show(self, change=None) -> None:
        row = self.shown[min(self.index.value, len(self.shown) - 1)]
        self.text.value = example_html(row)
        new = probabilities_figure(row, self.label_names)
        with self.figure.batch_update():
            self.figure.data[0].y = new.data[0].y
            self.figure.data[0].marker.color = new.data[0].marker.color
            self.figure.layout.title.text = new.layout.title.text


def token_predictions(module, text_encoder, text: str, label_names: list[str],
                      char_labels: Sequence[int] | None = None) -> list[dict]:
    """Each id of `text` under a token head: its characters, predicted label and confidence, and the true
    label when `char_labels` (one per character) are given."""
    probabilities, encoded = class_probabilities(module, text_encoder, [text])
    probs, item = probabilities[0], encoded[0]
    if probs and isinstance(probs[0], float):
        raise ValueError("token_predictions needs a token-classification head")
    truth = token_labels(item, char_labels).tolist() if char_labels is not None else [IGNORE] * len(item.ids)
    tokens = []
    for (start, end), p, true in zip(item.offsets, probs, truth, strict=False):
        if start == end:  # a special token covers no text
            continue
        predicted = max(range(len(p)), key=p.__getitem__)
        tokens.append({"text": text[start:end], "start": start, "end": end, "predicted": predicted,
                       "predicted_name": label_names[predicted], "confidence": p[predicted],
                       "label": None if true == IGNORE else int(true)})
    return tokens


def token_head_html(tokens: list[dict], label_names: list[str]) -> str:
    """Tokens coloured by predicted label (a legend above); a wrong one is underlined in red; hover shows details."""
    legend = " ".join(span(name, LABEL_COLOURS[i % len(LABEL_COLOURS)]) for i, name in enumerate(label_names))
    parts = []
    for token in tokens:
        wrong = token["label"] is not None and token["label"] != token["predicted"]
        title = f"{token['predicted_name']} p={token['confidence']:.2f}"
        if token["label"] is not None:
            title += f" (true {label_names[token['label']]})"
        style = 'style="border-bottom:2px solid red"' if wrong else ""
        colour = LABEL_COLOURS[token["predicted"] % len(LABEL_COLOURS)]
        parts.append(f"<span {style}>" + span(token["text"], colour, title) + "</span>")
    return f'<div class="wb-token-head"><div>{legend}</div><div style="line-height:2">{"".join(parts)}</div></div>'


class TokenHeadBrowser(widgets.VBox):
    """A token head's predictions on one text at a time (a slider over `texts`), as coloured tokens."""

    def __init__(self, module, text_encoder, texts: Sequence[str], label_names: list[str],
                 char_labels: Sequence[Sequence[int]] | None = None) -> None:
        if not texts:
            raise ValueError("no texts to show")
        self.module, self.text_encoder, self.texts, self.label_names = module, text_encoder, list(texts), label_names
        self.char_labels = char_labels
        self.index = widgets.IntSlider(value=0, min=0, max=len(self.texts) - 1, description="text",
                                       continuous_update=False, style=LABELS)
        self.view = widgets.HTML()
        self.tokens: list[dict] = []
        self.index.observe(self._show, names="value")
        super().__init__([self.index, self.view])
        self._show()

    def _show(self, change=None) -> None:
        i = self.index.value
        labels = self.char_labels[i] if self.char_labels is not None else None
        self.tokens = token_predictions(self.module, self.text_encoder, self.texts[i], self.label_names, labels)
        self.view.value = token_head_html(self.tokens, self.label_names)
