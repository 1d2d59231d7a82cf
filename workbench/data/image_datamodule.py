"""The image DataModules: an image set (`load_images`) -> normalized, seeded-augmented batches of pixels.

Batches are {"pixels": (B, C, H, W) float, "labels": (B,) long}. Images are read through
`with_image_transform`, so each image is decoded, resized to the model's size, augmented (a seeded
shift, and a flip if asked) and normalized as it is fed; its augmentation depends on (seed, epoch,
index) alone, and the sampler sets the epoch each time a new pass over the split starts.

- `VisionPretrainDataModule`: normalization statistics measured on the train split (recorded, and
  saved with the checkpoint as its `ImageInputs`); counts optimizer steps, full batches only, and
  restores the stream's position from a training state, so a resumed run sees the same batches.
- `VisionFinetuneDataModule`: the base's image inputs (size, channels, pretraining statistics), a
  stratified, seeded `label_fraction` of the train split, every example once per epoch.

Both shuffle from a generator seeded once, so the same seed gives the same batches, and check every
option in `__init__`, before an image is read.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import datasets
import lightning as L
import torch
from torch.utils.data import DataLoader, Sampler

from workbench.config import keyword_options
from workbench.data.datamodule import EvaluationBatches
from workbench.data.image_inputs import ImageInputs
from workbench.data.image_transforms import ImageTransform, channel_stats, collate_images, with_image_transform
from workbench.data.images import SPLITS, check_image_options, label_fraction, load_images
from workbench.errors import RequestError


class ImageSetModule(L.LightningDataModule):
    """What both image DataModules share: the set, its splits, the transforms, the loaders, the record."""

    def __init__(self, image_set: str, image_options: dict | None, *, batch_size: int, seed: int,
                 augment: bool, flip: bool) -> None:
        super().__init__()
        self.image_options = dict(image_options or {})
        check_image_options(image_set, self.image_options)
        _check_int("batch_size", batch_size, minimum=1)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise RequestError(f"seed must be an int, got {seed!r}")
        self.image_set, self.batch_size, self.seed = image_set, batch_size, seed
        self.augment, self.flip = bool(augment), bool(flip)
        self.splits: datasets.DatasetDict | None = None
        self.inputs: ImageInputs | None = None
        self.class_names: list[str] = []
        self._views: dict[str, datasets.Dataset] = {}
        self._train_transform: ImageTransform | None = None

    # -- subclasses say how the train split and the inputs are chosen ---------------------------------------

    def _train_split(self, train: datasets.Dataset) -> datasets.Dataset:
        return train

    def held_out(self) -> dict[str, Any]:
        """What decides which images are held out (not the cap on them, which takes a subset of each split)."""
        every = keyword_options(load_images, self.image_options, what="image set", error=RequestError)
        options = {k: v for k, v in every.items() if k not in ("max_examples", "cache_dir") and v is not None}
        return json.loads(json.dumps({"image_set": self.image_set, **options}, sort_keys=True, default=str))

    def _image_inputs(self, train: datasets.Dataset) -> ImageInputs:
        raise NotImplementedError

    # -- setup ------------------------------------------------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:
        """Load the set, choose the train split's examples and the inputs, once; later calls do nothing."""
        if self.splits is not None:
            return
        with quiet_progress():  # selecting and indexing splits draws `datasets` progress bars into the notebook
            splits = load_images(self.image_set, **self.image_options)
            splits["train"] = self._train_split(splits["train"])
            self.class_names = list(splits["train"].features["label"].names)
            self.inputs = self._image_inputs(splits["train"])
            self._train_transform = self.inputs.transform(augment=self.augment, seed=self.seed, flip=self.flip)
            evaluation = self.inputs.transform()
            self._views = {split: with_image_transform(splits[split], self._train_transform if split == "train"
                                                       else evaluation) for split in SPLITS}
        self.splits = splits

    def view(self, split: str) -> datasets.Dataset:
        """A split read through its transform: `view("validation")[i]["pixels"]` is the model's input."""
        self._require_setup()
        return self._views[split]

    def _loader(self, split: str, sampler: Sampler) -> DataLoader:
        # A private generator: by default each iter(DataLoader) draws a seed from torch's global RNG, which would
        # shift dropout's random stream by one draw in a resumed run.
        return DataLoader(self.view(split), batch_sampler=sampler, collate_fn=collate_images,
                          generator=torch.Generator(), pin_memory=torch.cuda.is_available())

    def _train_batches(self, *, drop_last: bool, start: int = 0) -> DataLoader:
        n = len(self.view("train"))
        if drop_last and n < self.batch_size:
            raise RequestError(f"the {self.image_set} train split has {n} images, fewer than one batch of "
                               f"{self.batch_size}; lower batch_size or use more images")
        sampler = SeededBatches(n, self.batch_size, self.seed, drop_last=drop_last, start=start,
                                on_epoch=self._train_transform.set_epoch)
        return self._loader("train", sampler)

    def _evaluation_batches(self, split: str) -> DataLoader:
        # One fixed shuffle: a periodic evaluation of a few batches reads a fair sample of every class.
        return self._loader(split, EvaluationBatches(len(self.view(split)), self.batch_size))

    # -- the record -------------------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """A JSON-serialisable record of what was fed: the set, split sizes, classes, inputs, a fingerprint."""
        self.setup()
        return {
            "image_set": self.image_set,
            "options": json.loads(json.dumps(self.image_options, default=str)),
            "sizes": {split: len(self.splits[split]) for split in SPLITS},
            "classes": list(self.class_names),
            "class_counts": {split: self._counts(self.splits[split]) for split in SPLITS},
            "image_size": self.inputs.image_size,
            "channels": self.inputs.channels,
            "stats": self.inputs.stats.to_dict(),
            "augment": self.augment,
            "flip": self.flip,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "fingerprint": images_fingerprint(self.splits),
        }

    def _counts(self, split: datasets.Dataset) -> dict[str, int]:
        counts = Counter(split["label"])
        return {name: counts.get(i, 0) for i, name in enumerate(self.class_names)}

    def _require_setup(self) -> None:
        if self.splits is None:
            raise RuntimeError("call setup() before asking for a split or a dataloader")


class VisionPretrainDataModule(ImageSetModule):
    """Full batches of the train split for a fixed number of steps; the validation split to evaluate on."""

    def __init__(self, image_set: str = "digits", image_options: dict | None = None, *, image_size: int,
                 channels: int, batch_size: int = 64, seed: int = 0, augment: bool = True,
                 flip: bool = False) -> None:
        super().__init__(image_set, image_options, batch_size=batch_size, seed=seed, augment=augment, flip=flip)
        _check_int("image_size", image_size, minimum=1)
        _check_int("channels", channels, minimum=1)
        self.image_size, self.channels = image_size, channels
        self.batches_served = 0  # set from a training state on resume: training continues where it stopped

    def _image_inputs(self, train: datasets.Dataset) -> ImageInputs:
        stats = channel_stats(train, channels=self.channels, image_size=self.image_size)
        return ImageInputs(self.image_size, self.channels, stats, self.image_set, tuple(self.class_names),
                           held_out=self.held_out())

    def train_dataloader(self) -> DataLoader:
        return self._train_batches(drop_last=True, start=self.batches_served)

    def val_dataloader(self) -> DataLoader:
        return self._evaluation_batches("validation")

    def state_dict(self) -> dict:
        """Saved in the training state: how many training batches the run has consumed (one per step)."""
        trainer = self.trainer
        return {"batches_served": trainer.global_step * trainer.accumulate_grad_batches if trainer else 0}

    def load_state_dict(self, state_dict: dict) -> None:
        """Lightning restores this before it builds the dataloaders, so the sampler starts mid-stream."""
        self.batches_served = int(state_dict["batches_served"])


class VisionFinetuneDataModule(ImageSetModule):
    """Every labelled training image of `label_fraction` once per epoch; validation and test once each."""

    def __init__(self, image_set: str, image_options: dict | None, inputs: ImageInputs, *, batch_size: int = 64,
                 seed: int = 0, label_fraction: float = 1.0, augment: bool = True, flip: bool = False) -> None:
        super().__init__(image_set, image_options, batch_size=batch_size, seed=seed, augment=augment, flip=flip)
        if not isinstance(inputs, ImageInputs):
            raise TypeError(f"inputs must be the base's ImageInputs, got {type(inputs).__name__}")
        if isinstance(label_fraction, bool) or not isinstance(label_fraction, (int, float)) \
                or not 0 < label_fraction <= 1:
            raise RequestError(f"label_fraction must be a number in (0, 1], got {label_fraction!r}")
        self.base_inputs, self.label_fraction = inputs, float(label_fraction)

    def _train_split(self, train: datasets.Dataset) -> datasets.Dataset:
        return label_fraction(train, self.label_fraction, seed=self.seed) if self.label_fraction < 1 else train

    def _image_inputs(self, train: datasets.Dataset) -> ImageInputs:
        inputs = self.base_inputs  # the base's size, channels and statistics; this set's classes and splits
        return ImageInputs(inputs.image_size, inputs.channels, inputs.stats, self.image_set, tuple(self.class_names),
                           held_out=self.held_out())

    @property
    def num_labels(self) -> int:
        self._require_setup()
        return len(self.class_names)

    def train_dataloader(self) -> DataLoader:
        return self._train_batches(drop_last=False)

    def val_dataloader(self) -> DataLoader:
        return self._evaluation_batches("validation")

    def test_dataloader(self) -> DataLoader:
        return self._evaluation_batches("test")

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "label_fraction": self.label_fraction,
                "normalization_from": self.base_inputs.image_set}

    def task_record(self) -> dict[str, Any]:
        """The record a fine-tuning run keeps as its task (data.json's "task"), in the text tasks' shape, so the
        registry, the card and the sweep summary read an image set as they read a labelled text task."""
        described = self.describe()
        return {"name": self.image_set, "kind": "sequence_classification", "modality": "image",
                "fingerprint": described["fingerprint"], "options": described["options"],
                "sizes": described["sizes"], "label_names": described["classes"],
                "class_counts": described["class_counts"]}


class SeededBatches(Sampler):
    """A fresh permutation each epoch from a generator seeded once, telling `on_epoch` which epoch begins.

    The stream is a pure function of the seed, so after `start` batches (a resumed run) the epochs
    already served are replayed (microseconds each) and the first iteration serves the rest of its
    epoch; later iterations serve whole epochs. `drop_last` keeps every batch full (pretraining);
    without it the last batch of an epoch is short (fine-tuning on a few labels).
    """

    def __init__(self, n: int, batch_size: int, seed: int, *, drop_last: bool, start: int = 0,
                 on_epoch: Callable[[int], None] | None = None) -> None:
        if start < 0:
            raise RequestError(f"start must be >= 0, got {start}")
        self.n, self.batch_size, self.drop_last, self.on_epoch = n, batch_size, drop_last, on_epoch
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch, self._offset = divmod(start, len(self)) if len(self) else (0, 0)
        for _ in range(self.epoch):
            torch.randperm(self.n, generator=self.generator)

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else math.ceil(self.n / self.batch_size)

    def __iter__(self):
        if self.on_epoch is not None:
            self.on_epoch(self.epoch)
        self.epoch += 1
        batches = torch.randperm(self.n, generator=self.generator).split(self.batch_size)[: len(self)]
        offset, self._offset = self._offset, 0
        yield from (batch.tolist() for batch in batches[offset:])


@contextmanager
def quiet_progress() -> Iterator[None]:
    """`datasets`' progress bars off for the block, and back as they were after it."""
    was_disabled = datasets.utils.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            datasets.enable_progress_bars()


def images_fingerprint(splits: datasets.DatasetDict) -> str:
    """A hash of every split's encoded image bytes and labels, in order: the same data, the same fingerprint."""
    digest = hashlib.sha256()
    for split in SPLITS:
        digest.update(f"split:{split}\x00".encode())
        raw = splits[split].with_format("arrow")  # the stored bytes, undecoded (and no progress bar to show)
        for start in range(0, len(raw), 1000):
            rows = raw[start : start + 1000]
            for image, label in zip(rows.column("image").to_pylist(), rows.column("label").to_pylist(), strict=True):
                data = image["bytes"] if image.get("bytes") is not None else _file_bytes(image.get("path"))
                digest.update(hashlib.sha256(data).digest() + int(label).to_bytes(8, "little", signed=True))
    return digest.hexdigest()[:16]


def _file_bytes(path: str | None) -> bytes:
    if not path:
        raise RequestError("an image with neither bytes nor a path cannot be fingerprinted")
    with open(path, "rb") as file:
        return file.read()


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise RequestError(f"{name} must be an int >= {minimum}, got {value!r}")
