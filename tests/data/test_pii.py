import json
from pathlib import Path

import datasets
import pytest

from workbench.data import pii
from workbench.data.corpora import load_corpus
from workbench.data.pii import KINDS, PLACEHOLDERS, find_pii, mask_corpus, mask_pii, scan_corpus
from workbench.errors import RequestError

FIXTURE = Path(__file__).with_name("pii_fixture.jsonl")
# What the scanner must reach on the labelled fixture, per kind. Precision matters most: a masked
# corpus loses what is wrongly flagged, and a scan that cries wolf on code is not read.
MIN_PRECISION = 0.9
MIN_RECALL = 0.8


def fixture_rows():
    return [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_precision_and_recall_per_kind_on_the_labelled_fixture():
    found, labelled, correct = dict.fromkeys(KINDS, 0), dict.fromkeys(KINDS, 0), dict.fromkeys(KINDS, 0)
    for row in fixture_rows():
        got = {(h.kind, h.value) for h in find_pii(row["text"])}
        want = {tuple(label) for label in row["pii"]}
        for kind, _ in got:
            found[kind] += 1
        for kind, _ in want:
            labelled[kind] += 1
        for kind, _ in got & want:
            correct[kind] += 1
    for kind in KINDS:
        assert labelled[kind] >= 4, f"the fixture needs positives of every kind; {kind} has {labelled[kind]}"
        precision, recall = correct[kind] / max(found[kind], 1), correct[kind] / labelled[kind]
        assert precision >= MIN_PRECISION, (kind, precision, found[kind])
        assert recall >= MIN_RECALL, (kind, recall, labelled[kind])


def test_the_fixture_has_hard_negatives_and_none_of_them_is_flagged():
    negatives = [row["text"] for row in fixture_rows() if not row["pii"]]
    assert len(negatives) >= 50
    flagged = {text: find_pii(text) for text in negatives if find_pii(text)}
    assert not flagged


def test_hits_are_sorted_and_never_overlap():
    text = ("proxy http://bob:Xk29vLq7@proxy.corp.net:3128 and mail bob@corp.net, "
            "server 10.1.2.3, call (415) 555-0132, key AKIAJ7QZ3X9PLM2WRT4Q, password = 'Tr0ub4dor&3'")
    hits = find_pii(text)
    assert [h.kind for h in hits] == ["url_credentials", "email", "ip_address", "phone", "secret_key", "secret"]
    assert all(a.end <= b.start for a, b in zip(hits, hits[1:], strict=False))
    assert all(text[h.start:h.end] == h.value for h in hits)


def test_mask_replaces_each_hit_with_its_kinds_placeholder():
    text = "Mail guido@python.org or call (415) 555-0132; password = \"hunter2hunter\"\n"
    assert mask_pii(text) == "Mail <EMAIL> or call <PHONE>; password = \"<SECRET>\"\n"
    assert mask_pii(mask_pii(text)) == mask_pii(text)
    assert mask_pii("def f(x):\n    return x @ w\n") == "def f(x):\n    return x @ w\n"
    assert set(PLACEHOLDERS) == set(KINDS)


def corpus_of(train, validation):
    def split(docs):
        return datasets.Dataset.from_dict({"text": [t for _, t in docs], "source": [s for s, _ in docs]})
    return datasets.DatasetDict({"train": split(train), "validation": split(validation)})


SMALL = corpus_of(
    [("a.py", "# by ann@uni-heidelberg.de\n# and ann@uni-heidelberg.de\nHOST = '10.20.30.40'\n"),
     ("b.py", "x = 1\n"),
     ("c.py", "token = 'c1a5e0d9b7f34e2a'  # ask bob@corp.net\n")],
    [("d.py", "# ann@uni-heidelberg.de, call +44 20 7946 0958\n"), ("e.py", "pass\n")],
)


def test_scan_counts_per_split_kind_and_source_without_the_values():
    record = scan_corpus(SMALL)
    train, validation = record["splits"]["train"], record["splits"]["validation"]
    assert train["counts"] == {**dict.fromkeys(KINDS, 0), "email": 3, "ip_address": 1, "secret": 1}
    assert train["distinct"]["email"] == 2 and train["documents"] == 3 and train["documents_with_hits"] == 2
    assert validation["counts"] == {**dict.fromkeys(KINDS, 0), "email": 1, "phone": 1}
    assert record["counts"]["email"] == 4 and record["distinct"]["email"] == 2
    assert record["distinct_in_several_splits"]["email"] == 1  # ann's address is in both splits
    assert record["sources"] == {"a.py": {"email": 2, "ip_address": 1}, "c.py": {"secret": 1, "email": 1},
                                 "d.py": {"email": 1, "phone": 1}}
    assert record["sources_with_hits"] == 3
    dumped = json.dumps(record)
    for private in ("ann@", "bob@", "10.20.30.40", "c1a5e0d9b7f34e2a", "7946"):
        assert private not in dumped


def test_the_record_keeps_the_sources_with_most_hits(monkeypatch):
    monkeypatch.setattr(pii, "MAX_SOURCES", 2)
    record = scan_corpus(SMALL)
    assert record["sources_with_hits"] == 3 and list(record["sources"]) == ["a.py", "c.py"]


def test_scan_reads_its_cache_the_second_time(tmp_path, monkeypatch):
    folder = tmp_path / "texts"
    folder.mkdir()
    for i in range(4):
        (folder / f"f{i}.txt").write_text(f"line {i}\nwrite to person{i}@mail-host.de\n", encoding="utf-8")
    corpus = load_corpus("text", paths=str(folder / "*.txt"), validation_fraction=0.3, cache_dir=str(tmp_path / "c"))
    first = scan_corpus(corpus)

    def no_work(batch):
        raise AssertionError("the scan ran again instead of reading its cache")

    monkeypatch.setattr(pii, "_scan_batch", no_work)
    assert scan_corpus(corpus) == first
    assert first["counts"]["email"] == 4


def test_mask_corpus_masks_every_split_and_keeps_the_rest():
    masked = mask_corpus(SMALL)
    assert masked["validation"]["text"][0] == "# <EMAIL>, call <PHONE>\n"
    assert masked["train"]["text"][1] == "x = 1\n"
    assert list(masked["train"]["source"]) == list(SMALL["train"]["source"])
    assert all(not find_pii(t) for split in masked for t in masked[split]["text"])
    assert scan_corpus(masked)["counts"] == dict.fromkeys(KINDS, 0)


def test_scan_rejects_what_is_not_a_corpus():
    with pytest.raises(RequestError, match="DatasetDict"):
        scan_corpus(SMALL["train"])
    bad = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"body": ["x"]})})
    with pytest.raises(RequestError, match=r"lacks column\(s\) source, text"):
        scan_corpus(bad)


def test_the_stdlib_corpus_holds_its_authors_addresses():
    corpus = load_corpus("stdlib")
    record = scan_corpus(corpus)
    assert 40 <= record["distinct"]["email"] <= 300, record["distinct"]
    assert record["counts"]["email"] >= record["distinct"]["email"]
    addresses = {h.value for t in corpus["train"]["text"] if "@" in t for h in find_pii(t) if h.kind == "email"}
    assert {"guido@python.org", "barry@python.org", "raymond.hettinger@gmail.com"} <= addresses
    assert not any(a.endswith(("example.com", "example.org")) for a in addresses)
