"""Where a training step's time goes at nanoGPT's Shakespeare-char recipe: the workbench model beside nanoGPT's.

    python -m benchmarks.profile_step

Both models step in a bare loop (fp32 AdamW, clipping; no Lightning) on the same random 12 x 64 batch:
3 alternating rounds of 60 timed steps give the step ratio, then torch.profiler lists each model's top
ops by self CPU time over 20 steps, and one more round times the workbench step under bf16 autocast.
Issue 15 asks for the profile before any change to the step; this prints it.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch.profiler import ProfilerActivity, profile

from benchmarks import nanogpt_reference as ref
from workbench.models import Decoder, DecoderConfig
from workbench.modules.optim import OptimConfig, adamw
from workbench.modules.pretrain import lm_loss

VOCAB, BATCH, BLOCK = 65, 12, 64


def steppers():
    torch.manual_seed(0)
    ours = Decoder(DecoderConfig.from_preset("nano", vocab_size=VOCAB, block_size=BLOCK, mlp_hidden=344))
    theirs = ref.GPT(ref.GPTConfig(vocab_size=VOCAB))
    x, y = torch.randint(0, VOCAB, (BATCH, BLOCK)), torch.randint(0, VOCAB, (BATCH, BLOCK))
    ours_opt = adamw(ours, OptimConfig(learning_rate=1e-3, max_steps=2000, warmup_steps=100, weight_decay=0.1))
    theirs_opt = torch.optim.AdamW(theirs.parameters(), lr=1e-3, fused=True)

    def workbench_step(bf16: bool = False) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16, cache_enabled=False):  # as Lightning
            loss = lm_loss(ours(x).logits, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(ours.parameters(), 1.0)
        ours_opt.step()
        ours_opt.zero_grad(set_to_none=True)

    def nanogpt_step() -> None:
        _, loss = theirs(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(theirs.parameters(), 1.0)
        theirs_opt.step()
        theirs_opt.zero_grad(set_to_none=True)

    return workbench_step, nanogpt_step


def median_ms(step, steps: int = 60, warmup: int = 10) -> float:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def main() -> None:
    workbench_step, nanogpt_step = steppers()
    rounds = [(median_ms(workbench_step), median_ms(nanogpt_step)) for _ in range(3)]
    for ours, theirs in rounds:
        print(f"round: workbench {ours:.2f} ms, nanoGPT {theirs:.2f} ms")
    ours, theirs = (statistics.median(r[i] for r in rounds) for i in (0, 1))
    print(f"median: workbench at {theirs / ours:.2f}x nanoGPT's speed")
    bf16 = median_ms(lambda: workbench_step(bf16=True), steps=10, warmup=2)
    print(f"workbench under bf16 autocast: {bf16:.2f} ms, {ours / bf16:.2f}x fp32's speed")
    for name, step in (("workbench", workbench_step), ("nanoGPT", nanogpt_step)):
        with profile(activities=[ProfilerActivity.CPU]) as profiled:
            for _ in range(20):
                step()
        print(f"\n{name}: top ops by self CPU time over 20 steps")
        print(profiled.key_averages().table(sort_by="self_cpu_time_total", row_limit=18, max_name_column_width=40))


if __name__ == "__main__":
    main()
