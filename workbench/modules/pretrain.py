"""Causal-LM pretraining as a LightningModule.

The module owns the objective and the optimiser; the Trainer owns the loop and
precision; gradients are clipped by global norm (training.ClipsGlobalNorm).
Validation reports loss, perplexity and bits per byte, the last being
comparable across tokenizers.

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

from workbench.models import Decoder, DecoderConfig
from workbench.modules.optim import OptimConfig, build_optimizer, warmup_cosine
from workbench.modules.training import ClipsGlobalNorm


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy in nats, computed in fp32."""
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())


class PretrainModule(ClipsGlobalNorm, L.LightningModule):
    def __init__(
        self,
        model_config: DecoderConfig | dict[str, Any],
        optim: OptimConfig | dict[str, Any] | None = None,
        bytes_per_token: float | None = None,
        *,
        compile: bool = False,
        activation_checkpointing: bool = False,
        log_every_n_steps: int = 1,
    ) -> None:
        super().__init__()
        if isinstance(model_config, dict):
            model_config = DecoderConfig.from_dict(model_config)
        if isinstance(optim, dict):
            optim = OptimConfig(**optim)
        self.model_config = model_config
        self.optim = optim or OptimConfig()
        self.bytes_per_token = bytes_per_token
        self.model = Decoder(model_config)
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
            }
        )
        self._val_sum = torch.zeros(())
        self._val_count = 0
        self.log_every_n_steps = max(1, log_every_n_steps)

    def logs_step_metrics(self) -> bool:
        """Whether this batch logs train_loss and grad_norm.

        Each `self.log` call costs Lightning's result bookkeeping about a
        millisecond at small model sizes (profiled: ~1.5 ms of a 45 ms step),
        so step metrics are logged on the steps the recorder samples and the last.
        """
        step = self.global_step + 1  # the optimizer step this batch completes
        return step % self.log_every_n_steps == 0 or step == self.trainer.max_steps

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.model(idx).logits

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = lm_loss(self.model(x).logits, y)
        if self.logs_step_metrics():
            self.log("train_loss", loss, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val_sum = torch.zeros((), device=self.device)
        self._val_count = 0

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        # Sum token losses so a short last batch is weighted by its size, not as a whole batch.
        self._val_sum += lm_loss(self.model(x).logits, y).detach() * y.numel()
        self._val_count += y.numel()

    def on_validation_epoch_end(self) -> None:
        if not self._val_count:
            return
        val_loss = self._val_sum / self._val_count
        self.log("val_loss", val_loss, prog_bar=True)
        self.log("val_ppl", val_loss.exp())
        if self.bytes_per_token:
            self.log("val_bpb", val_loss / (math.log(2) * self.bytes_per_token))

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = build_optimizer(self.model, self.optim)  # AdamW, or Muon + AdamW as one optimizer
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, partial(warmup_cosine, config=self.optim))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
