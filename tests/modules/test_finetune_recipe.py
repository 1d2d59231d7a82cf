"""The fine-tuning recipe end to end on a tiny saved base and a local CSV task."""


import pytest
import torch
from finetune_bases import save_tiny_decoder, write_letter_task

from workbench.config import ConfigError
from workbench.data import build_tokenizer
from workbench.modules import save_pretrained
from workbench.modules.finetune_recipe import FinetuneSettings, finetune


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A saved tiny decoder standing in for a pretraining run folder.

    Its weights are drawn under another seed than the runs' (0), so that `scratch:` (fresh weights drawn
    with the run's seed) really starts somewhere else."""
    return save_tiny_decoder(tmp_path_factory.mktemp("run"), seed=123)


@pytest.fixture(scope="module")
def csv_task(tmp_path_factory):
    """Two classes a model can tell apart from the first letter."""
    return write_letter_task(tmp_path_factory.mktemp("task") / "task.csv", rows=120, labels=["consonant", "vowel"])


def settings(tiny_run, csv_task, **overrides):
    values = dict(base=str(tiny_run), task="file", task_path=csv_task, max_length=16, batch_size=16,
                  max_epochs=4, learning_rate=5e-3, label_fraction=1.0)
    return {**values, **overrides}


def test_full_fine_tuning_learns_and_reports_everything(tiny_run, csv_task):
    outcome = finetune(settings(tiny_run, csv_task, strategy="full"), printer=None)
    metrics = outcome.metrics
    assert metrics["test_accuracy"] > 0.9
    assert metrics["trainable_parameters"] == metrics["total_parameters"]
    assert {"val_macro_f1", "test_macro_f1", "test_loss", "train_examples", "steps"} <= set(metrics)
    matrix = outcome.details["test"]["confusion_matrix"]
    assert len(matrix) == 2 and sum(map(sum, matrix)) == len(outcome.task.splits["test"])
    assert outcome.data["base"]["kind"] == "workbench-decoder"
    # Details by split, each holding only its own entries, unprefixed.
    assert list(outcome.details) == ["validation", "test"]
    for split, prefix in (("validation", "val"), ("test", "test")):
        entries = outcome.details[split]
        assert {"loss", "accuracy", "macro_f1", "confusion_matrix", "per_class_f1"} <= set(entries)
        assert not any(key.startswith(("val_", "test_")) for key in entries)
        assert entries["accuracy"] == metrics[f"{prefix}_accuracy"]
    assert set(outcome.details["test"]["per_class_f1"]) == set(outcome.task.label_names)
    # Throughput counts examples, and tokens only where the attention mask says they are real.
    compute, train = outcome.compute, outcome.task.splits["train"]
    assert compute["train_examples_seen"] == 4 * len(train) and compute["examples_per_s"] > 0
    padded = 4 * len(train) * 16  # every example padded to max_length
    assert 4 * len(train) <= compute["train_tokens"] < padded and compute["tokens_per_s"] > 0


def test_same_seed_same_metrics_and_scratch_is_a_different_start(tiny_run, csv_task):
    a = finetune(settings(tiny_run, csv_task, max_epochs=1), printer=None).metrics
    b = finetune(settings(tiny_run, csv_task, max_epochs=1), printer=None).metrics
    c = finetune(settings(tiny_run, csv_task, max_epochs=1, base=f"scratch:{tiny_run}"), printer=None).metrics
    assert a == b
    assert a["val_loss"] != c["val_loss"]


def test_lora_trains_a_small_fraction(tiny_run, csv_task):
    metrics = finetune(settings(tiny_run, csv_task, strategy="lora", max_epochs=1, lora_rank=2), printer=None).metrics
    assert 0 < metrics["trainable_fraction"] < 0.2


@pytest.mark.parametrize(
    "values, message",
    [
        ({"task": "sentiment"}, "task='sentiment' is not one of: docstring-topic"),
        ({"strategy": "adapter"}, "strategy='adapter' is not one of: full, linear_probe"),
        ({"head": "ranking"}, "head='ranking' is not one of"),
        ({"label_fraction": 0.0}, r"label_fraction.*0\.0"),
        ({"label_fraction": 1.5}, r"label_fraction.*1\.5"),
        ({"layer_lr_decay": 2.0}, "layer_lr_decay"),
        ({"batch_sizes": 3}, "unknown .*'batch_sizes'"),
    ],
)
def test_bad_settings_fail_before_anything_loads(values, message):
    with pytest.raises(ConfigError, match=message):
        FinetuneSettings.from_dict(values)


def test_a_base_that_is_neither_a_run_nor_a_model_folder_is_explained(tmp_path, csv_task):
    with pytest.raises(ConfigError, match="config.json"):
        finetune({"base": str(tmp_path), "task": "file", "task_path": csv_task}, printer=None)


def test_a_missing_label_column_lists_the_columns(tiny_run, csv_task):
    with pytest.raises(ValueError, match="group"):
        finetune(settings(tiny_run, csv_task, label_column="category"), printer=None)


def test_a_head_that_does_not_fit_the_task_is_refused_before_training(tiny_run, csv_task):
    with pytest.raises(ValueError, match="regression"):
        finetune(settings(tiny_run, csv_task, head="regression"), printer=None)


@pytest.fixture(scope="module")
def tiny_encoder_run(tmp_path_factory):
    """A saved tiny masked-LM encoder standing in for an encoder pretraining run folder."""
    from workbench.models import Encoder, EncoderConfig

    folder = tmp_path_factory.mktemp("encoder-run")
    tokenizer = build_tokenizer("char", ["abcdefghijklmnopqrstuvwxyz .,0123456789"])
    torch.manual_seed(123)
    encoder = Encoder(EncoderConfig.for_tokenizer("tiny", tokenizer.vocab_size, block_size=64))
    save_pretrained(folder / "checkpoint", encoder, tokenizer)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["full", "linear_probe", "gradual_unfreeze", "lora"])
def test_every_strategy_fine_tunes_an_encoder_base(tiny_encoder_run, csv_task, strategy):
    learning_rate = 5e-2 if strategy == "linear_probe" else 5e-3
    outcome = finetune(settings(tiny_encoder_run, csv_task, strategy=strategy, learning_rate=learning_rate,
                                max_epochs=6), printer=None)
    assert outcome.data["base"]["kind"] == "workbench-encoder" and outcome.data["base"]["default_pooling"] == "mean"
    assert outcome.metrics["test_accuracy"] > 0.8, outcome.metrics
    trainable, total = outcome.metrics["trainable_parameters"], outcome.metrics["total_parameters"]
    assert (trainable == total) == (strategy == "full")  # gradual_unfreeze counts what trains at the start


@pytest.mark.slow
def test_an_encoder_base_tags_tokens_seeing_both_sides(tiny_encoder_run):
    outcome = finetune(dict(base=str(tiny_encoder_run), task="token-type", max_examples=120, max_length=48,
                            batch_size=16, max_epochs=2, strategy="full", learning_rate=5e-3), printer=None)
    assert outcome.task.kind == "token_classification" and 0 <= outcome.metrics["test_macro_f1"] <= 1


def test_a_fine_tuning_run_writes_its_curves_as_tensorboard_events(tiny_run, csv_task, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    outcome = finetune(settings(tiny_run, csv_task, strategy="linear_probe", max_epochs=2), printer=None,
                       run_dir=tmp_path)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    train = [(row["step"], row["train_loss"]) for row in outcome.history if "train_loss" in row]
    assert [(e.step, pytest.approx(e.value, rel=1e-6)) for e in events.Scalars("train_loss")] == train
    val = [row for row in outcome.history if "val_loss" in row]
    assert [e.step for e in events.Scalars("val_loss")] == [row["step"] for row in val] and val
