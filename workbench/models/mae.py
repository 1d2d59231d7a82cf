"""Masked autoencoding (He et al. 2021): hide most patches, reconstruct their pixels from the rest.

The encoder is a plain `ViT` that sees only the visible patches (and its class token),
which is what makes MAE cheap: at the usual 75% masking it runs on a quarter of the
tokens. A light decoder, narrower and shallower, gets the encoded visible tokens back
in place among shared mask tokens, adds its own position embeddings, and predicts every
patch's pixels. The loss is the mean squared error on the masked patches only, against
each patch's pixels normalised by its own mean and variance (the paper's norm_pix_loss,
which it found gives better representations). `mae.encoder` is the ViT alone, so a
fine-tuning head can take it without the decoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn

from workbench.errors import RequestError
from workbench.models.config import BlockShape
from workbench.models.decoder import Block, RMSNorm
from workbench.models.parameters import unique_parameter_count
from workbench.models.vit import ViT, ViTConfig, gather_tokens, init_like_decoder, patchify

NORM_PIX_EPS = 1e-6  # MAE's: keeps a flat patch (all one value) at zero instead of dividing by zero


@dataclass(frozen=True)
class MAEDecoderConfig(BlockShape):
    """The reconstruction decoder's blocks: narrower and shallower than the encoder, it is thrown away after."""

    d_model: int = 128
    n_layer: int = 2
    n_head: int = 4
    n_kv_head: int | None = None
    mlp_hidden: int | None = None  # None: SwiGLU width 8/3 * d_model, rounded to 64
    norm_eps: float = 1e-5
    dropout: float = 0.0

    preset_kind = "MAE decoder"

    def __post_init__(self) -> None:
        self.check_shape()

    @classmethod
    def named_presets(cls) -> dict[str, dict[str, Any]]:
        return MAE_DECODER_PRESETS


# One per ViT preset, by the same name. The paper's decoders are under 10% of the encoder's compute per token;
# at the smallest sizes a single block of the encoder's width already is.
MAE_DECODER_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(d_model=64, n_layer=1, n_head=2),
    "small": dict(d_model=128, n_layer=2, n_head=2),
    "small-rgb": dict(d_model=128, n_layer=2, n_head=2),
    "vit-s16": dict(d_model=256, n_layer=4, n_head=4),
}


class Masking(NamedTuple):
    keep: torch.Tensor  # (B, n_keep) long: the visible patches, in shuffled order
    mask: torch.Tensor  # (B, N) bool: True where a patch is hidden
    restore: torch.Tensor  # (B, N) long: gathering [kept tokens, then masked tokens] at it gives row-major order


def kept_count(num_patches: int, mask_ratio: float) -> int:
    """Patches each image keeps visible: round(N * (1 - mask_ratio)), at least one and at least one hidden."""
    if not 0.0 <= mask_ratio < 1.0:
        raise RequestError(f"mask_ratio must be in [0, 1), got {mask_ratio!r}")
    kept = round(num_patches * (1 - mask_ratio))
    if not 1 <= kept < num_patches:
        raise RequestError(
            f"mask_ratio={mask_ratio} keeps {kept} of {num_patches} patches; it must keep at least one and hide "
            "at least one"
        )
    return kept


def random_masking(
    batch: int,
    num_patches: int,
    mask_ratio: float,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Masking:
    """A fresh random subset of patches per image, the same size for every image (so the batch stays a tensor).

    Patches are shuffled by sorting uniform noise (MAE's way); the first kept_count of each
    shuffle stay visible. The noise is drawn on the generator's device, then moved to `device`,
    so one CPU generator gives the same masks on every device.
    """
    kept = kept_count(num_patches, mask_ratio)
    noise_device = generator.device if generator is not None else device
    noise = torch.rand(batch, num_patches, generator=generator, device=noise_device).to(device)
    shuffle = noise.argsort(dim=1)
    restore = shuffle.argsort(dim=1)
    mask = torch.ones(batch, num_patches, dtype=torch.bool, device=noise.device)
    mask[:, :kept] = False
    return Masking(keep=shuffle[:, :kept], mask=torch.gather(mask, 1, restore), restore=restore)


def normalized_patches(pixels: torch.Tensor, patch_size: int) -> torch.Tensor:
    """The reconstruction target, (B, N, patch_dim): each patch minus its mean, over sqrt(its variance + 1e-6)."""
    patches = patchify(pixels, patch_size)
    mean = patches.mean(dim=-1, keepdim=True)
    var = patches.var(dim=-1, keepdim=True)  # unbiased, as MAE's reference code computes it
    return (patches - mean) / (var + NORM_PIX_EPS).sqrt()


def masked_mse(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error per patch, averaged over the hidden patches only: the visible ones are given, not learnt."""
    per_patch = (prediction.float() - target.float()).pow(2).mean(dim=-1)
    weights = mask.to(per_patch.dtype)
    return (per_patch * weights).sum() / weights.sum()


class MAEOutput(NamedTuple):
    loss: torch.Tensor  # scalar: MSE on the masked patches
    prediction: torch.Tensor  # (B, N, patch_dim): every patch, in normalized-pixel units
    mask: torch.Tensor  # (B, N) bool: True where a patch was hidden


class MAE(nn.Module):
    """A ViT encoder over the visible patches and a light decoder that reconstructs the hidden ones."""

    def __init__(self, encoder_config: ViTConfig, decoder_config: MAEDecoderConfig | None = None) -> None:
        super().__init__()
        decoder_config = decoder_config or MAEDecoderConfig()
        self.encoder_config, self.decoder_config = encoder_config, decoder_config
        self.encoder = ViT(encoder_config)
        width, positions = decoder_config.d_model, encoder_config.num_prefix_tokens + encoder_config.num_patches
        self.decoder_embed = nn.Linear(encoder_config.d_model, width, bias=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, positions, width))
        self.decoder_blocks = nn.ModuleList(Block(decoder_config, causal=False) for _ in range(decoder_config.n_layer))
        self.decoder_norm = RMSNorm(width, decoder_config.norm_eps)
        self.decoder_pred = nn.Linear(width, encoder_config.patch_dim, bias=False)
        for part in (self.decoder_embed, self.decoder_blocks, self.decoder_norm, self.decoder_pred):
            init_like_decoder(part, decoder_config.n_layer)
        nn.init.normal_(self.mask_token, std=0.02)
        nn.init.normal_(self.decoder_pos_embed, std=0.02)

    def num_parameters(self, *, trainable_only: bool = False) -> int:
        return unique_parameter_count(self, trainable_only=trainable_only)

    def decode(self, encoded: torch.Tensor, restore: torch.Tensor) -> torch.Tensor:
        """Encoded tokens (B, prefix + kept, d_enc) -> predicted pixels of every patch (B, N, patch_dim)."""
        prefix = self.encoder_config.num_prefix_tokens
        x = self.decoder_embed(encoded)
        B, N = restore.shape
        hidden = self.mask_token.expand(B, N - (x.shape[1] - prefix), -1)
        patches = gather_tokens(torch.cat([x[:, prefix:], hidden], dim=1), restore)  # back to row-major order
        x = torch.cat([x[:, :prefix], patches], dim=1) + self.decoder_pos_embed
        for block in self.decoder_blocks:
            x, _, _ = block(x, None, None, False, None, False, None)
        return self.decoder_pred(self.decoder_norm(x)[:, prefix:])

    def forward(
        self, pixels: torch.Tensor, mask_ratio: float = 0.75, generator: torch.Generator | None = None
    ) -> MAEOutput:
        """Mask `mask_ratio` of each image's patches at random, encode the rest, reconstruct, score the hidden ones."""
        masking = random_masking(
            pixels.shape[0], self.encoder_config.num_patches, mask_ratio, generator, device=pixels.device
        )
        encoded = self.encoder(pixels, keep=masking.keep).last_hidden
        prediction = self.decode(encoded, masking.restore)
        target = normalized_patches(pixels, self.encoder_config.patch_size)
        return MAEOutput(loss=masked_mse(prediction, target, masking.mask), prediction=prediction, mask=masking.mask)
