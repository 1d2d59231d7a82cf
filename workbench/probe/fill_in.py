"""Masked-token prediction, an encoder's counterpart of a generated sample: hide some tokens, read its guesses."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from workbench.models.encoder import Encoder, fill_masks


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


def fill_in(model: Encoder, tokenizer, text: str, *, rate: float = 0.15, seed: int = 0,
            blank: str = "_") -> FilledIn:
    """Hide `rate` of `text`'s tokens (seeded, at least one) behind the mask token and fill each with the top guess."""
    ids = tokenizer.encode(text)[: model.config.block_size]
    if not ids:
        raise ValueError("the text is empty: give at least one character to hide and predict")
    count = min(len(ids), max(1, round(rate * len(ids))))
    generator = torch.Generator().manual_seed(seed)
    positions = sorted(torch.randperm(len(ids), generator=generator)[:count].tolist())
    device = next(model.parameters()).device
    masked = torch.tensor([ids], device=device)
    masked[0, positions] = model.config.mask_token_id
    top, _ = fill_masks(model, masked, top_k=1)
    guesses = {p: int(top[0, p, 0]) for p in positions}
    filled = [guesses.get(i, token) for i, token in enumerate(ids)]
    pieces = [blank if i in guesses else tokenizer.decode([token]) for i, token in enumerate(ids)]
    return FilledIn(tokenizer.decode(ids), "".join(pieces), tokenizer.decode(filled), positions,
                    sum(guesses[p] == ids[p] for p in positions))
