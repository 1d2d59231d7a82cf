"""How a classifier does for each group of people a task file names: per-group metrics, their gaps, and how sure.

Fairlearn's `MetricFrame` splits by group and finds the largest gap; every metric is computed from a
confusion matrix, so the same code scores the groups and each of their bootstrap resamples (drawn
within the group, seeded), and a rate a group cannot have (a false positive rate with no negatives)
is None rather than 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from fairlearn.metrics import MetricFrame

from workbench.data.tasks.generic import load_file
from workbench.errors import RequestError

BINARY_METRICS = ("false_positive_rate", "false_negative_rate")
_CHUNK = 2_000_000  # resampled labels held at once


def _rates(counts: np.ndarray, positive: int | None) -> dict[str, np.ndarray]:
    """Metrics from confusion counts (..., C, C) [true, predicted]; macro F1 over the classes present, like sklearn."""
    counts = counts.astype(np.float64)
    total = counts.sum((-2, -1))
    tp = np.diagonal(counts, axis1=-2, axis2=-1)
    true, predicted = counts.sum(-1), counts.sum(-2)
    present = (true + predicted) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = tp.sum(-1) / total
        f1 = np.where(present, 2 * tp / (true + predicted), 0.0)
        out = {"accuracy": accuracy, "macro_f1": f1.sum(-1) / present.sum(-1), "error_rate": 1 - accuracy}
        if positive is not None:
            negative = 1 - positive
            fp, tn = counts[..., negative, positive], counts[..., negative, negative]
            fn = counts[..., positive, negative]
            out["false_positive_rate"] = fp / (fp + tn)
            out["false_negative_rate"] = fn / (fn + tp[..., positive])
    return out


def _confusion(codes: np.ndarray, classes: int) -> np.ndarray:
    return np.bincount(codes, minlength=classes * classes).reshape(classes, classes)


def _number(value) -> float | None:
    value = float(value)
    return None if np.isnan(value) else value


def _interval(values: np.ndarray) -> list[float] | None:
    finite = values[~np.isnan(values)]
    return [float(v) for v in np.percentile(finite, [2.5, 97.5])] if len(finite) else None


def _bootstrap(codes: np.ndarray, classes: int, positive: int | None, draws: int, rng) -> dict[str, np.ndarray]:
    """Each metric on `draws` resamples (with replacement) of one group's (true * C + predicted) codes."""
    n, parts = len(codes), []
    step = max(1, _CHUNK // max(n, 1))
    for start in range(0, draws, step):
        rows = min(step, draws - start)
        sample = codes[rng.integers(0, n, size=(rows, n))] + (np.arange(rows) * classes * classes)[:, None]
        parts.append(np.bincount(sample.ravel(), minlength=rows * classes * classes).reshape(rows, classes, classes))
    return _rates(np.concatenate(parts), positive)


def _codes(values, classes: list, what: str, *, by_index: bool = True) -> np.ndarray:
    """Each value as its class's index; with `by_index`, an int 0..C-1 stands for itself (labels given by index)."""
    index = {c: i for i, c in enumerate(classes)}
    if by_index:
        index.update({i: i for i in range(len(classes)) if i not in index})
    unknown = sorted({repr(v) for v in values if isinstance(v, bool) or v not in index})
    if unknown:
        also = f" (or their indices 0..{len(classes) - 1})" if by_index else ""
        raise RequestError(f"{what} holds {', '.join(unknown[:5])}, not among the classes: "
                           f"{', '.join(map(str, classes))}{also}")
    return np.array([index[v] for v in values], dtype=np.int64)


def group_metrics(y_true: Sequence, y_pred: Sequence, groups: Sequence, *, label_names: Sequence[str] | None = None,
                  bootstrap: int = 1000, seed: int = 0) -> dict:
    """Per group: n, accuracy, macro F1, error rate (and false positive/negative rates for two classes, the
    second class positive), each with a 95% bootstrap interval; the largest gap per metric and between whom."""
    y_true, y_pred, groups = list(_plain(y_true)), list(_plain(y_pred)), [str(g) for g in _plain(groups)]
    if not (len(y_true) == len(y_pred) == len(groups)):
        raise RequestError(f"y_true, y_pred and groups must have one entry per example; got {len(y_true)}, "
                           f"{len(y_pred)} and {len(groups)}")
    if not y_true:
        raise RequestError("no examples to score: y_true is empty")
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int) or bootstrap < 0:
        raise RequestError(f"bootstrap must be an int >= 0 (0 = no intervals), got {bootstrap!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise RequestError(f"seed must be an int, got {seed!r}")
    classes = list(label_names) if label_names is not None else _sorted(set(y_true) | set(y_pred))
    if len(classes) < 2 and label_names is not None:
        raise RequestError(f"label_names needs at least two classes, got {classes!r}")
    by_index = label_names is not None
    true = _codes(y_true, classes, "y_true", by_index=by_index)
    predicted = _codes(y_pred, classes, "y_pred", by_index=by_index)
    c = max(len(classes), 2)
    positive = 1 if len(classes) == 2 else None
    names = ["accuracy", "macro_f1", "error_rate"] + (list(BINARY_METRICS) if positive is not None else [])

    def metric(name: str) -> Callable:
        return lambda t, p: float(_rates(_confusion(np.asarray(t) * c + np.asarray(p), c), positive)[name])

    frame = MetricFrame(metrics={name: metric(name) for name in names}, y_true=true, y_pred=predicted,
                        sensitive_features=np.array(groups, dtype=object))
    by_group, gaps = frame.by_group, frame.difference(method="between_groups")
    result_groups = {}
    for k, group in enumerate(sorted(set(groups))):
        members = np.array([g == group for g in groups])
        entry = {"n": int(members.sum())}
        resampled = (_bootstrap(true[members] * c + predicted[members], c, positive, bootstrap,
                                np.random.default_rng([seed, k])) if bootstrap else {})
        for name in names:
            entry[name] = _number(by_group.loc[group, name])
            entry[f"{name}_ci"] = _interval(resampled[name]) if bootstrap else None
        result_groups[group] = entry
    largest_gap = {}
    for name in names:
        column = by_group[name].astype(float)
        largest_gap[name] = ({"value": float(gaps[name]), "between": [str(column.idxmin()), str(column.idxmax())]}
                             if column.notna().sum() >= 2 else {"value": None, "between": None})
    overall = {"n": len(y_true), **{name: _number(frame.overall[name]) for name in names}}
    return {"groups": result_groups, "largest_gap": largest_gap, "overall": overall,
            "classes": [str(x) for x in classes], "positive_class": str(classes[1]) if positive is not None else None,
            "bootstrap": bootstrap, "seed": seed}


def _sorted(values: set) -> list:
    try:
        return sorted(values)
    except TypeError:  # names and numbers mixed
        return sorted(values, key=str)


def _plain(values) -> list:
    """Numpy scalars as Python ones, so 1, np.int64(1) and "1" are told apart only as a user would."""
    return [v.item() if isinstance(v, np.generic) else v for v in (values.tolist() if hasattr(values, "tolist")
                                                                    else values)]


def group_metrics_for_file(predict_proba: Callable[[list[str]], np.ndarray], path: str | Path, *,
                           text_column: str = "text", label_column: str = "label", group_column: str = "group",
                           label_names: Sequence[str] | None = None, bootstrap: int = 1000, seed: int = 0) -> dict:
    """`group_metrics` for every row of a CSV/JSON(L)/Parquet file: the classifier predicts each text, the file
    gives the true label (a name or an index) and the group. A missing column fails before anything is predicted."""
    table = load_file(path)
    wanted = {"text_column": text_column, "label_column": label_column, "group_column": group_column}
    missing = [f"{key}={name!r}" for key, name in wanted.items() if name not in table.column_names]
    if missing:
        raise RequestError(f"{path}: no column {', '.join(missing)}; the columns are: {', '.join(table.column_names)}")
    texts, labels, groups = table[text_column], table[label_column], table[group_column]
    kept = [i for i in range(len(texts)) if texts[i] is not None and labels[i] is not None and groups[i] is not None]
    texts, labels, groups = [texts[i] for i in kept], [labels[i] for i in kept], [groups[i] for i in kept]
    if not kept:
        raise RequestError(f"{path}: no row has a text, a label and a group")
    if label_names is None and any(isinstance(v, str) for v in labels):
        raise RequestError(f"{path}: the labels are names ({labels[0]!r}, ...); give label_names, the classifier's "
                           "class names in order")
    if label_names is not None:
        _codes(labels, list(label_names), f"{path}'s column {label_column!r}")  # fail before predicting
    probs = np.asarray(predict_proba(list(texts)))
    if probs.ndim != 2 or probs.shape[0] != len(texts):
        raise RequestError(f"predict_proba must return (N, classes) for N texts; for {len(texts)} texts it gave "
                           f"shape {probs.shape}")
    classes = list(label_names) if label_names is not None else list(range(probs.shape[1]))
    if len(classes) != probs.shape[1]:
        raise RequestError(f"label_names has {len(classes)} names but the classifier gives {probs.shape[1]} classes")
    result = group_metrics(_codes(labels, classes, label_column).tolist(), probs.argmax(1).tolist(), groups,
                           label_names=[str(c) for c in classes], bootstrap=bootstrap, seed=seed)
    return {**result, "file": str(path), "rows": len(table), "dropped": len(table) - len(kept)}
