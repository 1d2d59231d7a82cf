import ast
import json
import keyword
import math
import socket
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from workbench.data import TASKS, TaskData, TaskError, TaskUnavailableError, check_task_options, load_task
from workbench.data.tasks import docstring_topic, function_size, python_source, token_type
from workbench.data.tasks.python_source import count_statements, definitions_in
from workbench.data.tasks.splits import assign_groups, subsample
from workbench.data.tasks.token_type import LABEL_NAMES, line_labels

NAME, KEYWORD, OPERATOR, STRING, NUMBER, COMMENT = range(6)
U = -100

# ---------------------------------------------------------------- a small fake source tree

PACKAGES = {"alpha": "parsing", "beta": "network", "gamma": "drawing"}  # 3 files x 22 docstrings each


def _module(package: str, topic: str, file_index: int) -> str:
    functions = [
        f'def {package}_{file_index}_{i}(x):\n'
        f'    """The {package} {topic} helper {i} of file {file_index} does {topic}."""\n'
        f"    y = x + {i}\n    return y\n"
        for i in range(22)
    ]
    return "\n\n".join(functions)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tree")
    for package, topic in PACKAGES.items():
        (root / package).mkdir()
        for j in range(3):
            (root / package / f"mod{j}.py").write_text(_module(package, topic, j), encoding="utf-8")
    (root / "delta").mkdir()  # two files only: too few for a class
    for j in range(2):
        (root / "delta" / f"mod{j}.py").write_text(_module("delta", "waiting", j) * 2, encoding="utf-8")
    (root / "solo.py").write_text(_module("solo", "everything", 0), encoding="utf-8")  # a lone module: no package
    (root / "alpha" / "tests").mkdir()  # tests are left out, as for the corpus
    (root / "alpha" / "tests" / "test_it.py").write_text(_module("alpha", "testing", 9), encoding="utf-8")
    (root / "alpha" / "extra.py").write_text(
        textwrap.dedent('''
            def short():
                """Too short."""

            def copied():
                """The alpha parsing helper 0 of file 0 does parsing."""
        '''),
        encoding="utf-8",
    )
    return root


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("cache"))


# ---------------------------------------------------------------- bad input


def test_unknown_task_names_the_valid_ones():
    with pytest.raises(TaskError, match=r"'sentiment'.*docstring-topic, token-type, function-size, file, hf"):
        load_task("sentiment")
    assert TASKS == ("docstring-topic", "token-type", "function-size", "file", "hf")


@pytest.mark.parametrize("fraction", [0, 1.5, -0.2, "0.5", True])
def test_label_fraction_outside_0_1_names_the_valid_range(fraction):
    with pytest.raises(TaskError, match=r"label_fraction must be .*\(0, 1\]"):
        load_task("docstring-topic", label_fraction=fraction)


def test_options_are_checked_before_any_work():
    with pytest.raises(TaskError, match="kind 'regression' does not fit task 'docstring-topic'"):
        load_task("docstring-topic", kind="regression")
    with pytest.raises(TaskError, match="unknown kind 'ranking'; valid kinds are: sequence_classification"):
        load_task("file", path="x.csv", kind="ranking")
    with pytest.raises(TaskError, match="needs path="):
        load_task("file")
    with pytest.raises(TaskError, match="needs hf_name="):
        load_task("hf")
    with pytest.raises(TaskError, match="hf_name do not apply to the built-in task 'token-type'"):
        load_task("token-type", hf_name="imdb")
    with pytest.raises(TaskError, match="sum < 1"):
        load_task("token-type", validation_fraction=0.5, test_fraction=0.5)
    with pytest.raises(TaskError, match="max_examples"):
        load_task("token-type", max_examples=2)
    with pytest.raises(TaskError, match=r"'labels'.*valid options are: seed, label_fraction"):
        check_task_options("file", {"labels": "y"})
    check_task_options("file", {"path": "data.csv", "label_column": "y"})  # fine: nothing is read


def test_a_missing_source_tree_is_named(tmp_path):
    with pytest.raises(TaskError, match="is not a directory"):
        load_task("function-size", path=str(tmp_path / "nowhere"))


# ---------------------------------------------------------------- labels from the parsers, on snippets

SNIPPET = textwrap.dedent('''
    class Shape:
        """A shape   with
        an area."""

        def area(self):
            """Return the area."""
            total = 0
            for side in self.sides:
                if side:
                    total += side
            return total

    async def fetch(url):
        def inner():
            return 1
        try:
            pass
        except OSError:
            raise
        return inner()
''')


def test_definitions_have_qualified_names_docstrings_sources_and_statement_counts():
    rows = {row["name"]: row for row in definitions_in(SNIPPET, ast.parse(SNIPPET))}
    assert list(rows) == ["Shape", "Shape.area", "fetch", "fetch.inner"]
    assert rows["Shape"]["kind"] == "class" and rows["Shape"]["source"] is None
    assert docstring_topic.clean(rows["Shape"]["docstring"]) == "A shape with an area."
    # area: docstring expr, assign, for, if, augassign, return
    assert rows["Shape.area"]["statements"] == 6
    # fetch: def, return (inner), try, pass, raise (handler), return
    assert rows["fetch"]["statements"] == 6
    assert rows["fetch.inner"]["statements"] == 1
    assert rows["Shape.area"]["source"].startswith('def area(self):\n    """Return the area."""')
    assert rows["Shape.area"]["source"].endswith("return total")
    assert rows["fetch"]["source"].startswith("async def fetch(url):")
    assert rows["fetch"]["docstring"] is None


def test_statement_count_agrees_with_walking_every_node_on_real_code():
    source = Path(ast.__file__).read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            expected = sum(isinstance(n, ast.stmt) for s in node.body for n in ast.walk(s))
            assert count_statements(node) == expected, node.name


def test_source_segments_match_the_standard_get_source_segment():
    source = Path(textwrap.__file__).read_text(encoding="utf-8") + "\ndef uni():\n    return 'héllo 日本'  # ü\n"
    tree = ast.parse(source)
    rows = [r for r in definitions_in(source, tree) if r["kind"] == "function"]
    expected = [
        textwrap.dedent(ast.get_source_segment(source, node, padded=True))
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    ]
    assert sorted(r["source"] for r in rows) == sorted(expected)
    assert rows[-1]["source"] == "def uni():\n    return 'héllo 日本'"  # byte columns, cut before the comment


TOKEN_SNIPPET = 'x = 1  # one\ndef f(a):\n    """doc\n    str"""\n    return a+0x1F if a else f"{a}!"\n'


def test_token_types_label_each_character():
    labels = line_labels(TOKEN_SNIPPET)
    text, first = labels[1]
    assert text == "x = 1  # one"
    assert first == [NAME, U, OPERATOR, U, NUMBER, U, U, COMMENT, U, COMMENT, COMMENT, COMMENT]
    text, second = labels[2]
    assert text == "def f(a):"
    assert second == [KEYWORD] * 3 + [U, NAME, OPERATOR, NAME, OPERATOR, OPERATOR]
    text, inside = labels[4]  # a line inside a triple-quoted string: whole-file tokenizing gets it right
    assert text == '    str"""'
    assert inside == [U] * 4 + [STRING] * 6
    text, last = labels[5]
    expected = [U] * 4 + [KEYWORD] * 6 + [U, NAME, OPERATOR, NUMBER, NUMBER, NUMBER, NUMBER, U]
    expected += [KEYWORD] * 2 + [U, NAME, U] + [KEYWORD] * 4 + [U] + [STRING] * 7
    assert last == expected


def test_token_labels_align_with_the_text_on_real_code():
    source = Path(json.__file__).with_name("decoder.py").read_text(encoding="utf-8")
    labelled = line_labels(source)
    assert len(labelled) > 100
    for text, labels in labelled.values():
        assert len(labels) == len(text)
        for char, label in zip(text, labels, strict=True):
            assert label == U if char.isspace() else (label != U or char == "\\")
        words = "".join(c if label == KEYWORD else " " for c, label in zip(text, labels, strict=True)).split()
        assert words and all(keyword.iskeyword(w) for w in words) or not words


def test_an_untokenizable_file_gives_no_lines():
    assert line_labels('x = """never closed\n') == {}


# ---------------------------------------------------------------- the built-in tasks on the fake tree


def _groups_are_disjoint(task: TaskData) -> None:
    groups = {split: set(task.splits[split]["group"]) for split in ("train", "validation", "test")}
    assert all(groups.values())
    assert not groups["train"] & groups["validation"]
    assert not groups["train"] & groups["test"]
    assert not groups["validation"] & groups["test"]


def test_docstring_topic_on_a_small_tree(tree, cache):
    task = load_task("docstring-topic", path=str(tree), cache_dir=cache)
    assert task.kind == "sequence_classification"
    assert task.label_names == ["alpha", "beta", "gamma"]  # delta: 2 files; solo: no package
    assert task.num_labels == 3
    _groups_are_disjoint(task)
    every = {split: Counter(task.splits[split]["label"]) for split in ("train", "validation", "test")}
    assert all(set(counts) == {0, 1, 2} for counts in every.values())  # every class in every split
    rows = [row for split in task.splits.values() for row in split]
    assert len(rows) == 3 * 66  # of alpha/extra.py's two, the short one is dropped and the copy kept once
    for row in rows:
        package = row["group"].split("/")[0]
        assert task.label_names[row["label"]] == package
        assert row["text"].startswith(f"The {package} {PACKAGES[package]} helper")
    assert not any("tests/" in row["group"] for row in rows)


def test_docstring_topic_class_rule_is_measured_on_examples_and_files(tree, cache):
    _, names = docstring_topic.build(tree, min_examples=67, cache_dir=cache)
    assert names == []  # 66 each
    _, names = docstring_topic.build(tree, min_examples=40, min_files=2, cache_dir=cache)  # delta: 44 distinct
    assert names == ["alpha", "beta", "delta", "gamma"]


def test_token_type_on_a_small_tree(tree, cache):
    task = load_task("token-type", path=str(tree), cache_dir=cache)
    assert task.kind == "token_classification" and task.label_names == LABEL_NAMES
    _groups_are_disjoint(task)
    row = next(r for r in task.splits["train"] if r["text"].strip().startswith("return y"))
    assert row["char_labels"] == [U] * 4 + [KEYWORD] * 6 + [U, NAME]
    for split in task.splits.values():
        for text, labels in zip(split["text"], split["char_labels"], strict=True):
            assert len(text) == len(labels) and text.strip() and len(text) <= token_type.MAX_LINE_CHARS


def test_token_type_caps_lines_with_a_sample_that_ignores_the_seed(tree, cache):
    first = load_task("token-type", path=str(tree), max_examples=50, cache_dir=cache)
    other_seed = load_task("token-type", path=str(tree), max_examples=50, seed=7, cache_dir=cache)
    assert sum(len(s) for s in first.splits.values()) == 50
    assert first.fingerprint() == other_seed.fingerprint()


def test_function_size_on_a_small_tree(tree, cache):
    task = load_task("function-size", path=str(tree), cache_dir=cache)
    assert task.kind == "regression" and task.label_names is None and task.num_labels == 1
    _groups_are_disjoint(task)
    rows = [r for s in task.splits.values() for r in s if r["text"].startswith("def gamma_")]
    assert len(rows) == 66
    assert all(r["label"] == pytest.approx(math.log1p(3)) for r in rows)  # docstring, y = ..., return
    assert rows[0]["text"].endswith("return y")


def test_function_size_leaves_out_long_functions(tree, cache):
    short = function_size.build(tree, max_chars=40, cache_dir=cache)
    assert len(short) == 1 and short[0]["text"].startswith("def short():")


def test_second_load_reads_the_cache_instead_of_parsing(tree, tmp_path, monkeypatch):
    cache_dir = str(tmp_path / "cache")
    first = {name: load_task(name, path=str(tree), cache_dir=cache_dir) for name in TASKS[:3]}

    def refuse(*args, **kwargs):
        raise AssertionError("parsed again instead of reading the cache")

    monkeypatch.setattr(python_source, "parse", refuse)
    monkeypatch.setattr(token_type, "_token_spans", refuse)
    for name, task in first.items():
        assert load_task(name, path=str(tree), cache_dir=cache_dir).fingerprint() == task.fingerprint()
    (tree / "alpha" / "mod0.py").write_text((tree / "alpha" / "mod0.py").read_text() + "\n# changed\n")
    try:
        with pytest.raises(Exception) as error:  # new content, new cache (datasets wraps the error)
            load_task("function-size", path=str(tree), cache_dir=cache_dir)
        assert "parsed again" in repr(error.value) + repr(error.value.__cause__)
    finally:
        (tree / "alpha" / "mod0.py").write_text(_module("alpha", "parsing", 0), encoding="utf-8")


def test_describe_is_json_with_sizes_classes_and_fingerprint(tree, cache):
    task = load_task("docstring-topic", path=str(tree), cache_dir=cache)
    summary = json.loads(json.dumps(task.describe()))
    assert summary["name"] == "docstring-topic" and summary["kind"] == "sequence_classification"
    assert sum(summary["sizes"].values()) == 198
    assert summary["class_counts"]["train"]["alpha"] == Counter(task.splits["train"]["label"])[0]
    assert summary["options"]["path"] == str(tree) and summary["options"]["label_fraction"] == 1.0
    assert len(summary["fingerprint"]) == 16


@pytest.mark.slow
def test_docstring_topic_on_the_real_standard_library(tmp_path):
    task = load_task("docstring-topic", cache_dir=str(tmp_path))
    assert len(task.label_names) >= 12
    assert {"asyncio", "email", "xml", "unittest"} <= set(task.label_names)
    assert task.label_names == sorted(task.label_names)
    assert sum(len(s) for s in task.splits.values()) > 2000
    _groups_are_disjoint(task)
    for split in task.splits.values():
        assert set(split["label"]) == set(range(len(task.label_names)))  # every class in every split
        assert all(len(t) >= docstring_topic.MIN_CHARS and "  " not in t for t in split["text"])


def test_token_type_on_the_real_standard_library_is_quick_when_capped(tmp_path):
    task = load_task("token-type", max_examples=40, cache_dir=str(tmp_path))
    assert sum(len(s) for s in task.splits.values()) == 40
    for text, labels in zip(task.splits["train"]["text"], task.splits["train"]["char_labels"], strict=True):
        assert len(text) == len(labels)


# ---------------------------------------------------------------- splits and label fractions


def test_group_splits_are_stable_disjoint_and_never_empty():
    groups = [f"pkg/m{i}.py" for i in range(300)]
    first = assign_groups(groups, 0.1, 0.1)
    assert first == assign_groups(list(reversed(groups)), 0.1, 0.1)
    sizes = Counter(first.values())
    assert 15 < sizes["validation"] < 50 and 15 < sizes["test"] < 50
    for fractions in ((1e-9, 1e-9), (0.49, 0.5)):
        assert set(assign_groups(["a", "b", "c"], *fractions).values()) == {"train", "validation", "test"}
    with pytest.raises(TaskError, match="at least 3 groups"):
        assign_groups(["a", "b"], 0.1, 0.1)


def test_strata_put_every_stratum_in_every_split():
    groups = [f"{p}/m{i}.py" for p in "abcdefgh" for i in range(4)]
    strata = {g: g[0] for g in groups}
    assignment = assign_groups(groups, 0.1, 0.1, strata)
    for p in "abcdefgh":
        assert {assignment[g] for g in groups if g[0] == p} == {"train", "validation", "test"}


@pytest.fixture
def imbalanced_csv(tmp_path) -> Path:
    animal = ["cat"] * 6 + ["dog"] * 3 + ["eel"]
    rows = ["text,label"] + [f"text number {i},{animal[i % 10]}" for i in range(600)]
    path = tmp_path / "animals.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_label_fraction_is_stratified_seeded_and_leaves_evaluation_alone(imbalanced_csv, tmp_path):
    load = lambda **kw: load_task("file", path=str(imbalanced_csv), cache_dir=str(tmp_path / "c"), **kw)  # noqa: E731
    full = load()
    assert full.label_names == ["cat", "dog", "eel"]
    part = load(label_fraction=0.1, seed=1)
    same = load(label_fraction=0.1, seed=1)
    other = load(label_fraction=0.1, seed=2)
    full_counts, part_counts = Counter(full.splits["train"]["label"]), Counter(part.splits["train"]["label"])
    assert part_counts == {c: max(1, round(n * 0.1)) for c, n in full_counts.items()}
    assert list(part.splits["train"]["text"]) == list(same.splits["train"]["text"])
    assert list(part.splits["train"]["text"]) != list(other.splits["train"]["text"])
    assert set(part.splits["train"]["text"]) <= set(full.splits["train"]["text"])
    for split in ("validation", "test"):
        assert list(part.splits[split]["text"]) == list(full.splits[split]["text"])
    assert part.fingerprint() != full.fingerprint()


def test_label_fraction_keeps_a_rare_class():
    import datasets

    data = datasets.Dataset.from_dict({"label": [0] * 50 + [1], "group": [str(i) for i in range(51)]})
    kept = subsample(data, 0.05, seed=0, labels=data["label"][:])
    assert Counter(kept["label"]) == {0: 2, 1: 1}
    plain = subsample(data, 0.1, seed=0)
    assert len(plain) == 5 and list(plain["group"]) != list(subsample(data, 0.1, seed=1)["group"])


# ---------------------------------------------------------------- the researcher's own files


def test_file_task_from_csv_with_string_labels(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text(
        "review,stars,group\n" + "\n".join(f"review {i},{'good' if i % 2 else 'bad'},user{i % 7}" for i in range(60)),
        encoding="utf-8",
    )
    task = load_task("file", path=str(path), text_column="review", label_column="stars", cache_dir=str(tmp_path / "c"))
    assert task.kind == "sequence_classification" and task.label_names == ["bad", "good"]
    row = next(r for s in task.splits.values() for r in s if r["text"] == "review 3")
    assert row["label"] == 1 and row["group"] == "user3"
    _groups_are_disjoint(task)
    assert sum(len(set(s["group"])) for s in task.splits.values()) == 7


def test_file_task_from_jsonl_infers_the_kind(tmp_path):
    path = tmp_path / "data.jsonl"
    rows = [{"text": f"line {i}", "score": i / 10, "level": i % 3, "prompt": f"Q{i}:", "completion": f" A{i}"}
            for i in range(30)]
    rows.append({"text": "", "score": 1.0, "level": 1, "prompt": "", "completion": ""})  # empty: dropped
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    cache_dir = str(tmp_path / "c")
    regression = load_task("file", path=str(path), label_column="score", cache_dir=cache_dir)
    assert regression.kind == "regression" and regression.options["dropped_rows"] == 1
    levels = load_task("file", path=str(path), label_column="level", cache_dir=cache_dir)
    assert levels.kind == "sequence_classification" and levels.label_names == ["0", "1", "2"]
    lm = load_task("file", path=str(path), kind="causal_lm", cache_dir=cache_dir)
    row = lm.splits["train"][0]
    assert row["text"] == row["prompt"] + row["completion"] and row["prompt"].startswith("Q")
    assert sum(len(s) for s in lm.splits.values()) == 30


def test_file_task_with_per_character_labels(tmp_path):
    path = tmp_path / "chars.jsonl"
    rows = [{"text": "ab c", "label": [0, 1, -100, 2]} for _ in range(5)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    task = load_task("file", path=str(path), cache_dir=str(tmp_path / "c"))
    assert task.kind == "token_classification" and task.label_names == ["0", "1", "2"]
    assert task.splits["train"][0]["char_labels"] == [0, 1, -100, 2]
    path.write_text(json.dumps({"text": "abc", "label": [0, 1]}) + "\n", encoding="utf-8")
    with pytest.raises(TaskError, match="2 labels for 3 characters"):
        load_task("file", path=str(path), cache_dir=str(tmp_path / "d"))


def test_file_task_errors_name_the_problem(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("sentence,score\n" + "\n".join(f"s {i},{i / 3}" for i in range(10)), encoding="utf-8")
    cache_dir = str(tmp_path / "c")
    with pytest.raises(TaskError, match="no column 'text'; its columns are: sentence, score"):
        load_task("file", path=str(path), label_column="score", cache_dir=cache_dir)
    with pytest.raises(TaskError, match="sequence_classification.*kind='regression'"):
        load_task("file", path=str(path), text_column="sentence", label_column="score",
                  kind="sequence_classification", cache_dir=cache_dir)
    with pytest.raises(TaskError, match="causal_lm.*'prompt' and 'completion'"):
        load_task("file", path=str(path), kind="causal_lm", cache_dir=cache_dir)
    with pytest.raises(TaskError, match=r"\.csv, \.json, \.jsonl, \.parquet"):
        load_task("file", path=str(tmp_path / "data.xlsx"))
    with pytest.raises(TaskError, match="not one"):
        load_task("file", path=str(tmp_path / "absent.csv"))


def test_parquet_file_with_regression_labels(tmp_path):
    import datasets

    path = tmp_path / "sizes.parquet"
    rows = {"text": [f"t{i}" for i in range(12)], "label": [float(i) for i in range(12)]}
    datasets.Dataset.from_dict(rows).to_parquet(str(path))
    task = load_task("file", path=str(path), cache_dir=str(tmp_path / "c"))
    assert task.kind == "regression"
    assert sorted(v for s in task.splits.values() for v in s["label"]) == [float(i) for i in range(12)]
    with pytest.raises(TaskError, match="token_classification' needs one int per character"):
        load_task("file", path=str(path), kind="token_classification", cache_dir=str(tmp_path / "c"))


# ---------------------------------------------------------------- the hub


def test_hub_task_offline_fails_fast_with_a_clear_message(monkeypatch, tmp_path):
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    started = time.perf_counter()
    with pytest.raises(TaskUnavailableError, match=r"unreachable.*someone/not-cached.*load_task\('file'"):
        load_task("hf", hf_name="someone/not-cached", cache_dir=str(tmp_path))
    assert time.perf_counter() - started < 10


def test_hub_task_reads_a_local_dataset_folder(tmp_path):
    folder = tmp_path / "hub_like"
    folder.mkdir()
    rows = [json.dumps({"sentence": f"row {i}", "label": i % 2}) for i in range(20)]
    (folder / "train.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    task = load_task("hf", hf_name=str(folder), text_column="sentence", cache_dir=str(tmp_path / "c"))
    assert task.kind == "sequence_classification" and task.label_names == ["0", "1"]
    assert task.options["hf_name"] == str(folder)
    assert sum(len(s) for s in task.splits.values()) == 20
    assert task.splits["train"][0]["group"].startswith(f"hf:{folder}#")


def test_file_splits_follow_the_rows_not_the_folder(imbalanced_csv, tmp_path):
    moved = tmp_path / "elsewhere" / imbalanced_csv.name
    moved.parent.mkdir()
    moved.write_bytes(imbalanced_csv.read_bytes())
    here = load_task("file", path=str(imbalanced_csv), cache_dir=str(tmp_path / "c"))
    there = load_task("file", path=str(moved), cache_dir=str(tmp_path / "c"))
    assert here.fingerprint() == there.fingerprint()
    assert here.splits["test"][0]["group"].startswith("animals.csv#")
