import json

import datasets
import numpy as np
import pytest

from workbench.audit.extraction import extraction_rates, sample_windows
from workbench.data.tokenizers import ByteTokenizer
from workbench.errors import RequestError

SETTINGS = dict(prefixes=40, prefix_tokens=16, ks=(16, 32))


@pytest.fixture(scope="module")
def memorized_rates(memorized):
    return extraction_rates(memorized.model, memorized.tokenizer, memorized.corpus, **SETTINGS)


def test_memorized_train_text_is_extracted_and_held_out_text_is_not(memorized_rates):
    by_k = memorized_rates["by_k"]
    assert set(by_k) == {"16", "32"}
    for k in ("16", "32"):
        assert by_k[k]["train"]["prefixes"] == 40
        assert by_k[k]["train"]["rate"] >= 0.5, by_k[k]
        assert by_k[k]["validation"]["prefixes"] > 10
        assert by_k[k]["validation"]["rate"] <= 0.05, by_k[k]
    # A longer continuation is never easier to reproduce exactly than its own first half.
    assert by_k["32"]["train"]["extracted"] <= by_k["16"]["train"]["extracted"]
    json.dumps(memorized_rates)


def test_duplicate_buckets_partition_each_split(memorized_rates):
    for entry in memorized_rates["by_k"].values():
        for split in ("train", "validation"):
            rows = [r for r in entry["by_duplicates"] if r["split"] == split]
            assert sum(r["prefixes"] for r in rows) == entry[split]["prefixes"]
            assert sum(r["extracted"] for r in rows) == entry[split]["extracted"]
        train_rows = [r for r in entry["by_duplicates"] if r["split"] == "train"]
        assert all(r["low"] >= 1 for r in train_rows), "a training continuation occurs in the training text"
    # The canary line, planted 32 times, puts some windows in the top bucket.
    top = [r for r in memorized_rates["by_k"]["16"]["by_duplicates"] if r["duplicates"] == "16+"]
    assert [r["split"] for r in top] == ["train"]


def test_an_untrained_model_extracts_nothing(untrained):
    rates = extraction_rates(untrained.model, untrained.tokenizer, untrained.corpus, **SETTINGS)
    assert rates["by_k"]["16"]["train"]["extracted"] == 0


def test_the_same_seed_gives_the_same_numbers(memorized, memorized_rates):
    again = extraction_rates(memorized.model, memorized.tokenizer, memorized.corpus, **SETTINGS)
    assert again == memorized_rates


def test_windows_spread_over_documents_before_reusing_one():
    texts = ["a" * 100, "b" * 100, "c" * 30, "d" * 10]
    tokenizer = ByteTokenizer()
    first = sample_windows(texts, tokenizer, 20, 3, np.random.default_rng(0))
    assert sorted(w.text[0] for w in first) == ["a", "b", "c"]
    every = sample_windows(texts, tokenizer, 20, 100, np.random.default_rng(0))
    assert len(every) == 5 + 5 + 1  # all non-overlapping slots; the 10-token document has none
    for letter in "ab":
        starts = sorted(w.offsets[0][0] for w in every if w.text[0] == letter)
        assert all(b - a >= 20 for a, b in zip(starts, starts[1:], strict=False))
    other = sample_windows(texts, tokenizer, 20, 100, np.random.default_rng(1))
    assert [w.offsets[0] for w in other] != [w.offsets[0] for w in every]


def test_prefix_plus_k_must_fit_the_block(memorized):
    with pytest.raises(RequestError, match=r"prefix_tokens 16 \+ the longest k 64 = 80 .* block_size 64"):
        extraction_rates(memorized.model, memorized.tokenizer, memorized.corpus, prefix_tokens=16, ks=(32, 64))


@pytest.mark.parametrize("bad", [dict(prefixes=0), dict(ks=()), dict(ks=(16, 0)), dict(prefix_tokens=True)])
def test_bad_arguments_are_refused(memorized, bad):
    with pytest.raises(RequestError):
        extraction_rates(memorized.model, memorized.tokenizer, memorized.corpus, **{**SETTINGS, **bad})


def test_a_split_without_long_enough_documents_is_refused_before_decoding(memorized):
    short = datasets.DatasetDict({split: datasets.Dataset.from_dict({"text": ["tiny"], "source": ["x"]})
                                  for split in ("train", "validation")})
    with pytest.raises(RequestError, match="no train document has the 48 tokens"):
        extraction_rates(memorized.model, memorized.tokenizer, short, **SETTINGS)
