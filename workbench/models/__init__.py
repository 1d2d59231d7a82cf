"""Base architectures: a config dataclass and an nn.Module, nothing of training or data."""

from workbench.models.backbone import Backbone, DecoderBackbone
from workbench.models.config import PRESETS, DecoderConfig
from workbench.models.decoder import Decoder, DecoderOutput
from workbench.models.generate import filter_logits, generate

__all__ = [
    "PRESETS",
    "Backbone",
    "Decoder",
    "DecoderBackbone",
    "DecoderConfig",
    "DecoderOutput",
    "filter_logits",
    "generate",
]
