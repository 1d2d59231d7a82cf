"""`tensorboard --logdir <runs folder>` shows a run's curves in a real browser (headless Chromium)."""

from __future__ import annotations

import pytest
from browser_lab import artifacts_folder
from tensorboard_view import show_scalars, tensorboard_server

from workbench.modules import pretrain

pytestmark = pytest.mark.slow

QUICK = dict(corpus="stdlib", max_files=20, tokenizer="byte", preset="tiny", block_size=32, batch_size=8, max_steps=20,
             warmup_steps=2, eval_every=10, eval_batches=2, final_eval_batches=2, precision="32-true")


def test_tensorboard_shows_every_run_folders_curves(browser, tmp_path):
    runs = tmp_path / "runs"
    for seed in (0, 1):
        pretrain({**QUICK, "seed": seed}, printer=None, run_dir=runs / f"quick-seed-{seed}")
    shot = artifacts_folder() / "tensorboard-runs.png"
    with tensorboard_server(runs, tmp_path / "tensorboard.log") as url:
        text = show_scalars(browser, url, shot, ["val_loss", "train_loss", "val_bpb"])
    assert "quick-seed-0/tensorboard" in text and "quick-seed-1/tensorboard" in text  # both runs, by folder
    assert shot.stat().st_size > 10_000
