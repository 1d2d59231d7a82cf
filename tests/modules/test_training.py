"""The plumbing both recipes share, and the rule that recipes and file formats import components, not recipes."""

import subprocess
import sys

import lightning as L
import pytest

from workbench.modules import FinetuneModule, PretrainModule
from workbench.modules.training import ClipsGlobalNorm, make_trainer


@pytest.mark.parametrize(
    "module, forbidden",
    [
        ("workbench.modules.finetune_recipe", "workbench.modules.pretrain_recipe"),
        ("workbench.modules.pretrain_recipe", "workbench.modules.finetune_recipe"),
        ("workbench.modules.finetuned", "workbench.modules.finetune_recipe"),
    ],
)
def test_recipes_and_formats_import_components_not_recipes(module, forbidden):
    code = f"import sys, {module}; print({forbidden!r} in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_one_trainer_shape_for_every_recipe():
    trainer = make_trainer(precision="32-true", callbacks=[], grad_clip=0.5, max_epochs=2, accelerator="cpu")
    assert isinstance(trainer, L.Trainer)
    assert trainer.gradient_clip_val == 0.5 and trainer.max_epochs == 2 and trainer.num_sanity_val_steps == 0
    assert trainer.logger is None and not trainer.checkpoint_callbacks and not trainer.progress_bar_callback
    assert make_trainer(precision="32-true", callbacks=[], grad_clip=0.0).gradient_clip_val is None  # 0: no clipping


def test_both_modules_clip_the_same_way():
    for module in (PretrainModule, FinetuneModule):
        assert issubclass(module, ClipsGlobalNorm)
        assert module.configure_gradient_clipping is ClipsGlobalNorm.configure_gradient_clipping
