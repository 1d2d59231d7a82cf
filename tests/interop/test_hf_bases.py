"""Tiny random Llama, GPT-2 and Qwen2 folders as bases: fine-tuned with `full` and `lora`, and probed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import workbench
from workbench.models import Decoder
from workbench.modules.finetune_recipe import finetune
from workbench.probe.attention import AttentionWidget, attention_maps
from workbench.probe.embeddings import EmbeddingWidget
from workbench.probe.lens import LogitLensWidget, logit_lens
from workbench.probe.playground import GenerationPlayground

FAMILIES = ("llama", "gpt2", "qwen2")
PROMPT = "def parse(text):\n    return"


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["full", "lora"])
@pytest.mark.parametrize("family", FAMILIES)
def test_a_hugging_face_causal_lm_fine_tunes_on_docstring_topic(family, strategy, hf_causal_folder):
    outcome = finetune(dict(seed=0, base=str(hf_causal_folder(family)), task="docstring-topic", max_examples=60,
                            max_length=32, max_epochs=1, batch_size=16, strategy=strategy, learning_rate=1e-3),
                       printer=None)
    assert 0.0 <= outcome.metrics["test_accuracy"] <= 1.0
    described = outcome.base.description
    assert described["kind"] == "hf-causal" and described["model_type"] == family
    assert described["mapped"] == ("workbench-decoder" if family == "llama" else "hf-wrapper")
    trainable = {name for name, p in outcome.module.named_parameters() if p.requires_grad}
    if strategy == "lora":
        assert trainable and all("lora_" in name or name.startswith("head.") for name in trainable)
    test = outcome.task.splits["test"]
    view = EmbeddingWidget(outcome.module.backbone, outcome.base.text_encoder, test["text"][:12], test["label"][:12],
                           outcome.task.label_names)
    assert len(view.figure.data) >= 1


@pytest.mark.parametrize("family", FAMILIES)
def test_every_probe_view_builds_and_reads_true_values(family, hf_causal_folder):
    model, tokenizer = workbench.load(hf_causal_folder(family))
    assert isinstance(model, Decoder) == (family == "llama")
    ids = torch.tensor([tokenizer.encode(PROMPT)])
    with torch.no_grad():
        out = model(ids, output_hidden_states=True)
        last_layer = model.logits_from_hidden(out.hidden_states[-1])
    assert (last_layer - out.logits).abs().max().item() <= 1e-5  # the lens's last row is the model's output
    lens = logit_lens(model, tokenizer, PROMPT)
    assert lens["top_ids"][-1] == out.logits[0].argmax(-1).tolist()
    weights = attention_maps(model, tokenizer, PROMPT)["weights"]
    assert weights.shape[2] == weights.shape[3] == ids.shape[1]
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    assert np.allclose(np.triu(weights, k=1), 0.0)  # causal: no query looks ahead
    GenerationPlayground(model, tokenizer, prompt=PROMPT, max_new_tokens=8)
    LogitLensWidget(model, tokenizer, prompt=PROMPT)
    AttentionWidget(model, tokenizer, prompt=PROMPT)
