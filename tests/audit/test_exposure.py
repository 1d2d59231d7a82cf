import json
import math

import numpy as np
import pytest
from scipy.stats import skewnorm

from workbench.audit.exposure import _secret, canary_exposure, fit_skew_normal, secret_index
from workbench.data.canaries import canary_text
from workbench.errors import RequestError

CHANCE = 4.0  # bits: a secret at a uniformly random rank has exposure above 4 with probability 1/16


def by_secret(result: dict) -> dict:
    return {row["secret"]: row for row in result["canaries"]}


@pytest.fixture(scope="module")
def exact(memorized):
    return canary_exposure(memorized.model, memorized.tokenizer, memorized.canary_record)


def test_a_canary_seen_many_times_is_exposed_and_one_never_seen_is_not(exact, facts):
    assert (exact["method"], exact["samples"], exact["candidates"]) == ("exact", None, 10_000)
    rows = by_secret(exact)
    planted, unseen = rows[facts.planted_secret], rows[facts.unseen_secret]
    assert planted["rank"] == 1 and planted["exposure"] == pytest.approx(math.log2(10_000))
    assert unseen["rank"] > 10_000 / 2 ** CHANCE and unseen["exposure"] < CHANCE
    assert unseen["exposure"] == pytest.approx(math.log2(10_000) - math.log2(unseen["rank"]))
    assert planted["log_perplexity"] < unseen["log_perplexity"]
    assert planted["repetitions"] == facts.planted_repetitions
    json.dumps(exact)


def test_the_skew_normal_estimate_agrees_with_the_exact_ranking(memorized, exact, facts):
    estimate = canary_exposure(memorized.model, memorized.tokenizer, memorized.canary_record, exact_limit=0,
                               samples=2_000)
    assert (estimate["method"], estimate["samples"]) == ("skew-normal estimate", 2_000)
    rows, exact_rows = by_secret(estimate), by_secret(exact)
    assert rows[facts.planted_secret]["rank"] is None
    assert rows[facts.planted_secret]["exposure"] > 10
    assert rows[facts.unseen_secret]["exposure"] < CHANCE
    for secret in (facts.planted_secret, facts.unseen_secret):
        assert rows[secret]["log_perplexity"] == pytest.approx(exact_rows[secret]["log_perplexity"], abs=1e-3)
    assert set(estimate["fit"]) == {"a", "loc", "scale"}
    assert estimate == canary_exposure(memorized.model, memorized.tokenizer, memorized.canary_record,
                                       exact_limit=0, samples=2_000)


def test_an_untrained_model_exposes_neither(untrained, facts):
    # Three-digit versions of the two secrets: 1,000 candidates keep this quick.
    record = {**untrained.canary_record, "digits": 3, "candidates": 1_000,
              "canaries": [{"secret": s[:3], "repetitions": 0} for s in (facts.planted_secret, facts.unseen_secret)]}
    result = canary_exposure(untrained.model, untrained.tokenizer, record)
    assert [row["exposure"] < CHANCE for row in result["canaries"]] == [True, True]
    assert len({row["log_perplexity"] for row in result["canaries"]}) == 2


def test_candidates_are_numbered_in_the_alphabets_base(memorized):
    record = memorized.canary_record
    assert [_secret(record, i) for i in (0, 7, 4821, 9999)] == ["0000", "0007", "4821", "9999"]
    assert all(secret_index(record, _secret(record, i)) == i for i in range(0, 10_000, 37))
    binary = {**record, "alphabet": "ab", "digits": 3, "candidates": 8}
    assert [_secret(binary, i) for i in range(8)] == ["aaa", "aab", "aba", "abb", "baa", "bab", "bba", "bbb"]
    assert canary_text(record, "0042") == "the random number is 0042"


@pytest.mark.parametrize("change, message", [
    (dict(candidates=999), "make 10000"),
    (dict(template="no field"), "no {secret} field"),
    (dict(canaries=[{"secret": "12345", "repetitions": 1}]), "not 4 characters"),
    (dict(canaries=[]), "no canaries"),
    (dict(alphabet="00"), "distinct characters"),
])
def test_a_malformed_record_is_refused(memorized, change, message):
    with pytest.raises(RequestError, match=message):
        canary_exposure(memorized.model, memorized.tokenizer, {**memorized.canary_record, **change})


@pytest.mark.parametrize("shape", [-4.0, 0.0, 3.0])
def test_the_moment_fit_recovers_a_skew_normal(shape):
    values = skewnorm.rvs(shape, loc=50.0, scale=8.0, size=100_000, random_state=np.random.default_rng(0))
    fitted = fit_skew_normal(values)
    # Near symmetry shape and loc trade off against each other; the distribution itself is what must match.
    points = np.array([30.0, 40.0, 45.0, 50.0, 55.0, 60.0, 70.0])
    assert skewnorm.cdf(points, *fitted) == pytest.approx(skewnorm.cdf(points, shape, 50.0, 8.0), abs=0.01)


def test_too_few_samples_are_refused(memorized):
    with pytest.raises(RequestError, match="samples must be an int >= 100"):
        canary_exposure(memorized.model, memorized.tokenizer, memorized.canary_record, samples=10)


def test_a_template_longer_than_the_block_fails_before_scoring(memorized):
    record = {**memorized.canary_record, "template": "x" * 80 + " {secret}"}
    with pytest.raises(RequestError, match="block_size 64"):
        canary_exposure(memorized.model, memorized.tokenizer, record)
