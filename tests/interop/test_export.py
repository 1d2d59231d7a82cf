"""A workbench run out as a Hugging Face folder: plain transformers loads it and computes the same logits."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch

from workbench.data import build_tokenizer
from workbench.interop.export import ExportError, export
from workbench.interop.load import load_causal_lm
from workbench.models import Decoder, DecoderConfig
from workbench.modules import save_pretrained
from workbench.modules.pretrain_recipe import pretrain
from workbench.runs.outputs import save_compute_record, save_data_record, save_metrics

TEXTS = ["def parse(text):\n    return text.split()\n", "naïve café — 🙂 tabs\tand  spaces\n"]
# Runs in a fresh interpreter that imports nothing from workbench: what a user of the export has.
PLAIN_TRANSFORMERS = textwrap.dedent("""
    import json, sys
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    folder, ids_file, out_file = sys.argv[1:]
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    texts = json.load(open(ids_file))["texts"]
    ids = torch.tensor(json.load(open(ids_file))["ids"])
    with torch.no_grad():
        logits = model(ids).logits
        greedy = model.generate(ids[:1, :8], max_new_tokens=20, do_sample=False)
    torch.save({"logits": logits, "greedy": greedy, "class": type(model).__name__,
                "encoded": [tokenizer(t)["input_ids"] for t in texts],
                "decoded": [tokenizer.decode(tokenizer(t)["input_ids"]) for t in texts],
                "workbench_loaded": any(m.startswith("workbench") for m in sys.modules)}, out_file)
""")


def plain_transformers(folder, ids: torch.Tensor, tmp_path) -> dict:
    (tmp_path / "ids.json").write_text(json.dumps({"ids": ids.tolist(), "texts": TEXTS}))
    subprocess.run([sys.executable, "-c", PLAIN_TRANSFORMERS, str(folder), str(tmp_path / "ids.json"),
                    str(tmp_path / "out.pt")], check=True, capture_output=True, cwd=tmp_path)
    return torch.load(tmp_path / "out.pt")


@pytest.fixture(scope="module")
def pretrained_run(tmp_path_factory):
    """A real (seconds-long) pretraining run folder, with its records, as a notebook leaves one."""
    run = tmp_path_factory.mktemp("runs") / "pretrain-tiny"
    outcome = pretrain(dict(seed=0, max_files=8, preset="tiny", block_size=64, batch_size=4, max_steps=3,
                            warmup_steps=1, eval_every=3, eval_batches=1, final_eval_batches=2), printer=None)
    save_pretrained(run / "checkpoint", outcome.model, outcome.tokenizer)
    save_metrics(run, outcome.metrics)
    save_data_record(run, outcome.data)
    save_compute_record(run, outcome.compute)
    return run, outcome


def test_plain_transformers_loads_the_export_with_the_same_logits_and_greedy_tokens(pretrained_run, tmp_path):
    run, outcome = pretrained_run
    out = export(run, tmp_path / "hf")
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json", "README.md"} <= {
        p.name for p in out.iterdir()}
    ids = torch.randint(0, 256, (2, 40))
    theirs = plain_transformers(out, ids, tmp_path)
    assert theirs["class"] == "LlamaForCausalLM" and not theirs["workbench_loaded"]
    with torch.no_grad():
        ours = outcome.model(ids).logits
    assert (ours - theirs["logits"]).abs().max().item() <= 1e-5
    expected = outcome.model.generate(ids[:1, :8], 20, temperature=0)
    assert torch.equal(theirs["greedy"], expected)
    assert theirs["encoded"] == [outcome.tokenizer.encode(t) for t in TEXTS]
    assert theirs["decoded"] == TEXTS


def test_the_model_card_parses_and_holds_the_runs_metrics(pretrained_run, tmp_path):
    from huggingface_hub import ModelCard

    run, outcome = pretrained_run
    card = ModelCard.load(export(run, tmp_path / "hf") / "README.md")
    data = card.data.to_dict()
    assert data["library_name"] == "transformers" and "workbench" in data["tags"]
    assert data["datasets"] == ["workbench-stdlib"]
    metrics = {m["type"]: m["value"] for m in data["model-index"][0]["results"][0]["metrics"]}
    assert metrics["loss"] == pytest.approx(outcome.metrics["val_loss"])
    assert metrics["bits_per_byte"] == pytest.approx(outcome.metrics["val_bpb"])
    assert "AutoModelForCausalLM.from_pretrained" in card.text


@pytest.mark.parametrize("kind", ["char", "bpe"])
@pytest.mark.parametrize("tied", [True, False])
def test_round_trip_export_then_import_is_bitwise_equal(kind, tied, tmp_path):
    tokenizer = build_tokenizer(kind, TEXTS * 3, vocab_size=300 if kind == "bpe" else None)
    config = DecoderConfig.from_preset("tiny", vocab_size=tokenizer.vocab_size, n_kv_head=1, tie_embeddings=tied)
    torch.manual_seed(1)
    decoder = Decoder(config).eval()
    save_pretrained(tmp_path / "checkpoint", decoder, tokenizer)
    imported = load_causal_lm(export(tmp_path / "checkpoint", tmp_path / "hf"))
    assert imported.provenance["mapped"] == "workbench-decoder"
    assert imported.model.config == config
    theirs = imported.model.state_dict()
    assert all(torch.equal(tensor, theirs[name]) for name, tensor in decoder.state_dict().items())
    assert [imported.tokenizer.encode(t) for t in TEXTS] == [tokenizer.encode(t) for t in TEXTS]


def test_an_export_refuses_a_folder_that_already_holds_something(pretrained_run, tmp_path):
    run, _ = pretrained_run
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        export(run, tmp_path / "busy")
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["notes.txt"]
    assert export(run, tmp_path / "busy", overwrite=True).joinpath("config.json").is_file()


def test_an_export_of_nothing_says_what_is_missing(tmp_path):
    with pytest.raises(ExportError, match="no such run folder"):
        export(tmp_path / "absent", tmp_path / "out")
    (tmp_path / "empty-run").mkdir()
    with pytest.raises(ExportError, match="holds no model"):
        export(tmp_path / "empty-run", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_cli_exports_and_reports_a_bad_request_with_exit_2(pretrained_run, tmp_path, capsys):
    from workbench.cli import main

    run, _ = pretrained_run
    assert main(["export", str(run), str(tmp_path / "hf")]) == 0
    assert "exported" in capsys.readouterr().out
    assert main(["export", str(run), str(tmp_path / "hf")]) == 2
    assert "not empty" in capsys.readouterr().err
