import datasets
import numpy as np
import pytest
import torch
from PIL import Image

from workbench.data.image_transforms import (
    ImageStats,
    ImageTransform,
    channel_stats,
    collate_images,
    image_to_tensor,
    with_image_transform,
)
from workbench.data.images import load_images
from workbench.errors import RequestError


@pytest.fixture(scope="module")
def digits():
    return load_images("digits", seed=0)


@pytest.fixture(scope="module")
def stats(digits):
    return channel_stats(digits["train"], channels=1, image_size=8)


def augmenting(stats, seed=0, **options):
    return ImageTransform(stats, image_size=8, channels=1, augment=True, seed=seed, **options)


def pixels_of(dataset, indices=range(20)):
    return torch.stack([dataset[i]["pixels"] for i in indices])


def test_normalization_gives_zero_mean_unit_std_on_the_train_split(digits, stats):
    train = with_image_transform(digits["train"], ImageTransform(stats, image_size=8, channels=1))
    every = torch.stack(train[:]["pixels"])
    assert every.shape == (len(digits["train"]), 1, 8, 8)
    assert every.mean().item() == pytest.approx(0.0, abs=1e-5)
    assert every.std().item() == pytest.approx(1.0, abs=1e-3)


def test_statistics_are_measured_not_assumed(digits, stats):
    raw = np.stack([np.asarray(image) for image in digits["train"]["image"]]) / 255.0
    assert stats.mean[0] == pytest.approx(raw.mean(), rel=1e-6)
    assert stats.std[0] == pytest.approx(raw.std(), rel=1e-6)
    assert ImageStats.from_dict(stats.to_dict()) == stats


def test_the_same_seed_and_epoch_give_the_same_augmented_pixels(digits, stats):
    first = with_image_transform(digits["train"], augmenting(stats, seed=3))
    second = with_image_transform(digits["train"], augmenting(stats, seed=3))
    torch.testing.assert_close(pixels_of(first), pixels_of(second), rtol=0, atol=0)
    # Reading order does not matter: each example's randomness is its own.
    torch.testing.assert_close(pixels_of(first, reversed(range(20))).flip(0), pixels_of(second), rtol=0, atol=0)


def test_another_epoch_or_seed_gives_other_pixels_and_going_back_repeats(digits, stats):
    transform = augmenting(stats, seed=3)
    train = with_image_transform(digits["train"], transform)
    epoch_0 = pixels_of(train)
    transform.set_epoch(1)
    epoch_1 = pixels_of(train)
    assert not torch.equal(epoch_0, epoch_1)
    transform.set_epoch(0)
    torch.testing.assert_close(pixels_of(train), epoch_0, rtol=0, atol=0)
    other_seed = with_image_transform(digits["train"], augmenting(stats, seed=4))
    assert not torch.equal(pixels_of(other_seed), epoch_0)


def test_augmentation_is_a_shift_of_at_most_max_shift_pixels(stats):
    image = Image.fromarray(np.pad(np.full((2, 2), 255, dtype=np.uint8), 3))  # a bright 2x2 square in the middle
    unshifted = torch.nonzero(image_to_tensor(image, channels=1, image_size=8)[0]).tolist()
    transform = augmenting(stats, max_shift=1)
    shifts = set()
    for index in range(40):
        bright = torch.nonzero(transform.pixels(image, index)[0] > 0).tolist()
        (dy, dx), = {(b[0] - u[0], b[1] - u[1]) for b, u in zip(bright, unshifted, strict=True)}
        shifts.add((dy, dx))
    assert shifts == {(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)}


def test_flip_is_off_by_default_and_mirrors_when_on(stats):
    image = Image.fromarray(np.tile(np.arange(8, dtype=np.uint8) * 30, (8, 1)))  # brighter to the right
    plain = augmenting(stats, max_shift=0)
    flipping = augmenting(stats, max_shift=0, flip=True)
    assert all(torch.equal(plain.pixels(image, i), plain.pixels(image, 0)) for i in range(20))
    flipped = [not torch.equal(flipping.pixels(image, i), plain.pixels(image, 0)) for i in range(20)]
    assert 0 < sum(flipped) < 20
    mirrored = next(i for i in range(20) if flipped[i])
    torch.testing.assert_close(flipping.pixels(image, mirrored), plain.pixels(image, 0).flip(-1))


def test_the_evaluation_transform_is_deterministic_and_unaugmented(digits, stats):
    transform = ImageTransform(stats, image_size=8, channels=1)
    evaluation = with_image_transform(digits["validation"], transform)
    before = pixels_of(evaluation)
    transform.set_epoch(5)
    torch.testing.assert_close(pixels_of(evaluation), before, rtol=0, atol=0)
    image = digits["validation"][0]["image"]
    expected = (image_to_tensor(image, channels=1, image_size=8) - stats.mean[0]) / stats.std[0]
    torch.testing.assert_close(before[0], expected)


def test_images_are_converted_and_resized_to_the_model(stats):
    wide = Image.fromarray(np.random.default_rng(0).integers(0, 255, (10, 20), dtype=np.uint8))
    rgb = image_to_tensor(wide, channels=3, image_size=8)
    assert rgb.shape == (3, 8, 8) and 0 <= rgb.min() and rgb.max() <= 1
    torch.testing.assert_close(rgb[0], rgb[2])  # grey replicated into every channel
    colour = Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8))
    assert image_to_tensor(colour, channels=1, image_size=28).shape == (1, 28, 28)
    with pytest.raises(RequestError, match="channels"):
        image_to_tensor(colour, channels=2, image_size=8)


def test_collate_gives_float_pixels_and_long_labels(digits, stats):
    train = with_image_transform(digits["train"], augmenting(stats))
    loader = torch.utils.data.DataLoader(train, batch_size=5, collate_fn=collate_images)
    batch = next(iter(loader))
    assert batch["pixels"].shape == (5, 1, 8, 8) and batch["pixels"].dtype == torch.float32
    assert batch["labels"].dtype == torch.long
    assert batch["labels"].tolist() == digits["train"]["label"][:5]


def test_augmenting_without_the_index_column_is_refused(digits, stats):
    bare = digits["train"].with_transform(augmenting(stats))
    with pytest.raises(RequestError, match="with_image_transform"):
        bare[0]


def test_statistics_of_a_constant_channel_do_not_divide_by_zero():
    flat = datasets.Dataset.from_dict({"image": [Image.new("L", (4, 4), 7)] * 3, "label": [0, 0, 0]},
                                      features=datasets.Features({"image": datasets.Image(),
                                                                  "label": datasets.ClassLabel(names=["a"])}))
    stats = channel_stats(flat, channels=1, image_size=4)
    assert stats.std == (1.0,)
    assert torch.isfinite(ImageTransform(stats, image_size=4, channels=1).pixels(flat[0]["image"])).all()
