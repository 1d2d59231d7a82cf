"""The saved-model format: a folder any later process can load with no training code.

    checkpoint/
      model.safetensors   weights (tied tensors stored once)
      config.json         architecture name and its config
      tokenizer.json      the tokenizer the model was trained with

Every file is written under a temporary name and renamed, so a crash never
leaves a half-written file under the final name.
"""

from __future__ import annotations

import json
from pathlib import Path

import safetensors.torch
from safetensors import SafetensorError

from workbench.data.tokenizers import Tokenizer, load_tokenizer
from workbench.errors import RequestError, ResourceError
from workbench.files import atomic_write
from workbench.models import Decoder, DecoderConfig, Encoder, EncoderConfig

WEIGHTS, CONFIG = "model.safetensors", "config.json"
ARCHITECTURES = {"decoder": (DecoderConfig, Decoder), "encoder": (EncoderConfig, Encoder)}


class CheckpointError(ResourceError):
    """A checkpoint folder is missing, incomplete or corrupted."""


def save_pretrained(directory: str | Path, model: Decoder, tokenizer: Tokenizer) -> Path:
    """Write weights, config and tokenizer into `directory`; returns it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # By exact type: an Encoder is a Decoder too.
    architecture = next(name for name, (_, cls) in ARCHITECTURES.items() if type(model) is cls)
    with atomic_write(directory / WEIGHTS) as temporary:
        safetensors.torch.save_model(model, str(temporary), metadata={"architecture": architecture})
    with atomic_write(directory / CONFIG) as temporary:
        temporary.write_text(json.dumps({"architecture": architecture, "config": model.config.to_dict()}, indent=2))
    tokenizer.save(directory)
    return directory


def checkpoint_dir(path: str | Path) -> Path:
    """Accept a checkpoint folder or a run folder holding `checkpoint/`."""
    path = Path(path)
    for candidate in (path, path / "checkpoint"):
        if (candidate / CONFIG).is_file():
            return candidate
    if not path.exists():
        raise CheckpointError(f"no such run or checkpoint folder: {path}")
    raise CheckpointError(
        f"{path} holds no saved model: expected {CONFIG} there or in {path / 'checkpoint'} "
        "(a run that failed before training finished has no checkpoint)"
    )


def load_pretrained(path: str | Path, *, device: str = "cpu") -> tuple[Decoder, Tokenizer]:
    """Rebuild the model (in eval mode) and its tokenizer from a run or checkpoint folder."""
    directory = checkpoint_dir(path)
    try:
        record = json.loads((directory / CONFIG).read_text())
        config_cls, model_cls = ARCHITECTURES[record["architecture"]]
        config = config_cls.from_dict(record["config"])
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise CheckpointError(f"{directory / CONFIG} is not a valid model config: {error}") from error
    weights = directory / WEIGHTS
    try:
        model = model_cls.from_state(config, read_weights(weights))
    except RequestError as error:
        raise CheckpointError(f"{weights} does not match its record: {error}") from None
    return model.to(device).eval(), load_tokenizer(directory)


def read_weights(weights: Path) -> dict:
    """The tensors of a safetensors file; CheckpointError naming the file if it is missing or unreadable."""
    if not weights.is_file():
        raise CheckpointError(f"missing weights file {weights}")
    try:
        return safetensors.torch.load_file(str(weights))
    except (SafetensorError, OSError, RuntimeError) as error:
        raise CheckpointError(f"cannot read weights from {weights} (truncated or corrupted?): {error}") from None


def load_weights(module, weights: Path, *, device: str = "cpu") -> None:
    """Fill `module` from a safetensors file; CheckpointError naming the file if it is missing,
    unreadable, or holds other tensors than the module has."""
    if not weights.is_file():
        raise CheckpointError(f"missing weights file {weights}")
    try:
        missing, unexpected = safetensors.torch.load_model(module, str(weights), strict=False, device=device)
    except (SafetensorError, OSError, RuntimeError) as error:
        raise CheckpointError(f"cannot read weights from {weights} (truncated or corrupted?): {error}") from None
    if missing or unexpected:
        raise CheckpointError(f"{weights} does not match its record: missing {missing}, unexpected {unexpected}")
