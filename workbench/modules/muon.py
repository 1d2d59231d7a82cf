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

`Muon` is `torch.optim.Muon` with two changes to the Newton-Schulz iteration:
- It runs in bf16 on CUDA and on CPUs with native bf16 kernels, and in fp32 on the others. torch's
  runs it in bf16 everywhere, and on a CPU without native kernels (this project's AMD EPYC: a bf16
  matmul at ~0.02x fp32's speed) that costs ~30 ms per matrix, ~20x the whole training step at
  the nanoGPT recipe's size.
- Matrices of the same shape are orthogonalized together, one batched matmul per product instead
  of one per matrix: a model's hidden matrices come in a few shapes (nano: 28 matrices, 2 shapes).
  For nano's 28, one iteration took 18 ms looped in fp32, 12.5 ms looped in bf16 and 4.9 ms
  batched in bf16 (Zen 5 with AVX512_BF16, torch 2.13); batched fp32 was 16.9 ms.
Everything else (momentum, Nesterov, coefficients, decoupled decay, the lr adjustment) is torch's,
step for step; with the iteration in bf16 the update is bitwise torch's own (batched matmuls give
the same bits as one at a time: tests/modules/test_muon.py).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch


def orthogonalize(
    grad: torch.Tensor, coefficients: tuple[float, float, float], steps: int, eps: float, dtype: torch.dtype
) -> torch.Tensor:
    """torch's quintic Newton-Schulz iteration (torch.optim._muon), in `dtype`: ~U V^T of grad = U S V^T."""
    return orthogonalize_all([grad], coefficients, steps, eps, dtype)[0]


def orthogonalize_all(
    grads: list[torch.Tensor], coefficients: tuple[float, float, float], steps: int, eps: float, dtype: torch.dtype
) -> list[torch.Tensor]:
    """`orthogonalize` of each matrix, the ones of one shape stacked and iterated together."""
    a, b, c = coefficients
    tall = [g.size(0) > g.size(1) for g in grads]
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, g in enumerate(grads):  # wide orientation (rows <= columns), as torch iterates
        by_shape.setdefault((*(g.shape[::-1] if tall[i] else g.shape), g.device), []).append(i)
    out: list[torch.Tensor | None] = [None] * len(grads)
    for members in by_shape.values():
        # A new tensor in `dtype`: never the momentum buffer itself (nesterov=False hands it in).
        x = torch.stack([grads[i].T if tall[i] else grads[i] for i in members]).to(dtype)
        x = x / torch.linalg.vector_norm(x, dim=(1, 2), keepdim=True).clamp(min=eps)  # spectral norm at most 1
        for _ in range(steps):
            gram = x @ x.mT
            x = torch.baddbmm(x, torch.baddbmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
        for i, update in zip(members, x.unbind(), strict=True):
            out[i] = update.T if tall[i] else update
    return out


def adjusted_lr(lr: float, adjust_lr_fn: str | None, shape: torch.Size) -> float:
    """torch's per-matrix rate: "original" sqrt(max(1, A/B)); "match_rms_adamw" 0.2 sqrt(max(A, B))."""
    rows, cols = shape[:2]
    if adjust_lr_fn == "match_rms_adamw":
        return lr * 0.2 * math.sqrt(max(rows, cols))
    return lr * math.sqrt(max(1, rows / cols))


def iteration_dtype(device: torch.device) -> torch.dtype:
    """bf16 on CUDA and on a CPU whose bf16 matmuls run natively (measured once), fp32 elsewhere."""
    from workbench.modules.precision import cpu_has_native_bf16

    return torch.bfloat16 if device.type == "cuda" or cpu_has_native_bf16() else torch.float32


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
            if not params:
                continue
            lr, decay, momentum = float(group["lr"]), group["weight_decay"], group["momentum"]
            updates = []
            for grad, buffer in zip(grads, buffers, strict=True):
                buffer.lerp_(grad, 1 - momentum)
                updates.append(grad.lerp(buffer, momentum) if group["nesterov"] else buffer)
            updates = orthogonalize_all(updates, group["ns_coefficients"], group["ns_steps"], group["eps"],
                                        iteration_dtype(params[0].device))
            for param, update in zip(params, updates, strict=True):
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
