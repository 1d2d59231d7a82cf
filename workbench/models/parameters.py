"""Counting a model's parameters the way a researcher means it: each tensor once, however many names it has."""

from __future__ import annotations

from torch import nn


def unique_parameter_count(module: nn.Module, *, trainable_only: bool = False) -> int:
    """Parameters of `module`, a tied weight (an LM head sharing the embedding) counted once."""
    params = {id(p): p for p in module.parameters() if p.requires_grad or not trainable_only}
    return sum(p.numel() for p in params.values())


def ungrouped_parameters(model: nn.Module, groups: list[nn.Module]) -> list[str]:
    """Names of `model`'s parameters in none of `groups`: a backbone's layer groups must cover it all, or a
    strategy that freezes and unfreezes by group would silently leave those weights out."""
    grouped = {id(p) for group in groups for p in group.parameters()}
    return [name for name, p in model.named_parameters() if id(p) not in grouped]
