"""A bidirectional text encoder: the decoder's blocks without the causal mask, pretrained by masked-LM.

Everything but the mask is the decoder's: rotary positions, RMSNorm, SwiGLU, the same
presets, so an encoder and a decoder of one preset differ in their attention alone, which
is the comparison `experiments/encoder-vs-decoder.yaml` makes. The LM head predicts the
token at each position (the masked ones are what the loss reads), not the next one.

The vocabulary is the tokenizer's plus one id, the mask token, kept last: `EncoderConfig`'s
`vocab_size` counts it and `mask_token_id` names it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from workbench.config import ConfigError
from workbench.errors import RequestError
from workbench.models.config import DecoderConfig
from workbench.models.decoder import Decoder, DecoderOutput


@dataclass(frozen=True)
class EncoderConfig(DecoderConfig):
    """The decoder's fields and presets (`from_preset`); the last id of `vocab_size` is the mask token."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.vocab_size < 2:
            raise ConfigError(f"EncoderConfig.vocab_size must hold a token and the mask token, got {self.vocab_size}")

    @property
    def mask_token_id(self) -> int:
        return self.vocab_size - 1

    @classmethod
    def for_tokenizer(cls, preset: str, tokenizer_vocab_size: int, **overrides) -> "EncoderConfig":
        """The preset's encoder for a tokenizer of `tokenizer_vocab_size` ids, plus the mask token."""
        return cls.from_preset(preset, **overrides, vocab_size=tokenizer_vocab_size + 1)


class Encoder(Decoder):
    """Token ids (and a padding mask) -> hidden states that see both sides -> per-position token logits."""

    causal = False
    supports_kv_cache = False

    def forward(
        self,
        idx: torch.Tensor,
        *,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        compute_logits: bool = True,
        use_cache: bool = False,
        past=None,
    ) -> DecoderOutput:
        """Run `idx` (B, T); `attention_mask` (B, T) is 1 at real tokens, and padding is never attended to."""
        if use_cache or past is not None:
            raise RequestError("an encoder has no key/value cache: every position attends to every other")
        return super().forward(idx, attention_mask=attention_mask, output_hidden_states=output_hidden_states,
                               output_attentions=output_attentions, compute_logits=compute_logits)

    def generate(self, idx: torch.Tensor, max_new_tokens: int, **sampling) -> torch.Tensor:
        raise RequestError("an encoder does not generate text left to right: predict masked tokens instead "
                           "(workbench.models.encoder.fill_masks)")


@torch.no_grad()
def fill_masks(encoder: Encoder, idx: torch.Tensor, top_k: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """The `top_k` likeliest tokens and their probabilities at every position of `idx` (B, T).

    An encoder's counterpart of generation: put `mask_token_id` where the text is unknown and
    read the predictions there. The mask token itself is never predicted.
    """
    logits = encoder(idx).logits.float()
    logits[..., encoder.config.mask_token_id] = float("-inf")
    probabilities = logits.softmax(-1)
    top = probabilities.topk(top_k, dim=-1)
    return top.indices, top.values


def hidden_positions(length: int, rate: float, seed: int) -> list[int]:
    """`rate` of `length` positions (at least one), drawn from `seed`: the same text and seed hide the same ones."""
    if length < 1:
        raise ValueError("the text is empty: give at least one character to hide and predict")
    if not 0 < rate <= 1:
        raise ValueError(f"rate must be in (0, 1], got {rate!r}")
    count = min(length, max(1, round(rate * length)))
    generator = torch.Generator().manual_seed(seed)
    return sorted(torch.randperm(length, generator=generator)[:count].tolist())
