"""Base architectures: a config dataclass and an nn.Module, nothing of training or data."""

from workbench.lazy import exports_of, lazy_exports

_EXPORTS = exports_of({
    "workbench.models.backbone": [
        "Backbone", "DecoderBackbone", "EncoderBackbone", "ViTBackbone", "workbench_backbone",
    ],
    "workbench.models.config": ["PRESETS", "DecoderConfig"],
    "workbench.models.decoder": ["Decoder", "DecoderOutput"],
    "workbench.models.encoder": ["Encoder", "EncoderConfig", "fill_masks"],
    "workbench.models.generate": ["filter_logits", "generate"],
    "workbench.models.hf_causal": ["HFCausalBackbone", "HFCausalLM"],
    "workbench.models.mae": ["MAE", "MAE_DECODER_PRESETS", "MAEDecoderConfig", "MAEOutput"],
    "workbench.models.vit": ["VIT_PRESETS", "ViT", "ViTConfig", "ViTOutput"],
})
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
