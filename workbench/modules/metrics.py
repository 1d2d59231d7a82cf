"""Evaluation metrics per task kind, accumulated over an epoch with torchmetrics.

Scalars (accuracy, macro-F1, MSE, R², loss, perplexity) are what Lightning
logs; the confusion matrix and per-class F1 are kept as plain lists and dicts
so a recipe can save them as JSON. Every kind also reports its mean loss,
weighted by what the loss averages over (examples, or labelled tokens).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassF1Score
from torchmetrics.regression import MeanSquaredError, R2Score

from workbench.config import ConfigError
from workbench.heads import CLASSIFICATION_KINDS, IGNORE_INDEX, TASK_KINDS


def metric_collection(task_kind: str, num_classes: int | None = None) -> MetricCollection:
    if task_kind not in TASK_KINDS:
        raise ConfigError(f"unknown task kind {task_kind!r}; valid kinds are: {', '.join(TASK_KINDS)}")
    if task_kind in CLASSIFICATION_KINDS:
        if not num_classes or num_classes < 2:
            raise ConfigError(f"{task_kind} metrics need num_classes >= 2, got {num_classes!r}")
        metrics = {
            "accuracy": MulticlassAccuracy(num_classes, average="micro"),
            "macro_f1": MulticlassF1Score(num_classes, average="macro"),
            "per_class_f1": MulticlassF1Score(num_classes, average="none"),
        }
        if task_kind == "sequence_classification":
            metrics["confusion_matrix"] = MulticlassConfusionMatrix(num_classes)
        return MetricCollection(metrics)
    if task_kind == "regression":
        return MetricCollection({"mse": MeanSquaredError(), "r2": R2Score()})
    return MetricCollection({})  # causal_lm: loss and perplexity come from the loss itself


class TaskMetrics(nn.Module):
    """One evaluation pass (validation or test): update per batch, then `compute()` plain values."""

    def __init__(self, task_kind: str, num_classes: int | None = None, label_names: list[str] | None = None) -> None:
        super().__init__()
        self.task_kind = task_kind
        self.metrics = metric_collection(task_kind, num_classes)
        self.loss = MeanMetric()
        self.label_names = list(label_names) if label_names else [str(i) for i in range(num_classes or 0)]

    def update(self, predictions: torch.Tensor, labels: torch.Tensor, loss: torch.Tensor) -> None:
        """One batch: its predictions, labels and mean loss (weighted here by what that mean was over)."""
        labels = labels.detach()
        weight = int(loss_weight(self.task_kind, labels))
        if self.task_kind == "token_classification":
            keep = labels != IGNORE_INDEX
            predictions, labels = predictions[keep], labels[keep]
        if weight == 0:
            return
        self.loss.update(loss.detach().float(), weight=weight)
        if self.task_kind != "causal_lm":
            targets = labels.float() if self.task_kind == "regression" else labels
            self.metrics.update(predictions.detach().float(), targets)

    def compute(self) -> dict[str, Any]:
        """Scalars as floats, the confusion matrix as a list of rows (true label), per-class F1 by label name."""
        regression_examples = int(self.metrics["r2"].total) if self.task_kind == "regression" else 0
        updates, examples = _summed_over_processes(self.loss.device, self.loss.update_count, regression_examples)
        if updates == 0:
            return {}
        loss = float(self.loss.compute())  # torchmetrics sums every state over the processes first
        values: dict[str, Any] = {"loss": loss}
        if self.task_kind == "causal_lm":
            values["perplexity"] = math.exp(min(loss, 700.0))
        if self.task_kind == "regression" and examples < 2:
            values["mse"] = float(self.metrics["mse"].compute())
            values["r2"] = float("nan")  # undefined for fewer than two examples
            return values
        for name, value in (self.metrics.compute() if len(self.metrics) else {}).items():
            if name == "confusion_matrix":
                values[name] = value.long().tolist()
            elif name == "per_class_f1":
                values[name] = dict(zip(self.label_names, value.tolist(), strict=True))
            else:
                values[name] = float(value)
        return values

    def reset(self) -> None:
        self.loss.reset()
        self.metrics.reset()


def loss_weight(task_kind: str, labels: torch.Tensor) -> torch.Tensor:
    """What a head's mean loss averages over in this batch: labelled tokens, or examples."""
    if task_kind == "causal_lm":
        return (labels[:, 1:] != IGNORE_INDEX).sum()  # the LM head scores the shifted labels
    if task_kind == "token_classification":
        return (labels != IGNORE_INDEX).sum()
    return torch.tensor(labels.shape[0], device=labels.device)


def _summed_over_processes(device: torch.device, *counts: int) -> list[int]:
    """Counts summed over a distributed run's processes (as they are in one process).

    Every process must take the same branch in `compute`: a rank that saw no batch and returned
    early would leave the others waiting in torchmetrics' gather.
    """
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return list(counts)
    totals = torch.tensor(counts, dtype=torch.long, device=device)  # NCCL reduces CUDA tensors only
    torch.distributed.all_reduce(totals)
    return totals.tolist()


def scalars(values: dict[str, Any]) -> dict[str, float]:
    return {name: value for name, value in values.items() if isinstance(value, float)}
