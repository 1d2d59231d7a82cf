"""Next token and the logit lens: what the model would predict at the output and at every layer.

The logit lens reads each layer's hidden state through the final norm and the
LM head (`Decoder.logits_from_hidden`), so a layers x positions grid shows
where in depth the eventual prediction appears.
"""

from __future__ import annotations

import ipywidgets as widgets
import plotly.graph_objects as go
import torch

from workbench.probe.figure_widget import FigureWidget
from workbench.probe.tokens import prompt_ids, token_label

LABELS = {"description_width": "initial"}  # widget labels at their full width, never cut short


@torch.no_grad()
def next_token_distribution(model, tokenizer, prompt: str, *, k: int = 10) -> dict:
    """The k most likely next tokens after the prompt, with their probabilities (temperature 1)."""
    model.eval()
    logits = model(prompt_ids(model, tokenizer, prompt)).logits[0, -1].float()
    probs = logits.softmax(-1)
    top = torch.topk(probs, min(k, probs.numel()))
    return {
        "ids": top.indices.tolist(),
        "tokens": [token_label(tokenizer, i) for i in top.indices.tolist()],
        "probs": top.values.tolist(),
    }


@torch.no_grad()
def logit_lens(model, tokenizer, prompt: str) -> dict:
    """For each layer (the embeddings, then each block's output) and each prompt position, the top next token
    and its probability. The last row is the model's own output distribution.

    Returns tokens (the prompt, one label per position), layers (row names), top_ids / top_tokens /
    top_probs (rows = layers, columns = positions)."""
    model.eval()
    idx = prompt_ids(model, tokenizer, prompt)
    out = model(idx, output_hidden_states=True)
    top_ids, top_probs = [], []
    for hidden in out.hidden_states:
        probs = model.logits_from_hidden(hidden)[0].float().softmax(-1)
        best = probs.max(-1)
        top_ids.append(best.indices.tolist())
        top_probs.append(best.values.tolist())
    n_layer = len(out.hidden_states) - 1
    return {
        "tokens": [token_label(tokenizer, i) for i in idx[0].tolist()],
        "layers": ["embeddings", *[f"layer {i}" for i in range(1, n_layer + 1)]],
        "top_ids": top_ids,
        "top_tokens": [[token_label(tokenizer, i) for i in row] for row in top_ids],
        "top_probs": top_probs,
    }


def position_labels(tokens: list[str]) -> list[str]:
    """Axis labels that stay unique when a token repeats."""
    return [f"{i}:{t}" for i, t in enumerate(tokens)]


def logit_lens_figure(lens: dict, *, title: str = "logit lens: top next token at each layer") -> go.Figure:
    figure = go.Figure(go.Heatmap(
        z=lens["top_probs"], x=position_labels(lens["tokens"]), y=lens["layers"], text=lens["top_tokens"],
        texttemplate="%{text}", colorscale="Viridis", zmin=0, zmax=1, colorbar=dict(title="p(top)"),
        hovertemplate="after %{x}<br>%{y}: %{text} (p=%{z:.3f})<extra></extra>",
    ))
    figure.update_layout(title=title, xaxis_title="prompt position (predicting the next token)",
                         template="plotly_white", height=140 + 40 * len(lens["layers"]),
                         xaxis=dict(tickangle=-45))
    return figure


def next_token_figure(distribution: dict, *, title: str = "next token") -> go.Figure:
    figure = go.Figure(go.Bar(x=distribution["probs"], y=distribution["tokens"], orientation="h",
                              hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    figure.update_layout(title=title, xaxis_title="probability", template="plotly_white", height=320,
                         yaxis=dict(autorange="reversed"))
    return figure


class LogitLensWidget(widgets.VBox):
    """A prompt box over the next-token bar chart and the logit-lens heatmap; both redraw when the prompt changes."""

    def __init__(self, model, tokenizer, prompt: str = "def ") -> None:
        self.model, self.tokenizer = model, tokenizer
        self.prompt = widgets.Text(value=prompt, description="prompt", continuous_update=False, style=LABELS,
                                   layout=widgets.Layout(width="60%"))
        self.message = widgets.HTML()
        self.next_token = FigureWidget(next_token_figure(next_token_distribution(model, tokenizer, prompt)))
        self.lens_figure = FigureWidget(logit_lens_figure(logit_lens(model, tokenizer, prompt)))
        self.prompt.observe(self._changed, names="value")
        super().__init__([self.prompt, self.message, widgets.HBox([self.next_token]), self.lens_figure])

    def _changed(self, change=None) -> None:
        try:
            distribution = next_token_distribution(self.model, self.tokenizer, self.prompt.value)
            lens = logit_lens(self.model, self.tokenizer, self.prompt.value)
        except ValueError as error:
            self.message.value = f"<b>{error}</b>"
            return
        self.message.value = ""
        with self.next_token.batch_update():
            self.next_token.data[0].x, self.next_token.data[0].y = distribution["probs"], distribution["tokens"]
        new = logit_lens_figure(lens)
        with self.lens_figure.batch_update():
            heat = self.lens_figure.data[0]
            heat.z, heat.x, heat.y, heat.text = new.data[0].z, new.data[0].x, new.data[0].y, new.data[0].text
            self.lens_figure.layout.height = new.layout.height
