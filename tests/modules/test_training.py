"""The plumbing both recipes share, and the rule that recipes and file formats import components, not recipes."""

import ast
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.profilers import SimpleProfiler

import workbench.modules
from workbench.modules import FinetuneModule, PretrainModule
from workbench.modules.training import ClipsGlobalNorm, NoProfiler, PlainHookNames, make_trainer
from workbench.modules.vision_pretrain import VisionPretrainModule


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


def test_every_module_writes_lightnings_hook_name_plainly_and_still_registers_what_it_holds():
    for module in (PretrainModule, FinetuneModule, VisionPretrainModule):
        assert issubclass(module, PlainHookNames)
        assert module.__mro__.index(PlainHookNames) < module.__mro__.index(L.LightningModule)

    class Tiny(PlainHookNames, L.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(2, 2)  # still through Module.__setattr__: registered
            self.scale = torch.nn.Parameter(torch.ones(()))

        def training_step(self, batch, batch_idx):
            seen.append(self._current_fx_name)
            return (self.layer(batch[0]) * self.scale).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    seen = []
    tiny = Tiny()
    assert {name for name, _ in tiny.named_parameters()} == {"layer.weight", "layer.bias", "scale"}
    tiny._current_fx_name = "training_step"
    assert tiny.__dict__["_current_fx_name"] == "training_step"
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(4, 2)), batch_size=2)
    make_trainer(precision="32-true", callbacks=[], max_steps=2, accelerator="cpu").fit(tiny, data)
    assert seen == ["training_step", "training_step"] and tiny._current_fx_name is None  # set and restored


def test_the_trainer_profiles_nothing_by_default_and_a_real_profiler_can_be_passed():
    trainer = make_trainer(precision="32-true", callbacks=[])
    assert isinstance(trainer.profiler, NoProfiler)
    with trainer.profiler.profile("[Callback]x.on_train_batch_end"):
        pass
    assert isinstance(make_trainer(precision="32-true", callbacks=[], profiler=SimpleProfiler()).profiler,
                      SimpleProfiler)
