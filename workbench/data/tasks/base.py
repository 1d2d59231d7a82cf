"""What a fine-tuning task is: three grouped splits of labelled texts, and its kind.

Every split has "text" and "group" (where the example came from: no group feeds
two splits), plus the label columns of its kind:
  sequence_classification  "label" int (index into label_names)
  token_classification     "char_labels" list of ints, one per character of "text" (-100: unlabelled)
  regression               "label" float
  causal_lm                "prompt" and "completion" strings; "text" = prompt + completion
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from dataclasses import dataclass, field

import datasets

from workbench.data.corpora import CorpusUnavailableError
from workbench.errors import RequestError

SPLITS = ("train", "validation", "test")
IGNORE = -100  # the label PyTorch's cross-entropy skips

FEATURES = {
    "sequence_classification": datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.Value("int64"), "group": datasets.Value("string")}
    ),
    "token_classification": datasets.Features(
        {
            "text": datasets.Value("string"),
            "char_labels": datasets.List(datasets.Value("int16")),
            "group": datasets.Value("string"),
        }
    ),
    "regression": datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.Value("float64"), "group": datasets.Value("string")}
    ),
    "causal_lm": datasets.Features(
        {
            "text": datasets.Value("string"),
            "prompt": datasets.Value("string"),
            "completion": datasets.Value("string"),
            "group": datasets.Value("string"),
        }
    ),
}


class TaskError(RequestError):
    """A task was asked for with a bad name or options, or its data does not fit its kind."""


class TaskUnavailableError(CorpusUnavailableError):
    """A task's data exists in principle but cannot be fetched from here (the hub is unreachable)."""


@dataclass
class TaskData:
    name: str
    kind: str  # one of TASK_KINDS
    splits: datasets.DatasetDict  # "train", "validation", "test"
    label_names: list[str] | None  # class names for classification (index = label id); None otherwise
    options: dict = field(default_factory=dict)  # the resolved load_task options, for the run record

    @property
    def num_labels(self) -> int | None:
        """Classes for classification, 1 for regression, None for causal LM (the vocabulary decides)."""
        if self.label_names is not None:
            return len(self.label_names)
        return 1 if self.kind == "regression" else None

    def fingerprint(self) -> str:
        """16 hex chars of sha256 over every split's rows: same examples and labels, same hash."""
        digest = hashlib.sha256()
        digest.update(json.dumps([self.kind, self.label_names]).encode("utf-8"))
        for split in SPLITS:
            digest.update(f"\x00split:{split}\x00".encode("utf-8"))
            for batch in self.splits[split].iter(batch_size=2000):
                digest.update(json.dumps(batch, sort_keys=True, ensure_ascii=False).encode("utf-8"))
        return digest.hexdigest()[:16]

    def describe(self) -> dict:
        """A JSON-serialisable record of what was fine-tuned on: sizes, classes, fingerprint, options."""
        summary = {
            "name": self.name,
            "kind": self.kind,
            "fingerprint": self.fingerprint(),
            "options": json.loads(json.dumps(self.options, default=str)),
            "sizes": {split: len(self.splits[split]) for split in SPLITS},
            "groups": {split: len(set(self.splits[split]["group"])) for split in SPLITS},
            "label_names": self.label_names,
        }
        if self.kind == "sequence_classification":
            summary["class_counts"] = {split: self._counts(self.splits[split]["label"]) for split in SPLITS}
        elif self.kind == "token_classification":
            summary["labelled_characters"] = {
                split: self._counts(c for row in self.splits[split]["char_labels"] for c in row if c != IGNORE)
                for split in SPLITS
            }
        elif self.kind == "regression":
            summary["label_stats"] = {split: _stats(self.splits[split]["label"]) for split in SPLITS}
        return summary

    def _counts(self, labels) -> dict[str, int]:
        counts = Counter(labels)
        return {name: counts.get(i, 0) for i, name in enumerate(self.label_names)}

    def __repr__(self) -> str:
        sizes = ", ".join(f"{split}={len(self.splits[split])}" for split in SPLITS if split in self.splits)
        classes = f", {len(self.label_names)} classes" if self.label_names else ""
        return f"TaskData({self.name!r}, {self.kind}, {sizes}{classes})"


def split_phrase(record: dict, split: str) -> str | None:
    """One split of a `TaskData.describe()` record, for a model card: "50 examples from 3 source files"."""
    sizes, groups = record.get("sizes"), record.get("groups")
    if not isinstance(sizes, dict) or split not in sizes:
        return None
    grouped = f" from {groups[split]:,} source files" if isinstance(groups, dict) and split in groups else ""
    return f"{sizes[split]:,} examples{grouped}"


def baseline_phrase(record: dict, accuracy: float | None = None) -> str | None:
    """What a classifier's test accuracy must beat, from a `TaskData.describe()` record: chance and the
    majority class ("4 classes: chance accuracy is 0.250, ..."); None when the record lacks the counts."""
    labels, counts = record.get("label_names"), record.get("class_counts")
    test = counts.get("test") if isinstance(counts, dict) else None
    if not isinstance(labels, list) or not labels or not isinstance(test, dict) or not test:
        return None
    total = sum(v for v in test.values() if isinstance(v, (int, float)) and not isinstance(v, bool))
    if not total:
        return None
    majority, count = max(test.items(), key=lambda kv: kv[1])
    line = (f"{len(labels)} classes: chance accuracy is {1 / len(labels):.3f}, always answering the "
            f"majority class `{majority}` scores {count / total:.3f} on test")
    return line + (f"; this model scores {accuracy:.3f}." if accuracy is not None else ".")


def _stats(values) -> dict[str, float]:
    values = list(values)
    if not values:
        return {"mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan}
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return {"mean": mean, "std": std, "min": min(values), "max": max(values)}


def short_hash(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:16]
