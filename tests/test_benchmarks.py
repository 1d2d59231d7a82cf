"""The benchmark's smoke mode: every part runs end to end and reports, at toy sizes.

Timings are never asserted (they are noise on a shared machine); what is checked is
that each part produced its figures and that the figures are consistent with each other.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import plotly.io
import pytest
import torch

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))  # benchmarks/ is a top-level folder run as `python -m benchmarks`, not installed

from benchmarks import flops, generation, gpu, peak, shakespeare  # noqa: E402
from benchmarks.nanogpt_reference import GPT, GPTConfig  # noqa: E402
from benchmarks.quality import QualityClock  # noqa: E402
from benchmarks.table import render  # noqa: E402
from workbench.errors import RequestError  # noqa: E402

SHAKESPEARE_LIKE = "".join(
    f"{name}:\nWhat say you, {other}? The {thing} is {mood} tonight.\n\n"
    for name in ("ROMEO", "JULIET", "MERCUTIO", "NURSE")
    for other in ("sir", "madam", "friend")
    for thing in ("moon", "night", "hour", "house", "sword")
    for mood in ("fair", "dark", "cold", "late")
)


@pytest.mark.slow
def test_smoke_mode_runs_every_part_and_writes_its_results(tmp_path):
    corpus = tmp_path / "input.txt"
    corpus.write_text(SHAKESPEARE_LIKE * 3)
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--data", str(corpus), "--out", str(out)],
        cwd=PROJECT, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (results_file,) = (p for p in out.glob("*.json") if not p.name.endswith(".plotly.json"))
    results = json.loads(results_file.read_text())
    assert results["smoke"] is True
    assert results["peak_fp32"]["gflops"] > 0
    for run in (*results["bare"], *results["lightning"], results["recipe"], results["best"], results["nanogpt"]):
        assert run["ms_per_step"] > 0 and run["tokens_per_s"] > 0 and 0 < run["mfu"]
        assert run["peak_rss_mb"] > 50
    for run in (results["recipe"], results["nanogpt"]):
        assert 50 < run["start_rss_mb"] < run["peak_rss_mb"]  # the split of each run's peak the table prints
    # The workbench at the recipe has nanoGPT's parameter count within 1% (0.800M against 0.796M on
    # tiny Shakespeare: SwiGLU width 344 against GPT's 4 x 128, and one more embedding row, for <unk>).
    wb, ng = results["lightning"][0]["parameters"], results["nanogpt"]["parameters"]
    assert abs(wb - ng) / ng < 0.01
    for run in (results["recipe"], results["best"], results["nanogpt"]):
        assert [s for s, _, _ in run["curve"]] == [3, 6]  # evaluated every 3 steps, nanoGPT's protocol
    assert 0 <= results["bare"][0]["data_wait_fraction"] < 1
    assert results["lightning"][0]["paired_steps"] == 5  # 8 steps, the first 2 of warm-up, the first bare one alone
    assert "Lightning overhead, step by step (median of rounds)" in done.stdout
    (beside,) = results["beside_nanogpt"]  # the step ratio, each Lightning step against the nanoGPT step after it
    assert beside["paired_steps"] == 5 and beside["step_ratio"] > 0 and beside["nanogpt_ms_per_step"] > 0
    assert "step, nanoGPT reference / workbench, step by step (median of rounds)" in done.stdout
    assert results["tokenization"]["rows"][0]["tokens_per_s"] > 0
    notebook = results["notebook"]
    assert notebook["same_val_loss"], notebook  # the notebook trains exactly what the plain call trains
    assert notebook["workbench_run_s"] > 0 and notebook["plain_s"] > 0
    expected_gpu = "tokens_per_s" if torch.cuda.is_available() else "skipped"
    assert [row["preset"] for row in results["generation"]["rows"]] == ["tiny"]
    assert expected_gpu in results["gpu"]
    sizes = results["corpus_size"]
    assert [row["corpus_mb"] for row in sizes["rows"]] == [0.2, 0.4]  # each corpus written to its exact size
    for row in sizes["rows"]:
        assert row["prepare"]["tokenize_mb_per_s"] > 0 and row["prepare"]["train_blocks"] > 0
        assert row["train"]["peak_rss_mb"] >= row["train"]["peak_anon_mb"] > 50
    assert sizes["size_ratio"] == 2 and sizes["train_peak_rss_ratio"] > 0
    table = done.stdout
    assert "train peak RSS, largest / smallest corpus" in table
    assert "| part" in table and "Lightning overhead" in table and "time to val loss <= 1.88" in table
    assert "added by the run (imports, data, model, training)" in table
    assert results_file.with_suffix(".md").exists()
    assert "within nanoGPT's whole-run wall time" in table and "target <= 1.6" in table
    (curves,) = out.glob("*-curves.plotly.json")  # the three curves as one figure JupyterLab opens
    figure = plotly.io.read_json(curves)
    names = [trace.name for trace in figure.data]
    assert names == ["nanoGPT reference", "workbench, nanoGPT's recipe", "workbench, best recipe"]
    assert list(figure.data[2].customdata) == [3, 6] and figure.data[2].y[-1] == results["best"]["curve"][-1][2]


def test_gpu_part_says_it_skipped_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu.gpu_benchmark() == {"skipped": "skipped: no GPU"}


def test_bad_part_name_is_refused_naming_the_valid_ones():
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--parts", "ax"], cwd=PROJECT, capture_output=True,
                          text=True)
    assert done.returncode == 2 and "valid parts are a, b, c, d, e, f, g, h, i" in done.stderr


def test_missing_corpus_is_refused_before_any_work(tmp_path):
    missing = tmp_path / "nope.txt"
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--data", str(missing)], cwd=PROJECT,
                          capture_output=True, text=True)
    assert done.returncode == 2 and f"--data {missing} is not a file" in done.stderr
    assert shakespeare.SOURCE_URL in done.stderr


def _project_beside(tmp_path: Path, shared_copy: bool) -> Path:
    """A project folder, with or without ../shared/data/tinyshakespeare.txt beside it."""
    project = tmp_path / "clone"
    project.mkdir()
    if shared_copy:
        shakespeare.fallback_path(project).parent.mkdir(parents=True)
        shakespeare.fallback_path(project).write_text(SHAKESPEARE_LIKE)
    return project


def test_corpus_comes_from_data_then_the_variable_then_the_shared_copy(tmp_path):
    given, named = tmp_path / "given.txt", tmp_path / "named.txt"
    given.write_text("a"), named.write_text("b")
    project = _project_beside(tmp_path, shared_copy=True)
    environ = {shakespeare.ENV_VAR: str(named)}
    assert shakespeare.find_corpus(given, project, environ).path == given.resolve()
    from_variable = shakespeare.find_corpus(None, project, environ)
    assert from_variable == shakespeare.CorpusChoice(named.resolve(), "$" + shakespeare.ENV_VAR)
    assert shakespeare.find_corpus(None, project, {}).path == shakespeare.fallback_path(project).resolve()


def test_a_variable_naming_no_file_is_an_error_not_a_skip(tmp_path):
    with pytest.raises(RequestError, match=rf"\${shakespeare.ENV_VAR} .*nope.txt is not a file"):
        shakespeare.find_corpus(None, _project_beside(tmp_path, shared_copy=True),
                                {shakespeare.ENV_VAR: str(tmp_path / "nope.txt")})


def test_no_corpus_anywhere_says_which_parts_skip_where_to_get_it_and_how_to_pass_it(tmp_path):
    choice = shakespeare.find_corpus(None, _project_beside(tmp_path, shared_copy=False), {})
    assert choice.path is None
    message = choice.skip_message("bd")
    for needed in ("part(s) b, d", shakespeare.SOURCE_URL, "--data PATH", f"{shakespeare.ENV_VAR}=PATH",
                   str(shakespeare.fallback_path(tmp_path / "clone"))):
        assert needed in message


@pytest.mark.slow
def test_a_clone_without_shared_skips_the_shakespeare_parts_and_runs_the_rest(tmp_path):
    """The benchmarks copied into a project with no ../shared beside it, as in a fresh clone."""
    project = _project_beside(tmp_path, shared_copy=False)
    shutil.copytree(PROJECT / "benchmarks", project / "benchmarks", ignore=shutil.ignore_patterns("results"))
    env = {k: v for k, v in os.environ.items() if k not in (shakespeare.ENV_VAR, "PYTHONPATH")}
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--smoke", "--parts", "abe"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "skipping part(s) b:" in done.stderr and shakespeare.SOURCE_URL in done.stderr
    rows = {line.split("|")[2].strip(): line for line in done.stdout.splitlines() if line.startswith("| ")}
    assert "skipped: no tiny Shakespeare" in rows["Lightning vs nanoGPT, MFU"]
    assert "fp32 matmul peak" in rows and "tokenize stdlib (byte, num_proc 1)" in rows


def test_generation_part_times_both_paths_and_checks_they_agree():
    result = generation.generation_speed(presets=("tiny",), new_tokens=6, prompt_tokens=3, block_size=16,
                                         device="cpu")
    (row,) = result["rows"]
    assert row["same_tokens"] and row["cached_tokens_per_s"] > 0 and row["uncached_tokens_per_s"] > 0
    assert row["speedup"] == pytest.approx(row["uncached_s"] / row["cached_s"], rel=0.01)
    table = render({"machine": {"load_avg_before": 0, "cores": 2}, "generation": result})
    assert "generate 6 tokens, tiny (0.1M, cpu): KV cache / none" in table and "x with the cache" in table


def test_the_paired_overhead_holds_where_a_ratio_of_medians_jumps_between_the_machines_speed_modes():
    from benchmarks.training import paired_overhead

    # A VM with two speed modes, 20 and 30 ms a bare step, and Lightning 1 ms over the bare step beside it.
    # Two of 100 pairs straddle a switch (Lightning slow, bare fast): that alone moves each list's median
    # to the other mode, and the ratio of the medians to +55%. The pairs still say about 1 ms.
    bare = [0.020 if i % 2 else 0.030 for i in range(98)] + [0.020, 0.020]
    lightning = [b + 0.001 for b in bare[:98]] + [0.031, 0.031]
    figures = paired_overhead(lightning, bare)
    assert figures["paired_steps"] == 100
    assert figures["paired_overhead_ms"] == pytest.approx(1.0)
    assert 1 / 30 <= figures["paired_overhead"] <= 1 / 20
    assert statistics.median(lightning) / statistics.median(bare) - 1 == pytest.approx(0.55)


def test_flops_formula_is_6n_plus_attention():
    # nanoGPT's estimate_mfu at its Shakespeare-char CPU recipe: N = 0.7959M, L = H = 4, Q = 32, T = 64.
    assert flops.flops_per_token(795_904, 4, 4, 32, 64) == 6 * 795_904 + 12 * 4 * 4 * 32 * 64


def test_nanogpt_reference_has_nanogpts_parameter_count():
    assert GPT(GPTConfig(vocab_size=65)).num_parameters() == 795_904  # nanoGPT prints "0.80M"


def test_matmul_peak_reports_the_best_size():
    result = peak.matmul_peak(torch.float32, sizes=(32, 64), seconds=0.01)
    assert result["gflops"] == max(result["by_size"].values()) and result["size"] in (32, 64)


def test_quality_clock_records_when_the_target_is_first_reached():
    import numpy as np

    val = np.arange(200, dtype=np.uint16) % 7
    clock = QualityClock(val, block_size=8, batch_size=2, eval_iters=2, eval_every=2, target=1.0)

    def uniform(x):
        return torch.zeros(*x.shape, 7)  # loss ln 7 = 1.95

    def peaked(x):
        return torch.nn.functional.one_hot((x + 1) % 7, 7).float() * 50  # the next id: loss ~0

    clock.start()
    for step, fn in ((1, uniform), (2, uniform), (3, peaked), (4, peaked), (5, uniform), (6, peaked)):
        clock.after_step(step, fn, lambda _: None)
    summary = clock.summary()
    assert [s for s, _, _ in summary["curve"]] == [2, 4, 6]
    assert summary["reached_step"] == 4 and summary["best_val_loss"] < 0.01
    assert len(clock.step_times()) == 6


def test_the_device_check_runs_pretrain_under_each_strategy_it_can_here():
    from benchmarks.device_check import device_check, format_results

    results = device_check(steps=4, warmup=1, smoke=True, timeout=300)
    assert results["single"]["strategy"] == "none" and results["ddp-1-device"]["strategy"] == "ddp"
    for name in ("single", "ddp-1-device"):
        assert results[name]["tokens_per_s"] > 0 and 0 < results[name]["mfu"] < 1, results[name]
    assert results["ddp-1-device"]["val_loss"] == pytest.approx(results["single"]["val_loss"], abs=1e-4)
    if not torch.cuda.is_available():
        assert results["fsdp-1-device"] == {"skipped": "skipped: FSDP needs CUDA"}
    assert "ddp-1-device | ddp |" in format_results(results)


def test_a_worker_process_finds_the_benchmarks_from_any_working_directory(tmp_path, monkeypatch):
    """`python -m benchmarks.worker` looks in the working directory, which a test or a notebook may have moved."""
    import platform

    from benchmarks.worker import call_in_subprocess

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    assert call_in_subprocess("platform", "python_version", timeout=60) == platform.python_version()
