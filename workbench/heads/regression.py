"""Regression head: one real number per sequence from a pooled vector, trained with squared error."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from workbench.heads.pooling import check_pooling, pool


class RegressionHead(nn.Module):
    kind = "regression"
    num_classes = None

    def __init__(self, hidden_size: int, pooling: str = "mean", dropout: float = 0.1) -> None:
        super().__init__()
        self.pooling = check_pooling(pooling)
        self.dropout = nn.Dropout(dropout)
        self.regressor = nn.Linear(hidden_size, 1)
        nn.init.normal_(self.regressor.weight, std=0.02)
        nn.init.zeros_(self.regressor.bias)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, T, H) -> (B,) predictions."""
        return self.regressor(self.dropout(pool(hidden, attention_mask, self.pooling))).squeeze(-1)

    def loss(self, predictions: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(predictions.float(), labels.float())
