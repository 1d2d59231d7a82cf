"""The card's Privacy and Bias sections: from data.json's scan and audit.json, or "not measured" with the command."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.runs.model_card import model_card
from workbench.runs.outputs import save_audit, write_json

SCAN = {"kinds": ["email", "url_credentials", "ip_address", "phone", "secret_key", "secret"],
        "splits": {"train": {"counts": {"email": 120, "ip_address": 7}}, "validation": {"counts": {"email": 5}}},
        "counts": {"email": 125, "ip_address": 7}, "distinct": {"email": 80, "ip_address": 3},
        "sources_with_hits": 2,
        "sources": {"smtplib.py": {"email": 9}, "email/utils.py": {"email": 30, "ip_address": 1}}}
AUDIT = {
    "seed": 0, "commit": "0123456789abcdef",
    "regurgitation": {"context_tokens": 64, "train": {"occurrences": 120, "reproduced": 6, "rate": 0.05},
                      "validation": {"occurrences": 5, "reproduced": 0, "rate": 0.0}},
    "extraction": {"prefix_tokens": 32, "by_k": {
        "64": {"train": {"prefixes": 100, "extracted": 3, "rate": 0.03}, "validation": {"prefixes": 100,
                                                                                       "extracted": 0, "rate": 0.0}},
        "32": {"train": {"prefixes": 100, "extracted": 12, "rate": 0.12},
               "validation": {"prefixes": 100, "extracted": 1, "rate": 0.01}}}},
    "canaries": {"candidates": 1_000_000, "method": "skew-normal estimate",
                 "canaries": [{"repetitions": 64, "exposure": 19.1}, {"repetitions": 1, "exposure": 1.5}]},
    "membership": {"documents": {"train": 200, "validation": 90},
                   "attacks": {"loss": {"auc": 0.61, "tpr_at_1pct_fpr": 0.02}, "zlib": {"auc": 0.66,
                                                                                    "tpr_at_1pct_fpr": 0.05}}},
    "pairs": {"source": "built-in templates (not a benchmark)", "pairs": 40, "share": 0.575, "ci": [0.42, 0.72],
              "by_bias_type": {"gender": {"pairs": 20, "share": 0.6}}},
}


def section(card: str, title: str) -> str:
    return card.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


@pytest.fixture
def pretrain_run(tmp_path: Path) -> Path:
    run = tmp_path / "pretrain-run"
    write_json(run / "compute.json", {"train_tokens": 100})
    write_json(run / "data.json", {"corpus": "stdlib", "corpus_options": {}, "pii": {"mode": "keep", "scan": SCAN},
                                   "canaries": {"template": "the random number is {secret}", "digits": 6, "seed": 0,
                                                "candidates": 1_000_000,
                                                "canaries": [{"repetitions": 1}, {"repetitions": 64}]}})
    return run


def test_unaudited_run_shows_the_scan_and_names_the_command(pretrain_run: Path):
    card = model_card(pretrain_run)
    privacy, bias = section(card, "Privacy"), section(card, "Bias")
    assert "| e-mail addresses | 120 | 5 | 80 |" in privacy and "| IP addresses | 7 | 0 | 3 |" in privacy
    assert "in 2 source files; the most in `email/utils.py` (31), `smtplib.py` (9)" in privacy
    assert "kept (`pii: keep`)" in privacy and "planted 1, 64 times" in privacy
    command = f"`.venv/bin/workbench run experiments/audit-run.yaml -p run={pretrain_run}`"
    assert "Memorization (regurgitated addresses, extraction, canary exposure, membership): not measured" in privacy
    assert command in privacy and command in bias and "not measured" in bias


def test_audited_run_shows_every_measure(pretrain_run: Path):
    save_audit(pretrain_run, AUDIT)
    card = model_card(pretrain_run)
    privacy, bias = section(card, "Privacy"), section(card, "Bias")
    assert "train 6 of 120 (5.0%); held out 0 of 5 (0.0%)" in privacy
    assert privacy.index("next 32 tokens") < privacy.index("next 64 tokens")  # sorted by k as numbers
    assert "train 12 of 100 (12.0%); held out 1 of 100 (1.0%)" in privacy
    assert "of at most 19.9 (skew-normal estimate) | 1×: 1.5, 64×: 19.1 |" in privacy
    assert "loss AUC 0.61 (TPR 2.0% at 1% FPR); zlib AUC 0.66 (TPR 5.0% at 1% FPR)" in privacy
    assert "not measured" not in privacy and "commit `0123456789ab`" in privacy
    assert "in 57.5% (95% interval 42.0–72.0%) of 40 pairs" in bias and "| gender | 60.0% of 20 |" in bias
    assert "memorisation and bias were measured" in section(card, "Known limitations")


def test_masked_corpus_and_a_run_older_than_the_scan(tmp_path: Path, pretrain_run: Path):
    record = {"corpus": "stdlib", "pii": {"mode": "mask", "scan": SCAN}}
    write_json(pretrain_run / "data.json", record)
    privacy = section(model_card(pretrain_run), "Privacy")
    assert "masked (`pii: mask`)" in privacy and "No canaries were planted" in privacy
    old = tmp_path / "old"
    write_json(old / "compute.json", {"train_tokens": 1})
    write_json(old / "data.json", {"corpus": "stdlib"})
    assert "scan for private data is not recorded" in section(model_card(old), "Privacy")


def test_finetuned_classifier_bias_section(tmp_path: Path):
    run = tmp_path / "finetune-run"
    write_json(run / "compute.json", {"train_examples_seen": 10})
    write_json(run / "data.json", {"task": {"name": "docstring-topic", "kind": "sequence_classification"},
                                   "base": {"source": "experiments/runs/base"}})
    assert "Counterfactual probe (swapping gendered words and given names): not measured" in \
        section(model_card(run), "Bias")
    save_audit(run, {"counterfactual": {"terms": ["gendered words", "given names"], "pairs": 60, "examples": 300,
                                        "changed": 40, "flip_rate": 0.025, "mean_abs_change": 0.0123},
                     "groups": {"group_column": "dialect", "groups": {
                         "a": {"n": 50, "accuracy": 0.8, "accuracy_ci": [0.7, 0.9], "macro_f1": 0.75},
                         "b": {"n": 40, "accuracy": 0.6, "accuracy_ci": [0.45, 0.75], "macro_f1": 0.5}},
                         "largest_gap": {"accuracy": {"value": 0.2, "between": ["a", "b"]}}}})
    card = model_card(run)
    bias, privacy = section(card, "Bias"), section(card, "Privacy")
    assert "| prediction flip rate | 2.50% |" in bias and "| term pairs | 60 |" in bias
    assert "| a | 50 | 0.800 [0.700, 0.900] | 0.750 |" in bias and "Largest accuracy gap: 0.2 between a and b" in bias
    assert "base's own card (`experiments/runs/base`)" in privacy
