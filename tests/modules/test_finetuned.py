"""A fine-tuned model saved into its run folder reloads to the same predictions (LoRA merged in)."""


import pytest
import torch
from finetune_bases import save_tiny_decoder, write_letter_task

from workbench.modules.checkpoint import CheckpointError
from workbench.modules.finetune_recipe import finetune
from workbench.modules.finetuned import load_finetuned, save_finetuned


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return save_tiny_decoder(tmp_path_factory.mktemp("run"), seed=0)


@pytest.fixture(scope="module")
def csv_task(tmp_path_factory):
    return write_letter_task(tmp_path_factory.mktemp("task") / "task.csv", rows=90, labels=["x", "y", "z"])


@pytest.mark.parametrize("strategy", ["full", "lora"])
def test_saved_then_loaded_predicts_the_same(tiny_run, csv_task, tmp_path, strategy):
    outcome = finetune(dict(base=str(tiny_run), task="file", task_path=csv_task, max_length=16, batch_size=16,
                            max_epochs=2, learning_rate=5e-3, label_fraction=1.0, strategy=strategy), printer=None)
    batch = next(iter(outcome.datamodule.test_dataloader()))
    with torch.no_grad():
        before = outcome.module.eval()(batch["input_ids"], batch["attention_mask"])
    save_finetuned(tmp_path / "finetuned", outcome)
    loaded = load_finetuned(tmp_path)  # the run folder
    with torch.no_grad():
        after = loaded.module(batch["input_ids"], batch["attention_mask"])
    assert torch.allclose(before, after, atol=1e-5)
    assert loaded.label_names == ["x", "y", "z"] and loaded.task_kind == outcome.task.kind
    assert not any("lora" in name for name in loaded.module.state_dict())  # adapters merged into the weights


def test_missing_or_corrupt_fine_tuned_weights_are_named(tiny_run, csv_task, tmp_path):
    with pytest.raises(CheckpointError, match="holds no fine-tuned model"):
        load_finetuned(tmp_path)
    outcome = finetune(dict(base=str(tiny_run), task="file", task_path=csv_task, max_length=16, batch_size=16,
                            max_epochs=1, label_fraction=1.0), printer=None)
    folder = save_finetuned(tmp_path / "finetuned", outcome)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=f"{weights}.*truncated or corrupted"):
        load_finetuned(tmp_path)
