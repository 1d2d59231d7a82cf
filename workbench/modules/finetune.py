"""Fine-tuning as one LightningModule: a base, a head, and a strategy value.

The strategy decides which weights train and at what learning rate (see
strategies.py); the module owns the loss, the metrics and the optimiser, and
the Trainer owns the loop. Batches are dicts of `input_ids`, `attention_mask`
and `labels` (see the fine-tuning DataModule), or of `pixels` and `labels` for a
vision backbone (the image DataModules): every token of an image is real, so its
attention mask is all ones over the backbone's tokens, and a head pools through it.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import nn

from workbench.config import ConfigError
from workbench.heads import CLASSIFICATION_KINDS, head_for_task
from workbench.modules.metrics import TaskMetrics, loss_weight, scalars
from workbench.modules.optim import OptimConfig, build_optimizer
from workbench.modules.strategies import Strategy, WarmupCosineSchedule, optimizer_groups, unique_parameters
from workbench.modules.training import ClipsGlobalNorm, PlainHookNames

SPLIT_OF_STAGE = {"val": "validation", "test": "test"}  # metric prefix -> the split it evaluates


class FinetuneModule(ClipsGlobalNorm, PlainHookNames, L.LightningModule):
    def __init__(
        self,
        backbone: nn.Module,
        head: nn.Module,
        strategy: Strategy | dict[str, Any] | None,
        optim: OptimConfig | dict[str, Any] | None,
        task_kind: str,
        label_names: list[str] | None = None,
    ) -> None:
        super().__init__()
        strategy = Strategy.from_dict(strategy) if isinstance(strategy, dict) else strategy or Strategy()
        optim = OptimConfig(**optim) if isinstance(optim, dict) else optim or OptimConfig()
        label_names = list(label_names) if label_names is not None else None
        check_task(task_kind, head, label_names)
        self.strategy, self.optim, self.task_kind, self.label_names = strategy, optim, task_kind, label_names
        self.backbone, self.head = backbone, head
        strategy.apply(backbone, head)
        self.train(self.training)  # settle the base's mode now: Lightning only re-applies modes around evaluation
        num_classes = getattr(head, "num_classes", None)
        self.val_metrics = TaskMetrics(task_kind, num_classes, label_names)
        self.test_metrics = TaskMetrics(task_kind, num_classes, label_names)
        self.last_metrics: dict[str, dict[str, Any]] = {}
        self.save_hyperparameters(
            {"strategy": strategy.to_dict(), "optim": vars(optim), "task_kind": task_kind, "label_names": label_names}
        )

    # -- the model --------------------------------------------------------------------------------------------

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Token ids and their mask, or pixels alone (`attention_mask` None: every token of an image is real)."""
        hidden = self.backbone(input_ids, attention_mask)
        if attention_mask is None:
            attention_mask = torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device)
        return self.head(hidden, attention_mask)

    def predict_batch(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The head's output for a batch of token ids (with their mask) or of pixels."""
        if "pixels" in batch:
            return self(batch["pixels"])
        return self(batch["input_ids"], batch["attention_mask"])

    def train(self, mode: bool = True) -> "FinetuneModule":
        """Lightning switches the module to train mode every epoch; a frozen base (linear probe) stays in eval."""
        super().train(mode)
        if getattr(self, "strategy", None) is not None and self.strategy.base_in_eval:
            self.backbone.eval()
        return self

    def parameter_counts(self) -> dict[str, int]:
        """Unique parameters (tied weights once), and how many of them train now."""
        params = unique_parameters(self)
        return {
            "trainable": sum(p.numel() for p in params if p.requires_grad),
            "total": sum(p.numel() for p in params),
        }

    def strategy_callbacks(self) -> list[L.Callback]:
        """Callbacks the Trainer needs for this strategy (gradual unfreezing is one)."""
        return self.strategy.callbacks(self.optim)

    # -- steps ------------------------------------------------------------------------------------------------

    def setup(self, stage: str) -> None:
        if stage == "fit":
            self.strategy.check_callbacks(self.trainer.callbacks)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        predictions = self.predict_batch(batch)
        loss = self.head.loss(predictions, batch["labels"])
        if self._trainer is not None and self.trainer.world_size > 1:
            loss, logged = self._global_batch_loss(loss, predictions, batch["labels"])
        else:
            logged = loss
        self.keep_step_metric("train_loss", logged)
        return loss

    def _global_batch_loss(self, loss: torch.Tensor, predictions: torch.Tensor,
                           labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's loss scaled so that DDP's mean of the ranks' gradients is the global batch's.

        A head's loss is a mean over this rank's examples or labelled tokens, and ranks hold unequal
        counts (a short last batch; token tasks always). DDP averages the ranks' gradients equally,
        so each loss is weighted by count x ranks / global count: the step is then the one a single
        process takes on the whole global batch, and the logged loss is that batch's mean.
        """
        weight = loss_weight(self.task_kind, labels).to(loss.dtype)
        mine = torch.stack([torch.where(weight > 0, loss.detach() * weight, 0.0), weight])
        totals = self.trainer.strategy.reduce(mine, reduce_op="sum")
        if weight == 0:  # nothing labelled here: no gradient, but the graph DDP's reducer waits on
            return predictions.sum() * 0.0, totals[0] / totals[1]
        return loss * (weight * self.trainer.world_size / totals[1]), totals[0] / totals[1]

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(self.val_metrics, batch)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(self.test_metrics, batch)

    def _evaluate(self, metrics: TaskMetrics, batch: dict[str, torch.Tensor]) -> None:
        predictions = self.predict_batch(batch)
        metrics.update(predictions, batch["labels"], self.head.loss(predictions, batch["labels"]))

    def on_validation_epoch_end(self) -> None:
        self._report("val", self.val_metrics)

    def on_test_epoch_end(self) -> None:
        self._report("test", self.test_metrics)

    def _report(self, stage: str, metrics: TaskMetrics) -> None:
        values = metrics.compute()
        metrics.reset()
        if self._trainer is not None and self.trainer.sanity_checking:
            return
        for name, value in scalars(values).items():
            self.log(f"{stage}_{name}", value, prog_bar=name in ("loss", "accuracy"))
        self.last_metrics[stage] = values

    @property
    def last_confusion_matrix(self) -> list[list[int]] | None:
        """Rows are true labels, columns predictions; from the latest test pass, else validation."""
        return self._latest("confusion_matrix")

    @property
    def last_per_class_f1(self) -> dict[str, float] | None:
        return self._latest("per_class_f1")

    def _latest(self, name: str) -> Any:
        for stage in ("test", "val"):
            if name in self.last_metrics.get(stage, {}):
                return self.last_metrics[stage][name]
        return None

    def final_metrics(self) -> dict[str, Any]:
        """The latest validation and test results, flat and JSON-ready: val_accuracy, test_confusion_matrix, ..."""
        return {
            f"{stage}_{name}": value for stage, values in self.last_metrics.items() for name, value in values.items()
        }

    def details(self) -> dict[str, dict[str, Any]]:
        """The latest results by split, unprefixed and JSON-ready: {"validation": {...}, "test": {...}}.

        Each split holds only its own entries (loss, accuracy, confusion_matrix,
        per_class_f1, ...); a split not evaluated yet is left out.
        """
        return {SPLIT_OF_STAGE[stage]: dict(values) for stage, values in self.last_metrics.items()}

    # -- optimisation -----------------------------------------------------------------------------------------

    def optimizer_groups(self) -> list[dict]:
        return optimizer_groups(
            self.backbone, self.head, self.optim.learning_rate, self.optim.weight_decay, self.strategy.layer_lr_decay
        )

    def configure_optimizers(self) -> dict[str, Any]:
        groups = self.optimizer_groups()
        if not groups:
            raise ConfigError(f"strategy {self.strategy.name!r} leaves nothing to train")
        # Fused AdamW over the strategy's groups; muon is refused here (it needs its own split of the parameters,
        # and gradual unfreezing adds groups later).
        optimizer = build_optimizer(self, self.optim, groups)
        schedule = WarmupCosineSchedule(optimizer, self.optim)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def check_task(task_kind: str, head: nn.Module, label_names: list[str] | None) -> None:
    """The task, the head and the labels must agree before anything is built."""
    needed = head_for_task(task_kind)  # an unknown kind fails here, naming the valid ones
    head_kind = getattr(head, "kind", None)
    if head_kind != needed:
        raise ConfigError(f"task kind {task_kind!r} needs a {needed!r} head, got {head_kind or type(head).__name__!r}")
    if task_kind in CLASSIFICATION_KINDS:
        if label_names is not None and len(label_names) != head.num_classes:
            raise ConfigError(
                f"the head predicts {head.num_classes} classes "
                f"but there are {len(label_names)} label names: {label_names}"
            )
    elif label_names is not None:
        raise ConfigError(f"label_names apply to classification only; task kind {task_kind!r} got {label_names}")
