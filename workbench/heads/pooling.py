"""One vector per sequence from per-token hidden states.

Which position summarises a sequence depends on the base: a causal decoder's
last real token is the only one that has seen the whole input, an encoder's
first token ([CLS]) was trained to summarise it, and the mean over real tokens
works for either. Padding never contributes.
"""

from __future__ import annotations

import torch

from workbench.config import ConfigError
from workbench.heads.choices import POOLINGS


def check_pooling(how: str) -> str:
    if how not in POOLINGS:
        raise ConfigError(f"unknown pooling {how!r}; valid poolings are: {', '.join(POOLINGS)}")
    return how


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, how: str) -> torch.Tensor:
    """(B, T, H) hidden states and (B, T) 0/1 mask -> (B, H)."""
    check_pooling(how)
    mask = attention_mask.to(hidden.dtype).unsqueeze(-1)
    if how == "mean":
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
    positions = torch.arange(hidden.shape[1], device=hidden.device)
    real = attention_mask.bool()
    if how == "last":
        # The highest real position: right for right padding, and for left padding too.
        index = torch.where(real, positions, -1).argmax(dim=1)
    else:
        index = torch.where(real, -positions, -hidden.shape[1]).argmax(dim=1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), index]
