"""The optimiser (AdamW, or Muon on the hidden matrices) and the warmup-then-cosine schedule.

Norm gains and biases are not decayed: pulling them towards zero fights the
normalisation instead of regularising the model.

`optimizer="muon"` follows the recipe behind modded-nanogpt's speedrun: Muon
(momentum, then the update orthogonalized by a Newton-Schulz iteration) on the
hidden matrices, the attention and MLP projections; AdamW on the embeddings, the
output head (tied or not: a tied head is the embedding matrix) and every 1-D gain.

The learning-rate relation is Moonshot's (Liu et al. 2025, "Muon is Scalable for LLM
Training"; torch's `adjust_lr_fn="match_rms_adamw"`): each Muon update is scaled by
0.2 * sqrt(max(rows, cols)), the RMS of a typical AdamW update, so both halves run at
`learning_rate` with one `weight_decay` (decoupled, the same form) under one schedule.
Chosen over Keller Jordan's "original" scaling, sqrt(max(1, rows/cols)) at its own rate
(~0.02-0.05), because one rate keeps a run's description and sweeps one-dimensional: the
`learning_rate` a spec or compare.ipynb already sweeps, and `optimizer` switches with nothing
else to set. It makes the rates comparable, not equally good: on the nanoGPT Shakespeare-char
recipe Muon's best rate was 1e-2 against AdamW's 1e-3 (benchmarks/training.py, BEST_RECIPE), so
sweep `learning_rate` when switching.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from workbench.config import ConfigError
from workbench.modules.choices import OPTIMIZERS

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
    optimizer: str = "adamw"  # one of choices.OPTIMIZERS; "muon": Muon on the hidden matrices, AdamW on the rest
    muon_momentum: float = 0.95  # Muon's (Nesterov) momentum; its rate is learning_rate (see the module docstring)

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; valid optimizers are: {', '.join(OPTIMIZERS)}")
        if not 0.0 <= self.muon_momentum < 1.0:
            raise ConfigError(f"muon_momentum must be in [0, 1), got {self.muon_momentum}")
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate must be positive, got {self.learning_rate}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ConfigError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.max_steps < 1 or not 0 <= self.warmup_steps <= self.max_steps:
            raise ConfigError(
                f"need 0 <= warmup_steps <= max_steps and max_steps >= 1, got {self.warmup_steps} and {self.max_steps}"
            )


def parameter_groups(model: nn.Module | list[nn.Parameter], weight_decay: float) -> list[dict]:
    """Two groups: matrices (and embeddings) decay, vectors don't. Tied weights appear once.

    `model` may also be a list of parameters (what Muon leaves to AdamW).
    """
    params = model.parameters() if not isinstance(model, list) else model
    decay, no_decay = [], []
    for param in {id(p): p for p in params if p.requires_grad}.values():
        (decay if param.dim() >= 2 else no_decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def adamw(model: nn.Module | list[nn.Parameter], config: OptimConfig,
          groups: list[dict] | None = None) -> torch.optim.AdamW:
    """AdamW over `parameter_groups` (or `groups`, when the caller made them), with the fused kernel
    (one launch per step; CPU and CUDA)."""
    import torch  # here: OptimConfig above is read by the settings' spec check, which loads no framework

    return torch.optim.AdamW(
        groups if groups is not None else parameter_groups(model, config.weight_decay),
        lr=config.learning_rate,
        betas=(config.beta1, config.beta2),
        fused=True,
    )


def output_heads(model: nn.Module) -> list[nn.Module]:
    """The modules that map hidden states to outputs: any `lm_head` in the tree, and `get_output_embeddings()`."""
    from torch import nn

    heads = [head for module in model.modules() if isinstance(head := getattr(module, "lm_head", None), nn.Module)]
    unembedding = model.get_output_embeddings() if callable(getattr(model, "get_output_embeddings", None)) else None
    return heads + ([unembedding] if isinstance(unembedding, nn.Module) else [])


def hidden_matrices(model: nn.Module) -> list[nn.Parameter]:
    """What Muon takes: every trainable 2-D parameter except embedding tables and output heads' weights.

    Embeddings are found by type (`nn.Embedding`), heads by `output_heads`, never by parameter
    names; a tied head is the embedding matrix, so it stays out either way. In the Decoder that
    leaves exactly the attention and MLP projections; in a model without blocks (or any other),
    every linear layer's weight but the head's. Each parameter once, in registration order.
    """
    from torch import nn

    left_out = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    left_out |= {id(p) for head in output_heads(model) for p in head.parameters()}
    unique = {id(p): p for p in model.parameters() if p.requires_grad}
    return [p for key, p in unique.items() if p.dim() == 2 and key not in left_out]


def build_optimizer(
    model: nn.Module, config: OptimConfig, groups: list[dict] | None = None
) -> torch.optim.Optimizer:
    """The one optimizer a run steps: fused AdamW (`adamw`), or Muon + AdamW as one (`muon.MuonWithAdamW`).

    `groups`: AdamW parameter groups built by the caller (fine-tuning's layer-wise learning
    rates, which gradual unfreezing later adds to); they take AdamW only, since Muon needs its own
    split of the parameters.
    """
    if config.optimizer == "adamw":
        return adamw(model, config, groups)
    if groups is not None:
        raise ConfigError(f"optimizer={config.optimizer!r} splits the parameters itself (hidden matrices to Muon); "
                          "it cannot take prebuilt parameter groups (fine-tuning's): use optimizer='adamw'")
    from workbench.modules.muon import Muon, MuonWithAdamW

    matrices = hidden_matrices(model)
    if not matrices:  # nothing for Muon (an embedding and a head alone): AdamW is the whole optimizer
        return adamw(model, config)
    in_muon = {id(p) for p in matrices}
    rest = [p for p in {id(p): p for p in model.parameters()}.values() if id(p) not in in_muon]
    muon = Muon(
        matrices,
        lr=config.learning_rate,
        weight_decay=config.weight_decay,
        momentum=config.muon_momentum,
        nesterov=True,
        adjust_lr_fn="match_rms_adamw",
    )
    return MuonWithAdamW(muon, adamw(rest, config))


def warmup_cosine(step: int, config: OptimConfig) -> float:
    """Learning-rate multiplier: linear warmup from 0, then cosine down to min_lr_ratio."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps))
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return config.min_lr_ratio + (1.0 - config.min_lr_ratio) * cosine
