"""LoRA through peft: low-rank adapters beside the base's linear projections, and merging them away.

`peft.inject_adapter_in_model` works on any nn.Module, so the workbench
decoder and Hugging Face models take adapters the same way. The targets are
checked here first, so a typo fails with the base's linear layer names rather
than deep inside peft. `merge_lora` folds W + (alpha / r) B A into each base
weight and puts the plain layer back, so an exported model has the original
architecture and state-dict keys.

A linear layer is an `nn.Linear` or transformers' `Conv1D` (GPT-2's projections:
the same map with its weight stored transposed, which peft adapts with
`fan_in_fan_out=True`). Conv1D is recognised by name so this room never
imports transformers.
"""

from __future__ import annotations

import re
import warnings
from collections import defaultdict

from torch import nn

from workbench.config import ConfigError

ADAPTER_MARK = "lora_"  # peft's prefix for adapter parameters (lora_A, lora_B, ...)


def _matches(name: str, target: str) -> bool:
    # peft's rule for a list of targets: the full module name, or its dotted suffix.
    return name == target or name.endswith(f".{target}")


def is_conv1d(module: nn.Module) -> bool:
    """transformers' `Conv1D` (GPT-2): y = x W + b with W stored (in, out), `nf` outputs."""
    return type(module).__name__ == "Conv1D" and hasattr(module, "nf") and isinstance(module.weight, nn.Parameter)


def is_linear(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear) or is_conv1d(module)


def linear_module_names(model: nn.Module) -> list[str]:
    return [name for name, module in model.named_modules() if is_linear(module)]


def check_targets(model: nn.Module, targets: list[str]) -> list[str]:
    """The names of the modules `targets` select; errors for a target that selects nothing, or not only Linears."""
    if has_lora(model):
        raise ConfigError("this model already has LoRA adapters; merge them (merge_lora) before adding new ones")
    linears = linear_module_names(model)
    # One entry per layer kind: "decoder.blocks.*.attn.q_proj" rather than one per block.
    kinds = list(dict.fromkeys(re.sub(r"\.\d+\.", ".*.", name) for name in linears))
    valid = f"the base's linear layers are: {', '.join(kinds) or '(none)'}"
    selected = []
    for target in targets:
        hits = [name for name, _ in model.named_modules() if name and _matches(name, target)]
        if not hits:
            raise ConfigError(f"LoRA target {target!r} matches no module; {valid}")
        not_linear = [name for name in hits if name not in linears]
        if not_linear:
            raise ConfigError(f"LoRA target {target!r} selects non-linear modules ({', '.join(not_linear)}); {valid}")
        selected += [name for name in hits if name not in selected]
    _refuse_tied(model, selected)
    return selected


def _refuse_tied(model: nn.Module, selected: list[str]) -> None:
    """Merging into a weight shared with another layer would change that layer too.

    Owners are counted as distinct module objects, so a layer reachable under two
    names (a backbone that also keeps a list of its blocks) is not mistaken for a tie.
    """
    owners: dict[int, set[int]] = defaultdict(set)
    for module in model.modules():
        for param in module.parameters(recurse=False):
            owners[id(param)].add(id(module))
    modules = dict(model.named_modules())
    for name in selected:
        if len(owners[id(modules[name].weight)]) > 1:
            raise ConfigError(
                f"LoRA target {name!r} shares its weight with another layer (tied embeddings); leave it out"
            )


def add_lora(model: nn.Module, *, rank: int, alpha: float, dropout: float, targets: list[str]) -> list[str]:
    """Inject rank-`rank` adapters (scaled alpha / rank) on the linear layers `targets` select, in place,
    and freeze everything but the adapters. Returns the adapted module names."""
    targets = list(targets)
    selected = check_targets(model, targets)
    from peft import LoraConfig, inject_adapter_in_model  # imports transformers: pay for it only when used

    modules = dict(model.named_modules())
    conv1d = any(is_conv1d(modules[name]) for name in selected)
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets, bias="none",
                        fan_in_fan_out=conv1d)
    with warnings.catch_warnings():
        # peft flips fan_in_fan_out per layer (with a warning) when Linears and Conv1Ds are both targets.
        warnings.filterwarnings("ignore", message="fan_in_fan_out is set to")
        inject_adapter_in_model(config, model)
    for name, param in model.named_parameters():
        param.requires_grad_(ADAPTER_MARK in name)
    return selected


def has_lora(model: nn.Module) -> bool:
    return any(ADAPTER_MARK in name for name, _ in model.named_parameters())


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every LoRA adapter under `model` into its base weight and remove the adapter layers, in place.

    Works on a FinetuneModule, a backbone or any module; the result computes the
    same function (the adapter's dropout aside) with the base's original layers.
    A model without adapters is returned unchanged.
    """
    if not has_lora(model):
        return model
    from peft.tuners.lora import LoraLayer

    adapted = [(name, module) for name, module in model.named_modules() if isinstance(module, LoraLayer)]
    for name, module in adapted:
        module.merge(safe_merge=True)
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, module.get_base_layer())
    return model
