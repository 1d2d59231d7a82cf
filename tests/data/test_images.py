import socket
import time
from collections import Counter

import datasets
import numpy as np
import pytest
from PIL import Image

from workbench.data.corpora import hub_reachable
from workbench.data.images import (
    IMAGE_SETS,
    ImageSetError,
    ImageSetUnavailableError,
    check_image_options,
    label_fraction,
    load_images,
    split_images,
    stratified_order,
)


@pytest.fixture(scope="module")
def digits():
    return load_images("digits", seed=0)


def write_png(path, value: int, size=(6, 5)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, dtype=np.uint8)).save(path)


def test_digits_are_the_1797_real_8x8_images_in_ten_classes(digits):
    assert list(digits) == ["train", "validation", "test"]
    assert sum(len(split) for split in digits.values()) == 1797
    features = digits["train"].features
    assert isinstance(features["image"], datasets.Image)
    assert features["label"].names == [str(d) for d in range(10)]
    image = digits["train"][0]["image"]
    assert image.mode == "L" and image.size == (8, 8)
    values = np.asarray(image)
    assert values.max() > 200 and values.min() == 0  # scaled from 0-16 to 0-255


def test_digits_pixels_are_scikit_learns_scaled_to_255():
    from sklearn.datasets import load_digits

    original = load_digits()
    every = datasets.concatenate_datasets(list(load_images("digits", seed=0).values()))
    # The first image, found in scikit-learn's array by its pixels.
    pixels = np.asarray(every[0]["image"]).astype(float) * 16 / 255
    distances = np.abs(original.images - pixels).max(axis=(1, 2))
    assert distances.min() < 0.04
    assert original.target[distances.argmin()] == every[0]["label"]


def test_splits_are_disjoint_cover_everything_and_depend_only_on_the_seed(digits):
    def pixel_keys(split):
        return [np.asarray(image).tobytes() + bytes([label]) for image, label in
                zip(split["image"], split["label"], strict=True)]

    again = load_images("digits", seed=0)
    other = load_images("digits", seed=1)
    assert {s: len(v) for s, v in digits.items()} == {"train": 1437, "validation": 180, "test": 180}
    for split in digits:
        assert pixel_keys(digits[split]) == pixel_keys(again[split])
    assert pixel_keys(digits["test"]) != pixel_keys(other["test"])


def test_split_indices_are_disjoint_and_stratified():
    labels = [0] * 60 + [1] * 30 + [2] * 10
    source = datasets.DatasetDict({"train": datasets.Dataset.from_dict(
        {"n": list(range(100)), "label": labels},
        features=datasets.Features({"n": datasets.Value("int64"), "label": datasets.ClassLabel(names=list("abc"))}))})
    splits = split_images(source, seed=3, validation_fraction=0.2, test_fraction=0.1)
    ids = {split: set(splits[split]["n"]) for split in splits}
    assert [len(ids[s]) for s in ("train", "validation", "test")] == [70, 20, 10]
    assert ids["train"] | ids["validation"] | ids["test"] == set(range(100))
    assert not ids["train"] & ids["validation"] and not ids["train"] & ids["test"]
    assert Counter(splits["validation"]["label"]) == {0: 12, 1: 6, 2: 2}
    assert Counter(splits["test"]["label"]) == {0: 6, 1: 3, 2: 1}


def test_every_prefix_of_the_stratified_order_is_within_one_of_proportion():
    labels = np.array([0] * 50 + [1] * 30 + [2] * 20)
    order = stratified_order(labels.tolist(), seed=5)
    assert sorted(order.tolist()) == list(range(100))
    for cut in range(1, 101):
        counts = np.bincount(labels[order[:cut]], minlength=3)
        assert np.all(np.abs(counts - cut * np.array([0.5, 0.3, 0.2])) <= 1.0 + 1e-9)


def test_mnist_5k_is_5000_real_28x28_digits_500_per_class():
    mnist = load_images("mnist-5k", seed=0)
    every = datasets.concatenate_datasets(list(mnist.values()))
    assert len(every) == 5000
    assert Counter(every["label"]) == {digit: 500 for digit in range(10)}
    image = mnist["train"][0]["image"]
    assert image.mode == "L" and image.size == (28, 28)
    assert Counter(mnist["validation"]["label"]) == {digit: 50 for digit in range(10)}


def test_max_examples_caps_the_splits_in_proportion(digits):
    capped = load_images("digits", seed=0, max_examples=100)
    assert {s: len(v) for s, v in capped.items()} == {"train": 80, "validation": 10, "test": 10}
    assert len(set(capped["train"]["label"])) == 10


def test_imagefolder_reads_class_subfolders_with_their_labels(tmp_path):
    for i in range(5):
        write_png(tmp_path / "pics" / "cat" / f"{i}.png", 10)
        write_png(tmp_path / "pics" / "dog" / f"{i}.png", 240)
    images = load_images("imagefolder", data_dir=tmp_path / "pics", seed=0, validation_fraction=0.2,
                         test_fraction=0.2, cache_dir=str(tmp_path / "cache"))
    assert images["train"].features["label"].names == ["cat", "dog"]
    assert [len(images[s]) for s in ("train", "validation", "test")] == [6, 2, 2]
    for split in images.values():
        for example in split:
            brightness = np.asarray(example["image"]).mean()
            assert example["label"] == (0 if brightness < 128 else 1)


def test_imagefolder_keeps_a_test_split_the_folder_already_has(tmp_path):
    for split, count in (("train", 8), ("test", 2)):
        for cls, value in (("cat", 10), ("dog", 240)):
            for i in range(count):
                write_png(tmp_path / "pics" / split / cls / f"{i}.png", value)
    images = load_images("imagefolder", data_dir=tmp_path / "pics", seed=0, validation_fraction=0.25,
                         test_fraction=0.1, cache_dir=str(tmp_path / "cache"))
    assert [len(images[s]) for s in ("train", "validation", "test")] == [12, 4, 4]


def test_a_missing_folder_names_the_path_and_what_was_expected(tmp_path):
    with pytest.raises(ImageSetError, match=f"{tmp_path / 'nowhere'} does not exist.*one sub-folder per class"):
        load_images("imagefolder", data_dir=tmp_path / "nowhere")


def test_a_folder_without_images_names_the_path_and_what_was_expected(tmp_path):
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    with pytest.raises(ImageSetError, match=f"{tmp_path} holds no image files.*one sub-folder per class"):
        load_images("imagefolder", data_dir=tmp_path)


@pytest.mark.parametrize("layout", [
    ["a.png", "b.png"],  # no class folders
    ["cat/a.png", "cat/b.png"],  # one class
    ["cat/a.png", "dog/b.png", "c.png"],  # a loose image hides the classes
])
def test_a_folder_without_two_class_subfolders_is_refused(tmp_path, layout):
    for name in layout:
        write_png(tmp_path / "pics" / name, 100)
    with pytest.raises(ImageSetError, match=r"not two or more class sub-folders.*expected a folder"):
        load_images("imagefolder", data_dir=tmp_path / "pics", cache_dir=str(tmp_path / "cache"))


def test_hf_offline_fails_fast_naming_the_dataset_and_the_cache(monkeypatch, tmp_path):
    with socket.socket() as probe:  # a port that nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    started = time.perf_counter()
    with pytest.raises(ImageSetUnavailableError) as error:
        load_images("hf", hf_name="someone/not-cached-images", cache_dir=str(tmp_path))
    assert time.perf_counter() - started < 10
    message = str(error.value)
    for needed in (f"127.0.0.1:{port}", "unreachable", "someone/not-cached-images", "local cache", "'imagefolder'"):
        assert needed in message


def test_hf_on_the_real_endpoint_fails_fast_when_it_is_unreachable(tmp_path):
    if hub_reachable():
        pytest.skip("the Hugging Face hub is reachable from here")
    started = time.perf_counter()
    with pytest.raises(ImageSetUnavailableError, match="unreachable.*'ylecun/mnist'"):
        load_images("hf", hf_name="ylecun/mnist", cache_dir=str(tmp_path))
    assert time.perf_counter() - started < 10


def test_hf_reads_a_local_image_dataset_and_renames_its_columns(tmp_path):
    # A folder of parquet files loads through load_dataset(name) like a hub dataset: the hf path without a network.
    images = [Image.fromarray(np.full((4, 4), 30 * i, dtype=np.uint8)) for i in range(8)]
    features = datasets.Features({"img": datasets.Image(), "fine_label": datasets.ClassLabel(names=["even", "odd"]),
                                  "extra": datasets.Value("string")})
    local = datasets.Dataset.from_dict({"img": images, "fine_label": [i % 2 for i in range(8)], "extra": ["x"] * 8},
                                       features=features)
    local.to_parquet(str(tmp_path / "local_hub" / "train.parquet"))
    loaded = load_images("hf", hf_name=str(tmp_path / "local_hub"), image_column="img", label_column="fine_label",
                         cache_dir=str(tmp_path / "cache"), validation_fraction=0.25, test_fraction=0.25)
    assert [len(loaded[s]) for s in ("train", "validation", "test")] == [4, 2, 2]
    assert loaded["train"].column_names == ["image", "label"]
    assert loaded["train"].features["label"].names == ["even", "odd"]
    for split in loaded.values():
        for example in split:
            assert example["label"] == (np.asarray(example["image"])[0, 0] // 30) % 2
    with pytest.raises(ImageSetError, match="no label column 'label'.*img, fine_label, extra"):
        load_images("hf", hf_name=str(tmp_path / "local_hub"), image_column="img", cache_dir=str(tmp_path / "cache"))


def test_label_fraction_is_stratified_seeded_nested_and_keeps_every_class(digits):
    train = digits["train"]
    sizes = Counter(train["label"])
    one = label_fraction(train, 0.01, seed=0)
    ten = label_fraction(train, 0.1, seed=0)
    assert Counter(one["label"]) == {label: max(1, round(0.01 * n)) for label, n in sizes.items()}
    assert Counter(ten["label"]) == {label: round(0.1 * n) for label, n in sizes.items()}
    assert len(label_fraction(train, 1.0, seed=0)) == len(train)

    def keys(subset):
        return {np.asarray(image).tobytes() for image in subset["image"]}

    assert keys(one) <= keys(ten)
    assert keys(label_fraction(train, 0.1, seed=0)) == keys(ten)
    assert keys(label_fraction(train, 0.1, seed=1)) != keys(ten)
    with pytest.raises(ImageSetError, match="fraction"):
        label_fraction(train, 0.0, seed=0)


def test_label_fraction_keeps_one_example_of_a_class_too_small_for_its_fraction():
    labels = [0] * 200 + [1] * 20  # 1% of 20 rounds to none
    train = datasets.Dataset.from_dict({"label": labels},
                                       features=datasets.Features({"label": datasets.ClassLabel(names=["a", "b"])}))
    assert Counter(label_fraction(train, 0.01, seed=0)["label"]) == {0: 2, 1: 1}


def test_unknown_set_lists_the_valid_ones():
    with pytest.raises(ImageSetError, match="unknown image set 'x'; valid: " + ", ".join(IMAGE_SETS)):
        load_images("x")


@pytest.mark.parametrize("name, options, match", [
    ("digits", {"validation_fraction": 0}, "validation_fraction"),
    ("digits", {"validation_fraction": 0.5, "test_fraction": 0.5}, "leave some training"),
    ("digits", {"data_dir": "somewhere"}, "data_dir do not apply to the 'digits'"),
    ("imagefolder", {}, "needs data_dir"),
    ("hf", {}, "needs hf_name"),
    ("digits", {"max_examples": 2}, "max_examples"),
    ("digits", {"colour": True}, "unknown image set option.*'colour'"),
])
def test_bad_options_are_refused_before_anything_loads(name, options, match):
    with pytest.raises(ImageSetError, match=match):
        check_image_options(name, options)
