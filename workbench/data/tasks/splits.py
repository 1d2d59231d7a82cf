"""Grouped train/validation/test splits, a cap on examples, and label-fraction subsampling.

Splits follow a sha256 hash of each example's group (its source file, or row),
as the corpora do: the same data gives the same splits in every process, and
no group (file) feeds two splits, so a model cannot score by having memorised
the file it is tested on. `seed` changes only which training examples a
label fraction keeps, never the evaluation splits.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict

import datasets

from workbench.data.corpora import path_unit
from workbench.data.tasks.base import SPLITS, TaskError

CAP_SEED = 0  # a constant, like the split hash: capping must not move with the training seed


def assign_groups(
    groups: list[str], validation_fraction: float, test_fraction: float, strata: dict[str, object] | None = None
) -> dict[str, str]:
    """{group: split}: hash in [0, v) -> validation, [v, v + t) -> test, the rest -> train.

    A split the hash leaves empty takes the group whose hash lies nearest its
    interval (from a split that keeps at least one), as `corpora.split_paths`
    does; with `strata` ({group: stratum}, e.g. the one label of each file)
    this is done within each stratum of 3 groups or more, so every stratum
    reaches every split.
    """
    groups = sorted(set(groups))
    if len(groups) < len(SPLITS):
        raise TaskError(
            f"need at least {len(SPLITS)} groups (source files, or rows) to make train, validation and test "
            f"splits with no group in two of them; got {len(groups)}"
        )
    bounds = {
        "validation": (0.0, validation_fraction),
        "test": (validation_fraction, validation_fraction + test_fraction),
        "train": (validation_fraction + test_fraction, 1.0),
    }
    unit = {group: path_unit(group) for group in groups}
    assignment = {group: next(s for s, (lo, hi) in bounds.items() if lo <= unit[group] < hi) for group in groups}
    if strata is not None:
        members = defaultdict(list)
        for group in groups:
            members[strata[group]].append(group)
        for stratum_groups in members.values():
            if len(stratum_groups) >= len(SPLITS):
                _fill_empty_splits(stratum_groups, assignment, unit, bounds)
    _fill_empty_splits(groups, assignment, unit, bounds)
    return assignment


def _fill_empty_splits(groups: list[str], assignment: dict, unit: dict, bounds: dict) -> None:
    for split in ("validation", "test", "train"):
        sizes = Counter(assignment[g] for g in groups)
        if sizes[split]:
            continue
        lo, hi = bounds[split]
        movable = [g for g in groups if sizes[assignment[g]] >= 2]
        nearest = min(movable, key=lambda g: (max(lo - unit[g], unit[g] - hi, 0.0), g))
        assignment[nearest] = split


def split_by_group(
    dataset: datasets.Dataset,
    validation_fraction: float,
    test_fraction: float,
    strata: dict[str, object] | None = None,
) -> datasets.DatasetDict:
    """The dataset's rows as "train", "validation" and "test", by `assign_groups` on its "group" column."""
    groups = dataset["group"][:]
    assignment = assign_groups(groups, validation_fraction, test_fraction, strata)
    indices = {split: [] for split in SPLITS}
    for i, group in enumerate(groups):
        indices[assignment[group]].append(i)
    return datasets.DatasetDict({split: dataset.select(indices[split]) for split in SPLITS})


def cap_examples(dataset: datasets.Dataset, max_examples: int | None) -> datasets.Dataset:
    """At most `max_examples` rows: a uniform sample with a constant seed, in the original order.

    Rows are sampled rather than whole groups so a cap keeps the variety of
    the full data; splitting after the cap still keeps every group in one split.
    """
    if max_examples is None or len(dataset) <= max_examples:
        return dataset
    chosen = random.Random(CAP_SEED).sample(range(len(dataset)), max_examples)
    return dataset.select(sorted(chosen))


def subsample(
    dataset: datasets.Dataset, fraction: float, seed: int, labels: list[int] | None = None
) -> datasets.Dataset:
    """A seeded `fraction` of the rows, in their original order.

    With `labels` (classification) the sample is stratified: round(n_c * fraction)
    of each class c, and at least one, so every class present stays present in
    proportion. Without, a plain seeded sample of round(n * fraction), at least one.
    """
    check_fraction("label_fraction", fraction, allow_one=True)
    if fraction == 1 or len(dataset) == 0:
        return dataset
    rng = random.Random(seed)
    if labels is None:
        keep = rng.sample(range(len(dataset)), max(1, round(len(dataset) * fraction)))
    else:
        by_class = defaultdict(list)
        for i, label in enumerate(labels):
            by_class[label].append(i)
        keep = []
        for label in sorted(by_class):
            members = by_class[label]
            keep += rng.sample(members, max(1, round(len(members) * fraction)))
    return dataset.select(sorted(keep))


def check_fraction(name: str, value, *, allow_one: bool = False) -> None:
    valid = "(0, 1]" if allow_one else "(0, 1) exclusive"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TaskError(f"{name} must be a number in {valid}, got {value!r}")
    if not (0 < value < 1 or (allow_one and value == 1)):
        raise TaskError(f"{name} must be in {valid}, got {value!r}")
