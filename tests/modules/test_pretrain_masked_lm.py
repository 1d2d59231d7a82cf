"""Masked-LM pretraining end to end: an encoder that learns, resumes exactly, and serves as a fine-tuning base."""

import random

import pytest
import torch
from crash_resume import crash_then_resume

from workbench.models import Encoder, EncoderBackbone
from workbench.modules import PretrainSettings, pretrain, save_pretrained
from workbench.modules.base_model import load_base
from workbench.settings import SettingsError

WORDS = "def class return import yield lambda self value index count total parse read write".split()


@pytest.fixture
def settings(tmp_path):
    rng = random.Random(0)
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(3000)))
    return PretrainSettings(
        objective="masked_lm", corpus="text", corpus_paths=[str(path)], validation_fraction=0.1, tokenizer="char",
        preset="tiny", block_size=32, batch_size=16, max_steps=60, learning_rate=1e-2, warmup_steps=5,
        dropout=0.1, eval_every=20, eval_batches=2, final_eval_batches=4, checkpoint_every=10, precision="32-true",
    )


@pytest.mark.slow
def test_an_encoder_learns_to_fill_in_masked_tokens(settings, tmp_path):
    outcome = pretrain(settings, printer=None)
    assert type(outcome.model) is Encoder
    assert outcome.model.config.vocab_size == outcome.tokenizer.vocab_size + 1  # and the mask token
    metrics = outcome.metrics
    assert "val_bpb" not in metrics and 0.3 < metrics["val_accuracy"] <= 1.0  # chance is ~1/20 characters
    evaluations = [row["val_loss"] for row in outcome.history if "val_loss" in row]
    assert evaluations[-1] < 0.9 * evaluations[0]  # 2.57 -> 2.08 on a Zen EPYC; CPUs differ in the last digits
    assert all("val_accuracy" in row for row in outcome.history if "val_loss" in row)

    save_pretrained(tmp_path / "run" / "checkpoint", outcome.model, outcome.tokenizer)
    for base, weights in ((tmp_path / "run", "pretrained"), (f"scratch:{tmp_path / 'run'}", "random (seed 0)")):
        loaded = load_base(str(base), max_length=32)
        assert isinstance(loaded.backbone, EncoderBackbone) and loaded.description["architecture"] == "encoder"
        assert loaded.description["weights"] == weights and loaded.description["default_pooling"] == "mean"
    pretrained = load_base(str(tmp_path / "run"), max_length=32).backbone
    ids = torch.randint(0, outcome.tokenizer.vocab_size, (2, 10))
    expected = outcome.model.eval()(ids, compute_logits=False).last_hidden
    assert torch.allclose(pretrained(ids, torch.ones_like(ids)), expected, atol=1e-6)


@pytest.mark.slow
def test_a_crashed_masked_lm_run_resumes_to_the_uninterrupted_metrics(settings, tmp_path):
    resumed = crash_then_resume(settings, tmp_path / "state")
    uninterrupted = pretrain(settings, printer=None)
    assert resumed.metrics == uninterrupted.metrics  # the masks are a function of seed and step alone


def test_continued_pretraining_is_refused_for_the_masked_lm(tmp_path):
    with pytest.raises(SettingsError, match="init_from=.* needs objective='causal_lm'"):
        PretrainSettings(objective="masked_lm", init_from=str(tmp_path))
    with pytest.raises(SettingsError, match="objective.*'mlm'.*causal_lm, masked_lm"):
        PretrainSettings(objective="mlm")
