"""Every run writes TensorBoard event files into its run folder, holding the curves its history.json holds."""

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from workbench.modules import PretrainSettings, pretrain
from workbench.modules.tracking import TENSORBOARD_DIR, run_loggers

QUICK = dict(corpus="text", validation_fraction=0.1, tokenizer="char", preset="tiny", block_size=32, batch_size=8,
             max_steps=40, learning_rate=1e-2, warmup_steps=5, eval_every=20, eval_batches=2, final_eval_batches=4,
             precision="32-true")


@pytest.fixture
def corpus_file(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("def add(a, b):\n    return a + b\n\n" * 400)
    return str(path)


def scalars(run_dir) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(run_dir / TENSORBOARD_DIR))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_a_pretraining_run_writes_its_curves_and_final_metrics_as_tensorboard_events(tmp_path, corpus_file):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    outcome = pretrain({**QUICK, "corpus_paths": [corpus_file]}, printer=None, run_dir=run_dir)
    logged = scalars(run_dir)
    history = outcome.history
    val = [(row["step"], row["val_loss"]) for row in history if "val_loss" in row]
    train = [(row["step"], row["train_loss"]) for row in history if "train_loss" in row]
    assert [step for step, _ in logged["val_loss"]] == [step for step, _ in val] == [20, 40]
    assert [v for _, v in logged["val_loss"]] == pytest.approx([v for _, v in val], rel=1e-6)
    assert len(logged["train_loss"]) == len(train)
    assert [v for _, v in logged["train_loss"]] == pytest.approx([v for _, v in train], rel=1e-6)
    assert not any(tag.startswith("final/") for tag in logged)  # curves only: MLflow has the final numbers
    assert set(logged) == {"train_loss", "grad_norm", "lr", "val_loss", "val_ppl", "val_bpb"}
    assert (run_dir / TENSORBOARD_DIR / "hparams.yaml").read_text().count("preset: tiny") == 1


def test_without_a_run_folder_or_on_another_rank_there_are_no_loggers(tmp_path, monkeypatch):
    settings = PretrainSettings.from_dict({})
    assert run_loggers(None, settings, "pretrain") == []
    monkeypatch.setenv("RANK", "1")  # torchrun's rank 1: rank 0 alone writes the run's records
    assert run_loggers(tmp_path, settings, "pretrain") == []
    assert not (tmp_path / TENSORBOARD_DIR).exists()
