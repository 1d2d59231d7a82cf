import json

import pytest
import torch

from workbench.data import prepared
from workbench.data.blocks import token_blocks, tokenize
from workbench.data.canaries import plant_canaries
from workbench.data.corpora import corpus_fingerprint, load_corpus
from workbench.data.datamodule import PretrainDataModule
from workbench.data.pii import mask_corpus, scan_corpus
from workbench.data.prepared import PII_MODES, prepare_corpus
from workbench.data.tokenizers import ByteTokenizer, build_tokenizer
from workbench.errors import RequestError


@pytest.fixture
def files(tmp_path, make_text):
    """Ten small files, three of them (all in train) with private data; the "€" is only inside a password."""
    folder = tmp_path / "src"
    folder.mkdir()
    for i in range(10):
        extra = {0: "# author: ann.lee@uni-heidelberg.de\n", 3: "HOST = '10.20.30.40'\n",
                 7: 'password = "hunter2€€x"\n'}.get(i, "")
        (folder / f"m{i}.py").write_text(extra + make_text(i, 240), encoding="utf-8")
    return folder


@pytest.fixture
def options(files, tmp_path):
    return {"paths": str(files / "*.py"), "validation_fraction": 0.2, "cache_dir": str(tmp_path / "cache")}


@pytest.fixture
def raw(options):
    return load_corpus("text", **options)


def test_defaults_keep_the_raw_corpus_and_still_record_the_scan(raw):
    result = prepare_corpus(raw)
    assert result.corpus is raw and result.canary_record is None
    assert result.pii_record == {"mode": "keep", "scan": scan_corpus(raw)}
    assert result.pii_record["scan"]["counts"]["email"] == 1


def test_mask_then_plant_and_the_scan_is_of_the_raw_corpus(raw):
    result = prepare_corpus(raw, pii="mask", canary_repetitions=(2, 3), canary_digits=5, seed=4)
    expected, record = plant_canaries(mask_corpus(raw), (2, 3), digits=5, seed=4)
    assert corpus_fingerprint(result.corpus) == corpus_fingerprint(expected) and result.canary_record == record
    assert result.pii_record["mode"] == "mask" and result.pii_record["scan"] == scan_corpus(raw)
    text = "".join(t for split in result.corpus for t in result.corpus[split]["text"])
    assert "ann.lee@" not in text and "€" not in text and "<EMAIL>" in text
    assert all(text.count(c["text"]) == c["repetitions"] for c in record["canaries"])


@pytest.mark.parametrize(
    "bad, message",
    [({"pii": "redact"}, r"'redact'.*keep, mask"), ({"canary_repetitions": (4, 0)}, "positive ints"),
     ({"canary_digits": 13}, r"\[1, 12\]"), ({"canary_repetitions": "1,4"}, "sequence")],
)
def test_bad_options_fail_before_the_scan(raw, monkeypatch, bad, message):
    monkeypatch.setattr(prepared, "scan_corpus", lambda *a, **k: pytest.fail("scanned before checking"))
    with pytest.raises(RequestError, match=message):
        prepare_corpus(raw, **bad)
    assert PII_MODES == ("keep", "mask")


# ---------------------------------------------------------------- the DataModule


def module(options, **overrides):
    settings = dict(corpus="text", corpus_options=options, tokenizer="byte", block_size=16, batch_size=4)
    dm = PretrainDataModule(**{**settings, **overrides})
    dm.setup()
    return dm


def test_the_defaults_train_on_exactly_the_blocks_they_did_before(options):
    dm = module(options)
    raw = load_corpus("text", **options)
    before = token_blocks(tokenize(raw["train"], ByteTokenizer()), 16)[:]
    assert dm.corpus is dm.raw_corpus and torch.equal(dm.train_blocks[:], before)
    record = json.loads(json.dumps(dm.describe()))
    assert record["pii"]["mode"] == "keep" and record["pii"]["scan"]["counts"]["ip_address"] == 1
    assert "canaries" not in record


def test_masking_and_canaries_reach_the_tokenizer_and_the_record(options):
    dm = module(options, tokenizer="char", pii="mask", canary_repetitions=[1, 4], canary_digits=4, seed=2)
    assert "€" in "".join(dm.raw_corpus["train"]["text"])
    assert "€" not in dm.tokenizer.decode(list(range(dm.tokenizer.vocab_size)))
    assert dm.tokenizer.fingerprint() == build_tokenizer("char", dm.corpus["train"]["text"]).fingerprint()
    assert corpus_fingerprint(dm.raw_corpus) != corpus_fingerprint(dm.corpus)
    record = json.loads(json.dumps(dm.describe()))
    assert record["pii"]["mode"] == "mask" and record["pii"]["scan"]["counts"]["secret"] == 1
    assert [c["repetitions"] for c in record["canaries"]["canaries"]] == [1, 4]
    assert record["corpus_summary"]["fingerprint"] == corpus_fingerprint(dm.corpus)
    masked = sum(len(t) for t in mask_corpus(dm.raw_corpus)["train"]["text"])
    added = sum(len(c["text"]) + 1 for c in record["canaries"]["canaries"] for _ in range(c["repetitions"]))
    assert 0 <= dm.token_counts["train"] - masked - added <= 5  # at most a newline more per copy


@pytest.mark.parametrize(
    "arguments, message",
    [({"pii": "scrub"}, "keep, mask"), ({"canary_repetitions": [0]}, "positive ints"),
     ({"canary_digits": 0}, r"\[1, 12\]")],
)
def test_the_datamodule_checks_the_new_options_before_loading(tmp_path, arguments, message):
    with pytest.raises(RequestError, match=message):
        PretrainDataModule(corpus_options={"cache_dir": str(tmp_path / "never")}, **arguments)
    assert not (tmp_path / "never").exists()
