"""The masked-LM objective, BERT's recipe (Devlin et al. 2019, section 3.1 and appendix C.2).

15% of the positions of each sequence are selected; of those, 80% are replaced by the mask
token, 10% by a random token and 10% are left as they are, so the encoder cannot learn that
only masked positions matter. The loss reads the selected positions only.

The counts are exact rather than drawn per token: round(15% of T) positions per sequence, and
of those round(80%) masked and round(10%) random, so every batch has the same share of targets
and a seeded batch has exactly the proportions the recipe names.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

IGNORE = -100  # cross_entropy's ignore_index: positions the loss does not read


@dataclass(frozen=True)
class Masking:
    select: float = 0.15
    mask: float = 0.8  # of the selected
    random: float = 0.1  # of the selected; the rest keep their token

    def counts(self, length: int) -> tuple[int, int, int]:
        """(selected, masked, random) positions in a sequence of `length` tokens; at least one selected."""
        selected = min(length, max(1, round(self.select * length)))
        masked = round(self.mask * selected)
        random = min(selected - masked, round(self.random * selected))
        return selected, masked, random


def mask_tokens(ids: torch.Tensor, *, mask_token_id: int, generator: torch.Generator,
                masking: Masking = Masking()) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) for a (B, T) batch: targets hold the original id at selected positions, IGNORE elsewhere.

    A random replacement is any of the tokenizer's other ids, 0 to mask_token_id - 1, never the mask and
    never the token it replaces (BERT's draw may return the original, which blurs its 10% with the kept
    10%). `generator` (on the CPU) makes the masking a function of its seed alone.
    """
    B, T = ids.shape
    selected, masked, random = masking.counts(T)
    order = torch.rand(B, T, generator=generator).argsort(dim=1)[:, :selected].to(ids.device)
    rows = torch.arange(B, device=ids.device)[:, None]
    targets = torch.full_like(ids, IGNORE)
    targets[rows, order] = ids[rows, order]
    inputs = ids.clone()
    inputs[rows, order[:, :masked]] = mask_token_id
    swapped = order[:, masked:masked + random]
    shift = torch.randint(1, mask_token_id, (B, random), generator=generator).to(ids.device)
    inputs[rows, swapped] = (ids[rows, swapped] + shift) % mask_token_id  # uniform over the other real tokens
    return inputs, targets


def masked_lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy in nats over the selected positions, computed in fp32."""
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE)


def step_generator(seed: int, step: int) -> torch.Generator:
    """The masking generator of one training step: a function of the run's seed and the step alone,
    so a resumed run masks exactly as the run that never stopped."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step)
