"""The training runs behind parts b, c and d: the workbench under Lightning, the same
model and data in a bare loop, and the nanoGPT reference, all timed the same way.

Each run is a function returning a JSON-able dict; `worker.py` runs one in a fresh
process so peak resident memory is that run's own. Part c's two loops share one process
and alternate step by step (`run_interleaved`): apart, they differed more from one
process to the next than the overhead they were to measure.
"""

from __future__ import annotations

import resource
import statistics
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from benchmarks import nanogpt_reference as ref
from benchmarks.flops import decoder_flops_per_token, flops_per_token
from benchmarks.quality import QualityClock

# nanoGPT's README CPU recipe on shakespeare_char, in the workbench's settings. Its config
# (config/train_shakespeare_char.py) gives lr 1e-3 -> 1e-4, warmup 100, weight decay 0.1, clip 1.0.
# mlp_hidden 344: SwiGLU has three matrices, so 3 * 128 * 344 matches GPT's 2 * 128 * 512 and the
# model has nanoGPT's 0.80M parameters.
RECIPE: dict[str, Any] = dict(
    corpus="text", validation_fraction=0.1, tokenizer="char", preset="nano", block_size=64,
    model_overrides={"mlp_hidden": 344}, dropout=0.0, batch_size=12, max_steps=2000, learning_rate=1e-3,
    min_lr_ratio=0.1, warmup_steps=100, weight_decay=0.1, grad_clip=1.0,
)  # precision: the workbench's default, auto


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def rss_now_mb() -> float | None:
    """Resident memory now (Linux); taken as a run starts, after torch, Lightning and numpy are imported,
    it splits a run's peak into the shared start and what the run itself adds (its own imports included)."""
    try:
        return round(int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize() / 2**20, 1)
    except (OSError, IndexError, ValueError):
        return None


def step_figures(step_seconds: list[float], tokens_per_step: int, flops_per_tok: float,
                 peak_gflops: float | None) -> dict:
    """Median step (robust to a noisy neighbour), tokens/s and MFU from it."""
    median = statistics.median(step_seconds)
    tokens_per_s = tokens_per_step / median
    out = {
        "steps_timed": len(step_seconds),
        "ms_per_step": round(1000 * median, 2),
        "mean_ms_per_step": round(1000 * statistics.fmean(step_seconds), 2),
        "tokens_per_s": round(tokens_per_s, 1),
        "model_gflops": round(flops_per_tok * tokens_per_s / 1e9, 2),
    }
    if peak_gflops:
        out["mfu"] = round(flops_per_tok * tokens_per_s / 1e9 / peak_gflops, 4)
    return out


def settings_for(corpus_path: str, **overrides) -> dict:
    return {**RECIPE, "corpus_paths": [str(corpus_path)], "eval_every": overrides.get("max_steps", RECIPE["max_steps"]),
            "eval_batches": 1, "final_eval_batches": 1, **overrides}


def _val_tokens(datamodule) -> np.ndarray:
    text = datamodule.corpus["validation"]["text"][0]
    return np.asarray(datamodule.tokenizer.encode(text), dtype=np.uint16)


class _ClockCallback(L.Callback):
    def __init__(self, clock: QualityClock) -> None:
        self.clock = clock

    def on_train_start(self, trainer, pl_module) -> None:
        self.clock.start()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        model = pl_module.model
        self.clock.after_step(trainer.global_step, lambda x: model(x).logits, lambda e: model.train(not e),
                              last=trainer.global_step == trainer.max_steps)


def run_lightning(corpus_path: str, *, eval_every: int, peak_gflops: float | None = None, warmup: int = 5,
                  **overrides) -> dict:
    """The workbench's `pretrain()` (PretrainModule under the Lightning Trainer), with nanoGPT's evaluator."""
    start_rss = rss_now_mb()
    from workbench.data import PretrainDataModule
    from workbench.modules.pretrain_recipe import PretrainSettings, make_datamodule, pretrain

    imported_rss = rss_now_mb()  # the workbench's own imports: datasets (pyarrow) is most of them
    settings = PretrainSettings.from_dict(settings_for(corpus_path, **overrides))
    probe_dm: PretrainDataModule = make_datamodule(settings)
    probe_dm.setup()
    # nanoGPT's evaluator as nanoGPT runs it (20 batches of 12), whatever batch this run trains at
    clock = QualityClock(_val_tokens(probe_dm), block_size=settings.block_size, batch_size=RECIPE["batch_size"],
                         eval_every=eval_every)
    started = time.perf_counter()
    outcome = pretrain(settings, callbacks=[_ClockCallback(clock)], printer=None)
    total = time.perf_counter() - started
    tokens_per_step = settings.batch_size * settings.block_size
    fpt = decoder_flops_per_token(outcome.model, settings.block_size)
    steps = clock.step_times()[warmup:]
    return {
        "kind": "workbench (Lightning)",
        "parameters": outcome.model.num_parameters(),
        "flops_per_token": fpt,
        **step_figures(steps, tokens_per_step, fpt, peak_gflops),
        **clock.summary(),
        "call_s": round(total, 2),
        "peak_rss_mb": peak_rss_mb(),
        "start_rss_mb": start_rss,
        "imported_rss_mb": imported_rss,
        "precision": outcome.compute["precision"],
        **({"precision_choice": outcome.compute["precision_choice"]} if "precision_choice" in outcome.compute else {}),
        "settings": {k: v for k, v in overrides.items()},
    }


class BareLoop:
    """The same module, optimiser, schedule, clipping and batches as `pretrain()`, stepped by hand."""

    def __init__(self, settings) -> None:
        from workbench.modules.pretrain import PretrainModule
        from workbench.modules.pretrain_recipe import make_datamodule, precision_choice

        self.settings = settings
        L.seed_everything(settings.seed, verbose=False)
        dm = make_datamodule(settings)
        dm.setup("fit")
        module = PretrainModule(settings.model_config(dm.tokenizer.vocab_size), settings.optim_config())
        self.model = module.model
        choice = precision_choice(settings, module, dm)  # what pretrain() would train in, measured the same way
        self.precision = choice.precision if choice else settings.precision
        config = module.configure_optimizers()
        self.optimizer, self.schedule = config["optimizer"], config["lr_scheduler"]["scheduler"]
        self.loader = iter(dm.train_dataloader())
        self.step_seconds: list[float] = []
        self.data_seconds: list[float] = []
        self.loss = None

    def step(self) -> None:
        """One optimizer step, timed from the fetch of its batch to the cleared gradients."""
        from workbench.modules.pretrain import lm_loss

        started = time.perf_counter()
        x, y = next(self.loader)
        fetched = time.perf_counter()
        bf16 = self.precision == "bf16-mixed"
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16, cache_enabled=False):  # as Lightning's
            self.loss = lm_loss(self.model(x).logits, y)
        self.loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.grad_clip)
        self.optimizer.step()
        self.schedule.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.data_seconds.append(fetched - started)
        self.step_seconds.append(time.perf_counter() - started)

    def figures(self, warmup: int, peak_gflops: float | None) -> dict:
        steps, data = self.step_seconds[warmup:], self.data_seconds[warmup:]
        tokens_per_step = self.settings.batch_size * self.settings.block_size
        fpt = decoder_flops_per_token(self.model, self.settings.block_size)
        return {
            "kind": "workbench (bare loop)",
            "parameters": self.model.num_parameters(),
            "precision": self.precision,
            **step_figures(steps, tokens_per_step, fpt, peak_gflops),
            "data_wait_fraction": round(sum(data) / sum(steps), 5),
            "data_ms_per_step": round(1000 * statistics.median(data), 4),
            "final_train_loss": round(self.loss.item(), 4),
            "peak_rss_mb": peak_rss_mb(),
        }


class _StepBetween(L.Callback):
    """After each Lightning step, one step of another loop (its own model, optimizer and batches).

    The two loops then alternate step by step in one process, so a neighbour's load or this VM's
    speed mode (the same bare loop ran 23 ms a step in one process and 30 ms in the next, minutes
    apart) falls on both alike. A Lightning step is timed from this hook's return to its next call:
    the loop, its hooks and the other callbacks included, the other loop's step excluded. The other
    loop (`BareLoop`, `nanogpt_reference.TrainLoop`) times its own steps.
    """

    def __init__(self, other) -> None:
        self.other = other
        self.lightning_seconds: list[float] = []
        self._resumed: float | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        if self._resumed is not None:
            self.lightning_seconds.append(now - self._resumed)
        self.other.step()
        self._resumed = time.perf_counter()

    def paired_seconds(self, warmup: int) -> tuple[list[float], list[float]]:
        """After the warm-up, each Lightning step and the other loop's step right after it, as two lists.

        The first Lightning step has no start to time from, so Lightning's list is one short: its
        step i pairs with the other loop's step i + 1.
        """
        return self.lightning_seconds[warmup:], self.other.step_seconds[warmup + 1:]


def run_interleaved(corpus_path: str, *, max_steps: int, peak_gflops: float | None = None, warmup: int = 5,
                    **overrides) -> dict:
    """`pretrain()` under Lightning and the bare loop, alternating step by step: {"bare": ..., "lightning": ...}."""
    from workbench.modules.pretrain_recipe import PretrainSettings, pretrain

    settings = PretrainSettings.from_dict(settings_for(corpus_path, max_steps=max_steps, **overrides))
    between = _StepBetween(BareLoop(settings))
    outcome = pretrain(settings, callbacks=[between], printer=None)
    tokens_per_step = settings.batch_size * settings.block_size
    fpt = decoder_flops_per_token(outcome.model, settings.block_size)
    lightning = {
        "kind": "workbench (Lightning, interleaved with the bare loop)",
        "parameters": outcome.model.num_parameters(),
        "flops_per_token": fpt,
        **step_figures(between.lightning_seconds[warmup:], tokens_per_step, fpt, peak_gflops),
        "peak_rss_mb": peak_rss_mb(),  # of both loops: they share the process
        "precision": outcome.compute["precision"],
        **({"precision_choice": outcome.compute["precision_choice"]} if "precision_choice" in outcome.compute else {}),
    }
    bare = {**between.other.figures(warmup, peak_gflops), "kind": "workbench (bare loop, interleaved with Lightning)"}
    lightning.update(paired_overhead(*between.paired_seconds(warmup)))
    return {"bare": bare, "lightning": lightning}


def paired_overhead(lightning_seconds: list[float], bare_seconds: list[float]) -> dict:
    """The overhead step by step: each Lightning step against the bare step run right after it.

    This VM switches between speed modes (the same bare loop stepped 23 ms and 30 ms minutes apart).
    With the samples split near evenly between two modes, a ratio of the two medians jumps with the
    few steps that straddle a switch; an adjacent pair shares its moment, so the median over pairs
    holds. It is the round's figure; the ratio of medians stays in the results beside it.
    """
    pairs = list(zip(lightning_seconds, bare_seconds, strict=True))  # Lightning step i, the bare step after it
    return {
        "paired_steps": len(pairs),
        "paired_overhead": round(statistics.median(lit / bare for lit, bare in pairs) - 1, 5),
        "paired_overhead_ms": round(1000 * statistics.median(lit - bare for lit, bare in pairs), 4),
    }


def run_beside_nanogpt(corpus_path: str, *, max_steps: int, warmup: int = 5, **overrides) -> dict:
    """`pretrain()` at the recipe and the nanoGPT reference's loop, alternating step by step: the step ratio.

    Part d runs the two one after the other, for their curves, and this VM's speed drifts between
    them (one run's nanoGPT stepped 43 ms and the next run's 52 ms, on one machine): its ratio
    carries that drift. Here each Lightning step is paired with the nanoGPT step right after it,
    and the figure is the median over the pairs of nanoGPT's time / the workbench's.
    """
    from workbench.modules.pretrain_recipe import PretrainSettings, pretrain

    settings = PretrainSettings.from_dict(settings_for(corpus_path, max_steps=max_steps, **overrides))
    train, _, vocab = ref.prepare_chars(Path(corpus_path).read_text(encoding="utf-8"))
    between = _StepBetween(ref.TrainLoop(train, ref.GPTConfig(vocab_size=vocab), lr_decay_iters=max_steps))
    outcome = pretrain(settings, callbacks=[between], printer=None)
    pairs = list(zip(*between.paired_seconds(warmup), strict=True))
    return {
        "kind": "workbench (Lightning) and the nanoGPT reference, interleaved",
        "precision": outcome.compute["precision"],
        "ms_per_step": round(1000 * statistics.median(lit for lit, _ in pairs), 4),
        "nanogpt_ms_per_step": round(1000 * statistics.median(ng for _, ng in pairs), 4),
        "paired_steps": len(pairs),
        "step_ratio": round(statistics.median(ng / lit for lit, ng in pairs), 4),
    }


def run_nanogpt(corpus_path: str, *, max_steps: int, eval_every: int, peak_gflops: float | None = None,
                warmup: int = 5) -> dict:
    """nanoGPT's model and loop at its CPU recipe (see nanogpt_reference.py)."""
    start_rss = rss_now_mb()
    text = Path(corpus_path).read_text(encoding="utf-8")
    train, val, vocab = ref.prepare_chars(text)
    config = ref.GPTConfig(vocab_size=vocab)
    clock = QualityClock(val, block_size=config.block_size, batch_size=12, eval_every=eval_every)

    def on_step(step, model):
        clock.after_step(step, lambda x: model(x)[0], lambda e: model.train(not e), last=step == max_steps)

    clock.start()
    model = ref.train(train, config, max_iters=max_steps, on_step=on_step, lr_decay_iters=max_steps)
    n = model.num_parameters()
    fpt = flops_per_token(n, config.n_layer, config.n_head, config.n_embd // config.n_head, config.block_size)
    return {
        "kind": "nanoGPT reference",
        "parameters": n,
        "flops_per_token": fpt,
        **step_figures(clock.step_times()[warmup:], 12 * config.block_size, fpt, peak_gflops),
        **clock.summary(),
        "peak_rss_mb": peak_rss_mb(),
        "start_rss_mb": start_rss,
    }


# The workbench's own best CPU recipe for time to quality (issue 15: val loss <= 1.60 within the wall time
# of nanoGPT's whole 2000-step run). Searched 2026-12-01 on 2 AMD EPYC cores (no native bf16, so fp32),
# each candidate's step count sized to that wall time (130 s there), nanoGPT's evaluator:
#   AdamW lr 3e-3 (batch 12, block 64):        1.710 at 1462 steps, 109 s
#   AdamW lr 3e-3, block 128:                   1.691 at  974 steps, 145 s
#   Muon lr 1e-2, batch 32:                     1.622 at  687 steps, 157 s (1.634 at 135 s)
#   Muon lr 2e-2, batch 32:                     1.679 at  602 steps, 143 s
#   Muon lr 1e-2, batch 16:                     1.630 at 1020 steps, 150 s (1.653 at 135 s)
#   Muon lr 1e-2, batch 16, block 128:          1.640 at  500 steps, 126 s
# Muon's orthogonalization cost ~40 ms a step there at this width whatever the batch, so it pays at a larger batch.
# On Zen 5 (AVX512_BF16; nanoGPT's run 75-95 s), with precision auto taking bf16 and Muon's iteration batched in
# bf16, a step of Muon 1e-2 at batch 32 takes 53-76 ms: 1200 steps reached 1.558 in 73 s in one run, but in two
# benchmark runs they took 100 s and read 1.598 and 1.623 at nanoGPT's 77 and 76 s. 900 steps: 1.537 in 63 s.
BEST_RECIPE: dict[str, Any] = dict(optimizer="muon", learning_rate=1e-2, batch_size=32, max_steps=900,
                                   warmup_steps=30)
