"""`python -m benchmarks`: every part of issue 6 in one run, one table, ratios taken side by side.

    a  matmul peak (fp32, bf16)              d  time to val loss 1.88 (nanoGPT's protocol)
    b  workbench under Lightning             e  tokenization throughput, data wait
    c  the same in a bare loop (overhead)    f  notebook overhead (papermill)
                                             g  GPT-2-small on a GPU, when there is one

`--smoke` runs every part at toy sizes in well under a minute (tests/test_benchmarks.py).
The full run writes benchmarks/results/<UTC date>.json and .md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from benchmarks import data_path, gpu, notebook_overhead, peak
from benchmarks.quality import TARGET_LOSS
from benchmarks.training import BEST_RECIPE
from benchmarks.worker import call_in_subprocess

PROJECT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = PROJECT.parent / "shared" / "data" / "tinyshakespeare.txt"
NANOGPT_ISSUE = {"ms_per_step": 112, "tokens_per_s": 6830, "mfu": 0.52, "wall_s": 261, "val_2000": 1.886, "rss_mb": 375}
PARTS = "abcdefg"

FULL = dict(peak_seconds=0.6, overhead_steps=300, recipe_steps=2000, eval_every=100, data_max_files=None,
            num_procs=(1, 2), notebook=dict(corpus="stdlib", max_files=120, tokenizer="byte", preset="tiny",
                                            block_size=128, batch_size=16, max_steps=150, warmup_steps=15,
                                            eval_every=50, eval_batches=10, final_eval_batches=20,
                                            checkpoint_every=50))
SMOKE = dict(peak_seconds=0.02, overhead_steps=8, recipe_steps=6, eval_every=3, data_max_files=6, num_procs=(1,),
             notebook=dict(corpus="stdlib", max_files=6, tokenizer="byte", preset="tiny", block_size=32,
                           batch_size=4, max_steps=3, warmup_steps=1, eval_every=3, eval_batches=1,
                           final_eval_batches=1, checkpoint_every=3))


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="every part at toy sizes, in seconds (for tests)")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help=f"tiny Shakespeare (default {DEFAULT_CORPUS})")
    parser.add_argument("--parts", default=PARTS, help=f"which parts to run, a subset of {PARTS!r} (b and c run together)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for every run (default: torch's, one per core); 1 keeps a busy machine usable")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the .json and .md results (default benchmarks/results for a full run, none for --smoke)")
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s) {''.join(sorted(unknown))!r}; valid parts are {', '.join(PARTS)}")
    if set(args.parts) & set("bcd") and not args.corpus.is_file():
        parser.error(f"--corpus {args.corpus} is not a file; parts b, c, d need tiny Shakespeare (nanoGPT's input.txt)")
    return args


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

    corpus = str(args.corpus.resolve())
    started = time.perf_counter()
    results: dict = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "smoke": args.smoke,
                     "machine": {"cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
                                 "threads": torch.get_num_threads(), "cores": os.cpu_count(),
                                 "load_avg_before": round(os.getloadavg()[0], 2)}}
    out = args.out or (None if args.smoke else PROJECT / "benchmarks" / "results")
    stem = out / dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d-%H%M") if out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)

    def say(text: str) -> None:
        """Progress on stderr; the results so far saved at every part, so a stopped run keeps them."""
        print(f"[{time.perf_counter() - started:6.1f} s] {text}", file=sys.stderr, flush=True)
        if stem:
            stem.with_suffix(".json").write_text(json.dumps(results, indent=1))

    fp32 = None
    if "a" in args.parts or set(args.parts) & set("bcd"):
        say("a: matmul peak")
        results["peak_fp32"] = peak.matmul_peak(torch.float32, seconds=size["peak_seconds"])
        fp32 = results["peak_fp32"]["gflops"]
        if peak.bf16_supported():
            results["peak_bf16"] = peak.matmul_peak(torch.bfloat16, seconds=size["peak_seconds"])

    if set(args.parts) & set("bc"):
        n = size["overhead_steps"]
        bare, lit = [], []
        for round_ in range(1 if args.smoke else 2):  # alternated, so a noisy neighbour hits both sides alike
            say(f"b/c: bare loop and Lightning, {n} steps each, round {round_ + 1} of 2")
            bare.append(call("run_bare", corpus_path=corpus, max_steps=n,
                                           peak_gflops=fp32, warmup=min(5, n // 4)))
            lit.append(call("run_lightning", corpus_path=corpus, max_steps=n,
                                          eval_every=n, peak_gflops=fp32, warmup=min(5, n // 4)))
        results["bare"], results["lightning"] = bare, lit

    if "d" in args.parts:
        n, every = size["recipe_steps"], size["eval_every"]
        say(f"d: nanoGPT reference, {n} steps")
        results["nanogpt"] = call("run_nanogpt", corpus_path=corpus, max_steps=n,
                                                eval_every=every, peak_gflops=fp32)
        say(f"d: workbench at the recipe, {n} steps")
        results["recipe"] = call("run_lightning", corpus_path=corpus,
                                               max_steps=n, eval_every=every, peak_gflops=fp32)
        best = {**BEST_RECIPE, **({"max_steps": n} if args.smoke else {})}
        say(f"d: workbench's best CPU recipe, {best}")
        results["best"] = call("run_lightning", corpus_path=corpus,
                                             eval_every=every, peak_gflops=fp32, **best)

    if "e" in args.parts:
        say("e: tokenization with datasets.map")
        results["tokenization"] = data_path.tokenization_throughput(
            max_files=size["data_max_files"], num_procs=size["num_procs"])

    if "f" in args.parts:
        say("f: plain call vs workbench run")
        results["notebook"] = notebook_overhead.notebook_overhead(size["notebook"], threads=1 if args.smoke else None)

    if "g" in args.parts:
        say("g: GPU")
        results["gpu"] = gpu.gpu_benchmark(steps=8, warmup=3, batch_size=2, block_size=128) if args.smoke and gpu.gpu_available() \
            else gpu.gpu_benchmark()

    results["benchmark_s"] = round(time.perf_counter() - started, 1)
    results["machine"]["load_avg_after"] = round(os.getloadavg()[0], 2)
    table = render(results)
    print(table)
    if stem:
        stem.with_suffix(".json").write_text(json.dumps(results, indent=1))
        stem.with_suffix(".md").write_text(f"Benchmarks, {results['date']} (`python -m benchmarks`)\n\n{table}\n")
        say(f"wrote {stem}.json and .md")
    return results


def _ratio(a, b) -> str:
    return f"{a / b:.2f}x" if a and b else "n/a"


def _median(runs: list[dict], key: str) -> float:
    values = sorted(r[key] for r in runs)
    return values[len(values) // 2] if len(values) % 2 else (values[len(values) // 2 - 1] + values[len(values) // 2]) / 2


def render(r: dict) -> str:
    rows = [("part", "figure", "value", "ratio / target")]
    add = lambda *row: rows.append(tuple(str(x) for x in row))
    if "peak_fp32" in r:
        add("a", "fp32 matmul peak", f"{r['peak_fp32']['gflops']} GFLOP/s (n={r['peak_fp32']['size']})", "")
        if "peak_bf16" in r:
            add("a", "bf16 matmul peak", f"{r['peak_bf16']['gflops']} GFLOP/s (n={r['peak_bf16']['size']})",
                _ratio(r["peak_bf16"]["gflops"], r["peak_fp32"]["gflops"]) + " fp32")
    if "lightning" in r:
        lit_ms, bare_ms = _median(r["lightning"], "ms_per_step"), _median(r["bare"], "ms_per_step")
        lit = r["lightning"][0]
        add("b", "parameters (workbench / nanoGPT 0.80M)", f"{lit['parameters'] / 1e6:.3f}M", "")
        add("b", "median step, Lightning (768 tokens)", f"{lit_ms:.1f} ms", _ratio(NANOGPT_ISSUE["ms_per_step"], lit_ms) + " faster than nanoGPT's 112 ms (issue, other day)")
        add("b", "tokens/s, Lightning", f"{768 / lit_ms * 1000:,.0f}", "")
        mfu = lit["flops_per_token"] * 768 / (lit_ms / 1000) / 1e9 / r["peak_fp32"]["gflops"]
        add("b", "MFU vs measured fp32 peak", f"{mfu:.1%}", "target > 52%")
        add("b", "peak resident memory", f"{max(x['peak_rss_mb'] for x in r['lightning'])} MB", "nanoGPT (issue): 375 MB")
        add("c", "median step, bare loop", f"{bare_ms:.1f} ms", "")
        add("c", "Lightning overhead", f"{lit_ms / bare_ms - 1:+.1%}", "target <= +5%")
        add("e", "data wait, share of step (bare loop)", f"{_median(r['bare'], 'data_wait_fraction'):.2%}", "")
    if "nanogpt" in r:
        ref, rec, best = r["nanogpt"], r["recipe"], r["best"]
        add("d", "nanoGPT reference here: median step", f"{ref['ms_per_step']} ms ({ref['parameters'] / 1e6:.2f}M params)", "")
        add("d", "workbench at the recipe: median step", f"{rec['ms_per_step']} ms",
            _ratio(ref["ms_per_step"], rec["ms_per_step"]) + " nanoGPT's speed (same run)")
        add("d", "MFU, workbench / nanoGPT reference", f"{rec.get('mfu', 0):.1%} / {ref.get('mfu', 0):.1%}", "")
        for name, run in (("nanoGPT reference", ref), ("workbench, recipe", rec), ("workbench, best recipe", best)):
            at = " / ".join(str(run["val_at"].get(str(s), run["val_at"].get(s, "-"))) for s in (500, 1000, 1500, 2000))
            reached = f"{run['reached_s']} s (step {run['reached_step']})" if run["reached_s"] else f"not reached (best {run['best_val_loss']})"
            add("d", f"{name}: val loss at 500/1000/1500/2000", at, "")
            add("d", f"{name}: time to val loss <= {TARGET_LOSS}", reached, f"wall {run['wall_s']} s, peak {run['peak_rss_mb']} MB")
        if best["reached_s"]:
            target = ref["reached_s"] or ref["wall_s"]
            add("d", "best recipe vs nanoGPT reference, time to 1.88", f"{best['reached_s']} s",
                f"{best['reached_s'] / NANOGPT_ISSUE['wall_s']:.2f} of the issue's 261 s; "
                f"{best['reached_s'] / target:.2f} of the reference's {'time to 1.88' if ref['reached_s'] else 'whole run'} (target <= 0.5)")
    for row in r.get("tokenization", {}).get("rows", []):
        add("e", f"tokenize stdlib ({row['tokenizer']}, num_proc {row['num_proc']})",
            f"{row['mb_per_s']} MB/s, {row['tokens_per_s']:,.0f} tokens/s", f"{row['mb']} MB in {row['seconds']} s")
    if "notebook" in r:
        nb = r["notebook"]
        add("f", "plain pretrain() / workbench run", f"{nb['plain_s']} s / {nb['workbench_run_s']} s",
            f"overhead {nb['overhead_s']} s, target < {nb['allowed_s']} s")
    if "gpu" in r:
        g = r["gpu"]
        if "skipped" in g:
            add("g", "GPT-2-small, bf16-mixed, compile", g["skipped"], "")
        else:
            add("g", f"GPT-2-small on {g['device']}", f"{g['tokens_per_s']:,.0f} tokens/s, {g['ms_per_step']} ms/step",
                f"MFU {g['mfu']:.1%} vs bf16 peak {g['bf16_peak_tflops']} TFLOP/s (target >= 50%)")
    # Only the load before the run tells of other work: the benchmark's own processes keep ~2 cores busy.
    load = r["machine"]["load_avg_before"]
    if load > 0.5 * r["machine"]["cores"]:
        add("!", "UNDER LOAD: 1-minute load average", f"{load} on {r['machine']['cores']} cores",
            "timings are not representative")
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    line = lambda row: "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |"
    return "\n".join([line(rows[0]), "| " + " | ".join("-" * w for w in widths) + " |", *map(line, rows[1:])])


if __name__ == "__main__":
    main()
