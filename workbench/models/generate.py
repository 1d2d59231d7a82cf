"""Sampling from a decoder: temperature, top-k, nucleus (top-p), seeded.

Kept apart from the model so probes can reuse `filter_logits` to show which
tokens a setting would have allowed.
"""

from __future__ import annotations

import torch
from torch import nn

from workbench.errors import RequestError


def filter_logits(logits: torch.Tensor, *, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """Set logits outside the top-k and outside the smallest nucleus of mass top_p to -inf."""
    if top_k is not None and top_k > 0 and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        # Drop a token when the mass before it already reaches top_p; the top token always stays.
        drop_sorted = (cumulative - sorted_logits.softmax(dim=-1)) >= top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def check_sampling(temperature: float, top_k: int | None, top_p: float | None, max_new_tokens: int) -> None:
    if temperature < 0:
        raise RequestError(f"temperature must be >= 0 (0 means greedy), got {temperature}")
    if top_k is not None and top_k < 0:
        raise RequestError(f"top_k must be >= 0 or None, got {top_k}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise RequestError(f"top_p must be in (0, 1], got {top_p}")
    if max_new_tokens < 0:
        raise RequestError(f"max_new_tokens must be >= 0, got {max_new_tokens}")


@torch.no_grad()
def generate(
    model: nn.Module,
    idx: torch.Tensor,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    use_cache: bool = True,
) -> torch.Tensor:
    """Append `max_new_tokens` sampled tokens to `idx` (B, T); temperature 0 is greedy.

    With `use_cache` and a model whose class says `supports_kv_cache`, the prompt is run
    once and each later step feeds only the token just drawn, with the keys and values
    kept from before. Once the sequence outgrows `block_size`, the context slides (its
    positions shift), so a cache no longer fits: the remaining steps run the last
    `block_size` tokens from scratch, as every step does without the cache.
    """
    check_sampling(temperature, top_k, top_p, max_new_tokens)
    was_training = model.training
    model.eval()
    generator = None
    if seed is not None:
        generator = torch.Generator(device=idx.device).manual_seed(seed)
    block_size = model.config.block_size
    cached = use_cache and getattr(model, "supports_kv_cache", False)
    past = None
    try:
        for _ in range(max_new_tokens):
            if cached and idx.shape[1] <= block_size:
                out = model(idx if past is None else idx[:, -1:], use_cache=True, past=past)
                past = out.past
            else:
                past = None  # past block_size for good: free the cache
                out = model(idx[:, -block_size:])
            logits = out.logits[:, -1, :].float()
            if temperature == 0:
                next_id = logits.argmax(dim=-1, keepdim=True)
            else:
                logits = filter_logits(logits / temperature, top_k=top_k, top_p=top_p)
                next_id = torch.multinomial(logits.softmax(dim=-1), 1, generator=generator)
            idx = torch.cat([idx, next_id], dim=1)
    finally:
        model.train(was_training)
    return idx
