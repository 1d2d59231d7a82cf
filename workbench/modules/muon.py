"""Muon on the hidden matrices and AdamW on the rest, as ONE optimizer.

Why one object: Lightning's automatic optimization steps, zeroes and checkpoints the optimizer
`configure_optimizers` returns, and everything around it expects a single one: the
warmup-cosine `LambdaLR`, clipping by the global norm (before the step), `accumulate_grad_batches`
(one step per N batches) and resume (`state_dict` / `load_state_dict` in the training state).
Two optimizers would mean manual optimization and two schedules. So `MuonWithAdamW` holds both
and is itself a `torch.optim.Optimizer` whose `param_groups` are the inner optimizers' group
dicts (the same objects, so the schedule's lr reaches both) and whose `state` is the one dict
both inner optimizers write into (each parameter lives in exactly one of them). The base class's
`zero_grad`, `state_dict` and `load_state_dict` then work over the whole, and a loaded state is
handed back to the inner optimizers (`_share`).

`Muon` is `torch.optim.Muon` with one change: the Newton-Schulz iteration runs in bf16 only on
CUDA. torch's runs it in bf16 everywhere, and on a CPU without native bf16 kernels (this
project's AMD EPYC: a bf16 matmul at ~0.02x fp32's speed) that costs ~30 ms per matrix, ~20x the
whole training step at the nanoGPT recipe's size; in fp32 it is ~1 ms. Everything else (momentum,
Nesterov, coefficients, decoupled decay, the lr adjustment) is torch's, step for step; with the
iteration in bf16 the update is bitwise torch's own (tests/modules/test_muon.py).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch


def orthogonalize(
    grad: torch.Tensor, coefficients: tuple[float, float, float], steps: int, eps: float, dtype: torch.dtype
) -> torch.Tensor:
    """torch's quintic Newton-Schulz iteration (torch.optim._muon), in `dtype`: ~U V^T of grad = U S V^T."""
    a, b, c = coefficients
    x = grad.to(dtype, copy=True)  # never the momentum buffer itself (nesterov=False hands it in)
    if grad.size(0) > grad.size(1):
        x = x.T
    x.div_(x.norm().clamp(min=eps))  # spectral norm at most 1
    for _ in range(steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if grad.size(0) > grad.size(1) else x


def adjusted_lr(lr: float, adjust_lr_fn: str | None, shape: torch.Size) -> float:
    """torch's per-matrix rate: "original" sqrt(max(1, A/B)); "match_rms_adamw" 0.2 sqrt(max(A, B))."""
    rows, cols = shape[:2]
    if adjust_lr_fn == "match_rms_adamw":
        return lr * 0.2 * math.sqrt(max(rows, cols))
    return lr * math.sqrt(max(1, rows / cols))


def iteration_dtype(device: torch.device) -> torch.dtype:
    return torch.bfloat16 if device.type == "cuda" else torch.float32


class Muon(torch.optim.Muon):
    """torch.optim.Muon, orthogonalizing in bf16 on CUDA and in fp32 elsewhere (see the module docstring)."""

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params: list[torch.Tensor] = []
            grads: list[torch.Tensor] = []
            buffers: list[torch.Tensor] = []
            self._init_group(group, params, grads, buffers)
            lr, decay, momentum = float(group["lr"]), group["weight_decay"], group["momentum"]
            for param, grad, buffer in zip(params, grads, buffers, strict=True):
                buffer.lerp_(grad, 1 - momentum)
                update = grad.lerp(buffer, momentum) if group["nesterov"] else buffer
                update = orthogonalize(update, group["ns_coefficients"], group["ns_steps"], group["eps"],
                                       iteration_dtype(param.device))
                param.mul_(1 - lr * decay)
                param.add_(update, alpha=-adjusted_lr(lr, group["adjust_lr_fn"], param.shape))
        return loss


class MuonWithAdamW(torch.optim.Optimizer):
    """Muon's groups first, then AdamW's, stepped as one optimizer (see the module docstring)."""

    def __init__(self, muon: torch.optim.Optimizer, adamw: torch.optim.Optimizer) -> None:
        self.muon, self.adamw = muon, adamw
        self.muon_groups = len(muon.param_groups)
        self._built = False
        super().__init__([*muon.param_groups, *adamw.param_groups], defaults={})  # the same group dicts
        self._built = True
        self._share()

    def _share(self) -> None:
        """Point both inner optimizers at this one's group dicts and state (after a load, new objects)."""
        self.muon.param_groups = self.param_groups[: self.muon_groups]
        self.adamw.param_groups = self.param_groups[self.muon_groups:]
        self.muon.state = self.adamw.state = self.state

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()  # forward and backward once; clipping (Lightning's) happens inside it
        self.muon.step()
        self.adamw.step()
        return loss

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        if self._built:  # a group added here would be stepped by neither inner optimizer
            raise NotImplementedError("MuonWithAdamW cannot take new parameter groups after it is built "
                                      "(gradual unfreezing needs optimizer='adamw')")
        super().add_param_group(param_group)

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "muon": self.muon, "adamw": self.adamw, "muon_groups": self.muon_groups,
                "_built": True}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Optimizer.load_state_dict installs the loaded groups and state through here, as unpickling does.
        super().__setstate__(state)
        self._share()
