"""The image DataModules: seeded order and augmentation, a resumable stream, the base's inputs, the record."""

import numpy as np
import pytest
import torch

from workbench.data.image_datamodule import SeededBatches, VisionFinetuneDataModule, VisionPretrainDataModule
from workbench.data.image_inputs import ImageInputs, load_image_inputs
from workbench.data.image_transforms import ImageStats
from workbench.errors import RequestError, ResourceError


def pretraining(seed=0, **options):
    module = VisionPretrainDataModule("digits", {"seed": 0}, image_size=8, channels=1, batch_size=32, seed=seed,
                                      **options)
    module.setup()
    return module


def first_batches(loader, count=3):
    batches = []
    for batch in loader:
        batches.append(batch)
        if len(batches) == count:
            break
    return batches


def test_the_same_seed_gives_the_same_batches_and_another_seed_others():
    a, b, c = (first_batches(pretraining(seed).train_dataloader()) for seed in (0, 0, 1))
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x["pixels"], y["pixels"]) and torch.equal(x["labels"], y["labels"])
    assert not torch.equal(a[0]["labels"], c[0]["labels"])


def test_augmentation_is_seeded_by_the_epoch_and_off_for_evaluation():
    module = pretraining()
    loader = module.train_dataloader()
    epochs = [list(loader), list(loader)]  # two passes: the sampler tells the transform each epoch
    assert module._train_transform.epoch == 1
    plain = pretraining(augment=False)
    unaugmented = list(plain.train_dataloader())
    # The same order (the same seed), other pixels: the shift moved them, and by a fresh draw in epoch 1.
    assert torch.equal(epochs[0][0]["labels"], unaugmented[0]["labels"])
    assert not torch.equal(epochs[0][0]["pixels"], unaugmented[0]["pixels"])
    replay = pretraining()
    replay_loader = replay.train_dataloader()
    assert torch.equal(next(iter(replay_loader))["pixels"], epochs[0][0]["pixels"])
    validation = [torch.cat([b["pixels"] for b in module.val_dataloader()]) for _ in range(2)]
    assert torch.equal(*validation)


def test_a_resumed_stream_continues_where_it_stopped():
    whole = pretraining()
    loader = whole.train_dataloader()
    stream = [batch for _ in range(3) for batch in loader]  # three epochs of 44 batches
    resumed = pretraining()
    resumed.load_state_dict({"batches_served": 50})  # mid-way through the second epoch
    loader = resumed.train_dataloader()
    rest = list(loader) + list(loader)  # the rest of the second epoch, then the whole third
    assert len(rest) == len(stream) - 50
    for x, y in zip(rest, stream[50:], strict=True):
        assert torch.equal(x["pixels"], y["pixels"]) and torch.equal(x["labels"], y["labels"])


def test_seeded_batches_keep_or_drop_the_short_last_batch():
    assert len(SeededBatches(10, 4, 0, drop_last=True)) == 2
    kept = list(SeededBatches(10, 4, 0, drop_last=False))
    assert [len(b) for b in kept] == [4, 4, 2] and sorted(i for b in kept for i in b) == list(range(10))


def test_statistics_come_from_the_train_split_and_travel_with_the_inputs(tmp_path):
    module = pretraining()
    inputs = module.inputs
    assert inputs.image_size == 8 and inputs.channels == 1 and 0 < inputs.stats.mean[0] < 1
    assert inputs.class_names == tuple(str(d) for d in range(10))
    assert inputs.held_out == {"image_set": "digits", "seed": 0, "test_fraction": 0.1, "validation_fraction": 0.1,
                               "image_column": "image", "label_column": "label"}
    inputs.save(tmp_path)
    assert load_image_inputs(tmp_path) == inputs
    with pytest.raises(ResourceError, match="images.json"):
        load_image_inputs(tmp_path / "nowhere")


def test_fine_tuning_feeds_the_bases_inputs_and_a_stratified_share_of_the_labels():
    base = ImageInputs(8, 1, ImageStats(mean=(0.5,), std=(0.25,)), "mnist-5k", ("a", "b"))
    module = VisionFinetuneDataModule("digits", {"seed": 0}, base, batch_size=16, seed=3, label_fraction=0.1)
    module.setup()
    described = module.describe()
    assert described["sizes"]["train"] == sum(described["class_counts"]["train"].values())
    assert set(described["class_counts"]["train"].values()) <= {14, 15}  # ~10% of each class's ~144
    assert described["stats"] == {"mean": (0.5,), "std": (0.25,)} and described["normalization_from"] == "mnist-5k"
    assert module.inputs.class_names == tuple(str(d) for d in range(10))  # this set's classes
    batches = list(module.train_dataloader())
    assert sum(len(b["labels"]) for b in batches) == described["sizes"]["train"]  # the short last batch is kept
    image = module.splits["validation"][0]["image"]
    expected = (torch.tensor(np.asarray(image), dtype=torch.float32).view(1, 8, 8) / 255 - 0.5) / 0.25
    torch.testing.assert_close(module.view("validation")[0]["pixels"], expected)
    task = module.task_record()
    assert task["kind"] == "sequence_classification" and task["label_names"] == list(module.class_names)


def test_the_fingerprint_follows_the_data():
    a, b = pretraining().describe(), pretraining(seed=5).describe()
    assert a["fingerprint"] == b["fingerprint"] and len(a["fingerprint"]) == 16
    other = VisionPretrainDataModule("digits", {"seed": 1}, image_size=8, channels=1, batch_size=32)
    assert other.describe()["fingerprint"] != a["fingerprint"]  # other held-out splits: other splits' bytes


def test_bad_options_fail_before_any_image_is_read():
    with pytest.raises(RequestError, match="data_dir"):
        VisionPretrainDataModule("imagefolder", {}, image_size=8, channels=1)
    with pytest.raises(RequestError, match="batch_size"):
        VisionPretrainDataModule("digits", {}, image_size=8, channels=1, batch_size=0)
    with pytest.raises(RequestError, match="label_fraction"):
        VisionFinetuneDataModule("digits", {}, ImageInputs(8, 1, ImageStats((0.5,), (0.2,)), "digits", ()),
                                 label_fraction=0)
    big = VisionPretrainDataModule("digits", {"seed": 0, "max_examples": 40}, image_size=8, channels=1,
                                   batch_size=64)
    big.setup()
    with pytest.raises(RequestError, match="fewer than one batch"):
        big.train_dataloader()
