"""Images to normalized float tensors, with seeded augmentation, on torch and PIL alone.

(torchvision would be the usual tool, but no build of it imports beside the pinned torch.)

An image becomes a (C, H, W) float tensor: converted to the model's channels ("L" or
"RGB"), resized to its image size when it differs (shorter side first, then a centre
crop), scaled to [0, 1], and normalized per channel with statistics of the train split.
Training adds a random translation (pad, then crop back) and, optionally, a horizontal
flip: off by default, since digits are not mirror-symmetric.

Augmentation is reproducible: each example's randomness comes from a generator seeded
by (seed, epoch, example index), so a run resumed at epoch e sees exactly the pixels
the first run saw there, whatever the worker count or the order examples are read in.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import datasets
import numpy as np
import torch
import torch.nn.functional as F

from workbench.errors import RequestError

CHANNEL_MODES = {1: "L", 3: "RGB"}  # the PIL mode an image is converted to for a model of that many channels
INDEX_COLUMN = "index"  # the example's position, which seeds its augmentation


@dataclass(frozen=True)
class ImageStats:
    """Per-channel mean and standard deviation of [0, 1] pixels, measured on the train split."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ImageStats":
        return cls(mean=tuple(values["mean"]), std=tuple(values["std"]))


def image_to_tensor(image, *, channels: int, image_size: int) -> torch.Tensor:
    """A PIL image -> (channels, image_size, image_size) float tensor in [0, 1]."""
    from PIL import Image

    if channels not in CHANNEL_MODES:
        raise RequestError(f"images can be read with {', '.join(map(str, CHANNEL_MODES))} channels, not {channels}")
    image = image.convert(CHANNEL_MODES[channels]) if image.mode != CHANNEL_MODES[channels] else image
    if image.size != (image_size, image_size):
        width, height = image.size
        scale = image_size / min(width, height)
        resized = (max(image_size, round(width * scale)), max(image_size, round(height * scale)))
        image = image.resize(resized, Image.Resampling.BILINEAR)
        left, top = (resized[0] - image_size) // 2, (resized[1] - image_size) // 2
        image = image.crop((left, top, left + image_size, top + image_size))
    pixels = torch.from_numpy(np.array(image, dtype=np.uint8))
    pixels = pixels.unsqueeze(0) if pixels.ndim == 2 else pixels.permute(2, 0, 1)
    return pixels.float() / 255.0


def channel_stats(train: datasets.Dataset, *, channels: int, image_size: int,
                  max_images: int | None = None) -> ImageStats:
    """Mean and std of each channel over the train split's pixels (its first `max_images`, if given).

    A channel that never varies gets std 1, so normalizing it subtracts its mean and divides by nothing.
    """
    count = len(train) if max_images is None else min(max_images, len(train))
    if count < 1:
        raise RequestError("normalization statistics need at least one training image, got none")
    total = torch.zeros(channels, dtype=torch.float64)
    squares = torch.zeros(channels, dtype=torch.float64)
    for image in train.select(range(count))["image"]:
        pixels = image_to_tensor(image, channels=channels, image_size=image_size).double().flatten(1)
        total += pixels.sum(1)
        squares += pixels.pow(2).sum(1)
    n = count * image_size * image_size
    mean = total / n
    std = (squares / n - mean.pow(2)).clamp(min=0).sqrt()
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    return ImageStats(mean=tuple(mean.tolist()), std=tuple(std.tolist()))


def example_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A generator for one example's augmentation, its seed mixed from (seed, epoch, index) by numpy's SeedSequence."""
    state = np.random.SeedSequence([seed, epoch, index]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


class ImageTransform:
    """The callable `Dataset.with_transform` takes: a batch of {"image", "label"} -> {"pixels", "labels"}.

    With `augment`, each image is shifted by up to `max_shift` pixels each way (default
    image_size // 8: 1 for 8 px digits, 3 for 28 px) and, with `flip`, mirrored half the
    time. Set `epoch` (or call `set_epoch`) before each epoch: the augmentation of an
    example depends on (seed, epoch, its index) alone. A DataLoader worker holds its own
    copy of the transform, taken when its iterator starts: set the epoch before that.
    """

    def __init__(self, stats: ImageStats, *, image_size: int, channels: int, augment: bool = False, seed: int = 0,
                 max_shift: int | None = None, flip: bool = False) -> None:
        if len(stats.mean) != channels or len(stats.std) != channels:
            raise RequestError(f"statistics for {len(stats.mean)} channel(s) do not fit images of {channels}")
        self.stats, self.image_size, self.channels = stats, image_size, channels
        self.augment, self.seed, self.flip = augment, seed, flip
        self.max_shift = image_size // 8 if max_shift is None else max_shift
        if self.max_shift < 0 or self.max_shift >= image_size:
            raise RequestError(f"max_shift must be in [0, {image_size}), got {self.max_shift}")
        self.epoch = 0
        self._mean = torch.tensor(stats.mean).view(-1, 1, 1)
        self._std = torch.tensor(stats.std).view(-1, 1, 1)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        if self.augment and INDEX_COLUMN not in batch:
            raise RequestError(f"augmentation needs each example's {INDEX_COLUMN!r} column: "
                               "apply the transform with with_image_transform(dataset, transform)")
        indices = batch.get(INDEX_COLUMN, [None] * len(batch["image"]))
        return {"pixels": [self.pixels(image, index) for image, index in zip(batch["image"], indices, strict=True)],
                "labels": list(batch["label"])}

    def pixels(self, image, index: int | None = None) -> torch.Tensor:
        """One image -> its normalized (C, H, W) tensor; augmented (by its index) when the transform augments."""
        x = image_to_tensor(image, channels=self.channels, image_size=self.image_size)
        if self.augment:
            x = self._augmented(x, example_generator(self.seed, self.epoch, index))
        return (x - self._mean) / self._std

    def _augmented(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        shift, size = self.max_shift, self.image_size
        if shift:
            padded = F.pad(x, (shift, shift, shift, shift))  # zeros: black borders, as digits have
            top, left = torch.randint(0, 2 * shift + 1, (2,), generator=generator).tolist()
            x = padded[:, top : top + size, left : left + size]
        if self.flip and torch.rand((), generator=generator).item() < 0.5:
            x = x.flip(-1)
        return x


def with_image_transform(dataset: datasets.Dataset, transform: ImageTransform) -> datasets.Dataset:
    """`dataset` read through `transform`, with the index column its augmentation is seeded by."""
    if INDEX_COLUMN not in dataset.column_names:
        dataset = dataset.add_column(INDEX_COLUMN, list(range(len(dataset))))
    return dataset.with_transform(transform)


def collate_images(examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Transformed examples -> {"pixels": (B, C, H, W) float, "labels": (B,) long}."""
    return {"pixels": torch.stack([example["pixels"] for example in examples]),
            "labels": torch.tensor([example["labels"] for example in examples], dtype=torch.long)}
