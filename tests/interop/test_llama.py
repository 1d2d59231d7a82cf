"""The Decoder is a Llama: same weights, same logits, for every preset shape (litgpt-style equivalence)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import transformers

from workbench.interop import llama
from workbench.models import PRESETS, Decoder, DecoderConfig

SHAPES = {name: DecoderConfig.from_preset(name, block_size=64) for name in PRESETS} | {
    "gqa": DecoderConfig.from_preset("nano", n_kv_head=2, block_size=64),
    "untied": DecoderConfig.from_preset("tiny", tie_embeddings=False, block_size=64),
    "gqa-untied-wide-mlp": DecoderConfig.from_preset("micro", n_kv_head=3, tie_embeddings=False, mlp_hidden=320,
                                                     norm_eps=1e-6, rope_base=500000.0, block_size=64),
}


def as_llama(decoder: Decoder) -> transformers.LlamaForCausalLM:
    config = transformers.LlamaConfig(**llama.llama_config_values(decoder.config))
    model = transformers.LlamaForCausalLM(config).eval()
    missing, unexpected = model.load_state_dict(llama.to_llama_state(decoder.state_dict(), decoder.config),
                                                strict=False)
    assert not unexpected
    assert missing == (["lm_head.weight"] if decoder.config.tie_embeddings else [])  # the tie fills it
    if decoder.config.tie_embeddings:
        model.tie_weights()
    return model


@pytest.mark.parametrize("shape", list(SHAPES))
def test_the_decoder_and_llama_give_the_same_logits(shape):
    config = SHAPES[shape]
    torch.manual_seed(0)
    decoder = Decoder(config).eval()
    with torch.no_grad():  # the norms start at 1; move them so a swapped norm would show
        for name, param in decoder.named_parameters():
            if name.endswith("norm.weight"):
                param.uniform_(0.5, 1.5)
    model = as_llama(decoder)
    ids = torch.randint(0, config.vocab_size, (2, 48))
    with torch.no_grad():
        ours, theirs = decoder(ids).logits, model(ids).logits
    assert (ours - theirs).abs().max().item() <= 1e-5
    assert llama.decoder_mismatches(model.config) == []
    assert llama.decoder_config(model.config) == config


def test_every_decoder_setting_has_a_llama_field_or_is_training_only():
    assert llama.inexpressible(DecoderConfig()) == []


def test_a_setting_llama_cannot_express_is_refused_by_name():
    @dataclasses.dataclass(frozen=True)
    class WithQKNorm(DecoderConfig):
        qk_norm: bool = True

    with pytest.raises(llama.ExportError, match=r"DecoderConfig\.qk_norm has no Llama equivalent"):
        llama.llama_config_values(WithQKNorm())


@pytest.mark.parametrize("change, named", [
    (dict(attention_bias=True), "attention_bias"),
    (dict(mlp_bias=True), "mlp_bias"),
    (dict(hidden_act="gelu"), "hidden_act"),
    (dict(rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0}), "rope_type"),
    (dict(head_dim=32), "head_dim"),
])
def test_a_llama_the_decoder_cannot_compute_is_named(change, named):
    config = transformers.LlamaConfig(hidden_size=64, num_attention_heads=4, **change)
    assert any(named in problem for problem in llama.decoder_mismatches(config))


def test_missing_llama_weights_are_named():
    config = DecoderConfig.from_preset("tiny")
    state = llama.to_llama_state(Decoder(config).state_dict(), config)
    del state["model.layers.1.mlp.up_proj.weight"]
    with pytest.raises(ValueError, match=r"model\.layers\.1\.mlp\.up_proj\.weight"):
        llama.from_llama_state(state, config)
