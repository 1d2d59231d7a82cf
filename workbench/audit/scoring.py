"""What every audit asks of a causal LM: log-probabilities of given tokens, and greedy continuations.

Works for any model with the Decoder's interface (`model(idx).logits`, `model.config.block_size`),
the workbench's own Decoder and a wrapped Hugging Face causal LM alike. Sequences are batched by
right padding, which a causal model never attends to, so a batch gives each sequence the numbers
it gets alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from workbench.errors import RequestError
from workbench.models.generate import generate


def _device(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def token_log_probs(model, sequences: Sequence[Sequence[int]], *, batch_size: int = 32) -> list[torch.Tensor]:
    """For each id sequence, log p(ids[t] | ids[:t]) for t = 1..len-1, as a float tensor of len-1 values."""
    block = model.config.block_size
    too_long = [i for i, s in enumerate(sequences) if len(s) > block]
    if too_long:
        raise RequestError(f"{len(too_long)} sequence(s) are longer than the model's block_size {block} "
                           f"(the first is #{too_long[0]}, {len(sequences[too_long[0]])} tokens); shorten them")
    was_training = model.training
    model.eval()
    device = _device(model)
    out: list[torch.Tensor] = []
    try:
        for start in range(0, len(sequences), batch_size):
            chunk = [list(s) for s in sequences[start:start + batch_size]]
            width = max(len(s) for s in chunk)
            ids = torch.zeros(len(chunk), width, dtype=torch.long)
            for row, s in enumerate(chunk):
                ids[row, :len(s)] = torch.as_tensor(s, dtype=torch.long)
            ids = ids.to(device)
            logp = model(ids).logits.float().log_softmax(-1)
            picked = logp[:, :-1].gather(-1, ids[:, 1:, None]).squeeze(-1).cpu()
            out += [picked[row, :len(s) - 1] for row, s in enumerate(chunk)]
    finally:
        model.train(was_training)
    return out


def continuation_log_likelihoods(model, prompts: Sequence[Sequence[int]], continuations: Sequence[Sequence[int]],
                                 *, batch_size: int = 32) -> list[float]:
    """Sum of log p(continuation | prompt) for each pair (natural log)."""
    if len(prompts) != len(continuations):
        raise RequestError(f"{len(prompts)} prompts but {len(continuations)} continuations")
    if any(len(p) == 0 for p in prompts):
        raise RequestError("every prompt needs at least one token (a continuation is scored given a prompt)")
    rows = token_log_probs(model, [list(p) + list(c) for p, c in zip(prompts, continuations, strict=True)],
                           batch_size=batch_size)
    return [float(r[len(p) - 1:].sum()) for r, p in zip(rows, prompts, strict=True)]


@torch.no_grad()
def greedy_continuations(model, prompts: Sequence[Sequence[int]], new_tokens: int, *,
                         batch_size: int = 32) -> list[list[int]]:
    """The `new_tokens` ids greedy decoding appends to each prompt; prompts of one length run as one batch."""
    by_length: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        if not p:
            raise RequestError(f"prompt #{i} is empty; greedy decoding needs at least one token")
        by_length.setdefault(len(p), []).append(i)
    device = _device(model)
    out: list[list[int]] = [[] for _ in prompts]
    for length, members in by_length.items():
        for start in range(0, len(members), batch_size):
            chunk = members[start:start + batch_size]
            idx = torch.tensor([list(prompts[i]) for i in chunk], dtype=torch.long, device=device)
            grown = generate(model, idx, new_tokens, temperature=0)
            for row, i in enumerate(chunk):
                out[i] = grown[row, length:].tolist()
    return out
