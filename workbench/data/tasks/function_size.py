"""function-size: how many statements does this function hold? (regression)

The label is log(1 + statements in the body, counted over nested blocks and
definitions), which tames the long tail (a median function has 3, a few have
hundreds). Functions longer than MAX_CHARS are left out rather than cut, so
the whole function, and so the whole answer, is always in the text.
"""

from __future__ import annotations

import math

import datasets

from workbench.data.tasks.base import FEATURES
from workbench.data.tasks.python_source import definitions

MAX_CHARS = 2000


def build(root=None, *, max_chars: int = MAX_CHARS, cache_dir: str | None = None) -> datasets.Dataset:
    """Every function under `root` of at most `max_chars` characters, once per distinct source."""
    rows = definitions(root, cache_dir=cache_dir).select_columns(["group", "kind", "source", "statements"])
    columns, seen = {"text": [], "label": [], "group": []}, set()
    for batch in rows.iter(batch_size=5000):
        fields = (batch[c] for c in ("group", "kind", "source", "statements"))
        for group, kind, source, statements in zip(*fields, strict=True):
            if kind == "function" and source and len(source) <= max_chars and source not in seen:
                seen.add(source)  # an identical function in two files would leak across splits
                columns["text"].append(source)
                columns["label"].append(math.log1p(statements))
                columns["group"].append(group)
    return datasets.Dataset.from_dict(columns, features=FEATURES["regression"])
