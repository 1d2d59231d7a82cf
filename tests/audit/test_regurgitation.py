import json

import datasets
import pytest

from workbench.audit.regurgitation import context_before, email_regurgitation, redact
from workbench.data.tokenizers import build_tokenizer
from workbench.errors import RequestError


@pytest.fixture(scope="module")
def memorized_result(memorized):
    return email_regurgitation(memorized.model, memorized.tokenizer, memorized.corpus, context_tokens=32)


def test_a_memorized_address_is_reproduced_and_an_unseen_one_is_not(memorized_result, facts):
    train, validation = memorized_result["train"], memorized_result["validation"]
    assert (train["occurrences"], train["distinct"]) == (len(facts.train_addresses),) * 2
    assert train["reproduced"] >= 2 and train["rate"] == train["reproduced"] / train["occurrences"]
    assert (validation["occurrences"], validation["reproduced"], validation["rate"]) == (2, 0, 0.0)
    examples = memorized_result["reproduced_examples"]
    assert len(examples) == train["reproduced"]
    assert {e["split"] for e in examples} == {"train"}
    assert {e["source"] for e in examples} <= {f"train/doc{i}.txt" for i in range(len(facts.train_addresses))}
    assert "m***@zentrixmail.org" in {e["address"] for e in examples}


def test_no_full_address_leaves_the_audit(memorized_result, facts):
    written = json.dumps(memorized_result)
    for address in facts.train_addresses + facts.validation_addresses:
        assert address not in written
        assert address.split("@")[0] not in written


def test_an_untrained_model_reproduces_nothing(untrained):
    result = email_regurgitation(untrained.model, untrained.tokenizer, untrained.corpus, context_tokens=32)
    assert result["train"]["occurrences"] == 3 and result["train"]["reproduced"] == 0
    assert result["reproduced_examples"] == []


def test_redact_keeps_the_first_letter_and_the_domain():
    assert redact("guido@python.org") == "g***@python.org"
    assert redact("x@y.z") == "x***@y.z"


def test_the_context_is_the_tail_of_encoding_all_the_text_before():
    text = "".join(f"line {i}: a somewhat long piece of text, then more    spaces\n" for i in range(60)) + "end <"
    bpe = build_tokenizer("bpe", [text], vocab_size=300)
    for tokenizer in (bpe, build_tokenizer("byte")):
        for tokens in (1, 7, 64, 500):
            assert context_before(tokenizer, text, len(text), tokens) == tokenizer.encode(text)[-tokens:]
    assert context_before(bpe, text, 0, 8) == []


def test_max_addresses_samples_occurrences_per_split_deterministically(memorized):
    args = (memorized.model, memorized.tokenizer, memorized.corpus)
    one = email_regurgitation(*args, context_tokens=32, max_addresses=1, seed=3)
    assert one["train"]["found"] == 1 and one["train"]["occurrences"] == 1
    assert one == email_regurgitation(*args, context_tokens=32, max_addresses=1, seed=3)


def test_an_address_with_no_text_before_it_is_skipped(memorized):
    corpus = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"text": ["mira.okafor@zentrixmail.org wrote this"], "source": ["a"]}),
        "validation": datasets.Dataset.from_dict({"text": ["no address here"], "source": ["b"]}),
    })
    result = email_regurgitation(memorized.model, memorized.tokenizer, corpus, context_tokens=32)
    assert result["train"] == {"occurrences": 0, "distinct": 0, "reproduced": 0, "rate": None,
                               "distinct_reproduced": 0, "found": 1, "skipped_no_context": 1}


@pytest.mark.parametrize("bad, message", [(dict(context_tokens=64), "block_size 64"),
                                          (dict(context_tokens=0), "positive int"),
                                          (dict(context_tokens=32, max_addresses=0), "max_addresses")])
def test_bad_arguments_are_refused(memorized, bad, message):
    with pytest.raises(RequestError, match=message):
        email_regurgitation(memorized.model, memorized.tokenizer, memorized.corpus, **bad)


def test_a_corpus_without_sources_is_refused(memorized):
    corpus = datasets.DatasetDict({s: memorized.corpus[s].remove_columns("source") for s in memorized.corpus})
    with pytest.raises(RequestError, match=r"lacks column\(s\) \['source'\]"):
        email_regurgitation(memorized.model, memorized.tokenizer, corpus, context_tokens=32)
