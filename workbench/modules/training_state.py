"""Periodic training state, so a killed or interrupted run resumes exactly where it stopped.

`checkpoint.py` saves the model a run leaves behind (safetensors, config,
tokenizer). This saves everything else training needs to continue: weights,
optimizer and scheduler state, loop counters, the data stream's position, the
RNG and the curves recorded so far, in Lightning's checkpoint format. It is
written every N optimizer steps to a temporary name and renamed over
`last.ckpt`, so a SIGKILL at any instant leaves the previous state intact.
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import lightning as L
import torch

from workbench.errors import RequestError
from workbench.files import atomic_write
from workbench.modules.checkpoint import CheckpointError

LAST_STATE = "last.ckpt"


class TrainingState(L.Callback):
    """Writes `<folder>/last.ckpt` every `every_n_steps` optimizer steps and at the end of training.

    `identity` (plain JSON values: the settings that shape training) is stored
    with the state; resuming under different settings is refused, since the
    result would match neither run.
    """

    def __init__(self, folder: str | os.PathLike, every_n_steps: int, identity: dict[str, Any],
                 precision_choice: dict[str, Any] | None = None) -> None:
        if every_n_steps < 1:
            raise RequestError(f"every_n_steps must be at least 1, got {every_n_steps}")
        self.folder = Path(folder)
        self.every_n_steps = every_n_steps
        self.identity = json.loads(json.dumps(identity, sort_keys=True, default=str))
        # precision auto's measured choice: a resumed run trains on in it rather than measuring again
        self.precision_choice = precision_choice
        self.saves = 0
        self._last_step = 0

    @property
    def path(self) -> Path:
        return self.folder / LAST_STATE

    def on_train_start(self, trainer: L.Trainer, pl_module) -> None:
        self._last_step = trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step == self._last_step:  # a batch that only accumulated gradients: not a whole step yet
            return
        self._last_step = step
        # Lightning calls this after the optimizer and scheduler steps, so the state is a whole step.
        if step % self.every_n_steps == 0 or step == trainer.max_steps:
            self.save(trainer)

    def save(self, trainer: L.Trainer) -> Path:
        """Every process calls this (saving is collective); rank 0 alone writes the file."""
        if trainer.is_global_zero:
            with atomic_write(self.path) as temporary:
                trainer.save_checkpoint(temporary)
        else:
            trainer.save_checkpoint(self.path)  # writes nothing off rank 0; waits for rank 0 to finish writing
        self.saves += 1
        return self.path

    def state_dict(self) -> dict[str, Any]:
        state = {"identity": json.dumps(self.identity, sort_keys=True), "torch_rng": torch.get_rng_state()}
        if self.precision_choice:
            state["precision_choice"] = json.dumps(self.precision_choice, sort_keys=True)
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch_rng"])  # dropout continues the uninterrupted stream


def resumable_state(folder: str | os.PathLike, identity: dict[str, Any],
                    defaults: dict[str, Any] | None = None) -> tuple[Path, int] | None:
    """The state to resume from in `folder` and its step, or None when there is none.

    Reads it fully before any training starts, so a truncated or corrupt file,
    or a state saved under other settings, fails at once with the file named.
    `defaults`: a setting added after the state was saved is absent from it; the code
    that saved it behaved as that setting's default, so at its default it is no change.
    """
    path = Path(folder) / LAST_STATE
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as error:
        first_line = str(error).strip().splitlines()[0][:160] if str(error).strip() else ""
        raise CheckpointError(
            f"{path}: training state is truncated or corrupt, or holds more than plain tensors and values "
            f"({type(error).__name__}: {first_line}); delete it to train from the start"
        ) from None
    saved = _saved_identity(state, path)
    current = json.loads(json.dumps(identity, sort_keys=True, default=str))
    known = json.loads(json.dumps(defaults or {}, sort_keys=True, default=str))
    saved = {**{k: v for k, v in known.items() if k in current and k not in saved}, **saved}
    if saved != current:
        changed = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
        details = ", ".join(f"{k}: saved {saved.get(k)!r}, now {current.get(k)!r}" for k in changed)
        raise CheckpointError(
            f"{path}: training state was saved under other settings ({details}); "
            "resume with the settings it was saved under, or delete it to train from the start"
        )
    return path, int(state.get("global_step", 0))


def saved_precision_choice(path: str | os.PathLike) -> dict[str, Any] | None:
    """The precision auto chose when the state at `path` began training (None: it was not auto)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    saved = _entry(state, Path(path)).get("precision_choice")
    return json.loads(saved) if saved else None


def _saved_identity(state: dict[str, Any], path: Path) -> dict[str, Any]:
    return json.loads(_entry(state, path)["identity"])


def _entry(state: dict[str, Any], path: Path) -> dict[str, Any]:
    for key, value in state.get("callbacks", {}).items():
        if key.split("{")[0] == TrainingState.__qualname__ and "identity" in value:
            return value
    raise CheckpointError(f"{path}: not a workbench training state (no {TrainingState.__qualname__} entry)")
