"""The audit's views, drawn from dicts shaped as the audits return them (realistic numbers, built here)."""

import copy
import json
import math

import plotly.graph_objects as go
import pytest

from workbench.audit.browse import CounterfactualBrowser, examples_html, marked_pair
from workbench.audit.figures import (
    exposure_figure,
    extraction_figure,
    group_figure,
    roc_figure,
    summary_lines,
)
from workbench.errors import RequestError


def bucket(split, name, low, high, prefixes, extracted):
    return {"split": split, "duplicates": name, "low": low, "high": high, "prefixes": prefixes,
            "extracted": extracted, "rate": extracted / prefixes}


EXTRACTION = {"prefix_tokens": 32, "seed": 0, "by_k": {
    "64": {"train": {"prefixes": 100, "extracted": 21, "rate": 0.21},
           "validation": {"prefixes": 100, "extracted": 1, "rate": 0.01},
           "by_duplicates": [bucket("train", "16+", 16, None, 10, 9), bucket("train", "1", 1, 1, 70, 6),
                             bucket("train", "2-3", 2, 3, 20, 6), bucket("validation", "0", 0, 0, 95, 0),
                             bucket("validation", "1", 1, 1, 5, 1)]},
    "32": {"train": {"prefixes": 100, "extracted": 38, "rate": 0.38},
           "validation": {"prefixes": 100, "extracted": 4, "rate": 0.04},
           "by_duplicates": [bucket("train", "1", 1, 1, 60, 15), bucket("train", "2-3", 2, 3, 25, 13),
                             bucket("train", "4-15", 4, 15, 10, 6), bucket("train", "16+", 16, None, 5, 4),
                             bucket("validation", "0", 0, 0, 90, 1), bucket("validation", "1", 1, 1, 10, 3)]}}}

CANARIES = {"template": "the random number is {secret}", "candidates": 10**6, "method": "exact", "samples": None,
            "canaries": [{"secret": "381920", "repetitions": 16, "log_perplexity": 9.8, "rank": 251, "exposure": 12.0},
                         {"secret": "004417", "repetitions": 1, "log_perplexity": 31.2, "rank": 233_000,
                          "exposure": 2.1},
                         {"secret": "552901", "repetitions": 64, "log_perplexity": 2.4, "rank": 1,
                          "exposure": math.log2(10**6)},
                         {"secret": "730016", "repetitions": 4, "log_perplexity": 24.0, "rank": 25_400,
                          "exposure": 5.3}]}


def roc(auc_like):
    """A concave ROC curve from (0, 0) to (1, 1), higher for a larger exponent."""
    return [[x / 20, (x / 20) ** (1 / auc_like)] for x in range(21)]


MEMBERSHIP = {"documents": {"train": 200, "validation": 200}, "attacks": {
    "loss": {"auc": 0.912, "tpr_at_1pct_fpr": 0.35, "roc": roc(4.0)},
    "zlib": {"auc": 0.874, "tpr_at_1pct_fpr": 0.22, "roc": roc(3.0)},
    "reference": {"auc": 0.951, "tpr_at_1pct_fpr": 0.48, "roc": roc(6.0)}}}

GROUPS = {"groups": {
    "female": {"n": 118, "accuracy": 0.847, "accuracy_ci": [0.780, 0.907], "macro_f1": 0.812,
               "macro_f1_ci": [0.731, 0.879], "error_rate": 0.153, "error_rate_ci": [0.093, 0.220]},
    "male": {"n": 132, "accuracy": 0.902, "accuracy_ci": [0.848, 0.947], "macro_f1": 0.889,
             "macro_f1_ci": [0.826, 0.940], "error_rate": 0.098, "error_rate_ci": [0.053, 0.152]}},
    "largest_gap": {"accuracy": {"value": 0.055, "between": ["male", "female"]}},
    "overall": {"accuracy": 0.876, "macro_f1": 0.853}}

COUNTERFACTUAL = {"terms": ["gendered_words", "given_names"], "pairs": 64, "examples": 400, "changed": 150,
                  "flip_rate": 0.08, "mean_abs_change": 0.031, "most_moved": [
                      {"text": "He wrote <b>parse()</b> & his tests.",
                       "counterfactual": "She wrote <b>parse()</b> & her tests.", "label": "parsing",
                       "counterfactual_label": "testing", "probability": 0.71, "counterfactual_probability": 0.32,
                       "change": -0.39},
                      {"text": "Ask John about the socket API.", "counterfactual": "Ask Mary about the socket API.",
                       "label": "networking", "counterfactual_label": "networking", "probability": 0.93,
                       "counterfactual_probability": 0.81, "change": -0.12},
                      {"text": "the king's parser", "counterfactual": "the queen's parser", "label": "parsing",
                       "counterfactual_label": "io", "probability": 0.52, "counterfactual_probability": 0.44,
                       "change": -0.08}]}


def test_extraction_draws_one_line_per_split_and_k_over_ordered_duplicate_buckets():
    figure = extraction_figure(EXTRACTION)
    assert [t.name for t in figure.data] == ["train, k=32 (overall 38.0%)", "validation, k=32 (overall 4.0%)",
                                             "train, k=64 (overall 21.0%)", "validation, k=64 (overall 1.0%)"]
    assert list(figure.layout.xaxis.categoryarray) == ["0", "1", "2-3", "4-15", "16+"]  # by count, not by name
    train32, _, train64, _ = figure.data
    assert list(train32.x) == ["1", "2-3", "4-15", "16+"]
    assert list(train32.y) == pytest.approx([15 / 60, 13 / 25, 6 / 10, 4 / 5])
    assert list(train64.x) == ["1", "2-3", "16+"]  # a bucket with no prefix at this k is left out, not zero
    assert [list(c) for c in train32.customdata] == [[15, 60], [13, 25], [6, 10], [4, 5]]
    assert train32.line.color == figure.data[2].line.color and train32.line.dash != figure.data[2].line.dash
    assert train32.line.color != figure.data[1].line.color
    assert "32-token prefix" in figure.layout.title.text
    assert figure.layout.yaxis.title.text == "extraction rate"
    assert "training split" in figure.layout.xaxis.title.text


def test_extraction_with_no_buckets_is_an_empty_figure_that_says_so():
    empty = copy.deepcopy(EXTRACTION)
    for entry in empty["by_k"].values():
        entry["by_duplicates"] = []
    figure = extraction_figure(empty)
    assert len(figure.data) == 0
    assert "no prefixes" in figure.layout.annotations[0].text
    with pytest.raises(RequestError, match=r"no 'by_k'.*\['prefix_tokens'\]"):
        extraction_figure({"prefix_tokens": 32})


def test_exposure_rises_along_log_repetitions_under_the_ceiling():
    figure = exposure_figure(CANARIES)
    canaries, ceiling = figure.data
    assert list(canaries.x) == [1, 4, 16, 64] and list(canaries.y) == pytest.approx([2.1, 5.3, 12.0, 19.93], abs=0.01)
    assert [c[0] for c in canaries.customdata] == ["004417", "730016", "381920", "552901"]
    assert figure.layout.xaxis.type == "log"
    assert list(ceiling.y) == pytest.approx([math.log2(10**6)] * 2)
    assert ceiling.x[0] < 1 and ceiling.x[1] > 64  # spans every canary
    assert "19.9 bits" in ceiling.name
    assert "(exact)" in figure.layout.title.text
    assert figure.layout.yaxis.range[1] > math.log2(10**6)


def test_exposure_names_an_estimate_and_leaves_out_what_a_log_axis_cannot_hold():
    estimate = copy.deepcopy(CANARIES)
    estimate.update(method="skew-normal estimate", samples=10_000)
    estimate["canaries"].append({"secret": "999999", "repetitions": 0, "log_perplexity": 35.0, "rank": None,
                                 "exposure": 0.4})
    estimate["canaries"].append({"secret": "111111", "repetitions": 8, "log_perplexity": 1.0, "rank": None,
                                 "exposure": float("inf")})
    figure = exposure_figure(estimate)
    assert list(figure.data[0].x) == [1, 4, 16, 64]
    assert "skew-normal estimate, 10000 samples" in figure.layout.title.text
    assert "2 canaries not drawn" in figure.layout.title.text
    nothing = exposure_figure({"candidates": 100, "method": "exact", "canaries": []})
    assert [t.name for t in nothing.data] == ["ceiling log2(candidates) = 6.6 bits"]


def test_roc_has_a_curve_per_attack_with_auc_the_diagonal_and_a_marker_at_one_percent():
    figure = roc_figure(MEMBERSHIP)
    names = [t.name for t in figure.data if t.showlegend is not False]
    assert names == ["chance (AUC 0.5)", "loss (AUC 0.912)", "zlib (AUC 0.874)", "reference (AUC 0.951)"]
    assert list(figure.data[0].x) == [0, 1] and list(figure.data[0].y) == [0, 1]
    markers = [t for t in figure.data if t.mode == "markers"]
    assert [(t.legendgroup, list(t.x), list(t.y)) for t in markers] == [
        ("loss", [0.01], [0.35]), ("zlib", [0.01], [0.22]), ("reference", [0.01], [0.48])]
    loss_curve = next(t for t in figure.data if t.name.startswith("loss"))
    assert markers[0].marker.color == loss_curve.line.color
    assert len(loss_curve.x) == 21
    assert "200 training vs 200 held-out" in figure.layout.title.text
    assert figure.layout.xaxis.title.text == "false positive rate"
    assert roc_figure(MEMBERSHIP, log_scale=True).layout.xaxis.type == "log"


def test_roc_without_the_optional_reference_attack():
    for missing in ({k: v for k, v in MEMBERSHIP["attacks"].items() if k != "reference"},
                    {**MEMBERSHIP["attacks"], "reference": None}):
        figure = roc_figure({**MEMBERSHIP, "attacks": missing})
        assert [t.legendgroup for t in figure.data if t.mode == "markers"] == ["loss", "zlib"]
        assert not any("reference" in (t.name or "") for t in figure.data)


def test_group_bars_carry_asymmetric_intervals_and_the_largest_gap():
    figure = group_figure(GROUPS)
    accuracy, f1 = figure.data
    assert (accuracy.name, f1.name) == ("accuracy", "macro F1")
    assert list(accuracy.x) == ["female (n=118)", "male (n=132)"]
    assert list(accuracy.y) == [0.847, 0.902]
    assert list(accuracy.error_y.array) == pytest.approx([0.907 - 0.847, 0.947 - 0.902])
    assert list(accuracy.error_y.arrayminus) == pytest.approx([0.847 - 0.780, 0.902 - 0.848])
    assert list(f1.error_y.arrayminus) == pytest.approx([0.812 - 0.731, 0.889 - 0.826])
    assert figure.layout.barmode == "group"
    assert "largest accuracy gap 0.055 (male vs female)" in figure.layout.title.text
    no_ci = copy.deepcopy(GROUPS)
    del no_ci["groups"]["male"]["macro_f1_ci"], no_ci["largest_gap"]
    figure = group_figure(no_ci)
    assert figure.data[1].error_y.array is None and figure.data[0].error_y.array is not None
    assert "gap" not in figure.layout.title.text


def test_every_figure_serialises_to_plotly_json():
    for figure in (extraction_figure(EXTRACTION), exposure_figure(CANARIES), roc_figure(MEMBERSHIP),
                   group_figure(GROUPS)):
        assert isinstance(figure, go.Figure)
        json.loads(figure.to_json())


def test_swapped_words_are_marked_and_the_text_is_escaped():
    before, after = marked_pair("He wrote <b>x</b> & his tests.", "She wrote <b>x</b> & her tests.")
    assert before == ('<mark style="background:#ffd8a8">He</mark> wrote &lt;b&gt;x&lt;/b&gt; &amp; '
                      '<mark style="background:#ffd8a8">his</mark> tests.')
    assert after.count("<mark") == 2 and ">She</mark>" in after and ">her</mark>" in after
    assert "<b>" not in before + after
    same, _ = marked_pair("nothing to swap", "nothing to swap")
    assert same == "nothing to swap"
    crossed, _ = marked_pair("his & her code", "her & his code")  # a diff would align the two "her"s
    assert crossed.count("<mark") == 2 and crossed.endswith(" code")
    longer, _ = marked_pair("ask him now", "ask the woman now")  # unequal word counts: aligned by difflib
    assert ">him</mark>" in longer and longer.startswith("ask ") and longer.endswith(" now")


def test_browser_steps_through_examples_and_filters_to_flips():
    browser = CounterfactualBrowser({**COUNTERFACTUAL, "by_list": {
        "gendered_words": {"changed": 110, "flips": 10, "flip_rate": 10 / 110, "mean_abs_change": 0.04},
        "given_names": {"changed": 0, "flips": 0, "flip_rate": None, "mean_abs_change": None}}})
    assert "by list: gendered_words 9.1% of 110</div>" in browser.summary.value
    assert "flip rate <b>8.0%</b>" in browser.summary.value and "gendered_words, given_names" in browser.summary.value
    first = browser.view.value
    assert "1 of 3" in first and "flipped" in first and "&lt;b&gt;parse()&lt;/b&gt;" in first
    assert "p(parsing) 0.710 → 0.320 (change -0.390)" in first
    browser.next.click()
    assert browser.index.value == 1 and "John" in browser.view.value and "same label" in browser.view.value
    browser.next.click()
    browser.next.click()  # past the end: stays on the last
    assert browser.index.value == 2 and "queen" in browser.view.value
    browser.only.value = "flips only"
    assert browser.index.max == 1 and browser.index.value == 0
    assert "1 of 2" in browser.view.value
    browser.index.value = 1
    assert "queen" in browser.view.value and "John" not in browser.view.value
    browser.previous.click()
    assert "parse()" in browser.view.value


def test_browser_says_when_there_is_nothing_to_show():
    empty = CounterfactualBrowser({**COUNTERFACTUAL, "changed": 0, "flip_rate": 0.0, "most_moved": []})
    assert "no example to show" in empty.view.value and "400 texts" in empty.view.value
    assert empty.next.disabled and empty.index.disabled
    no_flips = [{**row, "counterfactual_label": row["label"]} for row in COUNTERFACTUAL["most_moved"]]
    browser = CounterfactualBrowser({**COUNTERFACTUAL, "most_moved": no_flips})
    browser.only.value = "flips only"
    assert "no prediction flipped among the 3" in browser.view.value
    assert "no example to show" in examples_html({**COUNTERFACTUAL, "most_moved": []})
    static = examples_html(COUNTERFACTUAL, limit=2)
    assert static.count('class="wb-counterfactual"') == 2 and "and 1 more" in static


def test_summary_has_one_line_per_audit_present_in_a_fixed_order():
    audit = {
        "pairs": {"source": "built-in templates: exercises the code, not a benchmark", "pairs": 48,
                  "stereotype_preferred": 27, "share": 0.5625, "ci": [0.423, 0.693],
                  "by_bias_type": {"gender": {"pairs": 30, "share": 0.6}, "age": {"pairs": 18, "share": 0.5}}},
        "canaries": CANARIES, "extraction": EXTRACTION, "membership": MEMBERSHIP, "groups": GROUPS,
        "counterfactual": COUNTERFACTUAL,
        "regurgitation": {"context_tokens": 64, "train": {"occurrences": 120, "distinct": 85, "reproduced": 3,
                                                          "rate": 0.025},
                          "validation": {"occurrences": 40, "distinct": 31, "reproduced": 0, "rate": 0.0}},
    }
    lines = summary_lines(audit)
    assert [line.split(" ")[0] for line in lines] == ["regurgitation:", "extraction", "canaries:", "membership:",
                                                      "counterfactual:", "groups:", "paired"]
    regurgitation, extraction, canaries, membership, counterfactual, groups, pairs = lines
    assert "64 tokens of context" in regurgitation and "3 of 120 train occurrences (85 distinct; 2.5%)" in regurgitation
    assert "k=32: train 38.0% of 100, validation 4.0% of 100; k=64: train 21.0%" in extraction
    assert canaries == ("canaries: exposure 2.1 / 5.3 / 12.0 / 19.9 bits at 1 / 4 / 16 / 64 repetitions "
                        "(of 19.9 possible, exact)")
    assert "AUC loss 0.912, zlib 0.874, reference 0.951" in membership and "200 training vs 200" in membership
    assert counterfactual.startswith("counterfactual: 12 of 150 predictions flip (8.0%)")
    assert "female 0.847 [0.780, 0.907] (n=118)" in groups and "gap 0.055 between male and female" in groups
    assert "27 of 48 pairs (56.2%, 95% CI 42.3% to 69.3%)" in pairs and "age 50.0% of 18" in pairs
    assert "not a benchmark" in pairs


def test_summary_skips_what_is_missing():
    assert summary_lines({}) == []
    nothing_swapped = {**COUNTERFACTUAL, "changed": 0, "flips": 0, "flip_rate": None, "mean_abs_change": None,
                       "most_moved": []}
    assert summary_lines({"counterfactual": nothing_swapped}) == [
        "counterfactual: none of the 400 texts held a gendered_words, given_names term to swap; nothing measured"]
    assert summary_lines({"counterfactual": {**COUNTERFACTUAL, "flips": 13}})[0].startswith(
        "counterfactual: 13 of 150")  # the probe's own count, where it gives one
    assert summary_lines({"canaries": None, "membership": "not measured: no validation split"}) == [
        "membership: not measured: no validation split"]
    estimate = {**CANARIES, "method": "skew-normal estimate", "samples": 10_000}
    assert summary_lines({"canaries": estimate})[0].endswith("skew-normal estimate from 10000 samples)")
    no_reference = {**MEMBERSHIP, "attacks": {"loss": MEMBERSHIP["attacks"]["loss"]}}
    assert "reference" not in summary_lines({"membership": no_reference})[0]
