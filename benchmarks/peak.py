"""The machine's own matmul peak: the best of square matmuls over a few sizes.

MFU is only meaningful against what this machine's BLAS actually reaches, so it
is measured here rather than taken from a spec sheet.
"""

from __future__ import annotations

import time

import torch

SIZES = (256, 512, 1024, 2048)


def matmul_gflops(dtype: torch.dtype, size: int, seconds: float, device: str = "cpu") -> float:
    """GFLOP/s of one size: repeated until `seconds` have passed, best of three rounds."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for _ in range(2):
        a @ b
    sync()
    start = time.perf_counter()
    a @ b
    sync()
    reps = max(1, int(seconds / 3 / max(time.perf_counter() - start, 1e-6)))
    best = float("inf")
    for _ in range(3):
        sync()
        start = time.perf_counter()
        for _ in range(reps):
            a @ b
        sync()
        best = min(best, (time.perf_counter() - start) / reps)
    return 2 * size**3 / best / 1e9


def bf16_supported(device: str = "cpu") -> bool:
    if device.startswith("cuda"):
        return torch.cuda.is_bf16_supported()
    try:
        torch.ones(2, 2, dtype=torch.bfloat16) @ torch.ones(2, 2, dtype=torch.bfloat16)
        return True
    except RuntimeError:
        return False


def matmul_peak(dtype: torch.dtype, *, sizes=SIZES, seconds: float = 0.6, device: str = "cpu") -> dict:
    """{'gflops': best over sizes, 'size': where, 'by_size': {size: gflops}}."""
    by_size = {size: round(matmul_gflops(dtype, size, seconds, device), 1) for size in sizes}
    size = max(by_size, key=by_size.get)
    return {"gflops": by_size[size], "size": size, "by_size": by_size}
