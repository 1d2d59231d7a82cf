"""Hugging Face folders (and `hf:<repo-id>`) in: a model the workbench trains, fine-tunes and probes.

A causal LM comes back as one of two things with one interface (`Decoder`'s: logits, per-layer
hidden states, attention weights, `logits_from_hidden`, `generate`):

- a Llama the `Decoder` computes exactly (`llama.decoder_mismatches` is empty) becomes a
  workbench `Decoder` with the same weights, so everything the workbench does to its own models
  (pretraining, export, every probe) applies unchanged;
- any other family (GPT-2, Qwen2 with its attention biases, Mistral, a Llama with scaled rotary
  embeddings) is wrapped as loaded (`models/hf_causal.py`).

Either way the tokenizer is the model's own (`data/hf_tokenizer.py`), and the record says where
the weights came from: the folder or hub name, and sha256 hashes of the config and the weights.
BERT-family encoders come in through `load_hf_encoder` for fine-tuning.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from workbench.errors import RequestError, ResourceError
from workbench.interop import hub, llama
from workbench.models.parameters import unique_parameter_count

CONFIG = "config.json"
# Files a Hugging Face tokenizer is read from. Without one, transformers 5 quietly builds an empty
# tokenizer that maps every word to [UNK], so their absence is an error here.
TOKENIZER_FILES = (
    "tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model", "tokenizer.model"
)
WEIGHT_GLOBS = ("*.safetensors", "pytorch_model*.bin")
# Model types whose AutoModel is a BERT-family encoder (models/hf_encoder.py).
ENCODER_TYPES = ("bert", "roberta", "xlm-roberta", "camembert", "electra", "distilbert")
CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")


class HFLoadError(ResourceError):
    """A Hugging Face folder that cannot be loaded: missing or corrupt files, weights that do not fit."""


@dataclass
class ImportedModel:
    """A causal LM brought in: the model, its tokenizer (a workbench `Tokenizer`) and where it came from."""

    model: torch.nn.Module  # a workbench Decoder, or HFCausalLM around the transformers model
    tokenizer: Any  # data.hf_tokenizer.HFTokenizer
    provenance: dict[str, Any]  # JSON-serialisable: source, path, family, how it was mapped, hashes


def folder_of(source: str | os.PathLike) -> Path:
    """The local folder `source` names: itself, or the snapshot of `hf:<repo-id>`."""
    if hub.is_hub_name(source):
        return hub.hub_folder(str(source))
    return Path(source)


def is_hugging_face_source(source: str | os.PathLike) -> bool:
    """`hf:<repo-id>`, or a folder whose config.json is a Hugging Face one (not a workbench checkpoint's)."""
    if hub.is_hub_name(source):
        return True
    path = Path(source) / CONFIG
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and "model_type" in record and "architecture" not in record


def read_config(directory: Path) -> dict[str, Any]:
    """config.json of a Hugging Face folder as a dict; errors say what is wrong with it."""
    path = directory / CONFIG
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HFLoadError(f"{directory} has no {CONFIG}: not a Hugging Face model folder", path=path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise HFLoadError(f"{path} is not valid JSON: {error}", path=path) from error
    if not isinstance(record, dict) or "model_type" not in record:
        raise HFLoadError(f"{path} is not a Hugging Face model config (no model_type)", path=path)
    return record


def is_causal_lm(record: dict[str, Any]) -> bool:
    """Whether a Hugging Face config describes a causal LM (by its architectures, else by its model type)."""
    architectures = record.get("architectures") or []
    if architectures:
        return any(name.endswith(CAUSAL_SUFFIXES) for name in architectures)
    return record.get("model_type") not in ENCODER_TYPES


def load_causal_lm(source: str | os.PathLike, *, exact: bool = True) -> ImportedModel:
    """The causal LM in a Hugging Face folder or `hf:<repo-id>`, in eval mode on the CPU, in fp32.

    `exact=False` keeps even a Llama in the generic wrapper (to compare the two paths).
    """
    directory = folder_of(source)
    record = read_config(directory)
    if not is_causal_lm(record):
        raise RequestError(f"{source}: a Hugging Face {record['model_type']!r} model "
                           f"({', '.join(record.get('architectures') or ['no architectures listed'])}) is not a "
                           "causal LM; encoders are fine-tuning bases (finetune base=<folder>), not decoders")
    model = _transformers_model(directory)
    tokenizer = load_tokenizer(directory, model.config)
    mismatches = llama.decoder_mismatches(model.config)
    provenance = {
        "source": str(source),
        "path": str(directory.resolve()),
        "model_type": model.config.model_type,
        "architecture": type(model).__name__,
        "config_sha256": sha256_of([directory / CONFIG]),
        "weights_sha256": sha256_of(weight_files(directory)),
        "parameters": unique_parameter_count(model),
    }
    if exact and not mismatches:
        decoder = llama_as_decoder(model)
        provenance.update(mapped="workbench-decoder", why=None)
        return ImportedModel(decoder, tokenizer, provenance)
    from workbench.models.hf_causal import HFCausalLM

    provenance.update(mapped="hf-wrapper", why="; ".join(mismatches) if exact else "exact=False")
    return ImportedModel(HFCausalLM(model).eval(), tokenizer, provenance)


def llama_as_decoder(model) -> torch.nn.Module:
    """A workbench Decoder holding a LlamaForCausalLM's weights (shared, not copied), computing the same logits."""
    from workbench.models import Decoder

    config = llama.decoder_config(model.config)
    try:
        return Decoder.from_state(config, llama.from_llama_state(model.state_dict(), config))
    except RequestError as error:
        raise HFLoadError(f"the Llama weights do not fill the Decoder: {error}") from error


def load_tokenizer(directory: Path, model_config=None):
    """The folder's fast tokenizer as a workbench `HFTokenizer` (the ids `AutoTokenizer` gives)."""
    hf_tokenizer = hf_fast_tokenizer(directory)
    from workbench.data.hf_tokenizer import HFTokenizer

    tokenizer = HFTokenizer.from_transformers(hf_tokenizer)
    embedded = getattr(model_config, "vocab_size", None)
    if embedded is not None and tokenizer.vocab_size > embedded:
        raise HFLoadError(f"{directory}: the tokenizer has {tokenizer.vocab_size} tokens but the model embeds only "
                           f"{embedded}; they do not belong together", path=directory)
    return tokenizer


def hf_fast_tokenizer(directory: Path):
    """`AutoTokenizer.from_pretrained(directory)`, local files only, and fast (Rust-backed) or an error."""
    if not any((directory / file).is_file() for file in TOKENIZER_FILES):
        raise HFLoadError(
            f"{directory} has a model config but no tokenizer (none of {', '.join(TOKENIZER_FILES)}); "
            "save the tokenizer beside the model (tokenizer.save_pretrained)", path=directory)
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    except (OSError, ValueError, TypeError) as error:
        raise HFLoadError(f"cannot load the tokenizer in {directory}: {error}", path=directory) from error
    if not getattr(tokenizer, "is_fast", False):
        raise HFLoadError(f"{directory}: the tokenizer is {type(tokenizer).__name__}, not a fast (Rust-backed) "
                           "one; the workbench needs character offsets (save tokenizer.json)", path=directory)
    return tokenizer


def load_hf_encoder(directory: Path):
    """(model, tokenizer): a BERT-family AutoModel and its fast tokenizer, local files only, in fp32."""
    tokenizer = hf_fast_tokenizer(directory)
    from transformers import AutoModel

    with quiet_loading():
        try:
            model = AutoModel.from_pretrained(str(directory), local_files_only=True, dtype=torch.float32)
        except (OSError, ValueError, RuntimeError) as error:  # missing/corrupt files, weights that do not fit
            raise HFLoadError(f"cannot load the Hugging Face model in {directory}: {error}",
                               path=directory) from error
    return model, tokenizer


def weight_files(directory: Path) -> list[Path]:
    for pattern in WEIGHT_GLOBS:
        found = sorted(directory.glob(pattern))
        if found:
            return found
    return []


def _transformers_model(directory: Path):
    if not weight_files(directory):
        raise HFLoadError(f"{directory} has a config but no weights ({' or '.join(WEIGHT_GLOBS)})", path=directory)
    from transformers import AutoModelForCausalLM

    with quiet_loading():
        try:
            model = AutoModelForCausalLM.from_pretrained(str(directory), local_files_only=True, dtype=torch.float32)
        except (OSError, ValueError, RuntimeError, KeyError) as error:
            raise HFLoadError(f"cannot load the Hugging Face model in {directory}: {error}",
                               path=directory) from error
    return model.eval()


@contextlib.contextmanager
def quiet_loading():
    """No "Loading weights" progress bar in every notebook that loads a model."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


def sha256_of(files: list[Path]) -> str | None:
    """One sha256 over the files' bytes, in name order (a sharded checkpoint hashes as one)."""
    if not files:
        return None
    digest = hashlib.sha256()
    for path in files:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 22), b""):
                digest.update(chunk)
    return digest.hexdigest()
