"""`python -m benchmarks`: every part of issue 6 in one run, one table, ratios taken side by side.

    a  matmul peak (fp32, bf16)              d  time to val loss 1.88 (nanoGPT's protocol)
    b  workbench under Lightning             e  tokenization throughput, data wait
    c  the same in a bare loop (overhead),   f  notebook overhead (papermill)
       and beside nanoGPT (step ratio)
                                             g  GPT-2-small on a GPU, when there is one
                                             h  generation with and without the KV cache (issue 11)
                                             i  memory and tokenization speed against corpus size (issue 13)

`--smoke` runs every part at toy sizes in well under a minute (tests/test_benchmarks.py).
The full run writes benchmarks/results/<UTC date>.json and .md.

Parts b, c and d need tiny Shakespeare: `--data PATH`, else $WORKBENCH_SHAKESPEARE, else
../shared/data/tinyshakespeare.txt beside the project; without any of them they are skipped,
with a line saying where to get the file, and the other parts still run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import sys
import time
from pathlib import Path

import torch

from benchmarks import corpus_size, data_path, generation, gpu, notebook_overhead, peak, shakespeare
from benchmarks.curves import write_curves
from benchmarks.table import render
from benchmarks.training import BEST_RECIPE
from benchmarks.worker import call_in_subprocess
from workbench.errors import RequestError
from workbench.host import cpu_description
from workbench.modules.precision import cpu_has_native_bf16

PROJECT = Path(__file__).resolve().parents[1]
PARTS = "abcdefghi"

FULL = dict(peak_seconds=0.6, peak_sizes=peak.SIZES, overhead_steps=600, recipe_steps=2000, eval_every=100,
            data_max_files=None, num_procs=(1, 2),
            notebook=dict(corpus="stdlib", max_files=120, tokenizer="byte", preset="tiny", block_size=128,
                          batch_size=16, max_steps=150, warmup_steps=15, eval_every=50, eval_batches=10,
                          final_eval_batches=20, checkpoint_every=50),
            generation=dict(presets=generation.PRESETS, new_tokens=256, prompt_tokens=16, block_size=512),
            corpus_sizes=dict(sizes_mb=corpus_size.SIZES_MB))
# A 2048-square bf16 matmul takes seconds to minutes on one busy core: the smoke peak stops at 512.
SMOKE = dict(peak_seconds=0.02, peak_sizes=(256, 512), overhead_steps=8, recipe_steps=6, eval_every=3,
             data_max_files=6, num_procs=(1,),
             notebook=dict(corpus="stdlib", max_files=6, tokenizer="byte", preset="tiny", block_size=32,
                           batch_size=4, max_steps=3, warmup_steps=1, eval_every=3, eval_batches=1,
                           final_eval_batches=1, checkpoint_every=3),
             generation=dict(presets=("tiny",), new_tokens=8, prompt_tokens=4, block_size=32),
             corpus_sizes=dict(sizes_mb=(0.2, 0.4), train=dict(corpus_size.TRAIN, block_size=32, batch_size=4,
                                                                max_steps=2, eval_every=2, eval_batches=1,
                                                                final_eval_batches=1)))


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="every part at toy sizes, in seconds (for tests)")
    parser.add_argument("--data", "--corpus", type=Path, default=None, dest="data",
                        help=f"tiny Shakespeare for parts b, c, d (default ${shakespeare.ENV_VAR}, "
                             f"else {shakespeare.fallback_path(PROJECT)})")
    parser.add_argument("--parts", default=PARTS,
                        help=f"which parts to run, a subset of {PARTS!r} (b and c run together)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for every run (default: torch's, one per core); "
                             "1 keeps a busy machine usable")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the .json and .md results "
                             "(default benchmarks/results for a full run, none for --smoke)")
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s) {''.join(sorted(unknown))!r}; valid parts are {', '.join(PARTS)}")
    try:
        args.corpus = shakespeare.find_corpus(args.data, PROJECT)
    except RequestError as e:
        parser.error(str(e))
    return args


def runnable_parts(args) -> tuple[str, str]:
    """(the parts to run, the parts skipped for want of tiny Shakespeare)."""
    if args.corpus.path:
        return args.parts, ""
    skipped = "".join(p for p in args.parts if p in shakespeare.NEEDED_BY)
    return "".join(p for p in args.parts if p not in skipped), skipped


def main(argv=None) -> dict:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    size = SMOKE if args.smoke else FULL
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the worker processes
    if args.smoke:
        # One thread and no worker processes: seconds, even on a machine whose cores are busy
        # (two OpenMP threads on an oversubscribed machine wait on each other at every op).
        torch.set_num_threads(1)

    def call(function: str, **kwargs) -> dict:
        if args.smoke:
            return getattr(importlib.import_module("benchmarks.training"), function)(**kwargs)
        return call_in_subprocess("benchmarks.training", function, **kwargs)

    parts, skipped = runnable_parts(args)
    corpus = str(args.corpus.path) if args.corpus.path else None
    started = time.perf_counter()
    results: dict = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "smoke": args.smoke,
                     "machine": {"cpu": cpu_description(), "torch": torch.__version__,
                                 "threads": torch.get_num_threads(), "cores": os.cpu_count(),
                                 "load_avg_before": round(os.getloadavg()[0], 2)},
                     "corpus": {"path": corpus, "found_by": args.corpus.source}}
    out = args.out or (None if args.smoke else PROJECT / "benchmarks" / "results")
    stem = out / dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d-%H%M") if out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    if skipped:
        results["skipped"] = {"parts": skipped, "why": args.corpus.skip_message(skipped)}
        print(results["skipped"]["why"], file=sys.stderr, flush=True)

    def say(text: str) -> None:
        """Progress on stderr; the results so far saved at every part, so a stopped run keeps them."""
        print(f"[{time.perf_counter() - started:6.1f} s] {text}", file=sys.stderr, flush=True)
        if stem:
            stem.with_suffix(".json").write_text(json.dumps(results, indent=1))

    fp32 = None
    if "a" in parts or set(parts) & set("bcd"):
        say("a: matmul peak")
        results["peak_fp32"] = peak.matmul_peak(torch.float32, sizes=size["peak_sizes"], seconds=size["peak_seconds"])
        fp32 = results["peak_fp32"]["gflops"]
        if peak.bf16_supported():
            # Without native kernels a 2048-square bf16 matmul takes minutes (AMD EPYC: part a took 334 s):
            # one quick product says so, and then the smallest size alone gives the figure.
            native = cpu_has_native_bf16()
            sizes = size["peak_sizes"] if native else size["peak_sizes"][:1]
            results["peak_bf16"] = peak.matmul_peak(torch.bfloat16, sizes=sizes, seconds=size["peak_seconds"])
            results["peak_bf16"]["native"] = native

    if set(parts) & set("bc"):
        n = size["overhead_steps"]
        bare, lit, fp32_runs, beside = [], [], [], []
        rounds = 1 if args.smoke else 3  # alternated, so a noisy neighbour hits both sides alike
        for round_ in range(rounds):
            say(f"b/c: Lightning and the bare loop step by step in one process, {n} steps each, "
                f"round {round_ + 1} of {rounds}")
            pair = call("run_interleaved", corpus_path=corpus, max_steps=n, peak_gflops=fp32, warmup=min(5, n // 4))
            bare.append(pair["bare"])
            lit.append(pair["lightning"])
            if lit[0]["precision"] != "32-true":  # auto took bf16: what it bought, measured in the same rounds
                fp32_runs.append(call("run_lightning", corpus_path=corpus, max_steps=n, eval_every=n,
                                      peak_gflops=fp32, warmup=min(5, n // 4), precision="32-true"))
            if "c" in parts:  # the step ratio, step by step: part d's runs are apart and carry the VM's drift
                beside.append(call("run_beside_nanogpt", corpus_path=corpus, max_steps=n, warmup=min(5, n // 4)))
        results["bare"], results["lightning"] = bare, lit
        if beside:
            results["beside_nanogpt"] = beside
        if fp32_runs:
            results["lightning_fp32"] = fp32_runs

    if "d" in parts:
        n, every = size["recipe_steps"], size["eval_every"]
        say(f"d: nanoGPT reference, {n} steps")
        results["nanogpt"] = call("run_nanogpt", corpus_path=corpus, max_steps=n, eval_every=every, peak_gflops=fp32)
        say(f"d: workbench at the recipe, {n} steps")
        results["recipe"] = call("run_lightning", corpus_path=corpus, max_steps=n, eval_every=every, peak_gflops=fp32)
        best = {**BEST_RECIPE, **({"max_steps": n} if args.smoke else {})}
        say(f"d: workbench's best CPU recipe, {best}")
        results["best"] = call("run_lightning", corpus_path=corpus, eval_every=every, peak_gflops=fp32, **best)

    if "e" in parts:
        say("e: tokenization with datasets.map")
        results["tokenization"] = data_path.tokenization_throughput(
            max_files=size["data_max_files"], num_procs=size["num_procs"])

    if "f" in parts:
        say("f: plain call vs workbench run")
        results["notebook"] = notebook_overhead.notebook_overhead(size["notebook"], threads=1 if args.smoke else None)

    if "g" in parts:
        say("g: GPU")
        small = dict(steps=8, warmup=3, batch_size=2, block_size=128) if args.smoke else {}
        results["gpu"] = gpu.gpu_benchmark(**small)

    if "h" in parts:
        g = size["generation"]
        say(f"h: greedy generation of {g['new_tokens']} tokens, KV cache and none, {', '.join(g['presets'])}")
        results["generation"] = generation.generation_speed(**g)

    if "i" in parts:
        c = size["corpus_sizes"]
        say(f"i: synthetic corpora of {', '.join(f'{mb:g}' for mb in c['sizes_mb'])} MB: prepare, then train")
        results["corpus_size"] = corpus_size.corpus_size_benchmark(**c)

    results["benchmark_s"] = round(time.perf_counter() - started, 1)
    results["machine"]["load_avg_after"] = round(os.getloadavg()[0], 2)
    table = render(results)
    print(table)
    if skipped:
        print(results["skipped"]["why"], file=sys.stderr, flush=True)  # again: the first one scrolled away
    if stem:
        stem.with_suffix(".json").write_text(json.dumps(results, indent=1))
        stem.with_suffix(".md").write_text(f"Benchmarks, {results['date']} (`python -m benchmarks`)\n\n{table}\n")
        if "nanogpt" in results:
            say(f"wrote {write_curves(results, stem.with_name(stem.name + '-curves.plotly.json'))}")
        say(f"wrote {stem}.json and .md")
    return results


if __name__ == "__main__":
    main()
