"""LightningModules and the recipes that assemble them with data and a Trainer."""

from workbench.lazy import exports_of, lazy_exports

_EXPORTS = exports_of({
    "workbench.heads": ["HEAD_FOR_TASK", "TASK_KINDS"],
    "workbench.modules.checkpoint": ["CheckpointError", "load_pretrained", "save_pretrained"],
    "workbench.modules.finetune": ["FinetuneModule"],
    "workbench.modules.lora": ["merge_lora"],
    "workbench.modules.optim": ["OptimConfig"],
    "workbench.modules.pretrain": ["PretrainModule"],
    "workbench.modules.pretrain_recipe": ["PretrainOutcome", "pretrain"],
    "workbench.modules.pretrain_settings": ["PretrainSettings"],
    "workbench.modules.recorder": ["TrainingRecorder"],
    "workbench.modules.strategies": ["STRATEGIES", "GradualUnfreeze", "Strategy"],
})
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
