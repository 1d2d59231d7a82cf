"""The pretraining notebook with objective=masked_lm via `workbench run`: an encoder's self-describing run folder."""

import contextlib
import io
import json
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.runs import list_runs
from workbench.runs.card.format import NOT_RECORDED
from workbench.runs.outputs import CHECKPOINT_DIR, MODEL_CARD_FILE, NOTEBOOK_FILE

QUICK = Path(__file__).resolve().parents[1] / "experiments" / "pretrain-quick.yaml"


@pytest.mark.slow
def test_the_notebook_pretrains_an_encoder_and_fills_in_hidden_tokens(tmp_path):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["run", str(QUICK), "--runs-dir", str(tmp_path), "-p", "objective=masked_lm",
                     "-p", "precision=32-true", "--quiet"])
    assert code == 0, out.getvalue()
    (record,) = list_runs(tmp_path)
    run = record.run_dir
    assert "val_accuracy=" in out.getvalue() and "val_bpb" not in out.getvalue()

    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 < metrics["val_accuracy"] <= 1 and "val_bpb" not in metrics
    assert json.loads((run / CHECKPOINT_DIR / "config.json").read_text())["architecture"] == "encoder"
    notebook = (run / NOTEBOOK_FILE).read_text()
    assert "hidden tokens predicted exactly" in notebook and "val_accuracy" in notebook
    card = (run / MODEL_CARD_FILE).read_text()
    assert "pretrained as a masked language model" in card and "masked language modelling (BERT's recipe" in card
    assert "No bits per byte" in card and NOT_RECORDED not in card

    from workbench.audit.run import AuditError, run_audit

    with pytest.raises(AuditError, match="masked-LM encoder.*needs a causal LM"):
        run_audit({"run": str(run)}, printer=None)
