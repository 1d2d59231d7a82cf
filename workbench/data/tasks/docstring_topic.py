"""docstring-topic: which top-level package of the standard library wrote this docstring?

The English docstring of each function and class, labelled with the package
its file lives in (`email`, `asyncio`, `xml`, ...). Only packages with enough
docstrings spread over enough files become classes, so every class can appear
in every split of a split by file.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import datasets

from workbench.data.tasks.base import FEATURES
from workbench.data.tasks.python_source import definitions

MIN_CHARS = 20  # shorter docstrings ("Return self.") say little about their topic
MIN_EXAMPLES = 60  # per class
MIN_FILES = 3  # per class: one file each for train, validation and test


def build(
    root=None,
    *,
    min_examples: int = MIN_EXAMPLES,
    min_files: int = MIN_FILES,
    cache_dir: str | None = None,
) -> tuple[datasets.Dataset, list[str]]:
    """(dataset with text/label/group, label_names sorted alphabetically) for the tree under `root`."""
    rows = definitions(root, cache_dir=cache_dir).select_columns(["group", "docstring"])
    examples, seen = [], set()
    for batch in rows.iter(batch_size=5000):
        for group, docstring in zip(batch["group"], batch["docstring"], strict=True):
            text = clean(docstring)
            package = top_level(group)
            if len(text) >= MIN_CHARS and package is not None and text not in seen:
                seen.add(text)  # the same docstring in two files would leak across splits
                examples.append((text, package, group))
    label_names = pick_classes(examples, min_examples, min_files)
    index = {name: i for i, name in enumerate(label_names)}
    kept = [(text, index[package], group) for text, package, group in examples if package in index]
    columns = {"text": [k[0] for k in kept], "label": [k[1] for k in kept], "group": [k[2] for k in kept]}
    return datasets.Dataset.from_dict(columns, features=FEATURES["sequence_classification"]), label_names


def clean(docstring: str | None) -> str:
    """Whitespace collapsed to single spaces: line breaks and indentation carry no topic."""
    return " ".join(docstring.split()) if docstring else ""


def top_level(relative_path: str) -> str | None:
    """The package a file belongs to ("email/mime/text.py" -> "email"); None for a lone module."""
    parts = relative_path.split("/")
    return parts[0] if len(parts) > 1 else None


def pick_classes(examples: list[tuple[str, str, str]], min_examples: int, min_files: int) -> list[str]:
    counts = Counter(package for _, package, _ in examples)
    files = defaultdict(set)
    for _, package, group in examples:
        files[package].add(group)
    return sorted(p for p, n in counts.items() if n >= min_examples and len(files[p]) >= min_files)
