"""Classification heads: one label per sequence, or one label per token.

Both are a dropout and a linear layer; they differ in what they read (a pooled
vector or every position) and in what their loss ignores (token labels of
-100 mark padding, special tokens and unlabelled characters).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from workbench.config import ConfigError
from workbench.heads.pooling import check_pooling, pool

IGNORE_INDEX = -100


def _check_classes(num_classes: int) -> int:
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ConfigError(f"a classification head needs num_classes >= 2, got {num_classes!r}")
    return num_classes


def _linear(hidden_size: int, outputs: int) -> nn.Linear:
    # Small weights and no bias offset: the head starts near uniform, so early
    # gradients reach the base without a large random loss to undo first.
    layer = nn.Linear(hidden_size, outputs)
    nn.init.normal_(layer.weight, std=0.02)
    nn.init.zeros_(layer.bias)
    return layer


def masked_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over positions whose label is not -100; 0 (with a graph) when there are none."""
    losses = F.cross_entropy(
        logits.flatten(0, -2).float(), labels.flatten(), ignore_index=IGNORE_INDEX, reduction="sum"
    )
    count = (labels != IGNORE_INDEX).sum().clamp(min=1)
    return losses / count


class SequenceClassificationHead(nn.Module):
    kind = "sequence_classification"

    def __init__(self, hidden_size: int, num_classes: int, pooling: str = "mean", dropout: float = 0.1) -> None:
        super().__init__()
        self.num_classes = _check_classes(num_classes)
        self.pooling = check_pooling(pooling)
        self.dropout = nn.Dropout(dropout)
        self.classifier = _linear(hidden_size, num_classes)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, T, H) -> (B, num_classes) logits."""
        return self.classifier(self.dropout(pool(hidden, attention_mask, self.pooling)))

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), labels)


class TokenClassificationHead(nn.Module):
    kind = "token_classification"

    def __init__(self, hidden_size: int, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.num_classes = _check_classes(num_classes)
        self.dropout = nn.Dropout(dropout)
        self.classifier = _linear(hidden_size, num_classes)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, T, H) -> (B, T, num_classes) logits; padded positions are scored too, and ignored by the loss."""
        return self.classifier(self.dropout(hidden))

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return masked_cross_entropy(logits, labels)
