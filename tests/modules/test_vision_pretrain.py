"""Vision pretraining on tiny ViTs: MAE and supervised runs learn, save an encoder that loads back, resume exactly."""

import pytest
import torch
from crash_resume import CrashAt

from workbench.data.image_transforms import collate_images
from workbench.models import ViT
from workbench.modules.checkpoint import CheckpointError, load_pretrained, save_pretrained
from workbench.modules.training_state import resumable_state
from workbench.modules.vision_pretrain import VisionPretrainModule
from workbench.modules.vision_recipe import pretrain_vision
from workbench.modules.vision_settings import VisionPretrainSettings

pytestmark = pytest.mark.slow

SMALL = dict(image_set="digits", max_examples=300, batch_size=32, learning_rate=3e-3, warmup_steps=5,
             eval_every=20, eval_batches=2, precision="32-true")


def val_losses(outcome) -> list[float]:
    return [row["val_loss"] for row in outcome.history if "val_loss" in row]


def first_validation_batch(outcome) -> torch.Tensor:
    validation = outcome.datamodule.view("validation")
    return collate_images([validation[i] for i in range(8)])["pixels"]


def test_mae_learns_to_reconstruct_and_saves_an_encoder_that_loads_back(tmp_path):
    outcome = pretrain_vision(dict(SMALL, image_set="digits", max_examples=None, max_steps=200, eval_every=50),
                              printer=None)
    metrics, train = outcome.metrics, [row["train_loss"] for row in outcome.history if "train_loss" in row]
    assert len(val_losses(outcome)) == 4 and train[-1] < 0.9 * train[0]
    # An untrained MAE predicts about nothing, scoring about the baseline: predicting every hidden patch as its mean.
    assert metrics["val_loss"] < 0.9 * metrics["baseline_val_loss"]
    assert metrics["steps"] == 200 and metrics["images"] == 200 * 32
    assert type(outcome.model) is ViT and metrics["parameters"] == outcome.model.num_parameters()
    assert outcome.compute["train_images"] == 6400 and outcome.compute["images_per_s"] > 0
    assert outcome.data["mae_decoder"]["n_layer"] == 1 and outcome.data["image_set"]["sizes"]["train"] == 1437

    save_pretrained(tmp_path / "checkpoint", outcome.model, outcome.inputs)
    loaded, inputs = load_pretrained(tmp_path)
    assert inputs == outcome.inputs
    pixels = first_validation_batch(outcome)
    with torch.no_grad():
        torch.testing.assert_close(loaded(pixels).last_hidden, outcome.model(pixels).last_hidden, rtol=0, atol=0)
    (tmp_path / "checkpoint" / "images.json").unlink()
    with pytest.raises(CheckpointError, match="images.json"):
        load_pretrained(tmp_path)


def test_supervised_pretraining_learns_the_labels():
    outcome = pretrain_vision(dict(SMALL, objective="supervised", max_examples=None, batch_size=64, max_steps=300,
                                   learning_rate=1e-3, eval_every=100), printer=None)
    losses = val_losses(outcome)
    assert losses[-1] < losses[0] and outcome.metrics["val_accuracy"] > 0.5  # chance is 0.1
    assert "baseline_val_loss" not in outcome.metrics and "mae_decoder" not in outcome.data


def test_the_same_seed_gives_the_same_run_and_another_seed_another():
    settings = dict(SMALL, max_steps=20)
    a, b = (pretrain_vision(settings, printer=None) for _ in range(2))
    c = pretrain_vision(dict(settings, seed=1), printer=None)
    untimed = [[{k: v for k, v in row.items() if k != "time_s"} for row in run.history] for run in (a, b)]
    assert a.metrics == b.metrics and untimed[0] == untimed[1]
    assert a.metrics["val_loss"] != c.metrics["val_loss"]


@pytest.mark.parametrize("objective", ["mae", "supervised"])
def test_a_killed_run_resumes_to_the_uninterrupted_metrics(tmp_path, objective):
    # 240 training images in batches of 32: 7 a pass, so the crash at step 12 falls mid-way through the second
    # pass, and resuming replays the first pass's order, the second's augmentation and the step's masks.
    settings = VisionPretrainSettings(**SMALL, objective=objective, max_steps=30, checkpoint_every=10)
    state = tmp_path / "state"
    with pytest.raises(RuntimeError, match="crash"):
        pretrain_vision(settings, state_dir=state, callbacks=[CrashAt(12)], printer=None)
    assert resumable_state(state, settings.identity())[1] == 10
    resumed = pretrain_vision(settings, state_dir=state, printer=None)
    uninterrupted = pretrain_vision(settings, printer=None)
    assert resumed.metrics == uninterrupted.metrics
    assert resumed.compute["resumed_at_steps"] == [10]
    pixels = first_validation_batch(resumed)
    with torch.no_grad():
        torch.testing.assert_close(resumed.model(pixels).last_hidden, uninterrupted.model(pixels).last_hidden,
                                   rtol=0, atol=0)
    with pytest.raises(CheckpointError, match="learning_rate"):  # a state saved under other settings is refused
        pretrain_vision(VisionPretrainSettings(**{**SMALL, "learning_rate": 1e-2}, objective=objective,
                                               max_steps=30, checkpoint_every=10), state_dir=state, printer=None)


def test_the_module_refuses_what_it_cannot_train():
    config = VisionPretrainSettings().model_config()
    with pytest.raises(ValueError, match="objective 'contrastive'.*mae, supervised"):
        VisionPretrainModule(config, objective="contrastive")
    with pytest.raises(ValueError, match="num_classes"):
        VisionPretrainModule(config, objective="supervised")
