"""Per-group metrics: the numbers sklearn gives, the gap fairlearn finds, seeded intervals, and task files."""

import csv
import json

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from workbench.audit.groups import group_metrics, group_metrics_for_file
from workbench.errors import RequestError


@pytest.fixture(scope="module")
def binary():
    rng = np.random.default_rng(1)
    n = 600
    groups = rng.choice(["north", "south", "west"], n)
    y = rng.integers(0, 2, n)
    wrong = rng.random(n) < np.where(groups == "south", 0.35, 0.1)  # south is served worse
    return y, np.where(wrong, 1 - y, y), groups


def test_each_group_gets_what_sklearn_computes_on_it(binary):
    y, p, g = binary
    result = group_metrics(y, p, g, bootstrap=0)
    assert list(result["groups"]) == ["north", "south", "west"]
    for name, entry in result["groups"].items():
        m = g == name
        (tn, fp), (fn, tp) = confusion_matrix(y[m], p[m], labels=[0, 1])
        assert entry["n"] == m.sum()
        assert entry["accuracy"] == pytest.approx(accuracy_score(y[m], p[m]))
        assert entry["macro_f1"] == pytest.approx(f1_score(y[m], p[m], average="macro"))
        assert entry["error_rate"] == pytest.approx(1 - accuracy_score(y[m], p[m]))
        assert entry["false_positive_rate"] == pytest.approx(fp / (fp + tn))
        assert entry["false_negative_rate"] == pytest.approx(fn / (fn + tp))
        assert entry["accuracy_ci"] is None
    assert result["overall"]["accuracy"] == pytest.approx(accuracy_score(y, p)) and result["overall"]["n"] == len(y)
    assert result["positive_class"] == "1"


def test_the_largest_gap_is_between_the_worst_and_best_group(binary):
    y, p, g = binary
    result = group_metrics(y, p, g, bootstrap=0)
    accuracy = {k: v["accuracy"] for k, v in result["groups"].items()}
    gap = result["largest_gap"]["accuracy"]
    assert gap["value"] == pytest.approx(max(accuracy.values()) - min(accuracy.values()))
    assert gap["between"][0] == "south" and gap["between"][1] == max(accuracy, key=accuracy.get)
    assert result["largest_gap"]["error_rate"]["between"][1] == "south"
    assert set(result["largest_gap"]) == {"accuracy", "macro_f1", "error_rate", "false_positive_rate",
                                          "false_negative_rate"}


def test_intervals_are_seeded_resamples_within_each_group(binary):
    y, p, g = binary
    a = group_metrics(y, p, g, bootstrap=300, seed=3)
    assert a == group_metrics(y, p, g, bootstrap=300, seed=3)
    b = group_metrics(y, p, g, bootstrap=300, seed=4)
    assert a["groups"] != b["groups"] and a["groups"]["north"]["accuracy"] == b["groups"]["north"]["accuracy"]
    for entry in a["groups"].values():
        for name in ("accuracy", "macro_f1", "error_rate", "false_positive_rate", "false_negative_rate"):
            lo, hi = entry[f"{name}_ci"]
            assert lo <= entry[name] <= hi and hi - lo < 0.3
    # A group the model gets all right resamples to all right: the interval is a point.
    perfect = group_metrics([0, 1, 0, 1, 1], [0, 1, 0, 1, 0], ["a", "a", "a", "a", "b"], bootstrap=50)
    assert perfect["groups"]["a"]["accuracy_ci"] == [1.0, 1.0]
    json.dumps(a)


def test_the_bootstrap_interval_is_about_the_binomial_one():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    p = np.where(rng.random(400) < 0.2, 1 - y, y)
    result = group_metrics(y, p, ["g"] * 400, bootstrap=2000)
    acc = result["groups"]["g"]["accuracy"]
    lo, hi = result["groups"]["g"]["accuracy_ci"]
    half = 1.96 * np.sqrt(acc * (1 - acc) / 400)
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.15)


def test_a_rate_a_group_cannot_have_is_none_and_left_out_of_the_gap():
    y = [1, 1, 0, 1, 0, 1]
    p = [1, 0, 0, 1, 1, 1]
    g = ["only positives", "only positives", "mixed", "mixed", "mixed", "mixed"]
    result = group_metrics(y, p, g, label_names=["no", "yes"], bootstrap=20)
    assert result["groups"]["only positives"]["false_positive_rate"] is None
    assert result["groups"]["only positives"]["false_positive_rate_ci"] is None
    assert result["groups"]["mixed"]["false_positive_rate"] == 0.5
    assert result["largest_gap"]["false_positive_rate"] == {"value": None, "between": None}
    assert result["largest_gap"]["false_negative_rate"]["value"] == pytest.approx(0.5)
    assert result["positive_class"] == "yes"


def test_labels_may_be_names_and_more_than_two_classes_have_no_binary_rates():
    y = ["cat", "dog", "bird", "cat", "dog", "bird"]
    p = ["cat", "dog", "cat", "cat", "bird", "bird"]
    result = group_metrics(y, p, [1, 1, 1, 2, 2, 2], label_names=["bird", "cat", "dog"], bootstrap=0)
    assert set(result["groups"]) == {"1", "2"} and result["classes"] == ["bird", "cat", "dog"]
    assert "false_positive_rate" not in result["groups"]["1"] and result["positive_class"] is None
    assert result["groups"]["1"]["accuracy"] == pytest.approx(2 / 3)
    assert result["groups"]["2"]["macro_f1"] == pytest.approx(f1_score(y[3:], p[3:], average="macro"))


def test_bad_requests_are_explained():
    with pytest.raises(RequestError, match="got 3, 2 and 3"):
        group_metrics([0, 1, 0], [0, 1], ["a", "b", "c"])
    with pytest.raises(RequestError, match="y_pred holds 'fish', not among the classes: cat, dog"):
        group_metrics(["cat"], ["fish"], ["a"], label_names=["cat", "dog"])
    with pytest.raises(RequestError, match="bootstrap must be"):
        group_metrics([0], [0], ["a"], bootstrap=-1)
    with pytest.raises(RequestError, match="empty"):
        group_metrics([], [], [])


# -- task files -------------------------------------------------------------------------------------------------------

def vowel_reader(texts):
    """Class "vowel" iff the text starts with a vowel, except that it always says "consonant" for "u"."""
    vowel = np.array([t[0] in "aeio" for t in texts], dtype=float)
    return np.stack([1 - vowel, vowel], axis=1)


@pytest.fixture()
def task_csv(tmp_path):
    path = tmp_path / "task.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label", "who"])
        for i in range(40):
            start = "aeiouzxk"[i % 8]
            writer.writerow([f"{start} item {i}", "vowel" if start in "aeiou" else "consonant", f"g{i % 2}"])
    return path


def test_a_task_file_is_predicted_and_scored_by_its_group_column(task_csv):
    result = group_metrics_for_file(vowel_reader, task_csv, group_column="who", label_names=["consonant", "vowel"],
                                    bootstrap=100)
    assert result["rows"] == 40 and result["dropped"] == 0 and result["file"] == str(task_csv)
    # "u" rows (i % 8 == 4) are all in g0 and all wrong: g0 has 5 of 20 wrong, g1 none.
    assert result["groups"]["g0"]["accuracy"] == pytest.approx(0.75) and result["groups"]["g1"]["accuracy"] == 1.0
    assert result["groups"]["g0"]["false_negative_rate"] == pytest.approx(5 / 15)
    assert result["largest_gap"]["accuracy"] == {"value": pytest.approx(0.25), "between": ["g0", "g1"]}


def test_a_jsonl_file_with_index_labels_works_too(tmp_path):
    path = tmp_path / "task.jsonl"
    rows = [{"text": t, "label": int(t[0] in "aeio"), "group": g} for t, g in
            [("apple", "x"), ("kiwi", "x"), ("orange", "y"), ("plum", "y"), ("umbrella", "y")]]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = group_metrics_for_file(vowel_reader, path, bootstrap=0)
    assert result["groups"]["x"]["accuracy"] == 1.0 and result["overall"]["n"] == 5


def test_a_missing_column_fails_first_naming_the_columns(task_csv):
    def refuses(texts):
        raise AssertionError("should not be called")

    with pytest.raises(RequestError, match=r"group_column='group'; the columns are: text, label, who"):
        group_metrics_for_file(refuses, task_csv, label_names=["consonant", "vowel"])
    with pytest.raises(RequestError, match="give label_names"):
        group_metrics_for_file(refuses, task_csv, group_column="who")
    with pytest.raises(RequestError, match="'vowel', not among the classes: no, yes"):
        group_metrics_for_file(refuses, task_csv, group_column="who", label_names=["no", "yes"])
