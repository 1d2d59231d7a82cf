"""The fine-tuning recipe: a base, a labelled task, a head and a strategy in; metrics out.

Parameters of `notebooks/finetune.ipynb` map one to one onto
`FinetuneSettings`, so a sweep spec, the notebook and the tests describe a run
the same way, and every choice is checked before the task is parsed or a base
is loaded.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Callable

import lightning as L

from workbench.config import ConfigError, from_dict
from workbench.data.finetune_datamodule import FinetuneDataModule
from workbench.data.tasks import TASK_KINDS, TASKS, TaskData, load_task
from workbench.heads import HEADS, POOLINGS, build_head
from workbench.modules.bases import Base, load_base
from workbench.modules.finetune import FinetuneModule
from workbench.modules.optim import OptimConfig
from workbench.modules.pretrain_recipe import PRECISIONS, quiet_lightning
from workbench.modules.recorder import TrainingRecorder
from workbench.modules.strategies import STRATEGIES, Strategy

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


@dataclass
class FinetuneOutcome:
    """Everything a notebook shows or saves after fine-tuning."""

    module: FinetuneModule
    base: Base
    task: TaskData
    datamodule: FinetuneDataModule
    history: list[dict[str, float]]
    metrics: dict[str, Any]  # deterministic for a seed
    details: dict[str, Any]  # non-scalar results: confusion matrix, per-class F1
    compute: dict[str, Any]
    data: dict[str, Any]


def finetune(
    settings: FinetuneSettings | dict[str, Any],
    *,
    callbacks: list[L.Callback] = (),
    printer: Callable[[str], None] | None = print,
) -> FinetuneOutcome:
    """Seed; load task and base; attach head and strategy; fit; test on the held-out split."""
    if isinstance(settings, dict):
        settings = FinetuneSettings.from_dict(settings)
    started = time.perf_counter()
    quiet_lightning()
    if settings.strategy == "linear_probe":  # the frozen base is in eval mode on purpose
        warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
    L.seed_everything(settings.seed, workers=True, verbose=False)
    task = load_task(settings.task, **settings.task_options())
    base = load_base(settings.base, max_length=settings.max_length, seed=settings.seed)
    head_kind = settings.head or DEFAULT_HEADS[task.kind]
    num_labels = len(task.label_names) if task.label_names else None
    head = build_head(
        head_kind, base.backbone.hidden_size, num_labels=num_labels,
        pooling=settings.pooling or base.backbone.default_pooling, dropout=settings.dropout, backbone=base.backbone,
    )
    datamodule = FinetuneDataModule(task, base.text_encoder, batch_size=settings.batch_size, seed=settings.seed)
    steps = settings.max_epochs * math.ceil(len(task.splits["train"]) / settings.batch_size)
    optim = OptimConfig(
        learning_rate=settings.learning_rate, warmup_steps=int(settings.warmup_fraction * steps),
        max_steps=max(1, steps), weight_decay=settings.weight_decay, min_lr_ratio=0.0,
    )
    module = FinetuneModule(base.backbone, head, settings.strategy_value(), optim, task.kind,
                            label_names=task.label_names)
    counts = module.parameter_counts()
    if printer:
        printer(
            f"{task.name}: {len(task.splits['train'])} train / {len(task.splits['validation'])} validation / "
            f"{len(task.splits['test'])} test examples; base {base.description.get('kind')} "
            f"{counts['total'] / 1e6:.2f}M parameters, {settings.strategy} trains "
            f"{counts['trainable']:,} ({100 * counts['trainable'] / counts['total']:.2f}%)"
        )
    recorder = TrainingRecorder(settings.batch_size, every_n_steps=max(1, steps // 100), printer=printer)
    trainer = L.Trainer(
        accelerator="auto", devices=1, precision=settings.precision, max_epochs=settings.max_epochs,
        gradient_clip_val=settings.grad_clip or None, num_sanity_val_steps=0, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[recorder, *module.strategy_callbacks(), *callbacks],
    )
    trainer.fit(module, datamodule=datamodule)
    validation = trainer.validate(module, datamodule=datamodule, verbose=False)[0]
    validation_details = module.final_metrics()
    test = trainer.test(module, datamodule=datamodule, verbose=False)[0]
    metrics = {
        **{k: float(v) for k, v in sorted(validation.items())},
        **{k: float(v) for k, v in sorted(test.items())},
        "trainable_parameters": counts["trainable"],
        "total_parameters": counts["total"],
        "trainable_fraction": counts["trainable"] / counts["total"],
        "train_examples": len(task.splits["train"]),
        "label_fraction": settings.label_fraction,
        "steps": trainer.global_step,
    }
    compute = recorder.compute_record(started=started, device=str(module.device), precision=settings.precision)
    data = {"task": task.describe(), "base": base.description, "text_encoder": base.text_encoder.describe(),
            "settings": asdict(settings)}
    details = {"validation": validation_details, "test": module.final_metrics()}
    return FinetuneOutcome(module, base, task, datamodule, recorder.history, metrics, details, compute, data)
