"""Training state: saved atomically every N steps; a run killed with SIGKILL resumes to the same result."""

import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from crash_resume import crash_then_resume

from workbench.modules import PretrainSettings, pretrain
from workbench.modules.checkpoint import CheckpointError
from workbench.modules.training_state import LAST_STATE, TrainingState, resumable_state

WORDS = "def class return import yield lambda self value index count total parse read write".split()


@pytest.fixture
def settings(tmp_path):
    rng = random.Random(0)
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(3000)))
    return PretrainSettings(
        corpus="text", corpus_paths=[str(path)], validation_fraction=0.1, tokenizer="char",
        preset="tiny", block_size=32, batch_size=8, max_steps=60, learning_rate=1e-2, warmup_steps=5,
        dropout=0.1,  # dropout draws from the RNG: resume must restore its stream too
        eval_every=25, eval_batches=2, final_eval_batches=4, checkpoint_every=10,
    )


# A child process that trains slowly enough (sleeping in a callback, which changes no number)
# to be killed part-way.
CHILD = """
import sys, time, lightning as L
from workbench.modules import PretrainSettings, pretrain

class Slow(L.Callback):
    def on_train_batch_end(self, *args):
        time.sleep(0.1)

settings = PretrainSettings.from_dict(eval(sys.argv[1]))
pretrain(settings, state_dir=sys.argv[2], callbacks=[Slow()], printer=None)
"""


def test_a_run_killed_with_sigkill_resumes_to_exactly_the_uninterrupted_metrics(settings, tmp_path):
    state_dir = tmp_path / "state"
    child = subprocess.Popen([sys.executable, "-c", CHILD, repr(settings.__dict__), str(state_dir)])
    try:
        deadline = time.monotonic() + 120
        while not (state_dir / LAST_STATE).exists():
            assert child.poll() is None, "the child ended before saving any state"
            assert time.monotonic() < deadline, "no training state after 120 s"
            time.sleep(0.05)
        time.sleep(0.5)  # a few more steps, so the kill lands between two saves
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL
    _, step = resumable_state(state_dir, settings.identity())
    assert 0 < step < settings.max_steps, f"the kill should land mid-training, state is at step {step}"

    lines = []
    resumed = pretrain(settings, state_dir=state_dir, printer=lines.append)
    uninterrupted = pretrain(settings, printer=None)

    assert any(f"resuming from step {step}" in line for line in lines)
    assert resumed.metrics == uninterrupted.metrics  # to the last digit
    for name, weight in uninterrupted.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], weight), name
    strip = lambda rows: [{k: v for k, v in row.items() if k != "time_s"} for row in rows]  # noqa: E731
    assert strip(resumed.history) == strip(uninterrupted.history)  # the curves span both attempts
    assert resumed.compute["resumed_at_steps"] and resumed.compute["train_steps"] == settings.max_steps


def test_state_is_saved_every_n_steps_and_at_the_end(settings, tmp_path):
    saved_steps = []
    original = TrainingState.save

    def spy(self, trainer):
        saved_steps.append(trainer.global_step)
        return original(self, trainer)

    TrainingState.save = spy
    try:
        longer = settings.__class__(**{**settings.__dict__, "max_steps": 35})
        pretrain(longer, state_dir=tmp_path / "state", printer=None)
    finally:
        TrainingState.save = original
    assert saved_steps == [10, 20, 30, 35]
    assert [p.name for p in (tmp_path / "state").iterdir()] == [LAST_STATE]  # no temporary files left behind


def test_a_write_that_dies_part_way_leaves_the_previous_state(settings, tmp_path):
    pretrain(settings.__class__(**{**settings.__dict__, "max_steps": 10}), state_dir=tmp_path / "state", printer=None)
    before = (tmp_path / "state" / LAST_STATE).read_bytes()

    class Trainer:
        is_global_zero = True

        def save_checkpoint(self, path):
            path.write_bytes(before[: len(before) // 2])  # half a file, then the process "dies"
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        TrainingState(tmp_path / "state", 10, settings.identity()).save(Trainer())
    assert (tmp_path / "state" / LAST_STATE).read_bytes() == before
    assert [p.name for p in (tmp_path / "state").iterdir()] == [LAST_STATE]


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_corrupt_state_fails_before_training_and_names_the_file(settings, tmp_path, damage):
    pretrain(settings.__class__(**{**settings.__dict__, "max_steps": 10}), state_dir=tmp_path / "state", printer=None)
    path = tmp_path / "state" / LAST_STATE
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3] if damage == "truncate" else b"not a checkpoint" * 100)
    started = time.monotonic()
    with pytest.raises(CheckpointError, match=f"{path}.*truncated or corrupt.*delete it"):
        pretrain(settings, state_dir=tmp_path / "state", printer=None)
    assert time.monotonic() - started < 5


def test_resuming_under_other_settings_is_refused_naming_what_changed(settings, tmp_path):
    pretrain(settings.__class__(**{**settings.__dict__, "max_steps": 10}), state_dir=tmp_path / "state", printer=None)
    changed = settings.__class__(**{**settings.__dict__, "max_steps": 10, "learning_rate": 5e-3})
    with pytest.raises(CheckpointError, match=r"learning_rate: saved 0.01, now 0.005"):
        pretrain(changed, state_dir=tmp_path / "state", printer=None)
    # checkpoint_every may change: it shapes no weight
    later = settings.__class__(**{**settings.__dict__, "max_steps": 10, "checkpoint_every": 5})
    assert resumable_state(tmp_path / "state", later.identity())[1] == 10


def test_a_pickle_that_is_not_plain_data_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"callbacks": {}, "payload": Evil()}, tmp_path / LAST_STATE)
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        resumable_state(tmp_path, {})


def test_accumulated_batches_match_the_larger_batch_and_resume_exactly(settings, tmp_path):
    import dataclasses


    common = dict(dropout=0.0, max_steps=20, checkpoint_every=5, eval_every=10)
    large = pretrain(dataclasses.replace(settings, batch_size=16, **common), printer=None)
    accumulated_settings = dataclasses.replace(settings, batch_size=8, accumulate_grad_batches=2, **common)
    accumulated = pretrain(accumulated_settings, printer=None)
    # Steps, tokens and curves count optimizer steps, each of 2 x 8 blocks: one row per step, none per half-batch.
    # (The losses agree only roughly: AdamW's first updates are ~lr x sign(gradient), so summation-order
    # noise in near-zero gradients flips some of them.)
    assert accumulated.metrics["tokens"] == large.metrics["tokens"] == 20 * 16 * 32
    assert accumulated.compute["train_steps"] == accumulated.metrics["steps"] == 20
    steps = [row["step"] for row in accumulated.history if "lr" in row]
    assert steps == [row["step"] for row in large.history if "lr" in row] == list(range(1, 21))
    assert accumulated.metrics["val_loss"] == pytest.approx(large.metrics["val_loss"], rel=0.05)

    resumed = crash_then_resume(accumulated_settings, tmp_path / "state")
    assert resumed.metrics == accumulated.metrics


def test_a_setting_added_after_the_state_was_saved_is_no_change_at_its_default(settings, tmp_path):
    import json

    from workbench.settings import defaults

    older = {k: v for k, v in settings.identity().items() if k != "optimizer"}  # saved before `optimizer` existed
    (tmp_path / LAST_STATE).parent.mkdir(parents=True, exist_ok=True)
    state = {"callbacks": {TrainingState.__qualname__: {"identity": json.dumps(older, default=str)}}, "global_step": 3}
    torch.save(state, tmp_path / LAST_STATE)
    assert resumable_state(tmp_path, settings.identity(), defaults(PretrainSettings)) == (tmp_path / LAST_STATE, 3)
    muon = settings.__class__(**{**settings.__dict__, "optimizer": "muon"})
    with pytest.raises(CheckpointError, match=r"optimizer: saved 'adamw', now 'muon'"):
        resumable_state(tmp_path, muon.identity(), defaults(PretrainSettings))
    with pytest.raises(CheckpointError, match=r"optimizer: saved None, now 'adamw'"):  # without defaults: refused
        resumable_state(tmp_path, settings.identity())


def test_a_resumed_run_keeps_precision_autos_first_choice_however_a_new_measurement_falls(
        settings, tmp_path, monkeypatch):
    """auto times both precisions; near its threshold a second measurement can fall the other way, and a run
    resumed in another precision would end elsewhere than the uninterrupted one."""
    from workbench.modules import pretrain_recipe
    from workbench.modules.precision import PrecisionChoice

    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))  # no remembered choice to reuse
    measured = iter([PrecisionChoice("bf16-mixed", "first measurement"), PrecisionChoice("32-true", "second")])
    monkeypatch.setattr(pretrain_recipe, "choose_precision", lambda *args: next(measured))
    auto = settings.__class__(**{**settings.__dict__, "precision": "auto", "max_steps": 20})
    resumed = crash_then_resume(auto, tmp_path / "state")
    assert resumed.compute["precision"] == "bf16-mixed"
    assert resumed.compute["precision_choice"]["reason"] == "first measurement"
    assert next(measured, None).precision == "32-true"  # the resume never measured
