"""The GPU check of issue 13: `pretrain()` itself at the gpt2-small preset, bf16-mixed and compiled, on one
GPU three ways: no strategy, DDP on 1 device, and FSDP on 1 device, against the GPU's measured bf16 peak.

    python -m benchmarks.device_check [--steps 40] [--out DIR]

Part g (`benchmarks/gpu.py`) times the preset under a bare Trainer on random ids; this runs the workbench's
own recipe (data module, recorder, strategy plumbing), so it shows what the strategies cost around the same
model. Each variant runs in a fresh process (a process group and compiled graphs go with it), and one that
fails is reported with its error while the others still run. Tokens/s are taken over the steps after
`--warmup` (compilation excluded); MFU = model FLOPs/s over the measured bf16 matmul peak.

Without CUDA, `--smoke` runs the same path at the tiny preset in fp32 (no compile, FSDP skipped), which is
what the tests run: the script is exercised before a lent device's minutes go to it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.worker import call_in_subprocess

VARIANTS = {"single": "auto", "ddp-1-device": "ddp", "fsdp-1-device": "fsdp"}
GPU = dict(preset="gpt2-small", block_size=1024, batch_size=16, precision="bf16-mixed", compile=True)
SMOKE = dict(preset="tiny", block_size=64, batch_size=4, precision="32-true", compile=False)


def run_variant(strategy: str, *, steps: int, warmup: int, smoke: bool) -> dict[str, Any]:
    """One `pretrain()` under `strategy` in this process: steady-state tokens/s and MFU."""
    import lightning as L
    import torch

    from benchmarks.flops import decoder_flops_per_token
    from benchmarks.peak import matmul_peak
    from workbench.modules.pretrain_recipe import pretrain

    shape = SMOKE if smoke else GPU
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.float32 if smoke else torch.bfloat16
    peak = matmul_peak(dtype, sizes=(256,) if smoke else (4096, 8192), seconds=0.2 if smoke else 1.0, device=device)

    class Clock(L.Callback):
        def __init__(self) -> None:
            self.ends: list[float] = []

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            if device == "cuda":
                torch.cuda.synchronize()
            self.ends.append(time.perf_counter())

    clock = Clock()
    settings = dict(corpus="stdlib", max_files=300, tokenizer="byte", max_steps=steps, warmup_steps=min(10, steps),
                    eval_every=steps, eval_batches=1, final_eval_batches=1, distributed_strategy=strategy, **shape)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    outcome = pretrain(settings, callbacks=[clock], printer=None)
    timed = clock.ends[warmup:]
    seconds = (timed[-1] - timed[0]) / max(1, len(timed) - 1)
    tokens_per_s = shape["batch_size"] * shape["block_size"] / seconds
    fpt = decoder_flops_per_token(outcome.model, shape["block_size"])
    return {
        "strategy": outcome.compute["distributed"]["strategy"],
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "parameters": outcome.model.num_parameters(),
        "precision": outcome.compute["precision"],
        "compile": shape["compile"],
        "steps_timed": len(timed) - 1,
        "ms_per_step": round(1000 * seconds, 2),
        "tokens_per_s": round(tokens_per_s, 1),
        "peak_gflops": round(peak["gflops"], 1),
        "mfu": round(fpt * tokens_per_s / (peak["gflops"] * 1e9), 4),
        "val_loss": round(outcome.metrics["val_loss"], 4),
        **({"peak_gpu_memory_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2)} if device == "cuda" else {}),
    }


def device_check(*, steps: int = 40, warmup: int = 10, smoke: bool = False, timeout: float = 900) -> dict[str, Any]:
    """Every variant in its own process; FSDP only where there is CUDA (Lightning refuses it on a CPU)."""
    import torch

    results: dict[str, Any] = {}
    for name, strategy in VARIANTS.items():
        if strategy == "fsdp" and not torch.cuda.is_available():
            results[name] = {"skipped": "skipped: FSDP needs CUDA"}
            continue
        started = time.perf_counter()
        try:
            results[name] = call_in_subprocess("benchmarks.device_check", "run_variant", timeout=timeout,
                                               strategy=strategy, steps=steps, warmup=warmup, smoke=smoke)
        except Exception as error:  # noqa: BLE001 - one variant's failure is a result; the others still run
            results[name] = {"error": str(error)[-2000:]}
        results[name]["wall_s"] = round(time.perf_counter() - started, 1)
        print(f"{name}: {json.dumps(results[name])}", flush=True)
    return results


def format_results(results: dict[str, Any]) -> str:
    rows = ["| variant | strategy | ms/step | tokens/s | MFU vs measured peak | peak GPU memory |",
            "| --- | --- | --- | --- | --- | --- |"]
    for name, r in results.items():
        if "tokens_per_s" in r:
            rows.append(f"| {name} | {r['strategy']} | {r['ms_per_step']} | {r['tokens_per_s']:,.0f} | "
                        f"{100 * r['mfu']:.1f}% of {r['peak_gflops'] / 1e3:.1f} TFLOP/s | "
                        f"{r.get('peak_gpu_memory_gb', '-')} GB |")
        else:
            rows.append(f"| {name} | {r.get('skipped') or 'failed: ' + r.get('error', '?').splitlines()[-1]} "
                        "| | | | |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.device_check", description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=10, help="steps left out of the timing (compilation)")
    parser.add_argument("--smoke", action="store_true", help="the tiny preset in fp32: checks the path on a CPU")
    parser.add_argument("--out", type=Path, help="write device-check.json and .md here")
    args = parser.parse_args(argv)
    results = device_check(steps=args.steps, warmup=args.warmup, smoke=args.smoke)
    table = format_results(results)
    print(table)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "device-check.json").write_text(json.dumps(results, indent=2))
        (args.out / "device-check.md").write_text(table + "\n")
    return 0 if all("error" not in r for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
