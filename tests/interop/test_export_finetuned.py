"""A causal-LM fine-tune out: merged as LlamaForCausalLM, or its LoRA adapter alone for peft over the exported base."""

from __future__ import annotations

import json

import pytest
import torch
import transformers

from workbench.data import build_tokenizer
from workbench.interop.export import ExportError, export
from workbench.models import Decoder, DecoderConfig
from workbench.modules import save_pretrained
from workbench.modules.finetune_recipe import finetune
from workbench.modules.finetuned import ADAPTER_FILE, load_finetuned, save_finetuned
from workbench.runs.outputs import save_data_record, save_metrics

PAIRS = [{"prompt": f"def f{i}(x):\n", "completion": f"    return x + {i}\n"} for i in range(40)]


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """A tiny workbench decoder saved as a pretraining checkpoint (random weights: the test is about formats)."""
    run = tmp_path_factory.mktemp("base") / "run"
    tokenizer = build_tokenizer("byte")
    torch.manual_seed(0)
    save_pretrained(run / "checkpoint", Decoder(DecoderConfig.from_preset("tiny", n_kv_head=1)), tokenizer)
    return run


def finetuned_run(base_run, tmp_path, strategy: str, task: dict | None = None):
    data = tmp_path / "pairs.jsonl"
    data.write_text("\n".join(json.dumps(p) for p in PAIRS) + "\n", encoding="utf-8")
    settings = dict(seed=0, base=str(base_run), max_length=32, max_epochs=1, batch_size=8, learning_rate=1e-2,
                    strategy=strategy, lora_rank=4, dropout=0.0,
                    **(task or dict(task="file", task_path=str(data), task_kind="causal_lm")))
    outcome = finetune(settings, printer=None)
    run = tmp_path / f"ft-{strategy}"
    save_finetuned(run / "finetuned", outcome)
    save_metrics(run, outcome.metrics)
    save_data_record(run, outcome.data)
    return run


@pytest.mark.slow
def test_a_lora_fine_tune_exports_merged_and_as_a_peft_adapter_with_the_same_logits(base_run, tmp_path):
    import peft

    run = finetuned_run(base_run, tmp_path, "lora")
    assert (run / "finetuned" / ADAPTER_FILE).is_file()
    finetuned = load_finetuned(run).module.backbone.decoder
    ids = torch.randint(0, 256, (2, 24))
    with torch.no_grad():
        expected = finetuned(ids).logits

    merged = transformers.AutoModelForCausalLM.from_pretrained(export(run, tmp_path / "merged")).eval()
    base = transformers.AutoModelForCausalLM.from_pretrained(export(base_run, tmp_path / "base")).eval()
    adapter = export(run, tmp_path / "adapter", adapter=True)
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md"} <= {p.name for p in adapter.iterdir()}
    adapted = peft.PeftModel.from_pretrained(base, adapter).eval()
    with torch.no_grad():
        assert (merged(ids).logits - expected).abs().max().item() <= 1e-5
        assert (adapted(ids).logits - expected).abs().max().item() <= 1e-5
        with adapted.disable_adapter():  # the adapter carries the fine-tune: without it, the base's logits
            assert (adapted(ids).logits - expected).abs().max().item() > 1e-3
    from huggingface_hub import ModelCard

    card = ModelCard.load(adapter / "README.md").data.to_dict()
    assert card["library_name"] == "peft" and "lora" in card["tags"]


@pytest.mark.slow
def test_only_causal_lm_fine_tunes_export_and_only_lora_ones_as_adapters(base_run, tmp_path):
    full = finetuned_run(base_run, tmp_path, "full")
    with pytest.raises(ExportError, match=r"not a LoRA fine-tune .*strategy='full'"):
        export(full, tmp_path / "adapter", adapter=True)
    topic = finetuned_run(base_run, tmp_path, "linear_probe", dict(task="docstring-topic", max_examples=60))
    with pytest.raises(ExportError, match=r"fine-tuned a sequence_classification head; .* only causal_lm"):
        export(topic, tmp_path / "out")
    with pytest.raises(ExportError, match="adapter=True .* takes a LoRA fine-tuning run"):
        export(base_run, tmp_path / "out", adapter=True)
    assert not (tmp_path / "out").exists() and not (tmp_path / "adapter").exists()


@pytest.mark.slow
def test_a_fine_tune_of_another_hugging_face_family_exports_in_its_own_architecture(hf_causal_folder, tmp_path):
    run = finetuned_run(hf_causal_folder("gpt2"), tmp_path, "lora")
    backbone = load_finetuned(run).module.backbone
    ids = torch.randint(0, 300, (2, 16))
    out = export(run, tmp_path / "hf")
    theirs = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    assert type(theirs).__name__ == "GPT2LMHeadModel"
    with torch.no_grad():
        assert (theirs(ids).logits - backbone.model(ids).logits).abs().max().item() <= 1e-5
    tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    assert tokenizer("def f(x):")["input_ids"] == load_finetuned(run).text_encoder.tokenizer.encode("def f(x):")
    with pytest.raises(ExportError, match="adapter=True covers workbench decoders"):
        export(run, tmp_path / "adapter", adapter=True)
