"""LightningModules and the recipes that assemble them with data and a Trainer."""

from workbench.modules.checkpoint import CheckpointError, load_pretrained, save_pretrained
from workbench.modules.optim import OptimConfig
from workbench.modules.pretrain import PretrainModule
from workbench.modules.pretrain_recipe import PretrainOutcome, PretrainSettings, pretrain
from workbench.modules.recorder import TrainingRecorder

__all__ = [
    "CheckpointError",
    "OptimConfig",
    "PretrainModule",
    "PretrainOutcome",
    "PretrainSettings",
    "TrainingRecorder",
    "load_pretrained",
    "pretrain",
    "save_pretrained",
]
