"""The language-model head for continued pretraining and supervised fine-tuning.

It adds no weights: it reads hidden states through the base's own output
layer, so the model keeps the vocabulary it was pretrained with. Labels are
aligned with the input ids (-100 on prompt and padding tokens), and the loss
shifts them: position t predicts the label at t + 1, so only completion tokens
are scored.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from workbench.heads.classification import masked_cross_entropy


class LMHead(nn.Module):
    kind = "lm"
    num_classes = None

    def __init__(self, output: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        if not callable(output):
            raise TypeError(f"LMHead needs a callable hidden -> logits (a decoder backbone's .logits), got {output!r}")
        # A plain attribute, not a submodule: the output layer's weights belong to the base.
        self.output = output

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, T, H) -> (B, T, vocab) next-token logits."""
        return self.output(hidden)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean next-token cross-entropy over the labelled (completion) tokens."""
        return masked_cross_entropy(logits[:, :-1], labels[:, 1:])
