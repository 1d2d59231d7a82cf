"""How images become a model's input: its size, channels and normalization, and the classes it was shown.

A vision checkpoint carries this where a text checkpoint carries its tokenizer (`images.json` beside
the weights): fine-tuning a ViT feeds it images normalized with the statistics of the images it was
pretrained on, at its size and channels, as a text model is fed ids from its own tokenizer. The
class names are those of the pretraining image set (a supervised base was trained to tell them apart),
and `held_out` the options that drew its held-out splits: a fine-tuning run on the same set checks
its test images are ones the base never trained on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.data.image_transforms import ImageStats, ImageTransform
from workbench.errors import ResourceError
from workbench.files import atomic_write

IMAGES_FILE = "images.json"


@dataclass(frozen=True)
class ImageInputs:
    image_size: int
    channels: int
    stats: ImageStats  # measured on the train split of `image_set`
    image_set: str
    class_names: tuple[str, ...]
    held_out: dict[str, Any] | None = None  # how the set's validation and test images were drawn (seed, fractions)

    def transform(self, *, augment: bool = False, seed: int = 0, flip: bool = False) -> ImageTransform:
        """The transform that turns a set's images into this model's input (seeded augmentation if asked)."""
        return ImageTransform(self.stats, image_size=self.image_size, channels=self.channels, augment=augment,
                              seed=seed, flip=flip)

    def to_dict(self) -> dict[str, Any]:
        return {"image_size": self.image_size, "channels": self.channels, "stats": self.stats.to_dict(),
                "image_set": self.image_set, "class_names": list(self.class_names), "held_out": self.held_out}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ImageInputs":
        return cls(image_size=int(values["image_size"]), channels=int(values["channels"]),
                   stats=ImageStats.from_dict(values["stats"]), image_set=str(values["image_set"]),
                   class_names=tuple(values["class_names"]), held_out=values.get("held_out"))

    def save(self, directory: str | Path) -> Path:
        """Write `images.json` into `directory` (atomically), as a tokenizer writes tokenizer.json."""
        path = Path(directory) / IMAGES_FILE
        with atomic_write(path) as temporary:
            temporary.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
        return path


def load_image_inputs(directory: str | Path) -> ImageInputs:
    """The `images.json` in `directory`; a ResourceError naming the file when it is missing or malformed."""
    path = Path(directory) / IMAGES_FILE
    try:
        return ImageInputs.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise ResourceError(f"{path} is missing: a vision checkpoint keeps its image size, channels and "
                            "normalization there", path=path) from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ResourceError(f"{path} is not a valid image-inputs record: {error}", path=path) from None
