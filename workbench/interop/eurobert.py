"""The workbench `Encoder` is a EuroBERT: the decoder's Llama blocks (RMSNorm, SwiGLU, rotary positions) with
bidirectional attention and a masked-LM head, which is exactly `EuroBertForMaskedLM` in transformers.

BERT and ModernBERT compute LayerNorm and GELU/GeGLU blocks, so neither can hold these weights; EuroBERT
(Boizard et al. 2025) can, with the same weight names as Llama. So the export reuses `llama.py`'s two tables
(every config field and every weight name) and adds the one thing a masked LM has that a causal one lacks:
the id of its mask token.
"""

from __future__ import annotations

from typing import Any

from workbench.interop import llama
from workbench.models import EncoderConfig

ARCHITECTURE = "EuroBertForMaskedLM"
MASK_TOKEN = "<mask>"  # the exported tokenizer's text for the mask id (the workbench's own tokenizers have none)


def eurobert_config_values(config: EncoderConfig) -> dict[str, Any]:
    """The EuroBertConfig keyword arguments for `config`; ExportError naming any setting it cannot express."""
    return {**llama.llama_config_values(config), "mask_token_id": config.mask_token_id}
