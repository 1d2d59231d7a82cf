"""Kill a pretraining between two saved training states, then resume it: what resume tests share."""

from __future__ import annotations

import lightning as L
import pytest

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
