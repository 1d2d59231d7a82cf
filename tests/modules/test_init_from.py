"""Continued pretraining (`init_from`): training goes on from saved weights, with that model's tokenizer."""

from __future__ import annotations

import pytest
import torch

from workbench.errors import RequestError
from workbench.modules import save_pretrained
from workbench.modules.pretrain_recipe import pretrain
from workbench.modules.pretrain_settings import PretrainSettings

# fp32 on purpose: the expected losses below are fp32 forwards, and precision auto takes bf16-mixed for
# this shape on some machines (CI's, once), where the first loss moves by ~2e-4.
QUICK = dict(seed=0, max_files=6, block_size=32, batch_size=4, max_steps=2, warmup_steps=0, eval_every=2,
             eval_batches=1, final_eval_batches=1, learning_rate=1e-3, precision="32-true")


def first_batch(outcome) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch training began with: the sampler is a function of the seed, replayed from the start."""
    outcome.datamodule.batches_served = 0
    return next(iter(outcome.datamodule.train_dataloader()))


def first_train_loss(outcome) -> float:
    return next(row["train_loss"] for row in outcome.history if row.get("step") == 1 and "train_loss" in row)


def test_the_first_loss_from_a_llama_folder_is_the_hugging_face_models_own_loss(hf_causal_folder, tmp_path):
    import transformers

    folder = hf_causal_folder("llama")
    outcome = pretrain(dict(QUICK, init_from=str(folder)), printer=None)
    x, y = first_batch(outcome)
    hf = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    block = torch.cat([x, y[:, -1:]], dim=1)
    with torch.no_grad():
        theirs = hf(input_ids=block, labels=block).loss.item()
    assert first_train_loss(outcome) == pytest.approx(theirs, abs=1e-4)
    assert outcome.tokenizer.kind == "hf" and outcome.data["tokenizer"]["kind"] == "hf"
    record = outcome.data["init_from"]
    assert record["kind"] == "hugging-face" and record["mapped"] == "workbench-decoder"
    assert record["path"] == str(folder.resolve()) and len(record["weights_sha256"]) == 64
    # The continued model saves and loads like any workbench model, its Hugging Face tokenizer included.
    save_pretrained(tmp_path / "checkpoint", outcome.model, outcome.tokenizer)
    from workbench import load

    model, tokenizer = load(tmp_path / "checkpoint")
    assert tokenizer.encode("def f(x):") == outcome.tokenizer.encode("def f(x):")


def test_a_workbench_run_continues_from_its_own_weights(tmp_path):
    base = pretrain(dict(QUICK, preset="tiny", tokenizer="char"), printer=None)
    save_pretrained(tmp_path / "run" / "checkpoint", base.model, base.tokenizer)
    outcome = pretrain(dict(QUICK, seed=1, init_from=str(tmp_path / "run")), printer=None)
    x, y = first_batch(outcome)
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(base.model(x).logits.flatten(0, 1), y.flatten()).item()
    assert first_train_loss(outcome) == pytest.approx(expected, abs=1e-4)
    assert outcome.tokenizer == base.tokenizer
    assert outcome.data["init_from"]["kind"] == "workbench-run"


def test_a_family_the_decoder_does_not_compute_is_refused_before_any_data(hf_causal_folder):
    with pytest.raises(ValueError, match=r"'gpt2' model that the workbench Decoder does not compute exactly"):
        pretrain(dict(QUICK, init_from=str(hf_causal_folder("gpt2"))), printer=None)


def test_a_block_longer_than_the_models_positions_is_refused(hf_causal_folder):
    with pytest.raises(ValueError, match=r"block_size=256 is longer than the 128 positions"):
        pretrain(dict(QUICK, block_size=256, init_from=str(hf_causal_folder("llama"))), printer=None)


def test_settings_that_would_change_the_saved_architecture_are_problems():
    problems = PretrainSettings.problems_with({"init_from": "runs/x", "model_overrides": {"n_layer": 3},
                                               "vocab_size": 300, "tokenizer": "bpe"})
    assert any("model_overrides" in p and "init_from" in p for p in problems)
    assert any("vocab_size=300 cannot apply with init_from" in p for p in problems)
    assert PretrainSettings(init_from="hf:org/name").required_paths() == {}
    assert PretrainSettings(init_from="runs/x").required_paths() == {"init_from": ["runs/x"]}


def test_an_encoder_or_a_vision_model_is_refused_by_name_before_any_data_is_read(tmp_path):
    from workbench.data.image_inputs import ImageInputs
    from workbench.data.image_transforms import ImageStats
    from workbench.data.tokenizers import build_tokenizer
    from workbench.models import Encoder, EncoderConfig, ViT, ViTConfig

    inputs = ImageInputs(8, 1, ImageStats((0.5,), (0.25,)), "digits", tuple("0123456789"))
    save_pretrained(tmp_path / "vit" / "checkpoint", ViT(ViTConfig.from_preset("tiny")), inputs)
    with pytest.raises(RequestError, match=r"is a vision model \(vit\).*finetune-vision"):
        pretrain(dict(QUICK, init_from=str(tmp_path / "vit")), printer=None)
    tokenizer = build_tokenizer("byte")
    encoder = Encoder(EncoderConfig.for_tokenizer("tiny", tokenizer.vocab_size))
    save_pretrained(tmp_path / "encoder" / "checkpoint", encoder, tokenizer)
    with pytest.raises(RequestError, match="is a workbench 'encoder', not a causal decoder"):
        pretrain(dict(QUICK, init_from=str(tmp_path / "encoder")), printer=None)
