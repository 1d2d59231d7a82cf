"""What a fine-tuning run is, as one frozen dataclass: the notebook's parameters, a spec's
values and the recipe's input are all this, so each setting's name, type and default live here.

Every choice is checked on construction, before the task is parsed or a base is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.config import ConfigError, from_dict
from workbench.data.tasks import TASK_KINDS, TASKS
from workbench.heads import HEADS, POOLINGS
from workbench.modules.strategies import STRATEGIES, Strategy
from workbench.modules.training import PRECISIONS

# The head each task kind gets unless `head` says otherwise.
DEFAULT_HEADS = {
    "sequence_classification": "sequence_classification",
    "token_classification": "token_classification",
    "regression": "regression",
    "causal_lm": "lm",
}


@dataclass(frozen=True)
class FinetuneSettings:
    seed: int = 0
    # what to adapt
    base: str = "minilm"  # a pretraining run folder, "scratch:<run folder>", "minilm", or an HF model folder
    max_length: int = 128
    # the task
    task: str = "docstring-topic"
    task_path: str | None = None  # for task "file"
    hf_name: str | None = None  # for task "hf"
    text_column: str = "text"
    label_column: str = "label"
    task_kind: str | None = None  # for "file"/"hf": inferred from the labels when None
    label_fraction: float = 1.0
    max_examples: int | None = None
    # the head
    head: str | None = None  # None: the task kind's own head
    pooling: str | None = None  # None: the base's natural choice
    dropout: float = 0.1
    # the strategy
    strategy: str = "full"
    layer_lr_decay: float | None = None
    unfreeze_every: int = 1
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    lora_targets: list[str] | None = None
    # optimisation
    batch_size: int = 32
    max_epochs: int = 3
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    grad_clip: float = 1.0
    precision: str = "32-true"

    def __post_init__(self) -> None:
        choices = {"task": TASKS, "strategy": STRATEGIES, "precision": PRECISIONS}
        for name, valid in choices.items():
            if getattr(self, name) not in valid:
                raise ConfigError(f"{name}={getattr(self, name)!r} is not one of: {', '.join(valid)}")
        optional = {"head": HEADS, "pooling": POOLINGS, "task_kind": TASK_KINDS}
        for name, valid in optional.items():
            if getattr(self, name) is not None and getattr(self, name) not in valid:
                raise ConfigError(f"{name}={getattr(self, name)!r} is not one of: {', '.join(valid)} (or None)")
        if not 0.0 < self.label_fraction <= 1.0:
            raise ConfigError(f"label_fraction must be in (0, 1], got {self.label_fraction}")
        for name in ("max_length", "batch_size", "max_epochs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ConfigError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        self.strategy_value()

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "FinetuneSettings":
        return from_dict(cls, values, what="fine-tuning settings")

    def strategy_value(self) -> Strategy:
        return Strategy(
            name=self.strategy,
            layer_lr_decay=self.layer_lr_decay,
            unfreeze_every=self.unfreeze_every,
            lora_rank=self.lora_rank,
            lora_alpha=self.lora_alpha,
            lora_dropout=self.lora_dropout,
            lora_targets=self.lora_targets,
        )

    def task_options(self) -> dict[str, Any]:
        return dict(
            seed=self.seed, label_fraction=self.label_fraction, max_examples=self.max_examples,
            path=self.task_path, text_column=self.text_column, label_column=self.label_column,
            kind=self.task_kind, hf_name=self.hf_name,
        )
