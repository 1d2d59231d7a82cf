"""Fine-tuning strategies as values: which weights train, and at what learning rate.

One `FinetuneModule` serves every strategy; the strategy only decides
`requires_grad`, the optimiser's parameter groups and, for gradual unfreezing,
a Lightning callback (freezing as a callback, after Lightning's
`BaseFinetuning`, not as training-loop code):

- full: every weight trains.
- linear_probe: the base is frozen and kept in eval mode; only the head trains.
- gradual_unfreeze: the head first, then one layer group more every
  `unfreeze_every` epochs, from the top down (ULMFiT).
- lora: low-rank adapters on the base's projections train, with the head;
  the base's own weights stay frozen (see lora.py).

`layer_lr_decay` combines with any of them: layer group i of n gets
lr * decay ** (n - 1 - i), the head the full lr, because lower layers hold
the general features that fine-tuning should disturb least.

`BEHAVIOURS` is the one table of what each name does; everything outside this
file asks the `Strategy` value (`apply`, `base_in_eval`, `callbacks`) rather
than comparing its name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import lightning as L
import torch
from lightning.pytorch.callbacks import BaseFinetuning
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from workbench.config import ConfigError, from_dict
from workbench.modules.choices import STRATEGIES
from workbench.modules.optim import OptimConfig, warmup_cosine


@dataclass(frozen=True)
class Strategy:
    name: str = "full"
    layer_lr_decay: float | None = None  # any strategy: lr of layer group i = lr * decay ** (depth from top)
    unfreeze_every: int = 1  # gradual_unfreeze: epochs between unfreezing the next group, top down
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    lora_targets: list[str] | None = None  # None: backbone.lora_targets()

    def __post_init__(self) -> None:
        if self.name not in STRATEGIES:
            raise ConfigError(f"unknown strategy {self.name!r}; valid strategies are: {', '.join(STRATEGIES)}")
        if self.layer_lr_decay is not None and not 0.0 < self.layer_lr_decay <= 1.0:
            raise ConfigError(f"layer_lr_decay must be in (0, 1] (or None for no decay), got {self.layer_lr_decay}")
        if self.unfreeze_every < 1:
            raise ConfigError(f"unfreeze_every must be at least 1 epoch, got {self.unfreeze_every}")
        if self.lora_rank < 1:
            raise ConfigError(f"lora_rank must be at least 1, got {self.lora_rank}")
        if self.lora_alpha <= 0:
            raise ConfigError(f"lora_alpha must be positive, got {self.lora_alpha}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ConfigError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if self.lora_targets is not None and (
            not self.lora_targets or not all(isinstance(t, str) and t for t in self.lora_targets)
        ):
            raise ConfigError(
                f"lora_targets must be a non-empty list of module names (or None), got {self.lora_targets!r}"
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Strategy":
        return from_dict(cls, values, what="strategy")

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["lora_targets"] = list(self.lora_targets) if self.lora_targets is not None else None
        return values

    @property
    def behaviour(self) -> "Behaviour":
        return BEHAVIOURS[self.name]

    @property
    def base_in_eval(self) -> bool:
        """Whether the base stays in eval mode (no dropout) while the head trains."""
        return self.behaviour.base_in_eval

    def apply(self, backbone: nn.Module, head: nn.Module) -> None:
        """Set what trains before the optimiser is built (LoRA adds its adapters here)."""
        set_trainable(unique_parameters(head), True)
        self.behaviour.prepare(backbone, head, self)

    def callbacks(self, optim: OptimConfig) -> list[L.Callback]:
        """The Trainer callbacks this strategy needs (gradual unfreezing is one)."""
        return self.behaviour.callbacks(self, optim) if self.behaviour.callbacks else []

    def check_callbacks(self, callbacks: list[L.Callback]) -> None:
        """Fail before training when the Trainer lacks a callback the strategy needs."""
        needed = self.behaviour.needs_callback
        if needed is not None and not any(isinstance(c, needed) for c in callbacks):
            raise ConfigError(
                f"strategy {self.name} needs its callback ({needed.__name__}): "
                "pass callbacks=module.strategy_callbacks() to the Trainer"
            )


def unique_parameters(module: nn.Module) -> list[nn.Parameter]:
    """Each parameter once, in registration order (a tied weight counts once)."""
    return list({id(p): p for p in module.parameters()}.values())


def layer_group_parameters(backbone: nn.Module) -> list[list[nn.Parameter]]:
    """The backbone's parameters per layer group, bottom to top, each parameter once.

    A tied weight stays with the lowest group that holds it (the embeddings);
    anything outside every group (an untied output layer, an unused pooler)
    joins the top group, the one nearest the head.
    """
    seen: set[int] = set()
    groups = []
    for group in backbone.layer_groups():
        params = [p for p in unique_parameters(group) if id(p) not in seen]
        seen.update(id(p) for p in params)
        groups.append(params)
    groups[-1].extend(p for p in unique_parameters(backbone) if id(p) not in seen)
    return groups


def layer_learning_rates(num_groups: int, learning_rate: float, layer_lr_decay: float | None) -> list[float]:
    """Bottom to top: lr * decay ** (distance from the top group)."""
    decay = layer_lr_decay or 1.0
    return [learning_rate * decay ** (num_groups - 1 - i) for i in range(num_groups)]


def decay_split(params: list[nn.Parameter], lr: float, weight_decay: float, name: str) -> list[dict]:
    """Trainable `params` as AdamW groups at `lr`: matrices decay, vectors (norm gains, biases) don't."""
    trainable = [p for p in params if p.requires_grad]
    groups = [
        {"params": [p for p in trainable if p.dim() >= 2], "weight_decay": weight_decay, "name": f"{name}.decay"},
        {"params": [p for p in trainable if p.dim() < 2], "weight_decay": 0.0, "name": f"{name}.no_decay"},
    ]
    return [dict(group, lr=lr) for group in groups if group["params"]]


def layer_group_name(index: int, num_groups: int) -> str:
    return "embeddings" if index == 0 else f"layer_{index}" if index < num_groups - 1 else f"layer_{index}_top"


def optimizer_groups(
    backbone: nn.Module, head: nn.Module, learning_rate: float, weight_decay: float, layer_lr_decay: float | None
) -> list[dict]:
    """AdamW parameter groups over what trains now: one pair per backbone layer group, then the head."""
    per_layer = layer_group_parameters(backbone)
    lrs = layer_learning_rates(len(per_layer), learning_rate, layer_lr_decay)
    groups = []
    for index, (params, lr) in enumerate(zip(per_layer, lrs, strict=True)):
        groups += decay_split(params, lr, weight_decay, layer_group_name(index, len(per_layer)))
    in_backbone = {id(p) for p in backbone.parameters()}
    head_params = [p for p in unique_parameters(head) if id(p) not in in_backbone]
    return groups + decay_split(head_params, learning_rate, weight_decay, "head")


def has_own_weights(head: nn.Module) -> bool:
    return any(True for _ in head.parameters())


def initially_unfrozen_groups(head: nn.Module) -> int:
    """Gradual unfreezing starts with the head alone; a head without weights (the LM head) brings the top group."""
    return 0 if has_own_weights(head) else 1


def set_trainable(params: list[nn.Parameter], trainable: bool) -> None:
    for p in params:
        p.requires_grad_(trainable)


def train_everything(backbone: nn.Module, head: nn.Module, strategy: Strategy) -> None:
    set_trainable(unique_parameters(backbone), True)


def freeze_base(backbone: nn.Module, head: nn.Module, strategy: Strategy) -> None:
    """Linear probe: only the head trains, so a head without weights of its own is refused."""
    if not has_own_weights(head):
        raise ConfigError(
            f"{strategy.name} trains only the head, and the {getattr(head, 'kind', type(head).__name__)} head has "
            "no weights of its own; use full, gradual_unfreeze or lora"
        )
    set_trainable(unique_parameters(backbone), False)


def add_adapters(backbone: nn.Module, head: nn.Module, strategy: Strategy) -> None:
    from workbench.modules.lora import add_lora

    add_lora(
        backbone,
        rank=strategy.lora_rank,
        alpha=strategy.lora_alpha,
        dropout=strategy.lora_dropout,
        targets=list(strategy.lora_targets or backbone.lora_targets()),
    )


def freeze_for_gradual_unfreeze(backbone: nn.Module, head: nn.Module, strategy: Strategy | None = None) -> None:
    """Everything below the groups that start unfrozen (none, or the top one for a weightless head) is frozen."""
    groups = layer_group_parameters(backbone)
    keep = initially_unfrozen_groups(head)
    for index, params in enumerate(groups):
        set_trainable(params, index >= len(groups) - keep)


class WarmupCosineSchedule(torch.optim.lr_scheduler.LRScheduler):
    """`warmup_cosine` applied to every parameter group's own peak lr.

    Unlike `LambdaLR`, it also follows groups added after it was built (gradual
    unfreezing adds them), reading each group's peak from `initial_lr`.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, config: OptimConfig) -> None:
        self.config = config
        super().__init__(optimizer)

    def multiplier(self, step: int | None = None) -> float:
        return warmup_cosine(self.last_epoch if step is None else step, self.config)

    def get_lr(self) -> list[float]:
        factor = self.multiplier()
        return [group.setdefault("initial_lr", group["lr"]) * factor for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        # Plain values only, so a checkpoint loads with torch.load(weights_only=True); the config comes from the module.
        return {key: value for key, value in super().state_dict().items() if key != "config"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict({**state_dict, "config": self.config})


class GradualUnfreeze(BaseFinetuning):
    """Unfreeze the base's layer groups from the top down, one more every `unfreeze_every` epochs.

    Epoch 0 trains the head (plus the top group when the head has no weights);
    each unfrozen group joins the optimiser with its layer-wise lr and the
    current point of the warmup-cosine schedule. Groups are added by identity
    rather than with `unfreeze_and_add_param_group`, whose check compares
    parameter *values* (a fresh norm gain of ones would match an already-added
    one and be skipped) and which puts matrices and norm gains in one decayed
    group.
    """

    def __init__(self, unfreeze_every: int, learning_rate: float, weight_decay: float, layer_lr_decay: float | None):
        super().__init__()
        self.unfreeze_every = unfreeze_every
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.layer_lr_decay = layer_lr_decay

    def unfrozen_groups(self, epoch: int, num_groups: int, head: nn.Module) -> int:
        return min(num_groups, initially_unfrozen_groups(head) + epoch // self.unfreeze_every)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # Only fitting restarts the schedule; a validate or test run after it must not refreeze the base.
        if stage == "fit":
            super().setup(trainer, pl_module, stage)

    def freeze_before_training(self, pl_module: L.LightningModule) -> None:
        freeze_for_gradual_unfreeze(pl_module.backbone, pl_module.head)

    def finetune_function(self, pl_module: L.LightningModule, epoch: int, optimizer: torch.optim.Optimizer) -> None:
        groups = layer_group_parameters(pl_module.backbone)
        lrs = layer_learning_rates(len(groups), self.learning_rate, self.layer_lr_decay)
        factor = self._schedule_multiplier(pl_module, optimizer)
        in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
        count = self.unfrozen_groups(epoch, len(groups), pl_module.head)
        unfrozen = False
        for index in range(len(groups) - 1, len(groups) - 1 - count, -1):
            new = [p for p in groups[index] if id(p) not in in_optimizer]
            if not new:
                continue
            set_trainable(new, True)
            unfrozen = True
            for group in decay_split(new, lrs[index], self.weight_decay, layer_group_name(index, len(groups))):
                optimizer.add_param_group(dict(group, initial_lr=group["lr"], lr=group["lr"] * factor))
        if unfrozen:
            rewrap_ddp(pl_module.trainer)

    @staticmethod
    def _schedule_multiplier(pl_module: L.LightningModule, optimizer: torch.optim.Optimizer) -> float:
        for config in pl_module.trainer.lr_scheduler_configs:
            if config.scheduler.optimizer is optimizer and hasattr(config.scheduler, "multiplier"):
                return config.scheduler.multiplier()
        return 1.0


def rewrap_ddp(trainer: L.Trainer) -> None:
    """Wrap the module in DistributedDataParallel again, after parameters started to require gradients.

    DDP's reducer all-reduces the gradients of the parameters that required them when it was built,
    and no others: a layer unfrozen later would train on each rank's own gradient alone and the ranks
    would drift apart without an error. A new wrapper (DDP broadcasts rank 0's weights, which every
    rank already holds) includes them. Every rank unfreezes at the same epoch start, outside any step.
    """
    strategy = trainer.strategy
    if isinstance(strategy.model, DistributedDataParallel):
        strategy.model = strategy._setup_model(strategy.lightning_module)


def gradual_unfreeze_callbacks(strategy: Strategy, optim: OptimConfig) -> list[L.Callback]:
    return [GradualUnfreeze(strategy.unfreeze_every, optim.learning_rate, optim.weight_decay, strategy.layer_lr_decay)]


def lora_settings(values: Mapping[str, Any]) -> list[str]:
    return [f"rank {values.get('lora_rank')}, alpha {values.get('lora_alpha')}"]


def unfreeze_schedule(values: Mapping[str, Any]) -> list[str]:
    return [f"one more layer every {values.get('unfreeze_every')} epochs"]


@dataclass(frozen=True)
class Behaviour:
    """What a strategy does: which weights train (`prepare`), what the Trainer needs, the base's mode."""

    prepare: Callable[[nn.Module, nn.Module, Strategy], None]  # (backbone, head, strategy): set requires_grad
    base_in_eval: bool = False  # the base stays in eval mode (no dropout) through training
    callbacks: Callable[[Strategy, OptimConfig], list[L.Callback]] | None = None
    needs_callback: type[L.Callback] | None = None  # fitting without it is refused
    settings_phrase: Callable[[Mapping[str, Any]], list[str]] | None = None  # the settings a reader needs to know


BEHAVIOURS: dict[str, Behaviour] = {
    "full": Behaviour(train_everything),
    "linear_probe": Behaviour(freeze_base, base_in_eval=True),
    "gradual_unfreeze": Behaviour(
        freeze_for_gradual_unfreeze,
        callbacks=gradual_unfreeze_callbacks,
        needs_callback=GradualUnfreeze,
        settings_phrase=unfreeze_schedule,
    ),
    "lora": Behaviour(add_adapters, settings_phrase=lora_settings),
}
if tuple(BEHAVIOURS) != STRATEGIES:  # the names live in modules/choices.py, light enough for the spec check
    raise RuntimeError(f"BEHAVIOURS {tuple(BEHAVIOURS)} and choices.STRATEGIES {STRATEGIES} disagree")


def strategy_phrase(values: Mapping[str, Any]) -> str | None:
    """A strategy as a model card states it, from recorded settings: "`lora` (rank 8, alpha 16.0)".

    Reads plain values (a run's parameters, `Strategy.to_dict()` with "name"), so a
    record with a missing or unknown strategy still reads; None when none is named.
    """
    name = values.get("strategy", values.get("name"))
    if name is None:
        return None
    behaviour = BEHAVIOURS.get(name)
    extras = behaviour.settings_phrase(values) if behaviour and behaviour.settings_phrase else []
    if values.get("layer_lr_decay") is not None:
        extras.append(f"layer-wise lr decay {values['layer_lr_decay']}")
    return f"`{name}`" + (f" ({'; '.join(extras)})" if extras else "")
