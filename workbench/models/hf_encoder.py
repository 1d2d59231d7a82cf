"""A Hugging Face BERT-family encoder (BERT, RoBERTa, ELECTRA, DistilBERT, MiniLM) as a `Backbone`.

The model comes in already built (`transformers.AutoModel.from_pretrained`);
this file only adapts it: final hidden states from ids and a padding mask, the
embeddings and each transformer layer as layer groups, and the names of the
linear projections LoRA adapts. It never imports `transformers` itself, so the
workbench decoder path does not pay for that import.

The pooler (a dense + tanh on [CLS], trained for BERT's next-sentence task) is
removed: the backbone returns per-token hidden states, which the pooler never
touches, so its weights would get no gradient yet count as "trainable" and sit
in the top layer group. Heads pool the hidden states themselves.
"""

from __future__ import annotations

import torch
from torch import nn

from workbench.errors import RequestError
from workbench.models.backbone import Backbone
from workbench.models.parameters import ungrouped_parameters

# Where each family keeps its transformer layers, bottom to top.
LAYER_PATHS = ("encoder.layer", "transformer.layer")  # BERT/RoBERTa/ELECTRA, DistilBERT
# The linear projections of attention and MLP, by family. In BERT's naming
# `output.dense` is both the attention output (`attention.output.dense`) and the
# MLP down-projection (`output.dense`), so the five names select all six linears.
LORA_TARGETS = {
    "distilbert": ["q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2"],
    "bert": ["query", "key", "value", "output.dense", "intermediate.dense"],
}
POOLINGS = ("mean", "first", "last")  # what `workbench.heads.pool` understands


class HFEncoderBackbone(Backbone):
    """A bidirectional encoder; `default_pooling` is "mean" unless the model was trained to use [CLS].

    Mean pooling is the default because it is what sentence-embedding encoders
    such as all-MiniLM-L6-v2 were trained with (their `1_Pooling/config.json`
    says `pooling_mode_mean_tokens`), and with the pooler gone a plain BERT's
    [CLS] state is no better a summary than the mean. Pass "first" for a model
    trained to summarise in [CLS].
    """

    kind = "encoder"

    def __init__(self, model: nn.Module, *, default_pooling: str = "mean") -> None:
        super().__init__()
        if default_pooling not in POOLINGS:
            raise RequestError(f"default_pooling {default_pooling!r} is not one of: {', '.join(POOLINGS)}")
        if getattr(model, "pooler", None) is not None:
            model.pooler = None  # BERT/RoBERTa skip a None pooler in forward
        self.model = model
        self.default_pooling = default_pooling
        self._layers = _find_layers(model)
        self._check_layer_groups_cover_the_model()
        self._check_lora_targets_exist()
        self.train(model.training)  # the wrapper starts in the mode of the model it wraps

    @property
    def hidden_size(self) -> int:
        return self.model.config.hidden_size

    @property
    def config(self):
        """The Hugging Face config (model_type, sizes), for run records."""
        return self.model.config

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # The mask keeps real tokens from attending to padding, so a padded batch
        # gives each real token the hidden state it would have alone.
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def layer_groups(self) -> list[nn.Module]:
        embeddings = [self.model.embeddings]
        if isinstance(getattr(self.model, "embeddings_project", None), nn.Module):
            embeddings.append(self.model.embeddings_project)  # ELECTRA with embedding_size != hidden_size
        first = embeddings[0] if len(embeddings) == 1 else nn.ModuleList(embeddings)
        return [first, *self._layers]

    def lora_targets(self) -> list[str]:
        family = "distilbert" if self.model.config.model_type == "distilbert" else "bert"
        return list(LORA_TARGETS[family])

    def _check_layer_groups_cover_the_model(self) -> None:
        left = ungrouped_parameters(self.model, self.layer_groups())
        if left:
            raise RequestError(
                f"{type(self.model).__name__} has parameters outside its embeddings and layers "
                f"({', '.join(left[:5])}); HFEncoderBackbone supports BERT-family encoders only"
            )

    def _check_lora_targets_exist(self) -> None:
        linears = [name for name, m in self.model.named_modules() if isinstance(m, nn.Linear)]
        for target in self.lora_targets():
            if not any(name == target or name.endswith(f".{target}") for name in linears):
                raise RequestError(
                    f"{type(self.model).__name__} has no linear layer named *{target}; its linears: {linears[:8]}"
                )


def _find_layers(model: nn.Module) -> nn.ModuleList:
    for path in LAYER_PATHS:
        try:
            layers = model.get_submodule(path)
        except AttributeError:
            continue
        if isinstance(layers, nn.ModuleList) and len(layers) and hasattr(model, "embeddings"):
            return layers
    raise RequestError(
        f"{type(model).__name__} is not a BERT-family encoder: expected `embeddings` and a layer list at "
        f"one of {', '.join(LAYER_PATHS)}"
    )
