"""What continued pretraining starts from (`init_from`): a saved decoder, its tokenizer, and a record of its origin.

Domain-adaptive pretraining goes on from weights trained elsewhere, with that model's
tokenizer. The source is a workbench pretraining run, or a Hugging Face Llama (a folder or
`hf:<repo-id>`) that the workbench Decoder computes exactly (interop/llama.py). The record
says where the weights came from, with sha256 hashes of the config and weights files, so
the run folder and the model card can name them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.data.tokenizers import Tokenizer
from workbench.errors import RequestError
from workbench.interop.load import is_hugging_face_source, load_causal_lm, sha256_of
from workbench.models import Decoder
from workbench.modules.checkpoint import (
    CONFIG,
    VISION_ARCHITECTURES,
    WEIGHTS,
    checkpoint_architecture,
    checkpoint_dir,
    load_pretrained,
)


@dataclass
class InitialModel:
    decoder: Decoder
    tokenizer: Tokenizer
    provenance: dict[str, Any]


def initial_model(source: str) -> InitialModel:
    """Load `source` (see the module docstring); RequestError when it is not a decoder training can go on from."""
    if is_hugging_face_source(source):
        imported = load_causal_lm(source)
        if not isinstance(imported.model, Decoder):
            raise RequestError(
                f"init_from={source!r} is a Hugging Face {imported.provenance['model_type']!r} model that the "
                f"workbench Decoder does not compute exactly ({imported.provenance['why']}); continued pretraining "
                "takes workbench runs and Llama-architecture models. Fine-tune it instead (finetune base=...), "
                "which takes any causal LM"
            )
        return InitialModel(imported.model, imported.tokenizer, {"kind": "hugging-face", **imported.provenance})
    directory = checkpoint_dir(source)
    architecture = checkpoint_architecture(directory)
    if architecture in VISION_ARCHITECTURES:
        raise RequestError(f"init_from={source!r} is a vision model ({architecture}), which reads images, not "
                           "text: continued pretraining goes on from a causal decoder; fine-tune the ViT with "
                           "notebooks/finetune-vision.ipynb")
    if architecture != "decoder":
        raise RequestError(f"init_from={source!r} is a workbench {architecture!r}, not a causal decoder: continued "
                           "pretraining (objective='causal_lm') goes on from a decoder; fine-tune an encoder with "
                           "notebooks/finetune.ipynb")
    decoder, tokenizer = load_pretrained(directory)
    provenance = {
        "kind": "workbench-run",
        "source": str(source),
        "path": str(Path(directory).resolve()),
        "config_sha256": sha256_of([directory / CONFIG]),
        "weights_sha256": sha256_of([directory / WEIGHTS]),
        "parameters": decoder.num_parameters(),
    }
    return InitialModel(decoder, tokenizer, provenance)
