"""Training plumbing both recipes share: precision choices, the Lightning Trainer, clipping, quiet banners.

Recipes assemble components and never import each other; whatever both need
to train (how the Trainer is made, how gradients are clipped, which of
Lightning's messages a notebook should not show) is written once, here.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from typing import Any

import lightning as L
import torch
from lightning.pytorch.profilers import PassThroughProfiler

from workbench.modules.distributed import Scale


def quiet_lightning(*, modules_in_eval: bool = False) -> None:
    """Keep Lightning's banners (accelerator lines, tips) out of notebook outputs; warnings still show.

    `modules_in_eval`: the run keeps part of the model in eval mode on purpose (a
    frozen base), so Lightning's "Found N module(s) in eval mode" is not news.
    """
    for name in ("lightning.pytorch", "lightning.fabric"):  # fabric: "Initializing distributed: ..."
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    # The datamodule restores the data stream's position itself (its state_dict), so mid-epoch resume is exact.
    warnings.filterwarnings("ignore", message=r"You're resuming from a checkpoint that ended before the epoch ended")
    # The recipes reduce epoch-level metrics over processes themselves (sums of token losses, not means of means).
    warnings.filterwarnings("ignore", message=r"It is recommended to use `self.log\('(val|test)_")
    if modules_in_eval:
        warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")


def make_trainer(
    *, precision: str, callbacks: list[L.Callback], grad_clip: float | None = None, scale: Scale | None = None,
    **loop: Any
) -> L.Trainer:
    """The Trainer every recipe trains and evaluates with; `loop` sets its length and evaluation cadence.

    One device unless `scale` says more; a recipe that passes a scale of several
    processes shards its own data (Lightning injects no distributed sampler). No
    logger, checkpoints, progress bar or model summary, because the recorder, the
    run folder and the training state do those jobs; no sanity validation, which
    would only repeat the first evaluation.
    """
    scale = scale or Scale()
    options = dict(
        accelerator="auto",
        devices=scale.devices,
        num_nodes=scale.num_nodes,
        strategy=scale.lightning_strategy(),
        use_distributed_sampler=not scale.distributed,
        precision=precision,
        gradient_clip_val=grad_clip or None,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        # CPU kernels are deterministic for a fixed thread count; torch.use_deterministic_algorithms
        # would swap fused attention for a path ~9x slower at block 256 (measured), so it stays off.
        deterministic=False,
        callbacks=list(callbacks),
        profiler=NoProfiler(),
    )
    options.update(loop)
    return L.Trainer(**options)


class NoProfiler(PassThroughProfiler):
    """Lightning's default profiler, minus its cost: a shared null context for every action.

    Lightning wraps each hook and callback call in `profiler.profile(name)`, about forty times
    a training step. PassThroughProfiler's is a generator-based context manager (0.8 µs a call,
    measured); this one returns the same `nullcontext` (0.1 µs). Pass a real profiler through the
    Trainer's `profiler` option to profile.
    """

    _NULL = contextlib.nullcontext()

    def profile(self, action_name: str) -> contextlib.nullcontext:
        return self._NULL


class PlainHookNames:
    """LightningModule mixin: Lightning's hook-name bookkeeping as a plain attribute write.

    Around every hook it calls (about forty a training step), Lightning sets the module's
    `_current_fx_name` and restores it. torch's `Module.__setattr__` checks the parameter,
    buffer and submodule registries on each write (1.2 µs, measured); a plain write takes 0.1 µs.
    The name is a string or None, never a parameter, buffer or module, so nothing is missed.
    Put it before `L.LightningModule` in the bases.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)


class ClipsGlobalNorm:
    """LightningModule mixin: clip the trainable gradients by their global norm, and keep the step's metrics.

    Lightning refuses to clip a fused optimiser under any mixed-precision plugin,
    because fp16's loss scaler would have to unscale first. bf16 has no scaler
    (and fp16 is not offered), so the gradients here are true ones. Put it before
    `L.LightningModule` in the bases; `logs_step_metrics` says on which steps the
    norm is kept (every step unless the module says otherwise).

    Per-step scalars (train_loss, grad_norm) go into `step_metrics`, not through `self.log`:
    each `self.log` call cost ~0.8 ms at nanoGPT's recipe size (profiled, most of it Lightning
    moving its result record to the device), half of Lightning's whole overhead on the steps
    that log. The recorder and the live curves read `step_metrics` beside `callback_metrics`,
    which keeps the evaluation metrics that `self.log` reduces over an epoch.
    """

    @property
    def step_metrics(self) -> dict[str, torch.Tensor]:
        """The latest per-step scalars, detached: {"train_loss": ..., "grad_norm": ...}."""
        return self.__dict__.setdefault("_step_metrics", {})

    def keep_step_metric(self, name: str, value: torch.Tensor) -> None:
        self.step_metrics[name] = value.detach()

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        if gradient_clip_val:
            # The optimizer's parameters are the trainable ones (gradual unfreezing adds groups as layers thaw).
            # Read from its groups, not `self.parameters()`: that walk of every module cost ~0.3 ms a step at
            # nanoGPT's recipe size, a tenth of Lightning's whole overhead there (profiled).
            trainable = [p for group in optimizer.param_groups for p in group["params"]]
            norm = torch.nn.utils.clip_grad_norm_(trainable, gradient_clip_val)
            if self.logs_step_metrics():
                self.keep_step_metric("grad_norm", norm)

    def logs_step_metrics(self) -> bool:
        return True
