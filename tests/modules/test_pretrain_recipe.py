import math

import pytest

from workbench.config import ConfigError
from workbench.modules import PretrainSettings, pretrain
from workbench.probe import loss_curve_figure


@pytest.fixture
def corpus_file(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("def add(a, b):\n    return a + b\n\n" * 400)
    return str(path)


def quick(corpus_file, **overrides):
    settings = dict(
        corpus="text", corpus_paths=[corpus_file], validation_fraction=0.1, tokenizer="char",
        preset="tiny", block_size=32, batch_size=8, max_steps=40, learning_rate=1e-2, warmup_steps=5,
        eval_every=20, eval_batches=2, final_eval_batches=4,
    )
    return pretrain({**settings, **overrides}, printer=None)


def test_a_short_run_learns_and_reports_everything(corpus_file):
    outcome = quick(corpus_file)
    metrics = outcome.metrics
    assert metrics["steps"] == 40 and metrics["tokens"] == 40 * 8 * 32
    assert metrics["val_loss"] < math.log(outcome.tokenizer.vocab_size) / 2  # a repetitive text is easy
    assert metrics["val_ppl"] == pytest.approx(math.exp(metrics["val_loss"]), rel=1e-5)
    assert metrics["val_bpb"] == pytest.approx(metrics["val_loss"] / math.log(2), rel=1e-5)  # 1 byte per char
    assert outcome.compute["train_steps"] == 40 and outcome.compute["tokens_per_s"] > 0
    assert outcome.data["fingerprint"] == outcome.data["corpus_summary"]["fingerprint"]
    val_rows = [row for row in outcome.history if "val_loss" in row]
    assert [row["step"] for row in val_rows] == [20, 40]
    train_rows = [row for row in outcome.history if "train_loss" in row]
    assert train_rows[0]["train_loss"] > train_rows[-1]["train_loss"]


def test_the_loss_figure_draws_the_recorded_numbers(corpus_file):
    outcome = quick(corpus_file, max_steps=20, eval_every=10)
    figure = loss_curve_figure(outcome.history, x="tokens")
    # Periodic evaluations are named apart from the final one ("val_loss (periodic)").
    drawn = {trace.name.split(" ")[0]: (list(trace.x), list(trace.y)) for trace in figure.data}
    val = [(row["tokens"], row["val_loss"]) for row in outcome.history if "val_loss" in row]
    assert drawn["val_loss"] == ([t for t, _ in val], [v for _, v in val])
    assert len(drawn["train_loss"][0]) == sum("train_loss" in row for row in outcome.history)


def test_same_seed_same_metrics_other_seed_other_metrics(corpus_file):
    a, b = quick(corpus_file, max_steps=15), quick(corpus_file, max_steps=15)
    c = quick(corpus_file, max_steps=15, seed=1)
    assert a.metrics == b.metrics
    assert a.metrics["val_loss"] != c.metrics["val_loss"]


def test_bf16_mixed_precision_trains(corpus_file):
    outcome = quick(corpus_file, precision="bf16-mixed", max_steps=10, eval_every=10)
    assert math.isfinite(outcome.metrics["val_loss"])


@pytest.mark.parametrize(
    "values, message",
    [
        ({"preset": "giant"}, "preset='giant' is not one of: tiny"),
        ({"precision": "fp8"}, "precision='fp8' is not one of"),
        ({"tokenizer": "words"}, "tokenizer='words' is not one of: byte, char, bpe"),
        ({"max_step": 10}, "unknown .*'max_step'.*max_steps"),
        ({"learning_rate": "fast"}, "learning_rate: expected float"),
        ({"model_overrides": {"n_layers": 3}}, "unknown key.*'n_layers'"),
        ({"warmup_steps": -1}, "warmup_steps"),
    ],
)
def test_bad_settings_fail_before_any_data_is_read(values, message):
    with pytest.raises(ConfigError, match=message):
        PretrainSettings.from_dict(values)


def test_speed_options_reach_the_module_and_train_the_same_model(corpus_file):
    plain = quick(corpus_file, max_steps=6, eval_every=6)
    checkpointed = quick(corpus_file, max_steps=6, eval_every=6, activation_checkpointing=True)
    assert checkpointed.metrics["val_loss"] == pytest.approx(plain.metrics["val_loss"], rel=1e-5)
    with pytest.raises(ConfigError, match="compile"):
        PretrainSettings.from_dict({"compile": "yes"})


def test_num_proc_changes_how_fast_the_corpus_is_prepared_not_what_is_learned():
    settings = dict(corpus="stdlib", max_files=8, tokenizer="byte", preset="tiny", block_size=32, batch_size=4,
                    max_steps=4, warmup_steps=1, eval_every=4, eval_batches=1, final_eval_batches=2,
                    precision="32-true")
    one, two = (pretrain({**settings, "num_proc": n}, printer=None) for n in (1, 2))
    assert two.datamodule.tokenize_num_proc == 2 and one.datamodule.tokenize_num_proc == 1
    assert one.metrics == two.metrics and one.data["fingerprint"] == two.data["fingerprint"]
