"""Vision fine-tuning: the text side's FinetuneModule and strategies on a ViT base, scratch controls, refusals."""

import pytest
import torch

from workbench.data import build_tokenizer
from workbench.data.image_inputs import ImageInputs
from workbench.data.image_transforms import ImageStats
from workbench.errors import RequestError
from workbench.models import Decoder, DecoderConfig, ViT, ViTConfig
from workbench.modules.base_model import BaseModelError, load_base, load_vision_base
from workbench.modules.checkpoint import save_pretrained
from workbench.modules.lora import ADAPTER_MARK
from workbench.modules.vision_recipe import finetune_vision, pretrain_vision

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """A ViT pretrained for a few seconds on digits' labels: features a linear probe can read."""
    folder = tmp_path_factory.mktemp("vision-base")
    outcome = pretrain_vision(dict(objective="supervised", max_steps=400, learning_rate=1e-3, warmup_steps=10,
                                   eval_every=400, precision="32-true", seed=7), printer=None)
    save_pretrained(folder / "checkpoint", outcome.model, outcome.inputs)
    return folder


def settings(base, **overrides):
    return {"base": str(base), "max_epochs": 6, "learning_rate": 3e-3, "label_fraction": 0.5, **overrides}


def backbone_state(module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.backbone.state_dict().items()}


@pytest.mark.parametrize("strategy", ["full", "linear_probe", "gradual_unfreeze", "lora"])
def test_every_strategy_fine_tunes_a_vit_base(base_run, strategy):
    learning_rate = 3e-2 if strategy == "linear_probe" else 3e-3
    outcome = finetune_vision(settings(base_run, strategy=strategy, learning_rate=learning_rate), printer=None)
    metrics = outcome.metrics
    assert metrics["test_accuracy"] > 0.6, metrics  # chance is 0.1
    trainable, total = metrics["trainable_parameters"], metrics["total_parameters"]
    assert (trainable == total) == (strategy == "full")  # gradual_unfreeze counts what trains at the start
    matrix = outcome.details["test"]["confusion_matrix"]
    assert len(matrix) == 10 and sum(map(sum, matrix)) == 180
    assert set(outcome.details["test"]["per_class_f1"]) == set(outcome.label_names)
    assert outcome.data["base"]["kind"] == "workbench-vit" and outcome.data["base"]["default_pooling"] == "first"
    assert outcome.data["task"]["name"] == "digits" and outcome.data["image_inputs"]["image_set"] == "digits"
    assert outcome.compute["train_examples_seen"] == 6 * metrics["train_examples"]
    assert outcome.compute["train_tokens"] == 17 * outcome.compute["train_examples_seen"]  # 16 patches + class token


def test_a_saved_vision_fine_tune_loads_back_with_its_image_inputs_and_predictions(base_run, tmp_path):
    from workbench.data.image_transforms import collate_images
    from workbench.modules.finetuned import load_finetuned, save_finetuned

    outcome = finetune_vision(settings(base_run, strategy="lora", lora_rank=2, max_epochs=1), printer=None)
    test = outcome.datamodule.view("test")
    pixels = collate_images([test[i] for i in range(16)])["pixels"]
    with torch.no_grad():
        expected = outcome.module.eval()(pixels)
    save_finetuned(tmp_path / "finetuned", outcome)  # LoRA merged in: the loaded model has no adapters
    loaded = load_finetuned(tmp_path)
    assert loaded.image_inputs == outcome.base.inputs and loaded.text_encoder is None
    assert loaded.label_names == outcome.label_names and loaded.task_kind == "sequence_classification"
    assert (tmp_path / "finetuned" / "adapter.safetensors").is_file()
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(pixels), expected, rtol=1e-4, atol=1e-5)


def test_a_linear_probe_leaves_the_base_bit_identical(base_run):
    before = backbone_state(load_vision_base(str(base_run)))
    outcome = finetune_vision(settings(base_run, strategy="linear_probe", learning_rate=3e-2), printer=None)
    after = backbone_state(outcome.module)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert not outcome.module.backbone.training  # and it stayed in eval mode: no dropout on the features


def test_lora_adapts_the_attention_projections_and_trains_a_small_fraction(base_run):
    outcome = finetune_vision(settings(base_run, strategy="lora", lora_rank=2), printer=None)
    assert 0 < outcome.metrics["trainable_fraction"] < 0.2
    adapted = {name.split(f".{ADAPTER_MARK}")[0].rsplit(".", 1)[-1]
               for name, _ in outcome.module.backbone.named_parameters() if ADAPTER_MARK in name}
    assert adapted == {"q_proj", "k_proj", "v_proj", "o_proj"}


def test_scratch_really_starts_elsewhere_with_the_same_inputs(base_run):
    pretrained, scratch = load_vision_base(str(base_run)), load_vision_base(f"scratch:{base_run}", seed=0)
    assert scratch.inputs == pretrained.inputs and scratch.description["weights"] == "random (seed 0)"
    differ = [not torch.equal(a, b) for a, b in zip(pretrained.backbone.state_dict().values(),
                                                    scratch.backbone.state_dict().values(), strict=True)]
    assert all(differ)  # no tensor was carried over
    again = load_vision_base(f"scratch:{base_run}", seed=0)
    assert all(torch.equal(a, b) for a, b in zip(scratch.backbone.state_dict().values(),
                                                 again.backbone.state_dict().values(), strict=True))
    a = finetune_vision(settings(base_run, max_epochs=1), printer=None).metrics
    b = finetune_vision(settings(base_run, max_epochs=1), printer=None).metrics
    c = finetune_vision(settings(f"scratch:{base_run}", max_epochs=1), printer=None).metrics
    assert a == b and a["val_loss"] != c["val_loss"]


def test_a_pretrained_base_must_have_held_out_this_runs_test_images(base_run):
    with pytest.raises(RequestError, match="split_seed|seed: base 0, here 1"):
        finetune_vision(settings(base_run, split_seed=1), printer=None)
    # Its scratch control pretrained on nothing: any split is fair.
    assert finetune_vision(settings(f"scratch:{base_run}", split_seed=1, max_epochs=1), printer=None).metrics


def test_text_and_vision_bases_are_told_apart(base_run, tmp_path):
    with pytest.raises(BaseModelError, match="vision model.*finetune-vision"):
        load_base(str(base_run))
    with pytest.raises(BaseModelError, match="vision model.*finetune-vision"):
        load_base(f"scratch:{base_run}")
    tokenizer = build_tokenizer("char", ["abc"])
    save_pretrained(tmp_path / "text" / "checkpoint", Decoder(DecoderConfig.from_preset("tiny", vocab_size=8)),
                    tokenizer)
    with pytest.raises(BaseModelError, match="not a vision model"):
        load_vision_base(str(tmp_path / "text"))
    with pytest.raises(RequestError, match="names no base"):
        finetune_vision({"base": ""}, printer=None)


def test_cls_pooling_needs_a_class_token(tmp_path):
    vit = ViT(ViTConfig.from_preset("tiny", pooling="mean"))
    inputs = ImageInputs(8, 1, ImageStats((0.3,), (0.4,)), "digits", tuple(map(str, range(10))))
    save_pretrained(tmp_path / "checkpoint", vit, inputs)
    assert load_vision_base(str(tmp_path)).backbone.default_pooling == "mean"
    with pytest.raises(RequestError, match="pooling='cls' needs a class token"):
        finetune_vision(settings(tmp_path, pooling="cls"), printer=None)
