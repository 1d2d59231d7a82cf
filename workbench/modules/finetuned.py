"""A fine-tuned model saved in its run folder, and loaded back for probing or use.

    finetuned/
      model.safetensors   base (LoRA adapters merged in) + head weights
      finetuned.json      how to rebuild them: settings, head kind and size, task kind, label names
      adapter.safetensors a LoRA fine-tune's adapters alone, before merging (for a peft export)

Loading rebuilds the base's architecture and text encoder with `load_base`
from the recorded base (a pretraining run folder, `minilm`, a Hugging Face
folder) and then replaces every weight with the saved ones, so the base's own
weights only need to exist, not to be unchanged. A vision fine-tune (its record
says "modality": "image") is rebuilt with `load_vision_base` and brings the
image inputs (size, channels, normalization) in place of a text encoder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import safetensors.torch

from workbench.data.image_inputs import ImageInputs
from workbench.data.text_encoders import TextEncoder
from workbench.files import atomic_write
from workbench.heads import HEAD_FOR_TASK, build_head
from workbench.modules.base_model import LoadedBase, LoadedVisionBase, load_base, load_vision_base
from workbench.modules.checkpoint import WEIGHTS, CheckpointError, load_weights
from workbench.modules.finetune import FinetuneModule
from workbench.modules.lora import ADAPTER_MARK, has_lora, merge_lora

FINETUNED_DIR, RECORD, ADAPTER_FILE = "finetuned", "finetuned.json", "adapter.safetensors"
IMAGE = "image"  # the record's modality for a fine-tuned ViT


class FinetunedRun(Protocol):
    """What saving needs from a fine-tuning run (the recipe's FinetuneOutcome is one); the format knows no recipe."""

    module: FinetuneModule
    base: LoadedBase | LoadedVisionBase
    data: dict[str, Any]  # holds "settings" (the run's settings as a dict) and "task" (its kind and label names)


@dataclass
class Finetuned:
    """A fine-tuned model ready for inference: `module(input_ids, attention_mask)` gives the head's output
    (`module(pixels)` for a vision fine-tune, fed through `image_inputs.transform()`)."""

    module: FinetuneModule
    text_encoder: TextEncoder | None  # None for a vision fine-tune
    task_kind: str
    label_names: list[str] | None
    settings: dict[str, Any]
    image_inputs: ImageInputs | None = None  # a vision fine-tune's image size, channels and normalization


def save_finetuned(directory: str | Path, outcome: FinetunedRun) -> Path:
    """Write the fine-tuned weights (LoRA merged) and their rebuild record into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    settings = outcome.data["settings"]
    adapter = _adapter(outcome.module, settings)
    module = merge_lora(outcome.module)  # in place: training is over, and the merged model computes the same
    task = outcome.data["task"]
    label_names = task.get("label_names")
    vision = isinstance(outcome.base, LoadedVisionBase)
    record = {
        "settings": settings,
        "head": {
            "kind": type(module.head).__name__,
            "build": {
                "kind": HEAD_FOR_TASK[task["kind"]] if vision else settings["head"] or HEAD_FOR_TASK[task["kind"]],
                "hidden_size": outcome.base.backbone.hidden_size,
                "num_labels": len(label_names) if label_names else None,
                # a vision setting names pooling otherwise (cls, mean): the head's own name
                "pooling": module.head.pooling if vision
                else settings["pooling"] or outcome.base.backbone.default_pooling,
                "dropout": settings["dropout"],
            },
        },
        "task_kind": task["kind"],
        "label_names": label_names,
    }
    if vision:
        record["modality"] = IMAGE
    if adapter is not None:
        tensors, record["lora"] = adapter
        with atomic_write(directory / ADAPTER_FILE) as temporary:
            safetensors.torch.save_file(tensors, str(temporary))
    with atomic_write(directory / WEIGHTS) as temporary:
        safetensors.torch.save_model(module, str(temporary))
    with atomic_write(directory / RECORD) as temporary:
        temporary.write_text(json.dumps(record, indent=2), encoding="utf-8")
    return directory


def _adapter(module, settings: dict[str, Any]) -> tuple[dict, dict] | None:
    """A LoRA fine-tune's adapter tensors and how they were made, taken before merging folds them away."""
    if not has_lora(module):
        return None
    tensors = {name: t.detach().contiguous() for name, t in module.state_dict().items() if ADAPTER_MARK in name}
    modules = sorted({name.partition(f".{ADAPTER_MARK}")[0] for name in tensors})
    record = {"rank": settings["lora_rank"], "alpha": settings["lora_alpha"], "dropout": settings["lora_dropout"],
              "modules": modules, "base": settings["base"]}
    return tensors, record


def load_finetuned(path: str | Path, *, device: str = "cpu") -> Finetuned:
    """Rebuild a fine-tuned model (in eval mode) from a fine-tuning run folder or its `finetuned/` folder."""
    path = Path(path)
    directory = path if (path / RECORD).is_file() else path / FINETUNED_DIR
    if not (directory / RECORD).is_file():
        raise CheckpointError(f"{path} holds no fine-tuned model: expected {RECORD} there or in {directory}")
    try:
        record = json.loads((directory / RECORD).read_text())
        settings, build, task_kind = record["settings"], record["head"]["build"], record["task_kind"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise CheckpointError(f"{directory / RECORD} is not a valid fine-tuned model record: {error}") from None
    vision = record.get("modality") == IMAGE
    base = (load_vision_base(settings["base"], seed=settings["seed"]) if vision
            else load_base(settings["base"], max_length=settings["max_length"], seed=settings["seed"]))
    head = build_head(**build, backbone=base.backbone)
    module = FinetuneModule(base.backbone, head, None, None, task_kind, label_names=record["label_names"])
    load_weights(module, directory / WEIGHTS, device=device)
    return Finetuned(module.to(device).eval(), None if vision else base.text_encoder, task_kind,
                     record["label_names"], settings, image_inputs=base.inputs if vision else None)

