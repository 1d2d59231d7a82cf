"""The workbench `Decoder` is a Llama: this file says so field by field and weight by weight.

Both directions read the same two tables, so an export and an import cannot disagree:
`CONFIG_FIELDS` maps every `DecoderConfig` field to the `LlamaConfig` field that says the
same thing (or marks it training-only), and `weight_names` maps every parameter name. A
`DecoderConfig` field in neither table is a setting Llama cannot express, and an export
refuses it by name before writing anything.

A Llama folder maps back onto the `Decoder` exactly only when it uses nothing the Decoder
lacks (biases, another activation, scaled rotary embeddings, a head size other than
d_model / n_head); `decoder_mismatches` names what stands in the way, and such a model
goes through the generic wrapper (`models/hf_causal.py`) instead.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from workbench.errors import RequestError
from workbench.models import DecoderConfig

# DecoderConfig field -> LlamaConfig field. block_size becomes the positions the model was trained for.
CONFIG_FIELDS = {
    "vocab_size": "vocab_size",
    "block_size": "max_position_embeddings",
    "n_layer": "num_hidden_layers",
    "n_head": "num_attention_heads",
    "n_kv_head": "num_key_value_heads",  # written as DecoderConfig.kv_heads (None means "as many as n_head")
    "d_model": "hidden_size",
    "mlp_hidden": "intermediate_size",  # written as DecoderConfig.hidden_dim (None means the 8/3 rule)
    "norm_eps": "rms_norm_eps",
    "rope_base": "rope_theta",  # inside rope_parameters in transformers 5
    "tie_embeddings": "tie_word_embeddings",
}
# Used only while training; the function a trained model computes does not depend on them.
TRAINING_ONLY = {"dropout": "residual and attention dropout (off at inference; Llama has no residual dropout)"}
ARCHITECTURE = "LlamaForCausalLM"


class ExportError(RequestError):
    """An export that could not be faithful, refused before anything is written."""


def inexpressible(config: DecoderConfig) -> list[str]:
    """The DecoderConfig fields that no Llama field can carry (none today; a new field must earn a row)."""
    return [f.name for f in dataclasses.fields(config) if f.name not in CONFIG_FIELDS and f.name not in TRAINING_ONLY]


def llama_config_values(config: DecoderConfig) -> dict[str, Any]:
    """The LlamaConfig keyword arguments for `config`; ExportError naming any setting Llama cannot express."""
    refused = inexpressible(config)
    if refused:
        raise ExportError(
            f"cannot export as {ARCHITECTURE}: DecoderConfig.{', DecoderConfig.'.join(refused)} "
            f"has no Llama equivalent (the mapped settings are: {', '.join(CONFIG_FIELDS)})"
        )
    return {
        "vocab_size": config.vocab_size,
        "max_position_embeddings": config.block_size,
        "num_hidden_layers": config.n_layer,
        "num_attention_heads": config.n_head,
        "num_key_value_heads": config.kv_heads,
        "hidden_size": config.d_model,
        "intermediate_size": config.hidden_dim,
        "head_dim": config.head_dim,
        "rms_norm_eps": config.norm_eps,
        "rope_parameters": {"rope_type": "default", "rope_theta": config.rope_base},
        "tie_word_embeddings": config.tie_embeddings,
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": None,
        "eos_token_id": None,
        "pad_token_id": None,
    }


def decoder_mismatches(hf_config) -> list[str]:
    """What in a Hugging Face Llama config the workbench Decoder cannot compute; [] means it maps exactly."""
    problems = []
    if getattr(hf_config, "model_type", None) != "llama":
        problems.append(f"model_type is {getattr(hf_config, 'model_type', None)!r}, not 'llama'")
        return problems
    if hf_config.hidden_act != "silu":
        problems.append(f"hidden_act is {hf_config.hidden_act!r} (the Decoder's MLP is SwiGLU: silu)")
    for flag in ("attention_bias", "mlp_bias"):
        if getattr(hf_config, flag, False):
            problems.append(f"{flag} is set (the Decoder's projections have no bias)")
    rope = getattr(hf_config, "rope_parameters", None) or {}
    if rope.get("rope_type", "default") != "default":
        problems.append(f"rope_type is {rope.get('rope_type')!r} (the Decoder's rotary embeddings are unscaled)")
    head_dim = getattr(hf_config, "head_dim", None) or hf_config.hidden_size // hf_config.num_attention_heads
    if head_dim * hf_config.num_attention_heads != hf_config.hidden_size:
        problems.append(f"head_dim {head_dim} x {hf_config.num_attention_heads} heads != hidden_size "
                        f"{hf_config.hidden_size}")
    if getattr(hf_config, "pretraining_tp", 1) not in (None, 1):
        problems.append(f"pretraining_tp is {hf_config.pretraining_tp}")
    return problems


def decoder_config(hf_config) -> DecoderConfig:
    """The DecoderConfig of a Llama config `decoder_mismatches` accepts.

    A width the DecoderConfig would derive by itself (key/value heads equal to the heads,
    the 8/3 MLP rule) is left to derive, so an exported config comes back equal, field by field.
    """
    rope = getattr(hf_config, "rope_parameters", None) or {}
    config = DecoderConfig(
        vocab_size=hf_config.vocab_size,
        block_size=hf_config.max_position_embeddings,
        n_layer=hf_config.num_hidden_layers,
        n_head=hf_config.num_attention_heads,
        n_kv_head=hf_config.num_key_value_heads,
        d_model=hf_config.hidden_size,
        mlp_hidden=hf_config.intermediate_size,
        norm_eps=hf_config.rms_norm_eps,
        rope_base=float(rope.get("rope_theta", 10000.0)),
        tie_embeddings=bool(hf_config.tie_word_embeddings),
    )
    derived = dataclasses.replace(config, n_kv_head=None, mlp_hidden=None)
    return dataclasses.replace(
        config,
        n_kv_head=None if derived.kv_heads == config.kv_heads else config.n_kv_head,
        mlp_hidden=None if derived.hidden_dim == config.hidden_dim else config.mlp_hidden,
    )


def weight_names(config: DecoderConfig) -> dict[str, str]:
    """Decoder parameter name -> LlamaForCausalLM parameter name, for every stored tensor.

    A tied LM head is the embedding, stored once under the embedding's name (as transformers does).
    """
    names = {"embed.weight": "model.embed_tokens.weight", "norm.weight": "model.norm.weight"}
    if not config.tie_embeddings:
        names["lm_head.weight"] = "lm_head.weight"
    for i in range(config.n_layer):
        ours, theirs = f"blocks.{i}", f"model.layers.{i}"
        names[f"{ours}.attn_norm.weight"] = f"{theirs}.input_layernorm.weight"
        names[f"{ours}.mlp_norm.weight"] = f"{theirs}.post_attention_layernorm.weight"
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            names[f"{ours}.attn.{proj}.weight"] = f"{theirs}.self_attn.{proj}.weight"
        for proj in ("gate_proj", "up_proj", "down_proj"):
            names[f"{ours}.mlp.{proj}.weight"] = f"{theirs}.mlp.{proj}.weight"
    return names


def to_llama_state(decoder_state: dict[str, torch.Tensor], config: DecoderConfig) -> dict[str, torch.Tensor]:
    """The Decoder's tensors under Llama's names (contiguous, detached: ready for safetensors)."""
    return {theirs: decoder_state[ours].detach().contiguous() for ours, theirs in weight_names(config).items()}


def from_llama_state(llama_state: dict[str, torch.Tensor], config: DecoderConfig) -> dict[str, torch.Tensor]:
    """Llama's tensors under the Decoder's names; a missing tensor is an error naming it."""
    names = weight_names(config)
    missing = [theirs for theirs in names.values() if theirs not in llama_state]
    if missing:
        raise RequestError(f"the Llama weights lack {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else ""))
    return {ours: llama_state[theirs] for ours, theirs in names.items()}
