"""Masked-token prediction, an encoder's counterpart of a generated sample: hide some tokens, read its guesses.

`fill_in` is the plain-text version (the pretraining notebook's samples); `FillInPlayground` is the probe
notebook's widget, standing where a decoder gets the generation playground and the logit lens: the text with
its hidden tokens replaced by the encoder's guesses, each coloured by the probability it gave the true token,
and a chart of its ten likeliest tokens at the hidden position the slider picks.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import ipywidgets as widgets
import plotly.graph_objects as go
import torch

from workbench.models.encoder import Encoder, hidden_positions
from workbench.probe.figure_widget import FigureWidget
from workbench.probe.tokens import probability_colour, span, token_label


@dataclass(frozen=True)
class FilledIn:
    text: str  # the original
    masked: str  # with each hidden token shown as `blank`
    filled: str  # with each hidden token replaced by the encoder's likeliest one
    positions: list[int]  # token positions hidden
    right: int  # of them predicted exactly

    def __str__(self) -> str:
        return (f"text:   {self.text!r}\nmasked: {self.masked!r}\nfilled: {self.filled!r}\n"
                f"{self.right} of {len(self.positions)} hidden tokens predicted exactly")


@torch.no_grad()
def masked_guesses(model: Encoder, tokenizer, text: str, *, rate: float = 0.15, seed: int = 0,
                   k: int = 10) -> list[dict]:
    """Every token of `text` (its first block_size), and at each hidden one the encoder's view of it: its
    likeliest token, the probability it gave the true one, and its top-`k` alternatives."""
    if not isinstance(model, Encoder):
        raise TypeError(f"masked-token prediction needs a workbench Encoder (masked_lm), got {type(model).__name__}")
    ids = tokenizer.encode(text)[: model.config.block_size]
    positions = set(hidden_positions(len(ids), rate, seed))
    device = next(model.parameters()).device
    masked = torch.tensor([ids], device=device)
    masked[0, sorted(positions)] = model.config.mask_token_id
    model.eval()
    logits = model(masked).logits[0].float()
    logits[:, model.config.mask_token_id] = float("-inf")  # never a guess
    probabilities = logits.softmax(-1)
    rows = []
    for position, token in enumerate(ids):
        row = {"position": position, "id": token, "token": tokenizer.decode([token]), "hidden": position in positions}
        if row["hidden"]:
            top = probabilities[position].topk(min(k, probabilities.shape[-1]))
            row.update(guess=int(top.indices[0]), guess_token=tokenizer.decode([int(top.indices[0])]),
                       prob=float(probabilities[position, token]),
                       alternatives=[(token_label(tokenizer, i), float(p))
                                     for i, p in zip(top.indices.tolist(), top.values.tolist(), strict=True)])
        rows.append(row)
    return rows


def fill_in(model: Encoder, tokenizer, text: str, *, rate: float = 0.15, seed: int = 0,
            blank: str = "_") -> FilledIn:
    """Hide `rate` of `text`'s tokens (seeded, at least one) behind the mask token and fill each with the top guess."""
    rows = masked_guesses(model, tokenizer, text, rate=rate, seed=seed, k=1)
    ids = [row["id"] for row in rows]
    filled = [row["guess"] if row["hidden"] else row["id"] for row in rows]
    masked = "".join(blank if row["hidden"] else row["token"] for row in rows)
    hidden = [row for row in rows if row["hidden"]]
    return FilledIn(tokenizer.decode(ids), masked, tokenizer.decode(filled), [row["position"] for row in hidden],
                    sum(row["guess"] == row["id"] for row in hidden))


def fill_in_html(rows: list[dict]) -> str:
    """The text in grey where it was given; each hidden token shown as the encoder's guess on a red-to-green
    background by the probability it gave the true token (a wrong guess struck through); hover for its top 10."""
    parts = []
    for row in rows:
        if not row["hidden"]:
            parts.append(f'<span style="color:#777;font-family:monospace;white-space:pre">'
                         f'{html.escape(row["token"])}</span>')
            continue
        wrong = row["guess"] != row["id"]
        title = (f"true {row['token']!r}: p={row['prob']:.3f}\n"
                 + "\n".join(f"{t!s:>8}  {p:.3f}" for t, p in row["alternatives"]))
        attrs = f'data-position="{row["position"]}"' + (' data-wrong="1"' if wrong else "")
        shown = span(row["guess_token"], probability_colour(row["prob"]), title, attrs)
        parts.append(shown.replace('style="', 'style="text-decoration:line-through;', 1) if wrong else shown)
    return '<div class="wb-fill-in" style="line-height:1.8">' + "".join(parts) + "</div>"


def guesses_figure(row: dict | None) -> go.Figure:
    if row is None:
        tokens, probs, title = [], [], "no hidden token"
    else:
        tokens, probs = [t for t, _ in row["alternatives"]], [p for _, p in row["alternatives"]]
        title = (f"top-10 at hidden position {row['position']}: true {row['token']!r} (p={row['prob']:.3f}), "
                 f"guess {row['guess_token']!r}")
    figure = go.Figure(go.Bar(x=probs, y=tokens, orientation="h", hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    figure.update_layout(title=title, xaxis_title="probability", yaxis=dict(autorange="reversed"),
                         template="plotly_white", height=340)
    return figure


class FillInPlayground(widgets.VBox):
    """A text, the share of its tokens to hide and a seed; the encoder's guesses coloured in; a slider choosing
    which hidden token's alternatives to chart. Controls report when let go of, not on every keystroke."""

    def __init__(self, model: Encoder, tokenizer, text: str = "def add(a, b):\n    return a + b",
                 rate: float = 0.15) -> None:
        self.model, self.tokenizer = model, tokenizer
        style = dict(continuous_update=False, style={"description_width": "initial"})
        self.text = widgets.Textarea(value=text, description="text", layout=widgets.Layout(width="60%"), **style)
        self.rate = widgets.FloatSlider(value=rate, min=0.05, max=1.0, step=0.05, description="hidden share", **style)
        self.seed = widgets.IntSlider(value=0, min=0, max=100, description="seed", **style)
        self.hidden = widgets.IntSlider(value=0, min=0, max=0, description="hidden #", **style)
        self.summary, self.output, self.message = widgets.HTML(), widgets.HTML(), widgets.HTML()
        self.rows: list[dict] = []
        self.guesses = FigureWidget(guesses_figure(None))
        for control in (self.text, self.rate, self.seed):
            control.observe(self.refill, names="value")
        self.hidden.observe(self._show_hidden, names="value")
        super().__init__([widgets.VBox([self.text, widgets.HBox([self.rate, self.seed])]), self.message,
                          self.summary, self.output, self.hidden, self.guesses])
        self.refill()

    @property
    def hidden_rows(self) -> list[dict]:
        return [row for row in self.rows if row["hidden"]]

    def refill(self, change=None) -> None:
        try:
            self.rows = masked_guesses(self.model, self.tokenizer, self.text.value, rate=self.rate.value,
                                       seed=self.seed.value)
        except ValueError as error:
            self.message.value = f"<b>{html.escape(str(error))}</b>"
            return
        self.message.value = ""
        hidden = self.hidden_rows
        right = sum(row["guess"] == row["id"] for row in hidden)
        self.summary.value = f"<b>{right}</b> of <b>{len(hidden)}</b> hidden tokens guessed exactly"
        self.output.value = fill_in_html(self.rows)
        self.hidden.max = max(0, len(hidden) - 1)
        self._show_hidden()

    def _show_hidden(self, change=None) -> None:
        hidden = self.hidden_rows
        row = hidden[min(self.hidden.value, len(hidden) - 1)] if hidden else None
        new = guesses_figure(row)
        with self.guesses.batch_update():
            self.guesses.data[0].x, self.guesses.data[0].y = new.data[0].x, new.data[0].y
            self.guesses.layout.title.text = new.layout.title.text
