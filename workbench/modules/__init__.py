"""LightningModules and the recipes that assemble them with data and a Trainer."""

from workbench.heads import HEAD_FOR_TASK, TASK_KINDS  # re-exported: the one task-kind table lives with the heads
from workbench.modules.checkpoint import CheckpointError, load_pretrained, save_pretrained
from workbench.modules.finetune import FinetuneModule
from workbench.modules.lora import merge_lora
from workbench.modules.optim import OptimConfig
from workbench.modules.pretrain import PretrainModule
from workbench.modules.pretrain_recipe import PretrainOutcome, pretrain
from workbench.modules.pretrain_settings import PretrainSettings
from workbench.modules.recorder import TrainingRecorder
from workbench.modules.strategies import STRATEGIES, GradualUnfreeze, Strategy

__all__ = [
    "HEAD_FOR_TASK",
    "STRATEGIES",
    "TASK_KINDS",
    "CheckpointError",
    "FinetuneModule",
    "GradualUnfreeze",
    "OptimConfig",
    "PretrainModule",
    "PretrainOutcome",
    "PretrainSettings",
    "Strategy",
    "TrainingRecorder",
    "load_pretrained",
    "merge_lora",
    "pretrain",
    "save_pretrained",
]
