"""The generation playground: sample a continuation, colour each new token by the probability the model gave it,
and list the ten tokens it weighed against each one."""

from __future__ import annotations

import html

import ipywidgets as widgets
import plotly.graph_objects as go
import torch

from workbench.probe.figure_widget import FigureWidget
from workbench.probe.tokens import probability_colour, prompt_ids, span, token_label


@torch.no_grad()
def token_probabilities(model, tokenizer, ids: list[int], start: int, *, k: int = 10) -> list[dict]:
    """For each id from position `start` on: its probability under the model given the ids before it
    (temperature 1, no filtering) and the model's top-k alternatives there.

    Positions further back than the model's block_size from the end are scored on the last window only,
    so a long sequence keeps its most recent tokens' scores."""
    if not 1 <= start <= len(ids):
        raise ValueError(f"start must be in 1..{len(ids)} (a token needs at least one before it), got {start}")
    model.eval()
    window_start = max(0, len(ids) - model.config.block_size)
    device = next(model.parameters()).device
    window = torch.tensor([ids[window_start:]], dtype=torch.long, device=device)
    probs = model(window).logits[0].float().softmax(-1)  # row i predicts ids[window_start + i + 1]
    rows = []
    for position in range(max(start, window_start + 1), len(ids)):
        dist = probs[position - window_start - 1]
        top = torch.topk(dist, min(k, dist.numel()))
        rows.append({
            "position": position,
            "id": ids[position],
            "token": tokenizer.id_to_token(ids[position]),
            "prob": float(dist[ids[position]]),
            "alternatives": [(token_label(tokenizer, i), float(p))
                             for i, p in zip(top.indices.tolist(), top.values.tolist(), strict=True)],
        })
    return rows


def sample_with_probabilities(model, tokenizer, prompt: str, *, max_new_tokens: int = 40, temperature: float = 0.8,
                              top_k: int | None = None, top_p: float | None = 0.95, seed: int | None = 0) -> dict:
    """The prompt's tokens and the sampled tokens, each with its probability and top-10 alternatives."""
    idx = prompt_ids(model, tokenizer, prompt)
    out = model.generate(idx, max_new_tokens, temperature=temperature, top_k=top_k or None, top_p=top_p, seed=seed)
    ids = out[0].tolist()
    start = idx.shape[1]
    return {
        "prompt": tokenizer.decode(ids[:start]),
        "tokens": token_probabilities(model, tokenizer, ids, start) if len(ids) > start else [],
    }


def coloured_html(sample: dict) -> str:
    """The prompt in plain grey, then each sampled token on a red-to-green background by its probability;
    hovering a token lists its top-10 alternatives."""
    parts = [f'<span style="color:#777;font-family:monospace;white-space:pre">{html.escape(sample["prompt"])}</span>']
    for row in sample["tokens"]:
        title = f"p={row['prob']:.3f}\n" + "\n".join(f"{t!s:>8}  {p:.3f}" for t, p in row["alternatives"])
        parts.append(span(row["token"], probability_colour(row["prob"]), title, f'data-position="{row["position"]}"'))
    return '<div class="wb-playground" style="line-height:1.8">' + "".join(parts) + "</div>"


def alternatives_figure(row: dict | None) -> go.Figure:
    if row is None:
        tokens, probs, title = [], [], "no sampled token"
    else:
        tokens, probs = [t for t, _ in row["alternatives"]], [p for _, p in row["alternatives"]]
        sampled = token_label_text(row["token"])
        title = f"top-10 at position {row['position']}: sampled {sampled!r} (p={row['prob']:.3f})"
    figure = go.Figure(go.Bar(x=probs, y=tokens, orientation="h", hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    figure.update_layout(title=title, xaxis_title="probability", yaxis=dict(autorange="reversed"),
                         template="plotly_white", height=340)
    return figure


def token_label_text(text: str) -> str:
    return text.replace("\n", "↵")


class GenerationPlayground(widgets.VBox):
    """Prompt and sampling controls; the coloured output; a token slider choosing whose alternatives to chart.

    Every control reports its value when let go of (the prompt when it loses focus), not on every keystroke
    or slider tick, so typing a prompt generates once, not once per character. `generations` counts them."""

    def __init__(self, model, tokenizer, prompt: str = "def ", max_new_tokens: int = 40) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.generations = 0
        # Labels at their full width (the default cuts "temperature" to "temperat…").
        style = dict(continuous_update=False, style={"description_width": "initial"})
        self.prompt = widgets.Textarea(value=prompt, description="prompt",
                                       placeholder="a prompt; leave the box to generate",
                                       layout=widgets.Layout(width="60%"), **style)
        self.temperature = widgets.FloatSlider(value=0.8, min=0.0, max=2.0, step=0.05, description="temperature",
                                               **style)
        self.top_k = widgets.IntSlider(value=0, min=0, max=200, description="top-k (0=off)", **style)
        self.top_p = widgets.FloatSlider(value=0.95, min=0.05, max=1.0, step=0.05, description="top-p", **style)
        self.max_new_tokens = widgets.IntSlider(value=max_new_tokens, min=1, max=200, description="new tokens", **style)
        self.seed = widgets.IntSlider(value=0, min=0, max=100, description="seed", **style)
        self.token = widgets.IntSlider(value=0, min=0, max=0, description="token #", **style)
        self.output = widgets.HTML()
        self.message = widgets.HTML()
        self.sample: dict = {"prompt": "", "tokens": []}
        self.alternatives = FigureWidget(alternatives_figure(None))
        for control in (self.prompt, self.temperature, self.top_k, self.top_p, self.max_new_tokens, self.seed):
            control.observe(self.regenerate, names="value")
        self.token.observe(self._show_token, names="value")
        controls = widgets.VBox([self.prompt, widgets.HBox([self.temperature, self.top_k, self.top_p]),
                                 widgets.HBox([self.max_new_tokens, self.seed])])
        super().__init__([controls, self.message, self.output, self.token, self.alternatives])
        self.regenerate()

    def regenerate(self, change=None) -> None:
        self.generations += 1
        try:
            self.sample = sample_with_probabilities(
                self.model, self.tokenizer, self.prompt.value, max_new_tokens=self.max_new_tokens.value,
                temperature=self.temperature.value, top_k=self.top_k.value or None, top_p=self.top_p.value,
                seed=self.seed.value,
            )
        except ValueError as error:
            self.message.value = f"<b>{html.escape(str(error))}</b>"
            return
        self.message.value = ""
        self.output.value = coloured_html(self.sample)
        self.token.max = max(0, len(self.sample["tokens"]) - 1)
        self._show_token()

    def _show_token(self, change=None) -> None:
        tokens = self.sample["tokens"]
        row = tokens[min(self.token.value, len(tokens) - 1)] if tokens else None
        new = alternatives_figure(row)
        with self.alternatives.batch_update():
            self.alternatives.data[0].x, self.alternatives.data[0].y = new.data[0].x, new.data[0].y
            self.alternatives.layout.title.text = new.layout.title.text
