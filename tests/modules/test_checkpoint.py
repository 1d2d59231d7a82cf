import json
import subprocess
import sys

import pytest
import torch

from workbench.data import build_tokenizer
from workbench.models import Decoder, DecoderConfig
from workbench.modules import CheckpointError, load_pretrained, save_pretrained


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    tokenizer = build_tokenizer("char", ["hello world, the quick brown fox"])
    model = Decoder(DecoderConfig.from_preset("tiny", vocab_size=tokenizer.vocab_size, block_size=32)).eval()
    save_pretrained(tmp_path / "checkpoint", model, tokenizer)
    return tmp_path, model, tokenizer


def test_round_trip_gives_identical_logits_and_tokenizer(saved):
    run, model, tokenizer = saved
    loaded, loaded_tokenizer = load_pretrained(run)  # a run folder holding checkpoint/
    idx = torch.tensor([tokenizer.encode("the fox")])
    torch.testing.assert_close(loaded(idx).logits, model(idx).logits, atol=0, rtol=0)
    assert loaded.lm_head.weight is loaded.embed.weight
    assert loaded_tokenizer.encode("hello") == tokenizer.encode("hello")
    assert not loaded.training
    assert not list(run.rglob("*.tmp"))


def test_a_fresh_process_loads_and_generates(saved):
    run, model, tokenizer = saved
    code = (
        "import sys, workbench, torch\n"
        "model, tok = workbench.load(sys.argv[1])\n"
        "ids = model.generate(torch.tensor([tok.encode('the')]), 12, temperature=0)\n"
        "print(ids[0].tolist())\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True, text=True, check=True)
    expected = model.generate(torch.tensor([tokenizer.encode("the")]), 12, temperature=0)
    assert out.stdout.strip() == str(expected[0].tolist())


def test_truncated_weights_name_the_file(saved):
    run, _, _ = saved
    weights = run / "checkpoint" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_pretrained(run)


def test_config_that_does_not_match_the_weights_is_refused(saved):
    run, _, _ = saved
    config = run / "checkpoint" / "config.json"
    record = json.loads(config.read_text())
    record["config"]["n_layer"] = 3
    config.write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="does not match"):
        load_pretrained(run)


def test_folders_without_a_model_are_explained(tmp_path):
    with pytest.raises(CheckpointError, match="no such run"):
        load_pretrained(tmp_path / "missing")
    with pytest.raises(CheckpointError, match="holds no saved model"):
        load_pretrained(tmp_path)
