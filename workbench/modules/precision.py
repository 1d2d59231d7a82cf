"""`precision: auto`: measure whether bf16 autocast pays for this model at this batch shape, on this device.

Neither the device name nor a guess settles it: the CPU kind under the same project changes from
machine to machine. On a Zen 5 with native bf16 (AVX512_BF16) a large bf16 matmul ran 4.5x faster
than fp32 and a nano pretraining step 1.55x faster; on a Zen 4 with the same flag (2026-12-04) 2.2x
and 1.38x; on an AMD EPYC without it (torch 2.13.0, 2026-12-01) a 1024-square bf16 matmul ran at
0.9 GFLOP/s against fp32's 119, and a nano training step at the demo's shape 13x slower (6.4 s vs
0.48 s). A flag can also be present while the kernels for small or odd shapes do not pay. So on a
CPU `auto` times a few forward + backward passes of the real model on a batch of the training shape,
fp32 and bf16 in alternation, and takes bf16-mixed only when the median pair says it is clearly
faster (`GAIN_NEEDED`): the margin keeps the choice from flipping between runs on a busy machine.
On a CUDA GPU it takes bf16-mixed where the GPU supports bf16. Master weights, optimizer state and
the loss stay fp32 either way (autocast).
The choice and its reason go into compute.json and the model card.
"""

from __future__ import annotations

import functools
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Callable

import torch

GAIN_NEEDED = 1.2  # bf16 must be this many times faster to be chosen
TIMED_PAIRS = 7  # fp32 / bf16 pairs of forward + backward passes, after one untimed pair
MEASUREMENT = "alternating pairs"  # how the timing is taken: remembered choices taken otherwise are measured again


@dataclass(frozen=True)
class PrecisionChoice:
    precision: str  # "32-true" or "bf16-mixed": what the Trainer gets
    reason: str
    fp32_ms: float | None = None  # median forward + backward, when measured
    bf16_ms: float | None = None
    measured_at: str | None = None  # set when the measurement is remembered (precision_memory.py)
    remembered_in: str | None = None  # set when this run reused a remembered measurement

    def record(self) -> dict:
        return {"requested": "auto", **asdict(self)}

    @classmethod
    def from_record(cls, record: dict) -> "PrecisionChoice":
        return cls(**{k: v for k, v in record.items() if k != "requested"})


def choose_precision(loss_of_batch: Callable[[], torch.Tensor], parameters: list[torch.nn.Parameter],
                     device: torch.device) -> PrecisionChoice:
    """bf16-mixed or 32-true for `loss_of_batch` (a forward pass to a scalar loss on a training-shaped batch).

    Runs with the RNG forked and gradients cleared afterwards, so training starts exactly as it
    would have without the measurement.
    """
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return PrecisionChoice("bf16-mixed", f"{torch.cuda.get_device_name(device)} supports bf16")
        return PrecisionChoice("32-true", f"{torch.cuda.get_device_name(device)} has no bf16 support")
    if device.type != "cpu":
        return PrecisionChoice("32-true", f"no bf16 measurement for device {device.type}")
    matmul = cpu_bf16_matmul_speed()
    if matmul < NATIVE_BF16_SPEED:  # no native kernels: the full measurement would only spend seconds confirming it
        return PrecisionChoice("32-true", f"a bf16 matmul ran at {matmul:.2f}x fp32's speed on this CPU "
                               "(no native bf16 kernels)")
    with torch.random.fork_rng(devices=[]):
        pairs = _timed_pairs(loss_of_batch, parameters)  # each pass clears the gradients it made
    ratio = statistics.median(fp32 / bf16 for fp32, bf16 in pairs)
    fp32, bf16 = (round(statistics.median(times), 2) for times in zip(*pairs, strict=True))
    how = f"median of {len(pairs)} alternating fp32/bf16 pairs"
    if ratio >= GAIN_NEEDED:
        return PrecisionChoice("bf16-mixed", f"bf16 autocast measured {ratio:.2f}x faster than fp32 on this CPU "
                               f"at this model and batch shape ({how})", fp32, bf16)
    return PrecisionChoice("32-true", f"bf16 autocast measured {ratio:.2f}x the speed of fp32 on this CPU at this "
                           f"model and batch shape ({how}; needs {GAIN_NEEDED}x)", fp32, bf16)


def capability_choice(device: torch.device, world_size: int) -> PrecisionChoice:
    """bf16-mixed where the device has native bf16, decided without timing a step: for ranks a launcher started.

    Each rank of a torchrun or SLURM run decides on its own, before any process group exists to share
    rank 0's answer. A timed step differs from rank to rank (and could flip near the 1.2x line), so
    ranks could train in different precisions; the device's bf16 support is the same on every rank
    of one kind of machine, so they agree.
    """
    why = f"{world_size} processes started by a launcher decide from bf16 support alone, so every rank agrees"
    if device.type == "cuda":
        supported = torch.cuda.is_bf16_supported()
        name = torch.cuda.get_device_name(device)
        return PrecisionChoice("bf16-mixed" if supported else "32-true",
                               f"{name} {'supports' if supported else 'has no'} bf16 ({why})")
    if device.type == "cpu" and cpu_has_native_bf16():
        return PrecisionChoice("bf16-mixed", f"this CPU has native bf16 kernels ({why})")
    return PrecisionChoice("32-true", f"no native bf16 on this {device.type} ({why})")


NATIVE_BF16_SPEED = 1.0  # a bf16 matmul at least this many times fp32's speed: native kernels


@functools.cache
def cpu_bf16_matmul_speed() -> float:
    """`bf16_matmul_speed()` measured once a process: auto, Muon and the benchmarks ask the same question.

    The two kinds are far apart: ~2-4x fp32's speed on Zen 5 (AVX512_BF16) and on an Intel Xeon with
    AMX at the probe's size, ~0.02x on an AMD EPYC without either, so `NATIVE_BF16_SPEED` between
    them cannot flip on noise.
    """
    return bf16_matmul_speed()


def cpu_has_native_bf16() -> bool:
    """Whether this CPU's bf16 matmuls run on native kernels."""
    return cpu_bf16_matmul_speed() >= NATIVE_BF16_SPEED


def bf16_matmul_speed(size: int = 256, repeats: int = 5) -> float:
    """bf16 matmul speed as a multiple of fp32's, on one square product (a few milliseconds).

    The operands come from a generator of its own: a draw from the global stream would shift every
    later draw (dropout, sampling) of a run that measured against one that did not need to.
    """
    seconds = {}
    generator = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.bfloat16):
        a, b = (torch.randn(size, size, generator=generator).to(dtype) for _ in range(2))
        a @ b
        started = time.perf_counter()
        for _ in range(repeats):
            a @ b
        seconds[dtype] = time.perf_counter() - started
    return seconds[torch.float32] / seconds[torch.bfloat16]


def _timed_pairs(loss_of_batch, parameters) -> list[tuple[float, float]]:
    """(fp32 ms, bf16 ms) of one forward + backward each, pair by pair, which of the two goes first alternating.

    Timed as two blocks (all fp32 passes, then all bf16), a machine that changes speed between them
    decides the choice: on a Zen 4 (2026-12-04) three passes each way read bf16 at 1.14x fp32's speed
    at nanoGPT's recipe and auto trained in fp32, where 150 alternating steps read 1.38x. A pair
    shares its moment, so the median pair ratio holds however the machine's speed drifts.
    """
    pairs = []
    for attempt in range(TIMED_PAIRS + 1):  # the first pair warms kernels and allocations, untimed
        order = (False, True) if attempt % 2 else (True, False)
        ms = {bf16: _pass_ms(loss_of_batch, parameters, bf16=bf16) for bf16 in order}
        if attempt:
            pairs.append((ms[False], ms[True]))
    return pairs


def _pass_ms(loss_of_batch, parameters, *, bf16: bool) -> float:
    started = time.perf_counter()
    # cache_enabled=False as Lightning's bf16-mixed has it, so this times what training will run
    # (alternating in one process the cache made no clear difference: 25.5 ms with it, 26.6 without).
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16, cache_enabled=False):
        loss = loss_of_batch()
    loss.float().backward()
    elapsed = 1000 * (time.perf_counter() - started)
    for p in parameters:
        p.grad = None
    return elapsed
