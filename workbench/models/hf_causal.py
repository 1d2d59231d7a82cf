"""Any Hugging Face causal LM (Llama, GPT-2, Qwen2, Mistral, ...) as a workbench model and as a `Backbone`.

The model comes in already built (`transformers.AutoModelForCausalLM.from_pretrained`);
this file only adapts it, and never imports `transformers` itself. It discovers
where the family keeps its parts (the layer list, the final norm, the
embeddings; the unembedding is `get_output_embeddings()`) and presents them the
way the workbench `Decoder` does:

- `HFCausalLM` is what the probes read: per-layer hidden states in the
  Decoder's convention, attention weights, the logit lens, a key/value cache.
- `HFCausalBackbone` is the fine-tuning trunk: final hidden states from ids and
  a padding mask, layer groups for the strategies, LoRA targets by family.

Two transformers conventions differ from the workbench's and are bridged here:
its `output_hidden_states` gives the last entry already through the final norm
(the workbench gives the last layer's residual stream, before it), and its
default attention (sdpa) returns no weights, so a pass that asks for them runs
on the eager implementation.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from workbench.errors import RequestError
from workbench.models.backbone import Backbone
from workbench.models.decoder import DecoderOutput
from workbench.models.parameters import ungrouped_parameters, unique_parameter_count

# Where families keep their parts, relative to the base model (`model.model`, `model.transformer`, ...).
LAYER_PATHS = ("layers", "h", "blocks", "decoder.layers")  # Llama/Qwen2/Mistral, GPT-2, ..., OPT
NORM_PATHS = ("norm", "ln_f", "final_layernorm", "norm_f", "final_layer_norm", "decoder.final_layer_norm")
POSITION_PATHS = ("wpe", "embed_positions", "decoder.embed_positions")  # learned position embeddings, if any
# The linear projections of attention and MLP, by model_type. GPT-2's are transformers' `Conv1D`
# (a linear layer with its weight transposed); `c_proj` names both the attention output and the MLP's.
LLAMA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
LORA_TARGETS = {"llama": LLAMA_TARGETS, "mistral": LLAMA_TARGETS, "qwen2": LLAMA_TARGETS,
                "gpt2": ["c_attn", "c_proj", "c_fc"]}


@dataclass(frozen=True)
class CausalLMConfig:
    """The sizes the probes and `generate` read (`model.config.block_size`), in the workbench's names."""

    block_size: int  # max_position_embeddings (GPT-2: n_positions)
    d_model: int
    n_layer: int
    n_head: int
    vocab_size: int
    hf_config: Any  # the wrapped model's own config

    @classmethod
    def of(cls, hf_config) -> "CausalLMConfig":
        # GPT-2's config maps these generic names onto its own (n_positions, n_embd, n_layer, n_head).
        return cls(block_size=hf_config.max_position_embeddings, d_model=hf_config.hidden_size,
                   n_layer=hf_config.num_hidden_layers, n_head=hf_config.num_attention_heads,
                   vocab_size=hf_config.vocab_size, hf_config=hf_config)


@dataclass(frozen=True)
class Parts:
    """Where a causal LM keeps its pieces, as dotted paths from the model's root.

    Paths, not module references, so a piece replaced later (a LoRA layer, then
    the merged plain layer again) is always read where it is now.
    """

    base: str  # the trunk without the LM head ("model", "transformer"); "" if the model is its own trunk
    layers: str
    norm: str
    embeddings: tuple[str, ...]  # token embeddings, then any learned position embeddings


def _join(*names: str) -> str:
    return ".".join(n for n in names if n)


def _module_at(model: nn.Module, path: str) -> nn.Module | None:
    try:
        return model.get_submodule(path)
    except AttributeError:
        return None


def find_parts(model: nn.Module) -> Parts:
    """Discover the layer list, final norm and embeddings of a causal LM; RequestError naming what was looked for."""
    what = type(model).__name__
    if not callable(getattr(model, "get_output_embeddings", None)) or not hasattr(model, "config"):
        raise RequestError(f"{what} is not a Hugging Face PreTrainedModel (no config or get_output_embeddings)")
    if not isinstance(model.get_output_embeddings(), nn.Module):
        raise RequestError(f"{what} has no output embeddings (LM head); wrap a *ForCausalLM model, not its trunk")
    prefix = getattr(model, "base_model_prefix", "")
    base = prefix if prefix and isinstance(_module_at(model, prefix), nn.Module) else ""
    n_layer = model.config.num_hidden_layers
    layers = next((p for p in LAYER_PATHS if isinstance(_module_at(model, _join(base, p)), nn.ModuleList)
                   and len(_module_at(model, _join(base, p))) == n_layer), None)
    if layers is None:
        raise RequestError(f"{what}: found no list of {n_layer} layers at any of {', '.join(LAYER_PATHS)} "
                           f"under {base or 'the model'}")
    norm = next((p for p in NORM_PATHS if isinstance(_module_at(model, _join(base, p)), nn.Module)), None)
    if norm is None:
        raise RequestError(f"{what}: found no final norm at any of {', '.join(NORM_PATHS)} under {base or 'the model'}")
    token_embeddings = model.get_input_embeddings()
    token_path = next((name for name, m in model.named_modules() if m is token_embeddings), None)
    if token_path is None:
        raise RequestError(f"{what}: get_input_embeddings() is not one of its modules")
    positions = [_join(base, p) for p in POSITION_PATHS if isinstance(_module_at(model, _join(base, p)), nn.Module)]
    return Parts(base=base, layers=_join(base, layers), norm=_join(base, norm), embeddings=(token_path, *positions))


def _unwrap(model: nn.Module) -> nn.Module:
    return model.model if isinstance(model, HFCausalLM) else model


@contextmanager
def eager_attention(model: nn.Module):
    """Run the block on transformers' eager attention, the one path that returns attention weights.

    sdpa and flash kernels never materialise the weights: in transformers 5 a pass
    asking for them on sdpa logs a warning and returns an empty tuple. The switch is
    a config flag (`set_attn_implementation`), restored afterwards; weights untouched.
    """
    current = model.config._attn_implementation
    if current == "eager":
        yield
        return
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation(current)


class HFCausalLM(nn.Module):
    """A Hugging Face causal LM behind the workbench `Decoder`'s interface: what the probes and `generate` call."""

    supports_kv_cache = True

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.parts = find_parts(model)
        self.config = CausalLMConfig.of(model.config)
        self.train(model.training)  # the wrapper starts in the mode of the model it wraps

    @property
    def base(self) -> nn.Module:
        """The trunk without the LM head: token ids -> hidden states after the final norm."""
        return self.model.get_submodule(self.parts.base) if self.parts.base else self.model

    @property
    def layers(self) -> nn.ModuleList:
        return self.model.get_submodule(self.parts.layers)

    @property
    def norm(self) -> nn.Module:
        return self.model.get_submodule(self.parts.norm)

    def num_parameters(self, *, trainable_only: bool = False) -> int:
        """Unique parameters (tied weights counted once)."""
        return unique_parameter_count(self, trainable_only=trainable_only)

    def forward(
        self,
        idx: torch.Tensor,
        *,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        compute_logits: bool = True,
        use_cache: bool = False,
        past: Any = None,
    ) -> DecoderOutput:
        """`idx` (B, T); with `past` (the `past` of an earlier output), only the tokens after it.

        hidden_states are the embeddings and each layer's output, the last one
        before the final norm (the Decoder's convention); the cache is transformers'
        own (a DynamicCache), extended in place by each pass that is given it.
        """
        seen = past.get_seq_length() if past is not None else 0
        if seen + idx.shape[1] > self.config.block_size:
            raise RequestError(f"sequence length {seen + idx.shape[1]} exceeds the model's block_size "
                               f"{self.config.block_size}")
        cached = use_cache or past is not None
        last_layer: list[torch.Tensor] = []
        hook = None
        if output_hidden_states:
            hook = self.layers[-1].register_forward_hook(
                lambda module, args, out: last_layer.append(out[0] if isinstance(out, tuple) else out))
        attention = eager_attention(self.model) if output_attentions else _nothing()
        try:
            with attention:
                out = self.base(input_ids=idx, past_key_values=past, use_cache=cached,
                                output_hidden_states=output_hidden_states, output_attentions=output_attentions)
        finally:
            if hook is not None:
                hook.remove()
        hidden = None
        if output_hidden_states:
            # transformers' last entry is already through the final norm; the workbench's is the layer's output.
            hidden = (*out.hidden_states[:-1], last_layer[-1])
        attentions = None
        if output_attentions:
            attentions = tuple(out.attentions or ())
            if len(attentions) != self.config.n_layer:
                raise RequestError(f"{type(self.model).__name__} returned {len(attentions)} attention maps for "
                                   f"{self.config.n_layer} layers; its attention cannot switch to eager")
        last_hidden = out.last_hidden_state
        return DecoderOutput(
            logits=self._unembed(last_hidden) if compute_logits else None,
            last_hidden=last_hidden,
            hidden_states=hidden,
            attentions=attentions,
            past=out.past_key_values if cached else None,
        )

    def _unembed(self, normed: torch.Tensor) -> torch.Tensor:
        """The LM head, read each time: LoRA may have replaced it since."""
        return self.model.get_output_embeddings()(normed)

    def logits_from_hidden(self, hidden: torch.Tensor) -> torch.Tensor:
        """Read any intermediate hidden state through the final norm and the unembedding (the logit lens)."""
        return self._unembed(self.norm(hidden))

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, **sampling) -> torch.Tensor:
        from workbench.models.generate import generate

        return generate(self, idx, max_new_tokens, **sampling)


@contextmanager
def _nothing():
    yield


class HFCausalBackbone(Backbone):
    """A Hugging Face causal LM as a fine-tuning trunk; keeps its LM head for causal-LM fine-tuning."""

    kind = "decoder"
    default_pooling = "last"

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        model = _unwrap(model)
        self.model = model
        self.parts = find_parts(model)
        self._check_layer_groups_cover_the_model()
        self.train(model.training)

    @property
    def hidden_size(self) -> int:
        return self.model.config.hidden_size

    @property
    def config(self):
        """The Hugging Face config (model_type, sizes), for run records."""
        return self.model.config

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # Right padding: causal attention already keeps real tokens from seeing it, and the mask
        # is passed on too (positions count from 0 either way), so a padded batch gives each real
        # token the state it has alone.
        base = self.model.get_submodule(self.parts.base) if self.parts.base else self.model
        return base(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Next-token logits from final hidden states (the norm is already applied)."""
        return self.model.get_output_embeddings()(hidden)

    def layer_groups(self) -> list[nn.Module]:
        """Embeddings (token and position), each layer, and on top the last layer, the final norm and an
        untied unembedding (a tied one already sits with the embeddings)."""
        embeddings = [self.model.get_submodule(p) for p in self.parts.embeddings]
        layers = list(self.model.get_submodule(self.parts.layers))
        top = [layers[-1], self.model.get_submodule(self.parts.norm)]
        grouped = {id(p) for m in [*embeddings, *top] for p in m.parameters()}
        unembedding = self.model.get_output_embeddings()
        if any(id(p) not in grouped for p in unembedding.parameters()):
            top.append(unembedding)
        first = embeddings[0] if len(embeddings) == 1 else nn.ModuleList(embeddings)
        return [first, *layers[:-1], nn.ModuleList(top)]

    def lora_targets(self) -> list[str]:
        model_type = self.model.config.model_type
        if model_type not in LORA_TARGETS:
            raise RequestError(f"no default LoRA targets for model_type {model_type!r} (known: "
                               f"{', '.join(LORA_TARGETS)}); name them with the strategy's lora_targets")
        return list(LORA_TARGETS[model_type])

    def _check_layer_groups_cover_the_model(self) -> None:
        left = ungrouped_parameters(self.model, self.layer_groups())
        if left:
            parts = self.parts
            raise RequestError(
                f"{type(self.model).__name__} has parameters outside its embeddings ({', '.join(parts.embeddings)}), "
                f"layers ({parts.layers}), final norm ({parts.norm}) and unembedding: {', '.join(left[:5])}"
            )
