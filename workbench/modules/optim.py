"""AdamW with decay on matrices only, and the warmup-then-cosine schedule.

Norm gains and biases are not decayed: pulling them towards zero fights the
normalisation instead of regularising the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from workbench.config import ConfigError

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(frozen=True)
class OptimConfig:
    learning_rate: float = 3e-4
    min_lr_ratio: float = 0.1  # the cosine ends at learning_rate * min_lr_ratio
    warmup_steps: int = 100
    max_steps: int = 1000  # the schedule's horizon
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95

    def __post_init__(self) -> None:
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate must be positive, got {self.learning_rate}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ConfigError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.max_steps < 1 or not 0 <= self.warmup_steps <= self.max_steps:
            raise ConfigError(
                f"need 0 <= warmup_steps <= max_steps and max_steps >= 1, got {self.warmup_steps} and {self.max_steps}"
            )


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: matrices (and embeddings) decay, vectors don't. Tied weights appear once."""
    decay, no_decay = [], []
    for param in {id(p): p for p in model.parameters() if p.requires_grad}.values():
        (decay if param.dim() >= 2 else no_decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def adamw(model: nn.Module, config: OptimConfig) -> torch.optim.AdamW:
    """AdamW over `parameter_groups`, with the fused kernel (one launch per step; CPU and CUDA)."""
    import torch  # here: OptimConfig above is read by the settings' spec check, which loads no framework

    return torch.optim.AdamW(
        parameter_groups(model, config.weight_decay),
        lr=config.learning_rate,
        betas=(config.beta1, config.beta2),
        fused=True,
    )


def warmup_cosine(step: int, config: OptimConfig) -> float:
    """Learning-rate multiplier: linear warmup from 0, then cosine down to min_lr_ratio."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps))
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return config.min_lr_ratio + (1.0 - config.min_lr_ratio) * cosine
