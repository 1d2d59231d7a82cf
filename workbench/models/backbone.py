"""The trunk a fine-tuning head sits on: token ids and a padding mask (or pixels) in, hidden states out.

Decoders and encoders differ in attention and in which position summarises a
sequence; a `Backbone` hides the first and names the second, and lists its
layers bottom to top so strategies can freeze, unfreeze and scale learning
rates per layer without knowing the architecture.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

from workbench.models.decoder import Decoder
from workbench.models.encoder import Encoder
from workbench.models.vit import ViT


class Backbone(nn.Module, ABC):
    kind: str  # "decoder", "encoder" or "vit"
    default_pooling: str  # how a sequence is summarised: "last" (decoder), "first" or "mean" (encoders)

    @property
    @abstractmethod
    def hidden_size(self) -> int: ...

    @abstractmethod
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, T) ids and mask (1 = real token) -> (B, T, hidden_size) final hidden states."""

    @abstractmethod
    def layer_groups(self) -> list[nn.Module]:
        """Embeddings first, then each block bottom to top (the top one holds any final norm)."""

    @abstractmethod
    def lora_targets(self) -> list[str]:
        """Names of the linear projections LoRA adapts by default (attention and MLP)."""


class DecoderBackbone(Backbone):
    """The workbench decoder as a backbone; keeps its LM head for causal-LM fine-tuning."""

    kind = "decoder"
    default_pooling = "last"

    def __init__(self, decoder: Decoder) -> None:
        super().__init__()
        self.decoder = decoder

    @property
    def hidden_size(self) -> int:
        return self.decoder.config.d_model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # Causal attention already keeps real tokens from seeing right padding; the mask
        # matters only to the head's pooling and loss.
        return self.decoder(input_ids, compute_logits=False).last_hidden

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Next-token logits from final hidden states (the norm is already applied)."""
        return self.decoder.lm_head(hidden)

    def layer_groups(self) -> list[nn.Module]:
        blocks = list(self.decoder.blocks)
        top = nn.ModuleList([blocks[-1], self.decoder.norm])
        return [self.decoder.embed, *blocks[:-1], top]

    def lora_targets(self) -> list[str]:
        return ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class EncoderBackbone(DecoderBackbone):
    """The workbench masked-LM encoder as a backbone: attention sees both sides, never the padding."""

    kind = "encoder"
    default_pooling = "mean"

    def __init__(self, encoder: Encoder) -> None:
        super().__init__(encoder)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.decoder(input_ids, attention_mask=attention_mask, compute_logits=False).last_hidden

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Masked-token logits at every position (not next-token ones)."""
        return self.decoder.lm_head(hidden)


def workbench_backbone(model: Decoder) -> DecoderBackbone:
    """The backbone for a workbench model: an Encoder's or a Decoder's."""
    return EncoderBackbone(model) if isinstance(model, Encoder) else DecoderBackbone(model)


class ViTBackbone(Backbone):
    """A ViT as a backbone: pixels in, one hidden state per token (the class token, if any, then the patches) out.

    The attention mask is ignored (every token of an image is real); a head pools through a mask of ones.
    "first" pooling reads the class token, as the ViT's own `pooled` does; a ViT without one pools the mean.
    """

    kind = "vit"

    def __init__(self, vit: ViT) -> None:
        super().__init__()
        self.vit = vit
        self.default_pooling = "first" if vit.config.pooling == "cls" else "mean"

    @property
    def hidden_size(self) -> int:
        return self.vit.config.d_model

    def forward(self, pixels: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, H, W) pixels -> (B, T, d_model), T = the class token (if any) + the patches."""
        return self.vit(pixels).last_hidden

    def layer_groups(self) -> list[nn.Module]:
        # The embeddings are parameters of the ViT itself, so a fresh holder (never registered on self, so the
        # state dict keeps one name per tensor) gathers them into the bottom group.
        embeddings = nn.Module()
        embeddings.patch_embed = self.vit.patch_embed
        embeddings.pos_embed = self.vit.pos_embed
        if self.vit.cls_token is not None:
            embeddings.cls_token = self.vit.cls_token
        blocks = list(self.vit.blocks)
        return [embeddings, *blocks[:-1], nn.ModuleList([blocks[-1], self.vit.norm])]

    def lora_targets(self) -> list[str]:
        return ["q_proj", "k_proj", "v_proj", "o_proj"]
