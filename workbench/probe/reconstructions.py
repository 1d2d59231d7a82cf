"""What a masked autoencoder makes of images it sees a quarter of: each image, the patches it was shown, and
its reconstruction of the rest, as a plain function plus a plotly figure.

The MAE predicts each hidden patch's pixels normalized by that patch's own mean and spread (its
norm-pixel loss), so a prediction is put back in pixels with the true patch's mean and spread, as the
MAE paper's figures do; the visible patches are pasted in as they were. Pixels are shown un-normalized
(the image inputs' statistics undone), hidden patches tinted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from workbench.models.mae import MAE, NORM_PIX_EPS
from workbench.models.vit import patchify, unpatchify

HIDDEN_TINT = (70, 90, 160)  # the colour of a hidden patch in the "shown" row


@dataclass
class Reconstructions:
    """(B, C, H, W) tensors in the model's normalized pixels, and the (B, N) mask of hidden patches."""

    originals: torch.Tensor
    reconstructed: torch.Tensor  # hidden patches predicted, visible ones as given
    mask: torch.Tensor
    loss: float  # the MAE's loss on these images and masks


@torch.no_grad()
def reconstruct(mae: MAE, pixels: torch.Tensor, *, mask_ratio: float = 0.75, seed: int = 0) -> Reconstructions:
    """Mask `pixels` (B, C, H, W) with a generator seeded by `seed`, and put the MAE's prediction back in pixels."""
    mae = mae.eval()
    pixels = pixels.to(next(mae.parameters()).device)
    out = mae(pixels, mask_ratio, torch.Generator().manual_seed(seed))
    patch = mae.encoder_config.patch_size
    patches = patchify(pixels, patch)
    mean, var = patches.mean(dim=-1, keepdim=True), patches.var(dim=-1, keepdim=True)
    predicted = out.prediction * (var + NORM_PIX_EPS).sqrt() + mean
    mixed = torch.where(out.mask.unsqueeze(-1), predicted, patches)
    reconstructed = unpatchify(mixed, patch, mae.encoder_config.channels)
    return Reconstructions(pixels.cpu(), reconstructed.cpu(), out.mask.cpu(), float(out.loss))


def reconstruction_figure(result: Reconstructions, mean: tuple[float, ...], std: tuple[float, ...], *,
                          patch_size: int, title: str = "MAE reconstructions") -> go.Figure:
    """Three rows, one column per image: the image, what the encoder was shown, the reconstruction."""
    images = len(result.originals)
    figure = make_subplots(rows=3, cols=images, horizontal_spacing=0.01, vertical_spacing=0.04,
                           row_titles=["image", "shown", "reconstructed"])
    shown = _tinted(result.originals, result.mask, patch_size, mean, std)
    for row, batch in enumerate((_rgb(result.originals, mean, std), shown, _rgb(result.reconstructed, mean, std)),
                                start=1):
        for column in range(images):
            figure.add_trace(go.Image(z=batch[column], hoverinfo="skip"), row=row, col=column + 1)
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    figure.update_layout(title=f"{title} (loss {result.loss:.3f} on these masks)", template="plotly_white",
                         height=110 * 3 + 90, width=max(420, 95 * images + 120), margin=dict(l=10, r=60, t=60, b=10))
    return figure


def _rgb(pixels: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """(B, C, H, W) normalized -> (B, H, W, 3) uint8, the statistics undone and grayscale spread over RGB."""
    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    values = (pixels.float() * s + m).clamp(0, 1)
    if values.shape[1] == 1:
        values = values.expand(-1, 3, -1, -1)
    return (values.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()


def _tinted(pixels: torch.Tensor, mask: torch.Tensor, patch_size: int, mean, std) -> np.ndarray:
    """The images with their hidden patches painted over, as the encoder saw them."""
    rgb = _rgb(pixels, mean, std).copy()
    grid = pixels.shape[-1] // patch_size
    for b, row, col in torch.nonzero(mask.view(len(mask), grid, grid)).tolist():
        rgb[b, row * patch_size:(row + 1) * patch_size, col * patch_size:(col + 1) * patch_size] = HIDDEN_TINT
    return rgb
