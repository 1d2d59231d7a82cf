"""`load_task`: one call from a task name and plain options to three grouped, labelled splits.

Every option is checked before any file is read, so a typo in a notebook
parameter or a spec fails at once. Built-in tasks label the running Python's
standard library (or any tree of .py files given as `path`); "file" and "hf"
take the researcher's own data.
"""

from __future__ import annotations

import sys
from pathlib import Path

from workbench.config import keyword_options
from workbench.data.choices import TASKS
from workbench.data.tasks import docstring_topic, function_size, generic, token_type
from workbench.data.tasks.base import TaskData, TaskError
from workbench.data.tasks.python_source import source_tree
from workbench.data.tasks.splits import cap_examples, check_fraction, split_by_group, subsample
from workbench.heads.for_task import TASK_KINDS

BUILT_IN_KINDS = {
    "docstring-topic": "sequence_classification",
    "token-type": "token_classification",
    "function-size": "regression",
}
MIN_EXAMPLES = 3  # one per split


def load_task(
    name: str,
    *,
    seed: int = 0,
    label_fraction: float = 1.0,
    max_examples: int | None = None,
    path: str | None = None,
    text_column: str = "text",
    label_column: str = "label",
    kind: str | None = None,
    hf_name: str | None = None,
    hf_config: str | None = None,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
    cache_dir: str | None = None,
) -> TaskData:
    """Load task `name` (one of TASKS) as train/validation/test splits grouped by source.

    docstring-topic  a function's or class's docstring -> its top-level stdlib package (classification)
    token-type       a line of code -> each character's token category (token classification)
    function-size    a function's source -> log(1 + its statements) (regression)
    file             a local .csv/.json/.jsonl/.parquet file at `path`, columns `text_column` and `label_column`
    hf               the "train" split of Hugging Face dataset `hf_name` (`hf_config`), same columns

    `path` for a built-in task is the root of the Python tree to read (default:
    the running Python's standard library). `kind` is inferred from the labels
    unless given ("causal_lm" takes "prompt"/"completion" columns, or the text).
    `max_examples` caps the examples before splitting, by a constant-seed sample
    (None: all; token-type defaults to 20,000 lines). `label_fraction` keeps a
    seeded, class-stratified part of the train split only; `seed` moves nothing else.
    """
    _check(
        name, seed, label_fraction, max_examples, path, text_column, label_column, kind, hf_name, hf_config,
        validation_fraction, test_fraction,
    )
    options = {
        "seed": seed,
        "label_fraction": label_fraction,
        "max_examples": max_examples,
        "validation_fraction": validation_fraction,
        "test_fraction": test_fraction,
    }
    strata = None
    if name in BUILT_IN_KINDS:
        root, _ = source_tree(path)
        options.update(path=str(root), python=sys.version.split()[0])
        kind, label_names = BUILT_IN_KINDS[name], None
        if name == "docstring-topic":
            dataset, label_names = docstring_topic.build(root, cache_dir=cache_dir)
            strata = dict(zip(dataset["group"][:], dataset["label"][:], strict=True))  # one package per file
        elif name == "token-type":
            if max_examples is None:
                options["max_examples"] = max_examples = token_type.DEFAULT_MAX_EXAMPLES
            dataset = token_type.build(root, max_examples=max_examples, cache_dir=cache_dir)
            label_names = list(token_type.LABEL_NAMES)
        else:
            dataset = function_size.build(root, cache_dir=cache_dir)
    else:
        # Rows without a "group" column are their own group, named so that the split
        # does not move with the file's folder: "<file name>#<row>" or "hf:<name>#<row>".
        if name == "file":
            raw, source = generic.load_file(path, cache_dir=cache_dir), str(path)
            group_prefix = Path(path).name
            options["path"] = str(path)
        else:
            raw, source = generic.load_hub(hf_name, hf_config, cache_dir=cache_dir), f"hf:{hf_name}"
            group_prefix = source
            options.update(hf_name=hf_name, hf_config=hf_config)
        dataset, kind, label_names, dropped = generic.to_task(
            raw, source, group_prefix=group_prefix, text_column=text_column, label_column=label_column, kind=kind
        )
        options.update(text_column=text_column, label_column=label_column, dropped_rows=dropped)
    options["kind"] = kind
    if len(dataset) < MIN_EXAMPLES:
        raise TaskError(
            f"task {name!r} has {len(dataset)} usable examples; train, validation and test need {MIN_EXAMPLES}"
        )
    dataset = cap_examples(dataset, max_examples)
    splits = split_by_group(dataset, validation_fraction, test_fraction, strata)
    labels = splits["train"]["label"][:] if kind == "sequence_classification" else None
    splits["train"] = subsample(splits["train"], label_fraction, seed, labels)
    return TaskData(name=name, kind=kind, splits=splits, label_names=label_names, options={"task": name, **options})


def task_limitation(name: str) -> str | None:
    """What a result on a built-in task cannot claim, for a model card; None for the researcher's own data."""
    if name not in BUILT_IN_KINDS:
        return None
    return (f"`{name}` is built from the Python standard library's own source: a model that does well on it "
            "has learned that code base, which says little about other code.")


def check_task_options(name: str, options: dict) -> None:
    """Fail fast on a bad task name or options, before anything is loaded (for notebooks and specs)."""
    values = keyword_options(load_task, options, what="task", error=TaskError)
    values.pop("cache_dir")
    _check(name, **values)


def _check(
    name, seed, label_fraction, max_examples, path, text_column, label_column, kind, hf_name, hf_config,
    validation_fraction, test_fraction,
) -> None:
    if name not in TASKS:
        raise TaskError(f"unknown task {name!r}; valid tasks are: {', '.join(TASKS)}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TaskError(f"seed must be an int, got {seed!r}")
    check_fraction("label_fraction", label_fraction, allow_one=True)
    check_fraction("validation_fraction", validation_fraction)
    check_fraction("test_fraction", test_fraction)
    if validation_fraction + test_fraction >= 1:
        raise TaskError(
            f"validation_fraction + test_fraction must leave some data to train on (sum < 1), "
            f"got {validation_fraction} + {test_fraction}"
        )
    if max_examples is not None and (
        isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < MIN_EXAMPLES
    ):
        raise TaskError(
            f"max_examples must be None or an int >= {MIN_EXAMPLES} (one example per split), got {max_examples!r}"
        )
    if kind is not None and kind not in TASK_KINDS:
        raise TaskError(f"unknown kind {kind!r}; valid kinds are: {', '.join(TASK_KINDS)}")
    for option, value in (("text_column", text_column), ("label_column", label_column)):
        if not isinstance(value, str) or not value:
            raise TaskError(f"{option} must be a column name, got {value!r}")
    if name in BUILT_IN_KINDS:
        own = BUILT_IN_KINDS[name]
        if kind is not None and kind != own:
            raise TaskError(f"kind {kind!r} does not fit task {name!r}, which is {own}; leave kind unset")
        misplaced = {
            "hf_name": hf_name is not None,
            "hf_config": hf_config is not None,
            "text_column": text_column != "text",
            "label_column": label_column != "label",
        }
        given = [key for key, is_set in misplaced.items() if is_set]
        if given:
            raise TaskError(f"option(s) {', '.join(given)} do not apply to the built-in task {name!r}")
    elif name == "file":
        if not path:
            raise TaskError("the 'file' task needs path=: a .csv, .json, .jsonl or .parquet file")
        given = [key for key, value in (("hf_name", hf_name), ("hf_config", hf_config)) if value is not None]
        if given:
            raise TaskError(f"option(s) {', '.join(given)} do not apply to the 'file' task")
    else:
        if not hf_name:
            raise TaskError("the 'hf' task needs hf_name=, a Hugging Face dataset name such as 'imdb'")
        if path is not None:
            raise TaskError("path does not apply to the 'hf' task (for a local file use the 'file' task)")
