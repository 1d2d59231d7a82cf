"""Shared by the model views: a prompt as ids the model accepts, tokens as readable labels, colours for
probabilities."""

from __future__ import annotations

import html
from collections.abc import Iterator

import torch

WHITESPACE = {" ": "·", "\n": "↵", "\t": "→"}


def prompt_ids(model, tokenizer, prompt: str) -> torch.Tensor:
    """(1, T) ids on the model's device; an empty prompt is an error, a long one keeps its last block_size ids."""
    if not isinstance(prompt, str) or not prompt:
        raise ValueError("the prompt is empty: give at least one character")
    ids = tokenizer.encode(prompt)
    if not ids:
        raise ValueError(f"the prompt {prompt!r} encodes to no tokens")
    ids = ids[-model.config.block_size :]
    device = next(model.parameters()).device
    return torch.tensor([ids], dtype=torch.long, device=device)


def token_label(tokenizer, token_id: int) -> str:
    """A token as text with whitespace made visible (a space is ·, a newline ↵)."""
    text = tokenizer.id_to_token(int(token_id))
    return "".join(WHITESPACE.get(ch, ch) for ch in text)


def probability_colour(p: float) -> str:
    """Red for unlikely, through yellow, to green for likely: a background for a coloured token."""
    p = min(1.0, max(0.0, float(p)))
    hue = 120 * p  # 0 = red, 60 = yellow, 120 = green
    return f"hsl({hue:.0f}, 75%, 80%)"


def span(text: str, background: str, title: str = "", attrs: str = "") -> str:
    """One token as an inline HTML span; `title` shows on hover."""
    shown = html.escape(text).replace("\n", "↵<br>")
    return (f'<span class="wb-token" {attrs} title="{html.escape(title, quote=True)}" '
            f'style="background:{background};padding:1px 0;border-radius:2px;font-family:monospace;'
            f'white-space:pre">{shown}</span>')


def padded_batches(encoded: list, pad_id: int, batch_size: int) -> Iterator[tuple[list, torch.Tensor, torch.Tensor]]:
    """(encodings, ids, mask) per batch of `batch_size` encodings, right-padded to the batch's longest."""
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start : start + batch_size]
        length = max(1, max(len(e.ids) for e in chunk))
        ids = torch.full((len(chunk), length), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), length), dtype=torch.long)
        for row, item in enumerate(chunk):
            ids[row, : len(item.ids)] = torch.tensor(item.ids, dtype=torch.long)
            mask[row, : len(item.ids)] = 1
        yield chunk, ids, mask
