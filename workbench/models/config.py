"""Decoder configuration and its named presets.

One dataclass describes every size; presets are plain dicts of overrides so a
spec can say `preset: small` and still change any single field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from workbench.config import ConfigError, from_dict


class BlockShape:
    """What every config of the decoder's blocks shares: the widths `SelfAttention` and `SwiGLU` read, the
    checks on them, the dict round trip and named presets. The decoder, the ViT and the MAE's decoder differ
    only in the fields around these; each names its presets (`named_presets`) and how errors call them."""

    preset_kind = "model"  # "unknown model preset ..."

    def check_shape(self, *positive: str) -> None:
        """The shape's rules, naming the class, the field and the value; `positive` adds fields that must be >= 1."""
        what = type(self).__name__
        for name in (*positive, "n_layer", "n_head", "d_model"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{what}.{name} must be positive, got {getattr(self, name)}")
        if self.d_model % self.n_head:
            raise ConfigError(f"{what}: d_model={self.d_model} is not divisible by n_head={self.n_head}")
        if self.n_kv_head is not None and (self.n_kv_head < 1 or self.n_head % self.n_kv_head):
            raise ConfigError(f"{what}: n_head={self.n_head} is not a multiple of n_kv_head={self.n_kv_head}")
        if self.mlp_hidden is not None and self.mlp_hidden < 1:
            raise ConfigError(f"{what}.mlp_hidden must be None or positive, got {self.mlp_hidden}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"{what}.dropout must be in [0, 1), got {self.dropout}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    @property
    def kv_heads(self) -> int:
        return self.n_kv_head or self.n_head

    @property
    def hidden_dim(self) -> int:
        if self.mlp_hidden:
            return self.mlp_hidden
        return 64 * -(-int(8 * self.d_model / 3) // 64)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]):
        return from_dict(cls, values)

    @classmethod
    def named_presets(cls) -> dict[str, dict[str, Any]]:
        raise NotImplementedError

    @classmethod
    def from_preset(cls, name: str, **overrides: Any):
        presets = cls.named_presets()
        if name not in presets:
            raise ConfigError(f"unknown {cls.preset_kind} preset {name!r}; valid presets are: {', '.join(presets)}")
        return from_dict(cls, {**presets[name], **overrides}, what=f"{cls.preset_kind} preset {name!r}")


@dataclass(frozen=True)
class DecoderConfig(BlockShape):
    vocab_size: int = 256
    block_size: int = 256  # longest sequence; sizes the rotary tables
    n_layer: int = 4
    n_head: int = 4
    n_kv_head: int | None = None  # fewer key/value heads = grouped-query attention
    d_model: int = 128
    mlp_hidden: int | None = None  # None: SwiGLU width 8/3 * d_model, rounded to 64
    norm_eps: float = 1e-5
    rope_base: float = 10000.0
    tie_embeddings: bool = True
    dropout: float = 0.0

    def __post_init__(self) -> None:
        self.check_shape("vocab_size", "block_size")
        if self.head_dim % 2:
            raise ConfigError(f"DecoderConfig: head size {self.head_dim} must be even for rotary embeddings")

    @classmethod
    def named_presets(cls) -> dict[str, dict[str, Any]]:
        return PRESETS


# From a test size up to GPT-2-small scale. Widths are multiples of 64 so the
# matmuls stay on fast kernel paths.
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(n_layer=2, n_head=2, d_model=64, block_size=128),
    "nano": dict(n_layer=4, n_head=4, d_model=128, block_size=256),
    "micro": dict(n_layer=6, n_head=6, d_model=192, block_size=256),
    "small": dict(n_layer=6, n_head=8, d_model=256, block_size=512),
    "medium": dict(n_layer=8, n_head=8, d_model=512, block_size=1024),
    "gpt2-small": dict(n_layer=12, n_head=12, d_model=768, block_size=1024, vocab_size=50304),
}
