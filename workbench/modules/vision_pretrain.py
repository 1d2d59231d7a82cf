"""Pretraining a ViT as a LightningModule: masked autoencoding, or supervised classification of a set's labels.

- mae: the MAE (models/mae.py) hides `mask_ratio` of each image's patches, drawn from the run's seed and the
  step alone (so a resumed run masks as the uninterrupted one did), and scores the reconstruction of the
  hidden patches' normalized pixels by mean squared error. Validation masks come from a fixed generator per
  batch, the same for every evaluation and every run: val_loss compares across steps, seeds and runs.
- supervised: a linear classifier on the ViT's pooled state, cross-entropy; validation reports loss and accuracy.

Either way the encoder, `module.encoder`, is a plain ViT: the checkpoint keeps it alone (the MAE decoder and
the classifier are thrown away), and fine-tuning puts a new head on it. The Trainer owns the loop and
precision; gradients are clipped by global norm (training.ClipsGlobalNorm).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from workbench.models import MAE, MAEDecoderConfig, ViT, ViTConfig
from workbench.modules.choices import MAE as MAE_OBJECTIVE
from workbench.modules.choices import SUPERVISED, VISION_OBJECTIVES
from workbench.modules.masked_lm import step_generator
from workbench.modules.optim import OptimConfig, build_optimizer, warmup_cosine
from workbench.modules.training import ClipsGlobalNorm, PlainHookNames

VALIDATION_SEED = 7_654_321  # MAE's validation masks: one fixed draw per batch


class ImageClassifier(nn.Module):
    """A ViT and a linear layer on its pooled state (the class token's, or the mean over tokens)."""

    def __init__(self, config: ViTConfig, num_classes: int) -> None:
        super().__init__()
        self.encoder = ViT(config)
        self.classifier = nn.Linear(config.d_model, num_classes)
        nn.init.normal_(self.classifier.weight, std=0.02)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.encoder(pixels).pooled)


class VisionPretrainModule(ClipsGlobalNorm, PlainHookNames, L.LightningModule):
    def __init__(
        self,
        encoder_config: ViTConfig | dict[str, Any],
        optim: OptimConfig | dict[str, Any] | None = None,
        *,
        objective: str = MAE_OBJECTIVE,
        decoder_config: MAEDecoderConfig | dict[str, Any] | None = None,
        mask_ratio: float = 0.75,
        num_classes: int | None = None,
        seed: int = 0,
        log_every_n_steps: int = 1,
    ) -> None:
        super().__init__()
        if objective not in VISION_OBJECTIVES:
            raise ValueError(f"unknown objective {objective!r}; valid: {', '.join(VISION_OBJECTIVES)}")
        encoder_config = ViTConfig.from_dict(encoder_config) if isinstance(encoder_config, dict) else encoder_config
        optim = OptimConfig(**optim) if isinstance(optim, dict) else optim or OptimConfig()
        self.objective, self.optim, self.mask_ratio, self.seed = objective, optim, mask_ratio, seed
        self.log_every_n_steps = max(1, log_every_n_steps)
        if objective == MAE_OBJECTIVE:
            if isinstance(decoder_config, dict):
                decoder_config = MAEDecoderConfig.from_dict(decoder_config)
            self.model: nn.Module = MAE(encoder_config, decoder_config)
            decoder_record = self.model.decoder_config.to_dict()
        else:
            if not isinstance(num_classes, int) or num_classes < 2:
                raise ValueError(f"objective {SUPERVISED!r} needs num_classes >= 2, got {num_classes!r}")
            self.model = ImageClassifier(encoder_config, num_classes)
            decoder_record = None
        # The live curves and the card read what a loss is in: squared error (MAE) or nats per image.
        self.task_kind = "regression" if objective == MAE_OBJECTIVE else "sequence_classification"
        self.save_hyperparameters({
            "encoder_config": encoder_config.to_dict(), "optim": vars(optim), "objective": objective,
            "decoder_config": decoder_record, "mask_ratio": mask_ratio, "num_classes": num_classes, "seed": seed,
        })
        self._val_sum = torch.zeros(())
        self._val_correct = torch.zeros(())
        self._val_count = 0

    @property
    def encoder(self) -> ViT:
        return self.model.encoder

    def get_output_embeddings(self) -> nn.Module:
        """The layer that maps hidden states to outputs (pixels or classes): AdamW's, never Muon's."""
        return self.model.decoder_pred if self.objective == MAE_OBJECTIVE else self.model.classifier

    def logs_step_metrics(self) -> bool:
        """train_loss and grad_norm on the steps the recorder samples and the last (each log costs ~1 ms)."""
        step = self.global_step + 1
        return step % self.log_every_n_steps == 0 or step == self.trainer.max_steps

    def loss_on(self, batch: dict[str, torch.Tensor], generator: torch.Generator | None = None,
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(mean loss, images classified right or None) for a batch; MAE masks with `generator` (fixed if None)."""
        pixels = batch["pixels"]
        if self.objective == MAE_OBJECTIVE:
            out = self.model(pixels, self.mask_ratio, generator or step_generator(self.seed, 0))
            return out.loss, None
        logits = self.model(pixels)
        labels = batch["labels"]
        return F.cross_entropy(logits.float(), labels), (logits.detach().argmax(-1) == labels).sum()

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, _ = self.loss_on(batch, step_generator(self.seed, self.global_step))  # this step's masks
        if self.logs_step_metrics():
            self.keep_step_metric("train_loss", loss)
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val_sum = torch.zeros((), device=self.device)
        self._val_correct = torch.zeros((), device=self.device)
        self._val_count = 0

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        # Every evaluation masks batch i the same way, whatever the seed: runs and evaluations compare.
        loss, correct = self.loss_on(batch, step_generator(VALIDATION_SEED, batch_idx))
        count = len(batch["pixels"])  # every image hides as many patches: weight each batch by its images
        self._val_sum += loss.detach() * count
        if correct is not None:
            self._val_correct += correct
        self._val_count += count

    def on_validation_epoch_end(self) -> None:
        if not self._val_count:
            return
        self.log("val_loss", self._val_sum / self._val_count, prog_bar=True)
        if self.objective == SUPERVISED:
            self.log("val_accuracy", self._val_correct / self._val_count)

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = build_optimizer(self, self.optim)  # AdamW, or Muon on the block matrices + AdamW
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, partial(warmup_cosine, config=self.optim))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


@torch.no_grad()
def mean_prediction_loss(module: VisionPretrainModule, batches) -> float:
    """MAE's yardstick: the validation loss of predicting every hidden patch as its mean (0 in normalized units),
    on the same fixed masks as val_loss. A model that learnt nothing of the images scores about this."""
    from workbench.models.mae import masked_mse, normalized_patches, random_masking

    total, count = 0.0, 0
    config = module.model.encoder_config
    for index, batch in enumerate(batches):
        pixels = batch["pixels"].to(module.device)
        masking = random_masking(len(pixels), config.num_patches, module.mask_ratio,
                                 step_generator(VALIDATION_SEED, index), device=pixels.device)
        target = normalized_patches(pixels, config.patch_size)
        total += float(masked_mse(torch.zeros_like(target), target, masking.mask)) * len(pixels)
        count += len(pixels)
    return total / max(count, 1)
