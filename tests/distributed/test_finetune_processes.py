"""Fine-tuning on 2 CPU processes (gloo) follows 1 process at twice the batch, strategy by strategy.

Each rank takes its slice of every global batch (`RankBatches`), weights its loss by its share of the
global batch's examples or labelled tokens, and the evaluation metrics are summed over the ranks by
torchmetrics. The two runs differ only in rounding (one matmul over 16 examples against two over 8):
measured at most 5e-7 apart at learning rate 1e-3. At 5e-3 full fine-tuning spikes at step 3 (gradient
norm 37), which magnifies that rounding to 4e-5 for a step; the test stays at the calmer rate.
Without re-wrapping DDP when gradual_unfreeze thaws a group, the curves part by 0.02-0.09 from the
first step after the thaw (measured).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from finetune_bases import save_tiny_decoder, write_letter_task
from torch.utils.data import DataLoader

from workbench.data.finetune_datamodule import RankBatches, rank_loader
from workbench.modules.finetune_recipe import finetune
from workbench.runs import RunFolder

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return save_tiny_decoder(tmp_path_factory.mktemp("run"), seed=123)


@pytest.fixture(scope="module")
def csv_task(tmp_path_factory):
    # 150 rows: a train split that 16 does not divide, so every epoch ends on a short global batch
    return write_letter_task(tmp_path_factory.mktemp("task") / "task.csv", rows=150, labels=["consonant", "vowel"])


def test_one_rank_serves_the_batches_a_shuffled_data_loader_serves():
    n, batch_size, seed = 37, 8, 5
    loader = DataLoader(range(n), batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))
    mine = rank_loader(range(n), batch_size, seed=seed)
    for _ in range(3):  # a new permutation each epoch, from one generator
        assert [batch.tolist() for batch in mine] == [batch.tolist() for batch in loader]
    assert len(mine) == len(loader) == 5
    in_order = [batch.tolist() for batch in rank_loader(range(n), batch_size, seed=None)]
    assert in_order == [batch.tolist() for batch in DataLoader(range(n), batch_size=batch_size)]


def test_the_ranks_together_serve_one_global_batch_each_step():
    def rank_batches(rank, world, batch_size, n=37):
        order = torch.utils.data.RandomSampler(range(n), generator=torch.Generator().manual_seed(1))
        return list(RankBatches(n, batch_size, order=order, rank=rank, world=world, training=True))

    one = rank_batches(0, 1, 8)
    two = [rank_batches(rank, 2, 4) for rank in range(2)]
    assert len(two[0]) == len(two[1]) == len(one) == RankBatches.count(37, 4, 2)
    for whole, first, second in zip(one, *two, strict=True):
        assert first + second == whole
    assert (len(two[0][-1]), len(two[1][-1])) == (3, 2)  # the short last batch, split as evenly as it goes
    # Fewer examples than processes in the last global batch: every rank skips it in training.
    assert RankBatches.count(33, 4, 2) == 4 and len(list(RankBatches(33, 4, rank=1, world=2, training=True))) == 4


@pytest.mark.parametrize("n, world", [(33, 2), (37, 3), (8, 4)])
def test_evaluation_reads_every_example_once_over_the_ranks(n, world):
    seen = []
    for rank in range(world):
        batches = RankBatches(n, 4, rank=rank, world=world)
        assert len(batches) == len(list(batches))
        seen += [i for batch in batches for i in batch]
    assert sorted(seen) == list(range(n))


def curve(outcome):
    return [(row["step"], key, row[key]) for row in outcome.history for key in ("train_loss", "val_loss") if key in row]


@pytest.mark.slow
@pytest.mark.parametrize("strategy, task", [
    ("full", "letters"),
    # Unfreezing adds parameters DDP's reducer was not built with: without a new wrapper they would
    # train on rank 0's gradient alone and this curve would leave the one-process one.
    ("gradual_unfreeze", "letters"),
    ("full", "token-type"),  # a token task: the ranks' losses average over unequal labelled-token counts
])
def test_two_processes_fine_tune_as_one_at_twice_the_batch(tiny_run, csv_task, strategy, task):
    values = dict(base=str(tiny_run), max_length=16, max_epochs=3, learning_rate=1e-3, dropout=0.0,
                  strategy=strategy, unfreeze_every=1, seed=0)
    values.update(dict(task="file", task_path=csv_task) if task == "letters" else dict(task=task, max_examples=150))
    one = finetune({**values, "batch_size": 16}, printer=None)
    two = finetune({**values, "batch_size": 8, "devices": 2}, printer=None)
    assert len(curve(two)) == len(curve(one)) > 3
    for (step, key, expected), (step2, key2, got) in zip(curve(one), curve(two), strict=True):
        assert (step, key) == (step2, key2)
        assert got == pytest.approx(expected, abs=TOLERANCE), f"step {step} {key}"
    for key, expected in one.metrics.items():
        assert two.metrics[key] == pytest.approx(expected, abs=TOLERANCE), key
    assert two.details["test"].get("confusion_matrix") == one.details["test"].get("confusion_matrix")
    # The data the curves are drawn against counts every rank's examples and real tokens.
    for key in ("train_steps", "train_examples_seen", "train_tokens"):
        assert two.compute[key] == one.compute[key], key
    assert two.compute["distributed"]["global_batch_size"] == 16 and two.compute["distributed"]["world_size"] == 2
    assert "LOCAL_RANK" not in os.environ and "MASTER_PORT" not in os.environ


@pytest.mark.slow
def test_workbench_run_fine_tunes_on_two_processes_into_the_one_process_folder_layout(tiny_run, csv_task, tmp_path):
    """`workbench run SPEC --devices 2` through the notebook: rank 0 in the kernel writes the run folder."""
    (tmp_path / "notebooks").symlink_to(ROOT / "notebooks")
    spec = tmp_path / "experiments" / "ft.yaml"
    spec.parent.mkdir()
    spec.write_text(yaml.safe_dump({"name": "ft", "notebook": "notebooks/finetune.ipynb", "parameters": dict(
        base=str(tiny_run), task="file", task_path=csv_task, max_length=16, max_epochs=2, learning_rate=1e-3,
        dropout=0.0, strategy="full", seed=0, save_model=False)}))
    folders = {}
    for devices, batch in ((1, 16), (2, 8)):
        runs = tmp_path / f"runs-{devices}"
        done = subprocess.run([str(BIN / "workbench"), "run", str(spec), "--runs-dir", str(runs), "--quiet",
                               "-p", f"batch_size={batch}", "--devices", str(devices)], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        (folders[devices],) = runs.iterdir()
    one, two = (RunFolder(folders[d]) for d in (1, 2))
    for key, expected in one.metrics.items():
        if isinstance(expected, float):
            assert two.metrics[key] == pytest.approx(expected, abs=TOLERANCE), key
    assert two.compute["distributed"]["world_size"] == 2 and two.compute["distributed"]["global_batch_size"] == 16
    assert sorted(p.name for p in folders[1].iterdir()) == sorted(p.name for p in folders[2].iterdir())
