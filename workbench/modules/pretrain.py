"""Pretraining a text model as a LightningModule: a causal-LM decoder or a masked-LM encoder.

The module owns the objective and the optimiser; the Trainer owns the loop and
precision; gradients are clipped by global norm (training.ClipsGlobalNorm).
Validation reports loss and perplexity; bits per byte (comparable across tokenizers)
for the causal LM, where the loss is a code length of the text; masked-token accuracy
for the masked LM, whose loss reads 15% of the positions with both sides given.

Two speed options, both off by default because neither pays everywhere
(`python -m benchmarks` measures them): `compile` runs the decoder through
`torch.compile` (on 2 CPU cores it saves ~15% a step at nanoGPT's recipe size but
costs ~30 s of compilation, so it pays only in runs of thousands of steps; on a GPU
it pays from a few hundred), and `activation_checkpointing` recomputes each block's
activations in the backward pass, trading ~1/3 more compute for memory.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from workbench.models import Decoder, DecoderConfig, Encoder, EncoderConfig
from workbench.modules.choices import CAUSAL_LM, MASKED_LM
from workbench.modules.masked_lm import IGNORE, mask_tokens, masked_lm_loss, step_generator
from workbench.modules.optim import OptimConfig, build_optimizer, warmup_cosine
from workbench.modules.training import ClipsGlobalNorm, PlainHookNames


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy in nats, computed in fp32."""
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())


OBJECTIVE_MODELS = {CAUSAL_LM: (DecoderConfig, Decoder), MASKED_LM: (EncoderConfig, Encoder)}
VALIDATION_SEED = 1_234_567  # the masked LM's validation masks: one fixed draw per batch


class PretrainModule(ClipsGlobalNorm, PlainHookNames, L.LightningModule):
    def __init__(
        self,
        model_config: DecoderConfig | dict[str, Any],
        optim: OptimConfig | dict[str, Any] | None = None,
        bytes_per_token: float | None = None,
        *,
        compile: bool = False,
        activation_checkpointing: bool = False,
        log_every_n_steps: int = 1,
        objective: str = CAUSAL_LM,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if objective not in OBJECTIVE_MODELS:
            raise ValueError(f"unknown objective {objective!r}; valid: {', '.join(OBJECTIVE_MODELS)}")
        config_cls, model_cls = OBJECTIVE_MODELS[objective]
        if isinstance(model_config, dict):
            model_config = config_cls.from_dict(model_config)
        if isinstance(optim, dict):
            optim = OptimConfig(**optim)
        self.model_config = model_config
        self.optim = optim or OptimConfig()
        self.bytes_per_token = bytes_per_token
        self.objective, self.seed = objective, seed
        self.model = model_cls(model_config)
        self.model.activation_checkpointing = activation_checkpointing
        if compile:
            # In place (nn.Module.compile): parameter names and state_dict keys stay those of the plain model.
            self.model.compile()
        self.save_hyperparameters(
            {
                "model_config": model_config.to_dict(),
                "optim": vars(self.optim),
                "bytes_per_token": bytes_per_token,
                "compile": compile,
                "activation_checkpointing": activation_checkpointing,
                "objective": objective,
                "seed": seed,
            }
        )
        self._val_sum = torch.zeros(())
        self._val_correct = torch.zeros(())
        self._val_count = 0
        self.log_every_n_steps = max(1, log_every_n_steps)

    def logs_step_metrics(self) -> bool:
        """Whether this batch keeps train_loss and grad_norm (`step_metrics`) for the recorder.

        Only the steps the recorder samples, and the last: the train loss under DDP costs a
        collective to average, and reading a tensor on a GPU syncs with the device.
        """
        step = self.global_step + 1  # the optimizer step this batch completes
        return step % self.log_every_n_steps == 0 or step == self.trainer.max_steps

    def _rank_and_world(self) -> tuple[int, int]:
        """(this process's rank, the processes training): (0, 1) outside a Trainer, as in a unit test."""
        trainer = self._trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.model(idx).logits

    def loss_on(self, batch: tuple[torch.Tensor, torch.Tensor], generator: torch.Generator | None = None,
                *, scored: bool = False) -> tuple[torch.Tensor, int | torch.Tensor, torch.Tensor | None]:
        """(mean loss, targets it read, of those predicted right if `scored`) for a batch of (inputs, next tokens).

        The masked LM reads the inputs alone and masks them with `generator` (a fixed one if None).
        """
        x, y = batch
        if self.objective == MASKED_LM:
            x, y = mask_tokens(x, mask_token_id=self.model.config.mask_token_id,
                               generator=generator or step_generator(self.seed, 0))
            logits = self.model(x).logits
            loss, read = masked_lm_loss(logits, y), y != IGNORE
            count = read.sum()
        else:
            logits = self.model(x).logits
            loss, read, count = lm_loss(logits, y), None, y.numel()
        if not scored:
            return loss, count, None
        right = logits.detach().argmax(-1) == y
        return loss, count, (right if read is None else right & read).sum()

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        generator = None
        if self.objective == MASKED_LM:  # a mask per micro-batch, from the seed and its position in the run
            accumulate = self.trainer.accumulate_grad_batches
            rank, world = self._rank_and_world()
            micro_batch = self.global_step * accumulate + batch_idx % accumulate
            generator = step_generator(self.seed, micro_batch * world + rank)
        loss, _, _ = self.loss_on(batch, generator)
        if self.logs_step_metrics():
            # Averaged over the processes' equal shares: the loss of the global batch, as one process would log it.
            shown = loss.detach()
            if self._rank_and_world()[1] > 1:
                shown = self.trainer.strategy.reduce(shown, reduce_op="mean")
            self.keep_step_metric("train_loss", shown)
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val_sum = torch.zeros((), device=self.device)
        self._val_correct = torch.zeros((), device=self.device)
        self._val_count = 0

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        # Every evaluation masks batch i the same way, whatever the seed: runs and evaluations compare.
        loss, count, correct = self.loss_on(batch, step_generator(VALIDATION_SEED, batch_idx),
                                            scored=self.objective == MASKED_LM)
        # Sum token losses so a short last batch is weighted by its size, not as a whole batch.
        self._val_sum += loss.detach() * count
        if correct is not None:
            self._val_correct += correct
        self._val_count += int(count)

    def on_validation_epoch_end(self) -> None:
        # Each process evaluated its share of the blocks: sum the token losses and counts over all of them.
        count = torch.tensor(self._val_count, dtype=torch.float64, device=self.device)  # exact past 2**24 tokens
        if self._rank_and_world()[1] > 1:
            reduce = self.trainer.strategy.reduce
            total, correct, count = (reduce(value, reduce_op="sum") for value in (self._val_sum, self._val_correct,
                                                                                   count))
        else:
            total, correct = self._val_sum, self._val_correct
        if not count:
            return
        val_loss = (total / count).float()
        self.log("val_loss", val_loss, prog_bar=True)
        self.log("val_ppl", val_loss.exp())
        if self.objective == MASKED_LM:
            self.log("val_accuracy", (correct / count).float())  # of the masked-out tokens
        elif self.bytes_per_token:
            self.log("val_bpb", val_loss / (math.log(2) * self.bytes_per_token))

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = build_optimizer(self.model, self.optim)  # AdamW, or Muon + AdamW as one optimizer
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, partial(warmup_cosine, config=self.optim))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
