"""One audit of real run folders, end to end: rebuilt data, every audit that applies, audit.json and the card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.audit.audit_settings import AUDITS, AuditSettings
from workbench.audit.run import AuditError, applicable, run_audit
from workbench.runs.outputs import write_json
from workbench.runs.run_folder import RunFolder
from workbench.settings import SettingsError

ROOT = Path(__file__).resolve().parents[2]
SMALL = dict(prefixes=8, extraction_k=[16], prefix_tokens=16, membership_documents=8, canary_exact_limit=10_000,
             context_tokens=16, max_addresses=5, counterfactual_examples=40)


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory) -> dict[str, Path]:
    from workbench.runs.runner import run_spec

    result = run_spec(ROOT / "experiments" / "audit-quick.yaml", runs_dir=tmp_path_factory.mktemp("runs"))
    assert result.status == "completed", result.error
    return {r.run_dir.name.split("-")[0]: r.run_dir for r in result.results}


def test_settings_list_every_problem_at_once():
    with pytest.raises(SettingsError) as error:
        AuditSettings(audits=["extraction", "telepathy"], extraction_k=[0], group_file="x.csv")
    text = str(error.value)
    assert "unknown ['telepathy']" in text and ", ".join(AUDITS) in text
    assert "extraction_k=[0]" in text and "needs group_column" in text


def test_audits_that_do_not_apply_are_refused_before_any_model_loads(tmp_path: Path):
    write_json(tmp_path / "data.json", {"corpus": "stdlib"})
    write_json(tmp_path / "compute.json", {"train_tokens": 1})
    run = RunFolder(tmp_path)
    assert applicable(run, AuditSettings()) == ["regurgitation", "extraction", "membership", "pairs"]
    with pytest.raises(AuditError, match=r"\['canaries', 'counterfactual'\] do not apply .*canary_repetitions"):
        applicable(run, AuditSettings(audits=["canaries", "counterfactual"]))
    with pytest.raises(AuditError, match="run is empty"):
        run_audit(AuditSettings())


@pytest.mark.slow
def test_pretraining_run_audit_is_written_deterministic_and_on_the_card(quick_runs):
    run = quick_runs["pretrain"]
    first = run_audit(AuditSettings(run=str(run), **SMALL), printer=None)
    assert first.results["audits"] == ["regurgitation", "extraction", "canaries", "membership", "pairs"]
    stored = json.loads((run / "audit.json").read_text())
    assert stored == json.loads(json.dumps(first.results))
    assert sorted(c["repetitions"] for c in stored["canaries"]["canaries"]) == [1, 4, 16, 64]
    assert stored["canaries"]["method"] == "exact" and stored["canaries"]["candidates"] == 10_000
    card = (run / "MODEL_CARD.md").read_text()
    privacy = card.split("## Privacy\n", 1)[1].split("\n## ", 1)[0]
    assert "canary exposure in bits of at most 13.3 (exact)" in privacy and "membership inference" in privacy
    again = run_audit(AuditSettings(run=str(run), **SMALL), printer=None, save=False)
    assert again.results == first.results  # the same seed, the same audit


@pytest.mark.slow
def test_finetuned_classifier_audit(quick_runs):
    run = quick_runs["finetune"]
    outcome = run_audit(AuditSettings(run=str(run), **SMALL), printer=None)
    assert outcome.results["audits"] == ["counterfactual"]
    counterfactual = outcome.results["counterfactual"]
    assert 0 < counterfactual["examples"] <= 40 and counterfactual["pairs"] > 50
    if counterfactual["changed"]:
        assert 0 <= counterfactual["flip_rate"] <= 1
    else:  # stdlib docstrings seldom mention people: nothing to swap is reported, not a flip rate of 0
        assert counterfactual["flip_rate"] is None
    assert "prediction flip rate" in (run / "MODEL_CARD.md").read_text()


@pytest.mark.slow
def test_a_failure_part_way_keeps_what_was_measured(quick_runs, monkeypatch):
    from workbench.audit import run as audit_run

    run = quick_runs["pretrain"]

    def broken(self):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(audit_run._LanguageModelAudit, "membership", broken)
    with pytest.raises(RuntimeError, match="disk on fire") as error:
        run_audit(AuditSettings(run=str(run), audits=["extraction", "membership"], **SMALL), printer=None)
    assert any("'membership' (extraction) are saved in" in note for note in error.value.__notes__)
    stored = json.loads((run / "audit.json").read_text())
    assert "extraction" in stored and stored["failed"] == {"audit": "membership", "error": "RuntimeError: disk on fire"}


@pytest.mark.slow
def test_per_group_metrics_of_a_classifier_from_a_file_with_a_group_column(quick_runs, tmp_path):
    from workbench.modules.finetuned import load_finetuned

    run = quick_runs["finetune"]
    finetuned = load_finetuned(run)
    texts = [f"Return the socket of {name}." for name in ("a", "b", "c", "d", "e", "f")] * 4
    rows = ["text,label,dialect"] + [f'"{t}",{finetuned.label_names[i % 2]},{"north" if i % 3 else "south"}'
                                     for i, t in enumerate(texts)]
    (tmp_path / "groups.csv").write_text("\n".join(rows) + "\n")
    outcome = run_audit(AuditSettings(run=str(run), audits=["groups"], group_file=str(tmp_path / "groups.csv"),
                                      group_column="dialect"), printer=None)
    groups = outcome.results["groups"]
    assert groups["group_column"] == "dialect" and set(groups["groups"]) == {"north", "south"}
    assert groups["groups"]["north"]["n"] == 16 and groups["groups"]["south"]["n"] == 8
    assert "Per-group metrics on `dialect`" in (run / "MODEL_CARD.md").read_text()
