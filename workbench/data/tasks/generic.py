"""Tasks from the researcher's own data: a local CSV/JSON/JSONL/Parquet file, or a Hugging Face dataset.

The text and label columns are named by the caller; the kind is given or read
off the label column's type (strings, ints, bools or class labels: sequence
classification; floats: regression; one int per character: token
classification). A "group" column, if there is one, keeps related rows in one
split; without it every row is its own group.
"""

from __future__ import annotations

import math
from pathlib import Path

import datasets

from workbench.data.corpora import CorpusUnavailableError, _load_hub_dataset
from workbench.data.tasks.base import FEATURES, IGNORE, TaskError, TaskUnavailableError
from workbench.heads.for_task import TASK_KINDS

FILE_FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
GROUP_COLUMN = "group"
_CLASS_DTYPES = ("string", "large_string", "bool")  # plus every int dtype


def load_file(path, *, cache_dir: str | None = None) -> datasets.Dataset:
    """All rows of a local file, through `datasets`' csv/json/parquet builders."""
    path = Path(path).expanduser()
    builder = FILE_FORMATS.get(path.suffix.lower())
    if builder is None:
        raise TaskError(
            f"the 'file' task reads {', '.join(FILE_FORMATS)} files; {str(path)!r} has none of these extensions"
        )
    if not path.is_file():
        raise TaskError(f"the 'file' task needs an existing file; {str(path)!r} is not one")
    return datasets.load_dataset(builder, data_files=str(path.resolve()), split="train", cache_dir=cache_dir)


def load_hub(hf_name: str, hf_config: str | None = None, *, cache_dir: str | None = None) -> datasets.Dataset:
    """The "train" split of a hub dataset: the local cache first, the hub only if it answers quickly."""
    try:
        raw = _load_hub_dataset(hf_name, hf_config, cache_dir)
    except CorpusUnavailableError as error:
        reason = str(error).split(";")[0]
        raise TaskUnavailableError(
            f"{reason}; for a local file use load_task('file', path='data.csv' or .jsonl/.parquet)"
        ) from error
    if "train" not in raw:
        raise TaskError(f"{hf_name!r} has no 'train' split; it has: {', '.join(raw)}")
    return raw["train"]


def to_task(
    raw: datasets.Dataset,
    source: str,
    *,
    group_prefix: str,
    text_column: str,
    label_column: str,
    kind: str | None,
) -> tuple[datasets.Dataset, str, list[str] | None, int]:
    """(dataset with the task columns, kind, label_names, rows dropped for a missing text or label).

    `source` names the data in errors; without a "group" column row i's group is "<group_prefix>#i".
    """
    columns = raw.column_names
    kind = kind or _infer_kind(raw, source, text_column, label_column)
    if kind == "causal_lm":
        return _causal_lm(raw, source, group_prefix, text_column)
    _require(columns, source, text_column, label_column)
    label_feature = raw.features[label_column]
    texts, labels = raw[text_column][:], raw[label_column][:]
    groups = _groups(raw, group_prefix)
    label_names = None
    if kind == "sequence_classification":
        labels, label_names = _class_ids(label_feature, labels, source, label_column)
    elif kind == "regression":
        _require_dtype(label_feature, _is_number, source, label_column, kind, "numbers")
        labels = [None if v is None or math.isnan(v) else float(v) for v in labels]
    else:  # token_classification
        _require_dtype(label_feature, _is_int_list, source, label_column, kind, "one int per character of the text")
        label_names = _token_label_names(texts, labels, source, label_column)
    rows = [(t, label, g) for t, label, g in zip(texts, labels, groups, strict=True) if t and label is not None]
    label_key = "char_labels" if kind == "token_classification" else "label"
    dataset = datasets.Dataset.from_dict(
        {"text": [r[0] for r in rows], label_key: [r[1] for r in rows], "group": [r[2] for r in rows]},
        features=FEATURES[kind],
    )
    return dataset, kind, label_names, len(texts) - len(rows)


def _infer_kind(raw, source, text_column, label_column) -> str:
    columns = raw.column_names
    _require(columns, source, text_column, label_column)
    feature = raw.features[label_column]
    if _is_class(feature):
        return "sequence_classification"
    if _is_number(feature):
        return "regression"
    if _is_int_list(feature):
        return "token_classification"
    raise TaskError(
        f"cannot tell the kind of {source} from its label column {label_column!r} ({feature}); "
        f"pass kind= one of: {', '.join(TASK_KINDS)}"
    )


def _causal_lm(raw, source, group_prefix, text_column):
    columns = raw.column_names
    if "prompt" in columns and "completion" in columns:
        prompts, completions = raw["prompt"][:], raw["completion"][:]
    elif text_column in columns:  # plain texts: the whole text is the completion
        completions = raw[text_column][:]
        prompts = [""] * len(completions)
    else:
        raise TaskError(
            f"kind='causal_lm' needs 'prompt' and 'completion' columns, or a text column {text_column!r}; "
            f"{source} has: {', '.join(columns)}"
        )
    groups = _groups(raw, group_prefix)
    rows = [(p or "", c, g) for p, c, g in zip(prompts, completions, groups, strict=True) if c]
    dataset = datasets.Dataset.from_dict(
        {
            "text": [p + c for p, c, _ in rows],
            "prompt": [p for p, _, _ in rows],
            "completion": [c for _, c, _ in rows],
            "group": [g for _, _, g in rows],
        },
        features=FEATURES["causal_lm"],
    )
    return dataset, "causal_lm", None, len(completions) - len(rows)


def _require(columns, source, *needed) -> None:
    missing = [c for c in needed if c not in columns]
    if missing:
        has_prompts = {"prompt", "completion"} <= set(columns)
        hint = " (it has 'prompt' and 'completion': pass kind='causal_lm')" if has_prompts else ""
        raise TaskError(
            f"{source} has no column {missing[0]!r}; its columns are: {', '.join(columns)}{hint}. "
            "Name yours with text_column= and label_column="
        )


def _groups(raw, group_prefix) -> list[str]:
    if GROUP_COLUMN in raw.column_names:
        return [str(g) for g in raw[GROUP_COLUMN][:]]
    return [f"{group_prefix}#{i}" for i in range(len(raw))]


def _class_ids(feature, labels, source, label_column) -> tuple[list[int | None], list[str]]:
    """Labels -> ids into label_names: a ClassLabel's own names, else the sorted distinct values as strings."""
    if isinstance(feature, datasets.ClassLabel):
        return [None if v is None or v < 0 else v for v in labels], list(feature.names)  # -1: unlabelled
    if not _is_class(feature):
        hint = "; for numbers to predict use kind='regression'" if _is_number(feature) else ""
        raise TaskError(
            f"kind='sequence_classification' needs strings, ints or bools in {label_column!r}; "
            f"{source} has {feature}{hint}"
        )
    values = sorted({v for v in labels if v is not None})
    index = {v: i for i, v in enumerate(values)}
    return [None if v is None else index[v] for v in labels], [str(v) for v in values]


def _token_label_names(texts, labels, source, label_column) -> list[str]:
    """Check one label per character; names are the ids as strings ("0", "1", ...)."""
    highest = -1
    for row, (text, row_labels) in enumerate(zip(texts, labels, strict=True)):
        if text is None or row_labels is None:
            continue
        if len(row_labels) != len(text):
            raise TaskError(
                f"{source}, row {row}: {label_column!r} has {len(row_labels)} labels for {len(text)} characters; "
                "token classification needs one label per character (-100 for none)"
            )
        highest = max([highest, *(v for v in row_labels if v != IGNORE)])
    if highest < 0:
        raise TaskError(f"{source}: {label_column!r} labels no character (all are {IGNORE})")
    return [str(i) for i in range(highest + 1)]


def _is_class(feature) -> bool:
    if isinstance(feature, datasets.ClassLabel):
        return True
    dtype = getattr(feature, "dtype", None)
    return isinstance(feature, datasets.Value) and (dtype in _CLASS_DTYPES or dtype.startswith(("int", "uint")))


def _is_number(feature) -> bool:
    dtype = getattr(feature, "dtype", "")
    return isinstance(feature, datasets.Value) and dtype.startswith(("float", "int", "uint"))


def _is_int_list(feature) -> bool:
    inner = getattr(feature, "feature", None)
    return isinstance(feature, (datasets.List, datasets.LargeList)) and _is_int(inner)


def _is_int(feature) -> bool:
    return isinstance(feature, datasets.Value) and feature.dtype.startswith(("int", "uint"))


def _require_dtype(feature, test, source, label_column, kind, wanted) -> None:
    if not test(feature):
        raise TaskError(f"kind={kind!r} needs {wanted} in {label_column!r}; {source} has {feature}")
