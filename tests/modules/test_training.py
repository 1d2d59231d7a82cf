"""The plumbing both recipes share, and the rule that recipes and file formats import components, not recipes."""

import ast
from pathlib import Path

import lightning as L
import pytest

import workbench.modules
from workbench.modules import FinetuneModule, PretrainModule
from workbench.modules.training import ClipsGlobalNorm, make_trainer


@pytest.mark.parametrize(
    "module, forbidden",
    [
        ("finetune_recipe", "pretrain_recipe"),
        ("pretrain_recipe", "finetune_recipe"),
        ("finetuned", "finetune_recipe"),
    ],
)
def test_recipes_and_formats_import_components_not_recipes(module, forbidden):
    """Read from the source: the package's __init__ re-exports both recipes, so sys.modules cannot tell."""
    source = (Path(workbench.modules.__file__).parent / f"{module}.py").read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    assert not any(name.endswith(forbidden) for name in imported), sorted(imported)


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
