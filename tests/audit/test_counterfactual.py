"""The counterfactual probe: the term swap, a predictor that cannot care, one built to care, and a real fine-tune."""

import json

import numpy as np
import pytest
import torch

from workbench.audit.counterfactual import TermPair, classifier_of, counterfactual_probe, load_terms, swap_terms
from workbench.audit.terms import swapper
from workbench.data import build_tokenizer
from workbench.errors import RequestError
from workbench.models import Decoder, DecoderConfig
from workbench.modules import save_pretrained
from workbench.modules.finetune_recipe import finetune
from workbench.modules.finetuned import load_finetuned, save_finetuned

GENDER = [TermPair("he", "she", "g"), TermPair("his", "her", "g"), TermPair("him", "her", "g")]


# -- the terms ----------------------------------------------------------------------------------------------------

def test_shipped_lists_hold_a_few_dozen_pairs_from_three_documented_lists():
    pairs = load_terms()
    names = {p.list_name for p in pairs}
    assert names == {"gendered_words", "given_names_gender", "given_names_origin"}
    assert len([p for p in pairs if p.list_name == "gendered_words"]) >= 40
    assert TermPair("he", "she", "gendered_words") in pairs
    assert TermPair("Emily", "Lakisha", "given_names_origin") in pairs
    assert all(p.a.lower() != p.b.lower() for p in pairs)


def test_swap_is_both_ways_in_one_pass_whole_words_and_keeps_case():
    assert swap_terms("he told her", GENDER) == ("she told his", 2)
    assert swap_terms("He said HE saw She", GENDER) == ("She said SHE saw He", 3)
    assert swap_terms("the shell, hello, history", GENDER) == ("the shell, hello, history", 0)
    assert swap_terms("he's fine; (she)", GENDER) == ("she's fine; (he)", 2)
    words = load_terms(lists=["gendered_words"])
    assert swap_terms("Mr. King met his wife", words) == ("Mrs. Queen met her husband", 4)


def test_names_match_only_capitalised_so_words_are_not_taken_for_names():
    pairs = load_terms(lists=["given_names_origin"])
    assert swap_terms("Emily and Jay met; EMILY paid", pairs) == ("Lakisha and Leroy met; LAKISHA paid", 3)
    assert swap_terms("a jay sat on the ebony keys", pairs) == ("a jay sat on the ebony keys", 0)
    assert swap_terms("Lakisha's turn", pairs) == ("Emily's turn", 1)


def test_an_extra_csv_adds_its_pairs_under_its_list_name(tmp_path):
    plain = tmp_path / "kin.csv"
    plain.write_text("a,b\nniño,niña\n", encoding="utf-8")
    named = tmp_path / "named.csv"
    named.write_text("a,b,list\nsenor,senora,spanish\n", encoding="utf-8")
    assert load_terms(plain)[-1] == TermPair("niño", "niña", "kin")
    assert load_terms(named, lists=["spanish"]) == [TermPair("senor", "senora", "spanish")]
    assert swap_terms("el niño", load_terms(plain)) == ("el niña", 1)


def test_bad_term_lists_are_explained(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("male,female\nhe,she\n", encoding="utf-8")
    with pytest.raises(RequestError, match="columns a and b; it has: male, female"):
        load_terms(bad)
    same = tmp_path / "same.csv"
    same.write_text("a,b\nhe,He\n", encoding="utf-8")
    with pytest.raises(RequestError, match="line 2"):
        load_terms(same)
    with pytest.raises(RequestError, match="not a file"):
        load_terms(tmp_path / "missing.csv")
    with pytest.raises(RequestError, match="the lists are: gendered_words, given_names_gender"):
        load_terms(lists=["pronouns"])
    with pytest.raises(RequestError, match="no term pairs"):
        swap_terms("he", [])


# -- the probe on built predictors ----------------------------------------------------------------------------------

TEXTS = ["Yesterday he went home.", "The parser reads a file.", "She wrote his report.", "Nobody came.",
         "Ask him about it.", "he he he"]


def ignores_input(texts):
    return np.tile([0.3, 0.7], (len(texts), 1))


def reads_he(texts):
    """p(class 1) high iff the word "he" is in the text (as a whole word, any case)."""
    has = np.array([" he " in f" {t.lower().replace('.', ' ')} " for t in texts], dtype=float)
    return np.stack([1 - (0.1 + 0.8 * has), 0.1 + 0.8 * has], axis=1)


def test_a_predictor_that_ignores_its_input_never_flips():
    result = counterfactual_probe(ignores_input, TEXTS, pairs=GENDER)
    assert result["examples"] == 6 and result["changed"] == 4 and result["pairs"] == 3 and result["terms"] == ["g"]
    assert result["flip_rate"] == 0.0 and result["mean_abs_change"] == 0.0 and result["flips"] == 0
    assert all(row["change"] == 0.0 for row in result["most_moved"])


def test_a_predictor_that_reads_a_swapped_word_flips():
    result = counterfactual_probe(reads_he, TEXTS, pairs=GENDER, label_names=["other", "about him"], top=2)
    # "he" -> "she" in texts 0 and 5 (flip to "other"), "She" -> "He" in text 2 (flip to "about him"), text 4 stays
    assert result["flips"] == 3 and result["flip_rate"] == pytest.approx(3 / 4)
    assert result["mean_abs_change"] == pytest.approx(3 * 0.8 / 4)
    top = result["most_moved"]
    assert len(top) == 2 and [row["index"] for row in top] == [0, 2]  # ties keep text order
    assert top[0] == {"index": 0, "text": "Yesterday he went home.", "counterfactual": "Yesterday she went home.",
                      "label": "about him", "counterfactual_label": "other", "probability": pytest.approx(0.9),
                      "counterfactual_probability": pytest.approx(0.1), "change": pytest.approx(-0.8)}
    json.dumps(result)


def test_each_term_list_is_also_probed_alone():
    texts = ["Emily said he was late.", "Greg paid.", "A plain text."]
    result = counterfactual_probe(reads_he, texts)
    assert result["terms"] == ["gendered_words", "given_names_gender", "given_names_origin"]
    by_list = result["by_list"]
    assert by_list["gendered_words"]["changed"] == 1 and by_list["gendered_words"]["flip_rate"] == 1.0
    assert by_list["given_names_origin"]["changed"] == 2 and by_list["given_names_origin"]["flip_rate"] == 0.0
    assert by_list["given_names_gender"]["changed"] == 0 and by_list["given_names_gender"]["flip_rate"] is None
    assert result["changed"] == 2 and result["flip_rate"] == 0.5


def test_texts_without_any_term_are_counted_but_not_compared():
    result = counterfactual_probe(reads_he, ["nothing here", "nor here"], pairs=GENDER)
    assert result["changed"] == 0 and result["flip_rate"] is None and result["most_moved"] == []


def test_bad_requests_are_explained():
    def refuses(texts):
        raise AssertionError("should not be called")

    with pytest.raises(RequestError, match="top must be"):
        counterfactual_probe(refuses, TEXTS, top=-1)
    with pytest.raises(RequestError, match="list of strings"):
        counterfactual_probe(refuses, "he went")
    with pytest.raises(RequestError, match="label_names has 3 names but the predictor gives 2"):
        counterfactual_probe(reads_he, TEXTS, pairs=GENDER, label_names=["a", "b", "c"])
    with pytest.raises(RequestError, match=r"for 4 original texts it returned shape \(4,\)"):
        counterfactual_probe(lambda texts: np.ones(len(texts)), TEXTS, pairs=GENDER)


# -- a real fine-tune on docstring-topic ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def topic_run(tmp_path_factory):
    """A tiny byte-level decoder fine-tuned (fully, 2 epochs on a tenth of the labels) on docstring-topic, saved."""
    base = tmp_path_factory.mktemp("base") / "run"
    torch.manual_seed(0)
    save_pretrained(base / "checkpoint", Decoder(DecoderConfig.from_preset("tiny", vocab_size=256, block_size=64)),
                    build_tokenizer("byte"))
    outcome = finetune(dict(seed=0, base=str(base), task="docstring-topic", label_fraction=0.1, max_length=64,
                            max_epochs=2, batch_size=32, strategy="full", learning_rate=3e-3, dropout=0.0),
                       printer=None)
    folder = tmp_path_factory.mktemp("ft")
    save_finetuned(folder / "finetuned", outcome)
    return outcome, folder


def test_classifier_of_a_saved_fine_tune_matches_the_outcome_and_ignores_batching(topic_run):
    outcome, folder = topic_run
    texts = outcome.task.splits["test"]["text"][:20]
    from_outcome = classifier_of(outcome)(texts)
    loaded = classifier_of(load_finetuned(folder), batch_size=7)
    assert from_outcome.shape == (20, len(outcome.task.label_names))
    np.testing.assert_allclose(from_outcome.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(loaded(texts), from_outcome, atol=1e-5)
    np.testing.assert_allclose(classifier_of(outcome, batch_size=1)(texts), from_outcome, atol=1e-5)
    outcome.module.train()  # predicting runs in eval mode and gives the module back as it found it
    np.testing.assert_allclose(classifier_of(outcome)(texts), from_outcome, atol=1e-5)
    assert outcome.module.training
    outcome.module.eval()


def test_the_probe_on_docstring_topic_test_texts(topic_run):
    outcome, _ = topic_run
    texts, names = outcome.task.splits["test"]["text"], outcome.task.label_names
    predict = classifier_of(outcome)
    result = counterfactual_probe(predict, texts, label_names=names)
    swap = swapper(load_terms())
    assert result["examples"] == len(texts) and result["changed"] == sum(swap(t)[1] > 0 for t in texts)
    # Stdlib docstrings rarely name a person, so a sentence about one goes first (the encoder keeps 64 bytes):
    # every text then has a swap the model sees.
    about = [f"He wrote this for his team. {t}" for t in texts[:150]]
    result = counterfactual_probe(predict, about, label_names=names, top=5)
    assert result["changed"] == len(about) and 0 <= result["flip_rate"] <= 1 and result["mean_abs_change"] > 0
    row = result["most_moved"][0]
    assert row["counterfactual"].startswith("She wrote this for her team. ")
    label = names.index(row["label"])
    assert row["probability"] == pytest.approx(float(predict([row["text"]])[0, label]), abs=1e-5)
    assert row["counterfactual_probability"] == pytest.approx(float(predict([row["counterfactual"]])[0, label]),
                                                              abs=1e-5)
    assert counterfactual_probe(predict, about, label_names=names, top=5) == result  # deterministic
    print(f"docstring-topic, prepended sentence: flip rate {result['flip_rate']:.3f}, mean |change| "
          f"{result['mean_abs_change']:.4f} over {result['changed']} texts, terms {result['terms']}")


def test_classifier_of_refuses_a_head_that_does_not_classify_sequences(topic_run):
    outcome, folder = topic_run
    finetuned = load_finetuned(folder)
    finetuned.task_kind = "causal_lm"
    with pytest.raises(RequestError, match="sequence_classification"):
        classifier_of(finetuned)
