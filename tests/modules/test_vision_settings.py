"""The vision settings: every problem at once, naming the valid choices, before an image is read."""

import pytest

from workbench.modules.vision_settings import (
    ATTENTION_PROJECTIONS,
    VisionFinetuneNotebook,
    VisionFinetuneSettings,
    VisionPretrainNotebook,
    VisionPretrainSettings,
)
from workbench.settings import SettingsError


def problems(cls, **values) -> list[str]:
    with pytest.raises(SettingsError) as raised:
        cls.from_dict(values)
    return raised.value.problems


def test_pretraining_lists_every_problem_at_once_with_the_valid_choices():
    found = problems(VisionPretrainSettings, image_set="mnist", objective="simclr", preset="huge", mask_ratio=1.5,
                     optimizer="sgd", validation_fraction=0.6, test_fraction=0.5, hf_name="ylecun/mnist")
    text = "\n".join(found)
    assert len(found) == 8, text
    assert "image_set='mnist' is not one of: digits, mnist-5k, imagefolder, hf (did you mean 'mnist-5k'?)" in text
    assert "objective='simclr' is not one of: mae, supervised" in text
    assert "preset='huge' is not one of: tiny, small, small-rgb, vit-s16" in text
    assert "mask_ratio=1.5 must be greater than 0 and less than 1" in text
    assert "optimizer='sgd' is not one of: adamw, muon" in text
    assert "validation_fraction + test_fraction = 0.6 + 0.5 leaves no image to train on" in text
    assert "hf_name='ylecun/mnist' applies to image_set='hf' only" in text


def test_rules_that_need_the_model_are_checked_from_its_config():
    text = "\n".join(problems(VisionPretrainSettings, image_size=9, mask_ratio=0.99))
    assert "image_size=9 is not divisible by patch_size=2" in text
    text = "\n".join(problems(VisionPretrainSettings, mask_ratio=0.99))
    assert "mask_ratio=0.99 keeps 0 of 16 patches" in text
    text = "\n".join(problems(VisionPretrainSettings, objective="supervised", decoder_overrides={"n_layer": 2},
                              model_overrides={"n_heads": 3}))
    assert "apply to objective='mae' only" in text and "n_heads" in text
    assert "imagefolder\" needs data_dir" in "\n".join(problems(VisionPretrainSettings, image_set="imagefolder"))
    assert "needs hf_name" in "\n".join(problems(VisionPretrainSettings, image_set="hf"))


def test_pretraining_settings_build_the_model_they_name():
    settings = VisionPretrainSettings(preset="small", image_size=32, model_overrides={"n_layer": 2, "pooling": "mean"},
                                      decoder_overrides={"d_model": 64}, max_steps=10, warmup_steps=100)
    config = settings.model_config()
    assert (config.image_size, config.patch_size, config.n_layer, config.pooling) == (32, 4, 2, "mean")
    assert settings.decoder_config().d_model == 64 and settings.optim_config().warmup_steps == 10
    assert "checkpoint_every" not in settings.identity() and "max_steps" in settings.identity()
    assert settings.image_options() == {"seed": 0, "validation_fraction": 0.1, "test_fraction": 0.1,
                                        "max_examples": None}
    hf = VisionPretrainSettings(image_set="hf", hf_name="ylecun/mnist", image_column="img")
    assert hf.image_options()["hf_name"] == "ylecun/mnist" and hf.image_options()["image_column"] == "img"


def test_fine_tuning_lists_every_problem_at_once():
    found = problems(VisionFinetuneSettings, base="scratch:", strategy="adapters", pooling="first", label_fraction=0,
                     precision="auto", lora_targets=[])
    text = "\n".join(found)
    assert len(found) == 6, text
    assert "strategy='adapters' is not one of: full, linear_probe, gradual_unfreeze, lora" in text
    assert "pooling='first' is not one of: cls, mean" in text
    assert "precision='auto' is not one of: 32-true, bf16-mixed" in text
    assert "label_fraction=0.0 must be greater than 0 and at most 1" in text
    assert "base='scratch:' names no folder" in text and "lora_targets=[]" in text


def test_fine_tuning_reads_its_base_from_a_folder_and_defaults_lora_to_the_attention(tmp_path):
    assert VisionFinetuneSettings(base=f"scratch:{tmp_path}").required_paths() == {"base": [str(tmp_path)]}
    assert VisionFinetuneSettings().required_paths() == {}  # "": the notebook pretrains one
    assert VisionFinetuneSettings(strategy="lora").strategy_value().lora_targets == ATTENTION_PROJECTIONS
    assert VisionFinetuneSettings(lora_targets=["q_proj"]).strategy_value().lora_targets == ["q_proj"]


def test_a_base_pretrained_for_a_run_holds_out_the_runs_images():
    run = VisionFinetuneNotebook(image_set="mnist-5k", split_seed=3, test_fraction=0.2, augment=False, seed=2)
    base = run.base_pretraining(max_steps=40)
    assert isinstance(base, VisionPretrainSettings) and base.max_steps == 40 and base.objective == "mae"
    assert (base.image_set, base.split_seed, base.test_fraction, base.augment, base.seed) == ("mnist-5k", 3, 0.2,
                                                                                            False, 2)
    assert base.precision == run.precision == "32-true"


def test_the_notebooks_add_only_what_they_show():
    extra = set(VisionPretrainNotebook.__dataclass_fields__) - set(VisionPretrainSettings.__dataclass_fields__)
    assert extra == {"reconstructions"}
    extra = set(VisionFinetuneNotebook.__dataclass_fields__) - set(VisionFinetuneSettings.__dataclass_fields__)
    assert extra == {"base_steps", "save_model"}
