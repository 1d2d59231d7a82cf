import json

import numpy as np
import pytest

from workbench.audit.membership import _attack, membership_inference
from workbench.errors import RequestError

ATTACKS = ("loss", "zlib")


@pytest.fixture(scope="module")
def memorized_result(memorized):
    return membership_inference(memorized.model, memorized.tokenizer, memorized.corpus, documents=50)


def test_an_overfit_model_gives_its_training_documents_away(memorized_result):
    assert memorized_result["documents"] == {"train": 12, "validation": 12}
    assert set(memorized_result["attacks"]) == set(ATTACKS)
    for name in ATTACKS:
        attack = memorized_result["attacks"][name]
        assert attack["auc"] > 0.9, (name, attack["auc"])
        assert attack["tpr_at_1pct_fpr"] > 0.5
        assert attack["roc"][0] == [0.0, 0.0] and attack["roc"][-1] == [1.0, 1.0]
    json.dumps(memorized_result)


def test_an_untrained_model_cannot_tell_members_apart(untrained, facts):
    corpus = facts.build_corpus(150, 150, words=20, seed=1, canaries=False)
    result = membership_inference(untrained.model, untrained.tokenizer, corpus, documents=150)
    assert result["documents"] == {"train": 150, "validation": 150}
    for name in ATTACKS:
        assert abs(result["attacks"][name]["auc"] - 0.5) < 0.12, (name, result["attacks"][name]["auc"])


def test_the_reference_attack_subtracts_the_second_models_loss(memorized, untrained):
    args = (memorized.model, memorized.tokenizer, memorized.corpus)
    against_untrained = membership_inference(*args, reference=(untrained.model, untrained.tokenizer))
    assert against_untrained["attacks"]["reference"]["auc"] > 0.9
    # Against itself every difference is 0: no attack at all.
    against_itself = membership_inference(*args, reference=(memorized.model, memorized.tokenizer))
    assert against_itself["attacks"]["reference"]["auc"] == 0.5
    assert against_itself["attacks"]["loss"] == against_untrained["attacks"]["loss"]


def test_the_same_seed_gives_the_same_numbers_and_another_samples_others(memorized, facts):
    corpus = facts.build_corpus(40, 40, words=20, seed=2, canaries=False)
    args = (memorized.model, memorized.tokenizer, corpus)
    first = membership_inference(*args, documents=10, seed=0)
    assert first == membership_inference(*args, documents=10, seed=0)
    assert first != membership_inference(*args, documents=10, seed=1)


def test_the_roc_is_thinned_to_at_most_200_points_and_tpr_is_interpolated():
    rng = np.random.default_rng(0)
    members = np.array([1] * 1000 + [0] * 1000)
    attack = _attack(members, rng.normal(size=2000) + members)
    assert 100 < len(attack["roc"]) <= 200
    fpr = [p[0] for p in attack["roc"]]
    assert fpr == sorted(fpr) and attack["roc"][0] == [0.0, 0.0] and attack["roc"][-1] == [1.0, 1.0]
    perfect = _attack(np.array([1, 1, 0, 0]), np.array([0.9, 0.8, 0.2, 0.1]))
    assert (perfect["auc"], perfect["tpr_at_1pct_fpr"]) == (1.0, 1.0)
    # One member scored above every non-member, one below them all: TPR stays 1/2 until every non-member passes.
    half = _attack(np.array([1, 1, 0, 0]), np.array([0.9, 0.1, 0.5, 0.4]))
    assert half["tpr_at_1pct_fpr"] == pytest.approx(0.5)


@pytest.mark.parametrize("bad, message", [(dict(documents=1), "documents must be an int >= 2"),
                                          (dict(reference="gpt2"), "reference must be None or a"),
                                          (dict(reference=(object(), None)), "config.block_size")])
def test_bad_arguments_are_refused(memorized, bad, message):
    with pytest.raises(RequestError, match=message):
        membership_inference(memorized.model, memorized.tokenizer, memorized.corpus, **bad)
