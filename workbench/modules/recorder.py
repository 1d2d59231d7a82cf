"""Record a training run's curves and compute as it happens.

A callback, so the module stays a pure objective: the same recorder serves
pretraining and fine-tuning, and the live-curve widgets read what it records.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import Logger
from lightning.pytorch.trainer.states import TrainerFn

AXES = ("step", "tokens", "examples", "time_s")  # what a row is plotted against, not a curve of its own


def _scalar(value: Any) -> float:
    return float(value.item() if isinstance(value, torch.Tensor) else value)


def batch_examples(batch: Any) -> int:
    """The examples in a fine-tuning batch: its token-id rows, or its images."""
    return len(batch["input_ids"] if "input_ids" in batch else batch["pixels"])


def real_tokens(batch: Any, tokens_per_image: int | None = None) -> torch.Tensor:
    """The non-padding tokens of a fine-tuning batch: the attention mask's ones (every id when there is none);
    for a batch of images, every token of each (its patches and prefix tokens: `tokens_per_image`)."""
    if "pixels" in batch and "input_ids" not in batch:
        if tokens_per_image is None:
            raise ValueError("a batch of pixels needs tokens_per_image to count its tokens")
        return torch.tensor(len(batch["pixels"]) * tokens_per_image)
    mask = batch.get("attention_mask")
    return mask.sum() if mask is not None else torch.tensor(batch["input_ids"].numel())


class TrainingRecorder(L.Callback):
    """Keeps `history` (one row per logged step or evaluation) and the time spent training.

    Two ways to count data seen, so curves can be drawn against it:
    - `tokens_per_step` given (pretraining): packed blocks, every token real, so
      optimizer steps x (batch x block x accumulated batches) is exact.
    - `tokens_per_step=None` (fine-tuning): padded batches of examples, so each
      batch's examples and its attention mask's real tokens are counted as fed
      (for batches of pixels, `tokens_per_image` each: no image token is padding).
    On several processes the counts are the global batch's (summed over the ranks).
    `train_steps` counts optimizer steps. Reading a logged tensor syncs with the
    device, so train rows are taken every `every_n_steps`, not every step, and
    real tokens are summed on the device until a row or the record reads them.
    """

    def __init__(self, tokens_per_step: int | None, every_n_steps: int = 10, printer=None,
                 tokens_per_image: int | None = None, loggers: Sequence[Logger] = ()) -> None:
        self.tokens_per_step = tokens_per_step
        self.tokens_per_image = tokens_per_image  # a ViT's tokens per image, for batches of pixels
        self.counts_batches = tokens_per_step is None
        self.examples_seen = 0
        self._real_tokens: torch.Tensor | int = 0  # a device tensor once batches arrive
        self.every_n_steps = max(1, every_n_steps)
        self.printer = printer
        self.loggers = list(loggers)  # Lightning loggers (modules/tracking.py) that get every row, at its step
        self.history: list[dict[str, float]] = []
        self.train_seconds = 0.0
        self.train_steps = 0
        self._fit_start = 0.0
        self._batch_start = 0.0
        self._last_step = 0
        self._seconds_before = 0.0  # wall time of the run's earlier attempts, when resumed
        self.resumed_at_steps: list[int] = []

    @property
    def wall_seconds(self) -> float:
        return time.perf_counter() - self._fit_start

    @property
    def tokens_seen(self) -> int:
        """Real tokens fed to training so far (packed: steps x tokens per step; padded: counted)."""
        return int(self._real_tokens) if self.counts_batches else self.train_steps * self.tokens_per_step

    def _row(self, trainer: L.Trainer, keys: tuple[str, ...]) -> dict[str, float]:
        tokens = int(self._real_tokens) if self.counts_batches else trainer.global_step * self.tokens_per_step
        row = {"step": trainer.global_step, "tokens": tokens}
        if self.counts_batches:
            row["examples"] = self.examples_seen
        row["time_s"] = round(self.wall_seconds, 4)
        # callback_metrics is a property that rebuilds its dict from Lightning's results: read once
        logged = {**trainer.callback_metrics, **getattr(trainer.lightning_module, "step_metrics", {})}
        for key in keys:
            if key in logged:
                row[key] = _scalar(logged[key])
        return row

    def _record(self, row: dict[str, float]) -> None:
        """A row joins the history and goes to every logger at its own step, so their curves are history.json's."""
        self.history.append(row)
        curves = {k: v for k, v in row.items() if k not in AXES}
        for logger in self.loggers:
            logger.log_metrics(curves, step=row["step"])

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._fit_start = time.perf_counter() - self._seconds_before

    def state_dict(self) -> dict[str, Any]:
        """Saved with the training state: a resumed run's curves and totals cover the whole run."""
        state = {
            "history": json.dumps(self.history),
            "train_seconds": self.train_seconds,
            "train_steps": self.train_steps,
            "wall_seconds": self.wall_seconds,
            "resumed_at_steps": list(self.resumed_at_steps),
        }
        if self.counts_batches:
            state.update(examples_seen=self.examples_seen, real_tokens=int(self._real_tokens))
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = json.loads(state_dict["history"])
        self.train_seconds = state_dict["train_seconds"]
        self.train_steps = state_dict["train_steps"]
        self._seconds_before = state_dict["wall_seconds"]
        self.resumed_at_steps = [*state_dict["resumed_at_steps"], self.train_steps]
        if self.counts_batches:
            self.examples_seen = state_dict.get("examples_seen", 0)
            self._real_tokens = state_dict.get("real_tokens", 0)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._batch_start = time.perf_counter()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._last_step = trainer.global_step  # after a resume: the step it continues from

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.train_seconds += time.perf_counter() - self._batch_start
        if self.counts_batches:  # every batch is fed, also one that only accumulates gradients
            self._count(trainer, batch)
        step = trainer.global_step
        if step == self._last_step:  # with gradient accumulation: a batch that only added to the gradients
            return
        self._last_step = step
        self.train_steps += 1
        if step % self.every_n_steps == 0 or step == trainer.max_steps:
            row = self._row(trainer, ("train_loss", "grad_norm"))
            row["lr"] = trainer.optimizers[0].param_groups[0]["lr"]
            self._record(row)

    def _count(self, trainer: L.Trainer, batch: Any) -> None:
        """Add a batch's examples and real tokens; on several processes, every rank's slice of the global batch."""
        tokens = real_tokens(batch, self.tokens_per_image).detach()
        if trainer.world_size == 1:
            self.examples_seen += batch_examples(batch)
            self._real_tokens = self._real_tokens + tokens
            return
        counts = torch.stack([torch.tensor(batch_examples(batch), device=tokens.device), tokens.long()])
        examples, tokens = trainer.strategy.reduce(counts, reduce_op="sum")  # one small collective a step
        self.examples_seen += int(examples)
        self._real_tokens = self._real_tokens + tokens

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        row = self._row(trainer, ("val_loss", "val_ppl", "val_bpb", "val_accuracy"))
        self._record(row)
        if self.printer:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in row.items() if k.startswith("val_"))
            self.printer(f"step {row['step']:>6}  {shown}  ({row['time_s']:.1f} s)")

    def compute_record(self, *, started: float, device: str, precision: str) -> dict[str, Any]:
        """Throughput over the time spent inside training steps (evaluation excluded), and the
        whole wall time since `started` (a `time.perf_counter()` taken before data loading).

        Tokens are real ones: with padded batches, `train_tokens` and `tokens_per_s`
        count only the attention mask's tokens, beside `train_examples_seen` and `examples_per_s`.
        """
        tokens = self.tokens_seen
        seconds = max(self.train_seconds, 1e-9)
        examples = (
            {"train_examples_seen": self.examples_seen, "examples_per_s": round(self.examples_seen / seconds, 1)}
            if self.counts_batches
            else {}
        )
        return {
            "train_steps": self.train_steps,
            **examples,
            "train_tokens": tokens,
            "train_time_s": round(self.train_seconds, 3),
            "tokens_per_s": round(tokens / seconds, 1),
            "ms_per_step": round(1000 * seconds / max(1, self.train_steps), 2),
            "wall_time_s": round(time.perf_counter() - started, 3),
            "device": device,
            "precision": precision,
            "torch_threads": torch.get_num_threads(),
            "resumed_at_steps": list(self.resumed_at_steps),  # empty for a run that never stopped
        }
