"""A masked-LM encoder run out as EuroBertForMaskedLM: plain transformers loads it, computes the same logits
(with padding), encodes text to the same ids, and its fill-mask pipeline reads the encoder's own guesses."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from huggingface_hub import ModelCard

from workbench.data import build_tokenizer
from workbench.interop.export import ExportError, export
from workbench.models import Encoder, EncoderConfig, ViT, ViTConfig
from workbench.modules import save_pretrained
from workbench.modules.pretrain_recipe import pretrain
from workbench.runs.outputs import save_data_record, save_metrics

TEXTS = ["def parse(text):\n    return text.split()\n", "naïve café — 🙂 tabs\tand  spaces\n"]
# A fresh interpreter that imports nothing from workbench: what a user of the export has.
PLAIN_TRANSFORMERS = textwrap.dedent("""
    import json, sys
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer, pipeline
    folder, inputs_file, out_file = sys.argv[1:]
    inputs = json.load(open(inputs_file))
    model = AutoModelForMaskedLM.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    ids, mask = torch.tensor(inputs["ids"]), torch.tensor(inputs["mask"])
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits
    fill = pipeline("fill-mask", model=model, tokenizer=tokenizer, top_k=3)("def add(a, b" + tokenizer.mask_token)
    torch.save({"logits": logits, "class": type(model).__name__, "mask_token_id": tokenizer.mask_token_id,
                "encoded": [tokenizer(t)["input_ids"] for t in inputs["texts"]],
                "fill": [(row["token"], row["score"]) for row in fill],
                "workbench_loaded": any(m.startswith("workbench") for m in sys.modules)}, out_file)
""")


def plain_transformers(folder, ids: torch.Tensor, mask: torch.Tensor, tmp_path) -> dict:
    (tmp_path / "inputs.json").write_text(json.dumps({"ids": ids.tolist(), "mask": mask.tolist(), "texts": TEXTS}))
    subprocess.run([sys.executable, "-c", PLAIN_TRANSFORMERS, str(folder), str(tmp_path / "inputs.json"),
                    str(tmp_path / "out.pt")], check=True, capture_output=True, cwd=tmp_path)
    return torch.load(tmp_path / "out.pt")


@pytest.fixture(scope="module")
def encoder_run(tmp_path_factory):
    """A real (seconds-long) masked-LM pretraining run folder, as the notebook leaves one."""
    run = tmp_path_factory.mktemp("runs") / "pretrain-encoder"
    outcome = pretrain(dict(seed=0, objective="masked_lm", max_files=8, preset="tiny", block_size=64, batch_size=4,
                            max_steps=3, warmup_steps=1, eval_every=3, eval_batches=1, final_eval_batches=2,
                            precision="32-true"), printer=None)
    save_pretrained(run / "checkpoint", outcome.model, outcome.tokenizer)
    save_metrics(run, outcome.metrics)
    save_data_record(run, outcome.data)
    return run, outcome


def test_plain_transformers_computes_the_encoder_exactly_and_fills_its_masks(encoder_run, tmp_path):
    run, outcome = encoder_run
    out = export(run, tmp_path / "hf")
    model, tokenizer = outcome.model, outcome.tokenizer
    torch.manual_seed(0)
    ids = torch.randint(0, tokenizer.vocab_size, (2, 40))
    ids[:, 5] = model.config.mask_token_id
    mask = torch.ones_like(ids)
    mask[1, 30:] = 0  # padding: the second row's last ten positions are never attended to
    theirs = plain_transformers(out, ids, mask, tmp_path)
    assert theirs["class"] == "EuroBertForMaskedLM" and not theirs["workbench_loaded"]
    with torch.no_grad():
        ours = model(ids, attention_mask=mask).logits
    real = mask.bool()
    torch.testing.assert_close(theirs["logits"][real], ours[real], rtol=1e-4, atol=1e-5)
    assert theirs["mask_token_id"] == model.config.mask_token_id == tokenizer.vocab_size
    assert theirs["encoded"] == [tokenizer.encode(text) for text in TEXTS]
    # The pipeline's top guess at the mask is the encoder's own, with its probability (over every id: the
    # pipeline, unlike the workbench's fill_masks, does not rule the mask token out).
    prompt = tokenizer.encode("def add(a, b") + [model.config.mask_token_id]
    with torch.no_grad():
        probabilities = model(torch.tensor([prompt])).logits[0, -1].softmax(-1)
    assert theirs["fill"][0][0] == int(probabilities.argmax())
    assert theirs["fill"][0][1] == pytest.approx(float(probabilities.max()), rel=1e-4)
    card = ModelCard.load(out / "README.md")
    assert card.data.pipeline_tag == "fill-mask" and "masked-lm" in card.data.tags
    assert "EuroBertForMaskedLM" in card.text and "masked-token accuracy" in card.text


def test_a_vision_model_is_refused_before_anything_is_written(tmp_path):
    from workbench.data.image_inputs import ImageInputs
    from workbench.data.image_transforms import ImageStats

    inputs = ImageInputs(8, 1, ImageStats((0.5,), (0.25,)), "digits", tuple("0123456789"))
    save_pretrained(tmp_path / "vit" / "checkpoint", ViT(ViTConfig.from_preset("tiny")), inputs)
    with pytest.raises(ExportError, match="workbench 'vit' model.*EuroBertForMaskedLM"):
        export(tmp_path / "vit", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_bpe_encoder_gets_its_mask_token_at_the_mask_id(tmp_path):
    tokenizer = build_tokenizer("bpe", TEXTS * 20, vocab_size=300)
    encoder = Encoder(EncoderConfig.for_tokenizer("tiny", tokenizer.vocab_size, block_size=32))
    save_pretrained(tmp_path / "run" / "checkpoint", encoder, tokenizer)
    out = export(tmp_path / "run", tmp_path / "hf")
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["EuroBertForMaskedLM"] and config["mask_token_id"] == tokenizer.vocab_size
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(out).mask_token_id == tokenizer.vocab_size
