"""The saved-model format: a folder any later process can load with no training code.

    checkpoint/
      model.safetensors   weights (tied tensors stored once)
      config.json         architecture name and its config
      tokenizer.json      the tokenizer a text model was trained with, or
      images.json         a vision model's inputs: image size, channels, normalization, class names

Every file is written under a temporary name and renamed, so a crash never
leaves a half-written file under the final name.
"""

from __future__ import annotations

import json
from pathlib import Path

import safetensors.torch
from safetensors import SafetensorError

from workbench.data.image_inputs import ImageInputs, load_image_inputs
from workbench.data.tokenizers import Tokenizer, load_tokenizer
from workbench.errors import RequestError, ResourceError
from workbench.files import atomic_write
from workbench.models import Decoder, DecoderConfig, Encoder, EncoderConfig, ViT, ViTConfig

WEIGHTS, CONFIG = "model.safetensors", "config.json"
ARCHITECTURES = {"decoder": (DecoderConfig, Decoder), "encoder": (EncoderConfig, Encoder), "vit": (ViTConfig, ViT)}
VISION_ARCHITECTURES = ("vit",)  # fed images (ImageInputs), not token ids (a Tokenizer)


class CheckpointError(ResourceError):
    """A checkpoint folder is missing, incomplete or corrupted."""


def save_pretrained(directory: str | Path, model: Decoder | ViT, tokenizer: Tokenizer | ImageInputs) -> Path:
    """Write weights, config and the model's input encoding (a text model's tokenizer, a ViT's image inputs)
    into `directory`; returns it."""
    directory = Path(directory)
    # By exact type: an Encoder is a Decoder too.
    architecture = next((name for name, (_, cls) in ARCHITECTURES.items() if type(model) is cls), None)
    if architecture is None:
        raise RequestError(f"cannot save a {type(model).__name__}: the checkpoint format holds "
                           f"{', '.join(cls.__name__ for _, cls in ARCHITECTURES.values())} (save an MAE's .encoder)")
    wanted = ImageInputs if architecture in VISION_ARCHITECTURES else Tokenizer
    if not isinstance(tokenizer, wanted):
        raise RequestError(f"a {architecture} checkpoint is saved with its {wanted.__name__}, got "
                           f"{type(tokenizer).__name__}")
    directory.mkdir(parents=True, exist_ok=True)
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


def checkpoint_architecture(directory: Path) -> str | None:
    """The architecture name a checkpoint folder's config records (None when unreadable: loading says why)."""
    try:
        return json.loads((directory / CONFIG).read_text()).get("architecture")
    except (OSError, json.JSONDecodeError, AttributeError):
        return None


def load_pretrained(path: str | Path, *, device: str = "cpu") -> tuple[Decoder | ViT, Tokenizer | ImageInputs]:
    """Rebuild the model (in eval mode) and its input encoding from a run or checkpoint folder: a text model's
    tokenizer, or a ViT's image inputs (size, channels, normalization, class names)."""
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
    if record["architecture"] in VISION_ARCHITECTURES:
        try:
            inputs = load_image_inputs(directory)
        except ResourceError as error:
            raise CheckpointError(str(error), path=error.path) from None
        return model.to(device).eval(), inputs
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
