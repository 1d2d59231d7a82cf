"""Kill a pretraining between two saved training states, then resume it: what resume tests share."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest

from workbench.cli import main
from workbench.modules import pretrain
from workbench.modules.training_state import resumable_state


class CrashAt(L.Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.step:
            raise RuntimeError("crash between two saved states")


def crash_then_resume(settings, state_dir, *, crash_at: int = 12, saved_at: int = 10):
    """Train `settings` into `state_dir` until it crashes at `crash_at`, check the state left is
    `saved_at`'s, and return the outcome of resuming from it."""
    with pytest.raises(RuntimeError, match="crash"):
        pretrain(settings, state_dir=state_dir, callbacks=[CrashAt(crash_at)], printer=None)
    assert resumable_state(state_dir, settings.identity())[1] == saved_at
    return pretrain(settings, state_dir=state_dir, printer=None)


def read(folder: Path, name: str):
    return json.loads((folder / name).read_text())


def resume_then_run_whole(spec: Path, folder: Path, whole_runs: Path, args: list[str]) -> Path:
    """Resume the killed run `folder`, run `spec` with `args` uninterrupted into `whole_runs`, check that
    both end with the same metrics and curves to the last digit, and return the uninterrupted run's folder."""
    assert main(["run", str(spec), "--runs-dir", str(folder.parent), "--quiet", "--resume", str(folder)]) == 0
    assert main(["run", str(spec), "--runs-dir", str(whole_runs), "--quiet", *args]) == 0
    (whole,) = whole_runs.iterdir()
    assert read(folder, "metrics.json") == read(whole, "metrics.json")
    strip = lambda rows: [{k: v for k, v in row.items() if k != "time_s"} for row in rows]  # noqa: E731
    assert strip(read(folder, "history.json")) == strip(read(whole, "history.json"))
    return whole
