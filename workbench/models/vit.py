"""A vision transformer (Dosovitskiy et al. 2020) built from the decoder's own blocks.

An image is cut into square patches, each flattened and projected to d_model, with a
learned position embedding per patch and an optional class token in front. The blocks
are the decoder's `Block`s with bidirectional attention and no rotary tables: positions
come from the learned embeddings alone. So the ViT's parameters carry the decoder's
names (q_proj, ..., down_proj), and LoRA, Muon and the probes find them the same way.

`keep` lets a caller run the encoder on a subset of patches (MAE's encoder sees only
the visible ones); positions are added before the subset is taken, so each kept patch
still knows where it came from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.utils.checkpoint
from torch import nn

from workbench.config import ConfigError
from workbench.errors import RequestError
from workbench.models.config import BlockShape
from workbench.models.decoder import Block, RMSNorm
from workbench.models.parameters import unique_parameter_count

POOLINGS = ("cls", "mean")


@dataclass(frozen=True)
class ViTConfig(BlockShape):
    image_size: int = 32  # square images, image_size x image_size pixels
    patch_size: int = 4
    channels: int = 3
    n_layer: int = 4
    n_head: int = 4
    n_kv_head: int | None = None  # fewer key/value heads = grouped-query attention
    d_model: int = 128
    mlp_hidden: int | None = None  # None: SwiGLU width 8/3 * d_model, rounded to 64
    norm_eps: float = 1e-5
    dropout: float = 0.0
    pooling: Literal["cls", "mean"] = "cls"  # "cls": a class token's state; "mean": the mean over patch tokens

    preset_kind = "ViT"

    def __post_init__(self) -> None:
        self.check_shape("image_size", "patch_size", "channels")
        if self.image_size % self.patch_size:
            raise ConfigError(
                f"ViTConfig: image_size={self.image_size} is not divisible by patch_size={self.patch_size}"
            )
        if self.pooling not in POOLINGS:
            raise ConfigError(f"ViTConfig.pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")

    @classmethod
    def named_presets(cls) -> dict[str, dict[str, Any]]:
        return VIT_PRESETS

    @property
    def grid_size(self) -> int:
        """Patches per row (and per column)."""
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid_size**2

    @property
    def patch_dim(self) -> int:
        """Values in one flattened patch: patch_size * patch_size * channels."""
        return self.patch_size**2 * self.channels

    @property
    def num_prefix_tokens(self) -> int:
        """Tokens before the patches: 1 with a class token, else 0."""
        return 1 if self.pooling == "cls" else 0


# From a test size up to ViT-S/16. Widths are multiples of 64 so the matmuls stay on fast kernel paths.
VIT_PRESETS: dict[str, dict[str, Any]] = {
    # 8x8 grayscale digits (scikit-learn's): 4 x 4 patches of 2 x 2 pixels.
    "tiny": dict(image_size=8, patch_size=2, channels=1, n_layer=2, n_head=2, d_model=64),
    # 28x28 grayscale (MNIST-like): 7 x 7 patches of 4 x 4 pixels.
    "small": dict(image_size=28, patch_size=4, channels=1, n_layer=6, n_head=4, d_model=256),
    # 32x32 colour (CIFAR-like): 8 x 8 patches of 4 x 4 pixels.
    "small-rgb": dict(image_size=32, patch_size=4, channels=3, n_layer=6, n_head=4, d_model=256),
    # ViT-S/16 at 224 px: 14 x 14 patches; SwiGLU's default width (1024) matches the original 4x GELU MLP's size.
    "vit-s16": dict(image_size=224, patch_size=16, channels=3, n_layer=12, n_head=6, d_model=384),
}


def patchify(pixels: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, N, patch_size * patch_size * C), patches row by row, each flattened as (row, col, channel).

    The (row, col, channel) order inside a patch is MAE's, so reconstructions read the same way as theirs.
    """
    B, C, H, W = pixels.shape
    if H % patch_size or W % patch_size:
        raise RequestError(f"a {H}x{W} image does not divide into {patch_size}x{patch_size} patches")
    rows, cols = H // patch_size, W // patch_size
    x = pixels.reshape(B, C, rows, patch_size, cols, patch_size)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(B, rows * cols, patch_size * patch_size * C)


def unpatchify(patches: torch.Tensor, patch_size: int, channels: int) -> torch.Tensor:
    """`patchify`'s inverse for a square grid: (B, N, patch_size * patch_size * C) -> (B, C, H, W)."""
    B, N, D = patches.shape
    side = math.isqrt(N)
    if side * side != N or D != patch_size * patch_size * channels:
        raise RequestError(
            f"{N} patches of {D} values are not a square grid of {patch_size}x{patch_size}x{channels} patches"
        )
    x = patches.reshape(B, side, side, patch_size, patch_size, channels)
    return x.permute(0, 5, 1, 3, 2, 4).reshape(B, channels, side * patch_size, side * patch_size)


def init_like_decoder(module: nn.Module, n_layer: int) -> None:
    """The decoder's init: normal(0.02) weights, and residual output projections shrunk by sqrt(2 * n_layer).

    Each residual branch adds variance to the stream (GPT-2's argument), so its last projection starts smaller.
    """
    for name, param in module.named_parameters():
        if name.endswith(("o_proj.weight", "down_proj.weight")):
            nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))
        elif name.endswith("norm.weight"):
            nn.init.ones_(param)
        else:
            nn.init.normal_(param, mean=0.0, std=0.02)


def gather_tokens(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x (B, N, D) at `index` (B, K) along the token axis -> (B, K, D)."""
    return torch.gather(x, 1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


@dataclass
class ViTOutput:
    """What a forward pass returns; the optional parts feed the probes."""

    last_hidden: torch.Tensor  # (B, T, d_model) after the final norm; T = class token (if any) + patches seen
    hidden_states: tuple[torch.Tensor, ...] | None  # embeddings (positions added) + each block's output
    attentions: tuple[torch.Tensor, ...] | None  # per layer, (B, n_head, T, T)
    pooled: torch.Tensor  # (B, d_model): the class token's state, or the mean over patch tokens


class ViT(nn.Module):
    """Pixels -> patch tokens -> hidden states, with a pooled summary for classification heads."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.config = config
        self.patch_embed = nn.Linear(config.patch_dim, config.d_model, bias=False)
        self.pos_embed = nn.Parameter(torch.zeros(1, config.num_prefix_tokens + config.num_patches, config.d_model))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.d_model)) if config.pooling == "cls" else None
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config, causal=False) for _ in range(config.n_layer))
        self.norm = RMSNorm(config.d_model, config.norm_eps)
        # Recompute each block in the backward pass instead of keeping its activations (training only).
        self.activation_checkpointing = False
        init_like_decoder(self, config.n_layer)

    @classmethod
    def from_state(cls, config: ViTConfig, state: dict[str, torch.Tensor]) -> "ViT":
        """A ViT holding `state`'s tensors (in eval mode), built on the meta device without a random init to discard.

        Missing or unexpected tensors are a RequestError naming them.
        """
        with torch.device("meta"):
            model = cls(config)
        missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
        if missing or unexpected:
            raise RequestError(f"the tensors do not fit the ViT: missing {missing}, unexpected {unexpected}")
        return model.eval()

    def num_parameters(self, *, trainable_only: bool = False) -> int:
        return unique_parameter_count(self, trainable_only=trainable_only)

    def embed(self, pixels: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Pixels (B, C, H, W) -> tokens (B, T, d_model) with positions added: the class token, then the patches
        in row-major order, or only the patches at `keep` (B, n_visible) in that order."""
        config = self.config
        expected = (config.channels, config.image_size, config.image_size)
        if tuple(pixels.shape[1:]) != expected:
            raise RequestError(f"the ViT takes images of shape (B, {', '.join(map(str, expected))}), "
                               f"got {tuple(pixels.shape)}")
        prefix = config.num_prefix_tokens
        x = self.patch_embed(patchify(pixels, config.patch_size)) + self.pos_embed[:, prefix:]
        if keep is not None:
            x = gather_tokens(x, keep)
        if self.cls_token is not None:
            cls = (self.cls_token + self.pos_embed[:, :prefix]).expand(x.shape[0], -1, -1)
            x = torch.cat([cls, x], dim=1)
        return self.dropout(x)

    def forward(
        self,
        pixels: torch.Tensor,
        *,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        keep: torch.Tensor | None = None,
    ) -> ViTOutput:
        """Run images (B, C, H, W) through the encoder; with `keep`, only those patches (and the class token)."""
        x = self.embed(pixels, keep)
        hidden = [x] if output_hidden_states else None
        attentions = [] if output_attentions else None
        checkpointed = self.activation_checkpointing and self.training and torch.is_grad_enabled()
        for block in self.blocks:
            # cos=None: no rotary tables, the learned position embeddings already say where each patch is.
            if checkpointed:
                x, weights, _ = torch.utils.checkpoint.checkpoint(
                    block, x, None, None, output_attentions, use_reentrant=False
                )
            else:
                x, weights, _ = block(x, None, None, output_attentions, None, False, None)
            if hidden is not None:
                hidden.append(x)
            if attentions is not None:
                attentions.append(weights)
        x = self.norm(x)
        pooled = x[:, 0] if self.cls_token is not None else x.mean(dim=1)
        return ViTOutput(
            last_hidden=x,
            hidden_states=tuple(hidden) if hidden is not None else None,
            attentions=tuple(attentions) if attentions is not None else None,
            pooled=pooled,
        )
