"""`workbench export RUN OUT`: a workbench model as a folder `transformers` (or `peft`) loads with no workbench code.

    OUT/                         a pretraining run, or a causal-LM fine-tune (LoRA merged)
      config.json                LlamaConfig (interop/llama.py maps every setting)
      model.safetensors          the weights under Llama's names
      generation_config.json
      tokenizer.json, tokenizer_config.json   a fast tokenizer giving the workbench's ids
      README.md                  a Hugging Face model card built from the run's records

    OUT/                         a masked-LM pretraining run (an Encoder)
      config.json                EuroBertConfig (interop/eurobert.py: Llama's fields plus the mask token)
      model.safetensors          the weights under Llama's names, for EuroBertForMaskedLM
      tokenizer.json, ...        the fast tokenizer, with "<mask>" at the encoder's mask id
      README.md

    OUT/                         a causal-LM fine-tune of a Hugging Face base of another family (GPT-2,
                                 Qwen2, ...): that family's own architecture, written by save_pretrained

    OUT/ (adapter=True)          a LoRA fine-tune as a peft adapter over the exported base
      adapter_config.json, adapter_model.safetensors, README.md

Everything is checked before anything is written: the run must hold a model of a kind that
exports faithfully, and OUT must not hold anything yet. The folder is written under a temporary
name beside OUT and renamed at the end, so OUT is either complete or absent; a failure part-way
leaves the partial folder and names it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import safetensors.torch

from workbench.errors import RequestError
from workbench.interop import eurobert, llama
from workbench.interop.hf_card import hub_model_card
from workbench.interop.llama import ExportError

ADAPTER_CONFIG, ADAPTER_WEIGHTS = "adapter_config.json", "adapter_model.safetensors"
PEFT_PREFIX = "base_model.model."  # where peft puts the wrapped model's module names


@dataclass
class ExportPlan:
    """What an export will write, decided (and checked) before any file is touched."""

    run: Any  # RunFolder, or None for a bare checkpoint folder
    source: Path
    kind: str  # "model" (a Decoder as Llama), "masked_lm" (an Encoder as EuroBERT), "native" (a Hugging Face
    # model as itself) or "adapter"
    model: Any  # the Decoder or HFCausalLM to write (merged); for an adapter, the base's Decoder
    tokenizer: Any
    adapter: dict | None = None  # the LoRA record and tensors of an adapter export


def export(run: str | os.PathLike, out: str | os.PathLike, *, adapter: bool = False, overwrite: bool = False) -> Path:
    """Export the model of `run` (a run folder or checkpoint folder) into the new folder `out`; returns `out`.

    `adapter=True` takes a LoRA fine-tuning run and writes its adapter alone, for
    `peft.PeftModel.from_pretrained(<the base exported on its own>, out)`.
    """
    out = Path(out)
    plan = plan_export(run, adapter=adapter)
    _check_destination(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        {"adapter": _write_adapter, "native": _write_native, "model": _write_model,
         "masked_lm": _write_masked_lm}[plan.kind](plan, partial)
        (partial / "README.md").write_text(hub_model_card(plan), encoding="utf-8")
    except BaseException as error:
        raise ExportError(f"the export stopped part-way ({error}); what it wrote is in {partial}") from error
    if out.exists():
        shutil.rmtree(out)
    partial.rename(out)
    return out


def plan_export(run: str | os.PathLike, *, adapter: bool = False) -> ExportPlan:
    """Load what `run` holds and check that it exports faithfully; ExportError naming the reason otherwise."""
    from workbench.modules.checkpoint import CONFIG, checkpoint_dir, load_pretrained
    from workbench.runs.run_folder import FINETUNING, RunFolder

    source = Path(run)
    if not source.exists():
        raise ExportError(f"no such run folder: {source}")
    folder = RunFolder(source)
    if folder.kind == FINETUNING or folder.has_finetuned:
        return _plan_finetuned(folder, adapter)
    if adapter:
        raise ExportError(f"{source} is a pretraining run; adapter=True (--adapter) takes a LoRA fine-tuning run")
    try:
        directory = checkpoint_dir(source)
    except Exception as error:
        raise ExportError(f"{source} holds no model to export: {error}") from error
    record = json.loads((directory / CONFIG).read_text(encoding="utf-8"))
    if "architecture" not in record:
        raise ExportError(f"{directory} is already a Hugging Face model folder (its config has no workbench "
                          "'architecture'); there is nothing to convert")
    if record["architecture"] not in ("decoder", "encoder"):
        raise ExportError(f"{source} holds a workbench {record['architecture']!r} model; the export writes text "
                          "models (a decoder as LlamaForCausalLM, an encoder as EuroBertForMaskedLM)")
    decoder, tokenizer = load_pretrained(directory)
    llama.llama_config_values(decoder.config)  # refuses a setting Llama cannot express
    kind = "masked_lm" if record["architecture"] == "encoder" else "model"
    return ExportPlan(folder if folder.metrics is not None else None, source, kind, decoder, tokenizer)


def _plan_finetuned(folder, adapter: bool) -> ExportPlan:
    from workbench.models import DecoderBackbone
    from workbench.models.hf_causal import HFCausalBackbone, HFCausalLM
    from workbench.modules.finetuned import ADAPTER_FILE, FINETUNED_DIR, RECORD, load_finetuned

    record_path = folder.path / FINETUNED_DIR / RECORD
    if not record_path.is_file():
        raise ExportError(f"{folder.path} is a fine-tuning run without a saved model ({FINETUNED_DIR}/{RECORD}); "
                          "run it with save_model=True")
    record = json.loads(record_path.read_text(encoding="utf-8"))
    task_kind = record.get("task_kind")
    if task_kind != "causal_lm":
        raise ExportError(f"{folder.path} fine-tuned a {task_kind} head; a Hugging Face causal LM has only its LM "
                          "head, so only causal_lm fine-tunes export (its base exports on its own)")
    finetuned = load_finetuned(folder.path)
    backbone = finetuned.module.backbone
    tokenizer = finetuned.text_encoder.tokenizer
    if isinstance(backbone, HFCausalBackbone):
        if adapter:
            raise ExportError(f"{folder.path} fine-tuned a Hugging Face {backbone.config.model_type!r} base; "
                              "adapter=True covers workbench decoders (and Llamas mapped onto them)")
        return ExportPlan(folder, folder.path, "native", HFCausalLM(backbone.model), tokenizer)
    if not isinstance(backbone, DecoderBackbone):
        raise ExportError(f"{folder.path} fine-tuned a {type(backbone).__name__} base "
                          f"({record['settings'].get('base')}), which is not a causal LM")
    decoder = backbone.decoder
    llama.llama_config_values(decoder.config)
    if not adapter:
        return ExportPlan(folder, folder.path, "model", decoder, tokenizer)
    lora = record.get("lora")
    adapter_path = folder.path / FINETUNED_DIR / ADAPTER_FILE
    if record["settings"].get("strategy") != "lora" or not lora or not adapter_path.is_file():
        raise ExportError(f"{folder.path} is not a LoRA fine-tune with its adapter saved "
                          f"(strategy={record['settings'].get('strategy')!r}); adapter=True needs strategy='lora'")
    tensors = safetensors.torch.load_file(str(adapter_path))
    return ExportPlan(folder, folder.path, "adapter", decoder, tokenizer, adapter={**lora, "tensors": tensors})


def _check_destination(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise RequestError(f"the export folder {out} is a file")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise RequestError(f"the export folder {out} is not empty; choose a new folder or pass overwrite=True "
                           "(--overwrite)")


def _write_model(plan: ExportPlan, directory: Path) -> None:
    from transformers import GenerationConfig, LlamaConfig

    config = plan.model.config
    hf_config = LlamaConfig(**llama.llama_config_values(config), architectures=[llama.ARCHITECTURE],
                            dtype="float32")
    hf_config.save_pretrained(directory)
    GenerationConfig().save_pretrained(directory)  # greedy by default; the positions are in config.json
    tensors = llama.to_llama_state(plan.model.state_dict(), config)
    safetensors.torch.save_file(tensors, str(directory / "model.safetensors"), metadata={"format": "pt"})
    from workbench.interop.tokenizer import save_hf_tokenizer

    save_hf_tokenizer(plan.tokenizer, directory, model_max_length=config.block_size)


def _write_masked_lm(plan: ExportPlan, directory: Path) -> None:
    """An Encoder as EuroBertForMaskedLM, its tokenizer with the mask token at the encoder's mask id."""
    from transformers import EuroBertConfig

    from workbench.interop.tokenizer import save_hf_tokenizer

    config = plan.model.config
    EuroBertConfig(**eurobert.eurobert_config_values(config), architectures=[eurobert.ARCHITECTURE],
                   dtype="float32").save_pretrained(directory)
    tensors = llama.to_llama_state(plan.model.state_dict(), config)
    safetensors.torch.save_file(tensors, str(directory / "model.safetensors"), metadata={"format": "pt"})
    save_hf_tokenizer(plan.tokenizer, directory, model_max_length=config.block_size,
                      mask=(eurobert.MASK_TOKEN, config.mask_token_id))


def _write_native(plan: ExportPlan, directory: Path) -> None:
    """A Hugging Face model fine-tuned here goes out in its own architecture, with its own tokenizer."""
    from workbench.interop.tokenizer import save_hf_tokenizer

    plan.model.model.save_pretrained(directory, safe_serialization=True)
    save_hf_tokenizer(plan.tokenizer, directory, model_max_length=plan.model.config.block_size)


def adapter_weight_name(name: str, config) -> str:
    """A LoRA tensor of the fine-tuned module -> its name in a peft adapter over LlamaForCausalLM."""
    inner = name.removeprefix("backbone.decoder.")
    layer, _, rest = inner.partition(".lora_")  # "blocks.0.attn.q_proj", "A.default.weight"
    theirs = llama.weight_names(config)[f"{layer}.weight"].removesuffix(".weight")
    matrix = rest.split(".")[0]  # A or B
    return f"{PEFT_PREFIX}{theirs}.lora_{matrix}.weight"


def _write_adapter(plan: ExportPlan, directory: Path) -> None:
    from peft import LoraConfig

    lora, config = plan.adapter, plan.model.config
    tensors = {adapter_weight_name(name, config): tensor.contiguous()
               for name, tensor in lora["tensors"].items()}
    targets = sorted({name.rpartition(".")[2] for name in lora["modules"]})
    LoraConfig(r=lora["rank"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"], target_modules=targets,
               bias="none", task_type="CAUSAL_LM", base_model_name_or_path=str(lora.get("base") or "")
               ).save_pretrained(str(directory))
    safetensors.torch.save_file(tensors, str(directory / ADAPTER_WEIGHTS), metadata={"format": "pt"})
