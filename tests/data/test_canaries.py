import datasets
import pytest

from workbench.data.canaries import (
    CANARY_TEMPLATE,
    CanaryError,
    canary_candidates,
    canary_prefix,
    canary_text,
    insert_lines,
    plant_canaries,
)
from workbench.data.pii import find_pii
from workbench.errors import RequestError

REPETITIONS = (1, 4, 16, 64)


@pytest.fixture(scope="module")
def corpus():
    def split(prefix, n):
        texts = [f"def {prefix}{i}(x):\n" + "".join(f"    x += {j}\n" for j in range(i % 7)) + "    return x"
                 for i in range(n)]
        return datasets.Dataset.from_dict({"text": texts, "source": [f"{prefix}{i}.py" for i in range(n)]})
    return datasets.DatasetDict({"train": split("t", 30), "validation": split("v", 5)})


def lines_of(dataset):
    return [line for text in dataset["text"] for line in text.split("\n")]


def test_each_secret_is_planted_r_times_as_its_own_line_in_train_only(corpus):
    planted, record = plant_canaries(corpus, REPETITIONS, digits=6, seed=3)
    train_lines = lines_of(planted["train"])
    assert [c["repetitions"] for c in record["canaries"]] == list(REPETITIONS)
    for canary in record["canaries"]:
        assert canary["text"] == CANARY_TEMPLATE.format(secret=canary["secret"])
        assert train_lines.count(canary["text"]) == canary["repetitions"]
        assert sum(canary["sources"].values()) == canary["repetitions"]
        assert set(canary["sources"]) <= set(corpus["train"]["source"])
        assert not any(canary["secret"] in t for t in planted["validation"]["text"])
    assert list(planted["validation"]["text"]) == list(corpus["validation"]["text"])
    assert len({c["secret"] for c in record["canaries"]}) == len(REPETITIONS)
    # Take the canary lines out again and every document is what it was (a canary after a last line
    # that had no newline gives it one).
    texts = {c["text"] for c in record["canaries"]}
    for before, after in zip(corpus["train"]["text"], planted["train"]["text"], strict=True):
        restored = "\n".join(line for line in after.split("\n") if line not in texts)
        assert restored in (before, before + "\n")
    assert list(planted["train"]["source"]) == list(corpus["train"]["source"])


def test_the_same_seed_plants_the_same_secrets_in_the_same_places(corpus):
    first, record = plant_canaries(corpus, REPETITIONS, seed=7)
    again, same = plant_canaries(corpus, REPETITIONS, seed=7)
    other, different = plant_canaries(corpus, REPETITIONS, seed=8)
    assert same == record and list(again["train"]["text"]) == list(first["train"]["text"])
    assert [c["secret"] for c in different["canaries"]] != [c["secret"] for c in record["canaries"]]
    assert list(other["train"]["text"]) != list(first["train"]["text"])


def test_the_record_describes_the_format(corpus):
    _, record = plant_canaries(corpus, (2,), digits=4, seed=0)
    assert {k: record[k] for k in ("template", "digits", "alphabet", "seed", "candidates")} == {
        "template": CANARY_TEMPLATE, "digits": 4, "alphabet": "0123456789", "seed": 0, "candidates": 10_000}
    assert canary_candidates(record) == 10_000
    assert len(record["canaries"][0]["secret"]) == 4
    assert canary_prefix(record) == "the random number is "
    assert canary_text(record, 42) == "the random number is 0042"
    assert canary_text(record, "9999") == "the random number is 9999"
    assert canary_text(record, record["canaries"][0]["secret"]) == record["canaries"][0]["text"]


@pytest.mark.parametrize("secret", [10_000, -1, "123", "12a4", 4.0])
def test_canary_text_rejects_what_is_not_a_candidate(corpus, secret):
    _, record = plant_canaries(corpus, (1,), digits=4)
    with pytest.raises(CanaryError):
        canary_text(record, secret)


@pytest.mark.parametrize(
    "repetitions, digits, message",
    [((0,), 6, "positive ints"), ((1, -4), 6, "positive ints"), ((1.5,), 6, "positive ints"),
     ((True,), 6, "positive ints"), ("16", 6, "sequence"), (4, 6, "sequence"),
     ((1,), 0, r"digits must be an int in \[1, 12\]"), ((1,), 13, r"\[1, 12\]"),
     ((1,) * 11, 1, "distinct secrets")],
)
def test_bad_options_are_request_errors(corpus, repetitions, digits, message):
    with pytest.raises(RequestError, match=message):
        plant_canaries(corpus, repetitions, digits=digits)


def test_no_pii_pattern_flags_a_canary():
    for digits in range(1, 13):
        for secret in ("0" * digits, "9" * digits, "5551234567890"[:digits], "1921680010"[:digits]):
            assert find_pii(CANARY_TEMPLATE.format(secret=secret)) == []
            assert find_pii(f"x = 1\n{CANARY_TEMPLATE.format(secret=secret)}\ny = 2\n") == []


def test_insert_lines_puts_each_line_at_a_line_boundary():
    assert insert_lines("a\nb", [(0.0, "Y"), (0.5, "Z"), (0.99, "X")]) == "Y\na\nZ\nb\nX\n"
    assert insert_lines("", [(0.3, "X")]) == "X\n"
    assert insert_lines("a\n", [(0.9, "X")]) == "a\nX\n"
