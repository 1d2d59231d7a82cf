"""The pretraining recipe: settings in, trained model and its records out.

A notebook's parameters map one to one onto `PretrainSettings`, so the
notebook, a spec and a test all describe a run the same way, and bad values
fail here, before any data is read.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import lightning as L
import torch

from workbench.data import PretrainDataModule
from workbench.data.tokenizers import Tokenizer
from workbench.errors import RequestError
from workbench.models import Decoder
from workbench.modules.choices import MASKED_LM
from workbench.modules.distributed import Scale, launched_externally, launched_rank, local_ranks
from workbench.modules.initial_model import InitialModel, initial_model
from workbench.modules.precision import PrecisionChoice, capability_choice, choose_precision
from workbench.modules.precision_memory import remembered_choice
from workbench.modules.pretrain import PretrainModule
from workbench.modules.pretrain_settings import PretrainSettings
from workbench.modules.recorder import TrainingRecorder
from workbench.modules.tracking import check_tracking, finish_loggers, run_loggers
from workbench.modules.training import make_trainer, quiet_lightning
from workbench.modules.training_state import TrainingState, resumable_state, saved_precision_choice
from workbench.settings import defaults


@dataclass
class PretrainOutcome:
    """Everything a notebook shows or saves after pretraining."""

    model: Decoder
    tokenizer: Tokenizer
    datamodule: PretrainDataModule
    history: list[dict[str, float]]
    metrics: dict[str, Any]  # deterministic for a seed: safe to compare across runs
    compute: dict[str, Any]  # timings: vary from run to run
    data: dict[str, Any]


def sample_every(settings: PretrainSettings) -> int:
    """Steps between the train-loss points a run records (and logs): about 100 points a run."""
    return max(1, settings.max_steps // 100)


def make_datamodule(settings: PretrainSettings, tokenizer: Tokenizer | None = None) -> PretrainDataModule:
    """The data of `settings`, tokenized by `tokenizer` when a saved model brings its own (init_from)."""
    return PretrainDataModule(
        corpus=settings.corpus,
        corpus_options=settings.corpus_options(),
        tokenizer=tokenizer or settings.tokenizer,
        vocab_size=None if tokenizer else settings.vocab_size,
        block_size=settings.block_size,
        batch_size=settings.batch_size,
        seed=settings.seed,
        pii=settings.pii,
        canary_repetitions=tuple(settings.canary_repetitions),
        canary_digits=settings.canary_digits,
        num_proc=settings.num_proc,
    )


def _trainer(settings: PretrainSettings, callbacks: list[L.Callback], precision: str, **overrides: Any) -> L.Trainer:
    """Pretraining counts optimizer steps and evaluates every `eval_every` of them, on a few batches."""
    loop = dict(
        max_steps=settings.max_steps,
        accumulate_grad_batches=settings.accumulate_grad_batches,
        val_check_interval=settings.eval_every,
        check_val_every_n_epoch=None,
        limit_val_batches=settings.eval_batches,
    )
    return make_trainer(
        precision=precision, callbacks=callbacks, grad_clip=settings.grad_clip, scale=Scale.of(settings),
        **{**loop, **overrides}
    )


def _initial(settings: PretrainSettings) -> InitialModel | None:
    """The model `init_from` names, checked against the settings; None to start from fresh weights."""
    if not settings.init_from:
        return None
    init = initial_model(settings.init_from)
    if settings.block_size > init.decoder.config.block_size:
        raise RequestError(f"block_size={settings.block_size} is longer than the {init.decoder.config.block_size} "
                           f"positions of init_from={settings.init_from!r}; use block_size <= "
                           f"{init.decoder.config.block_size}")
    return init


def precision_choice(settings: PretrainSettings, module: PretrainModule,
                     datamodule: PretrainDataModule) -> PrecisionChoice | None:
    """With precision "auto", the measured choice for this model and batch shape; None otherwise.

    The batch is the first `batch_size` blocks as stored, taken without touching the sampler, so the
    training order is the one the run would have had anyway. Ranks a launcher started decide from
    the device's bf16 support alone (`capability_choice`), so they all train in one precision; ranks
    this process starts are handed its choice (`decided_precision`).
    """
    if settings.precision != "auto":
        return None
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    scale = Scale.of(settings)
    if scale.world_size > 1 and launched_externally():  # torchrun, SLURM: no way yet to hear rank 0's answer
        return capability_choice(device, scale.world_size)
    blocks = datamodule.train_blocks[: settings.batch_size]
    x, y = blocks[:, :-1], blocks[:, 1:]
    shape = {"device": device.type, "model": asdict(module.model.config), "batch": list(x.shape)}
    return remembered_choice(shape, lambda: choose_precision(lambda: module.loss_on((x, y))[0],
                                                             list(module.model.parameters()), device))


def pretrain(
    settings: PretrainSettings | dict[str, Any],
    *,
    callbacks: list[L.Callback] = (),
    printer: Callable[[str], None] | None = print,
    state_dir: str | os.PathLike | None = None,
    decided_precision: dict[str, Any] | None = None,
    run_dir: str | os.PathLike | None = None,
) -> PretrainOutcome:
    """Seed, build data and model, fit, evaluate on the validation split.

    With `state_dir`, the training state is saved there every
    `settings.checkpoint_every` steps and at the end; if that folder already
    holds a state saved under the same settings, training resumes from it and
    ends with the same weights and metrics as a run that never stopped.

    With `run_dir` (the run folder), TensorBoard event files go into run_dir/tensorboard and, with
    `tracking="mlflow"`, the run is logged to MLflow too (modules/tracking.py).

    With `devices` > 1 and no launcher around it, this process becomes rank 0 and
    starts the other ranks (modules/distributed.py); `decided_precision` is how rank 0
    hands them precision auto's measured choice, so every rank trains in the same one.
    """
    if isinstance(settings, dict):
        settings = PretrainSettings.from_dict(settings)
    scale = Scale.of(settings)
    scale.check()  # before any data is read
    if run_dir is not None:
        check_tracking(settings)  # a server that does not answer, said before any data is read
    if launched_rank() != 0:
        printer = None  # rank 0 speaks for the run
    resume = resumable_state(state_dir, settings.identity(), defaults(PretrainSettings)) if state_dir else None
    started = time.perf_counter()
    quiet_lightning()
    init = _initial(settings)  # before any data is read: a wrong source fails here
    L.seed_everything(settings.seed, workers=True, verbose=False)
    datamodule = make_datamodule(settings, init.tokenizer if init else None)
    datamodule.setup("fit")
    tokenizer = datamodule.tokenizer
    module = PretrainModule(
        dataclasses.replace(init.decoder.config, dropout=settings.dropout) if init
        else settings.model_config(tokenizer.vocab_size),
        settings.optim_config(),
        bytes_per_token=datamodule.bytes_per_token,
        compile=settings.compile,
        activation_checkpointing=settings.activation_checkpointing,
        log_every_n_steps=sample_every(settings),
        objective=settings.objective,
        seed=settings.seed,
    )
    if init:
        module.model.load_state_dict(init.decoder.state_dict())
    if printer:
        printer(
            f"{'encoder' if settings.objective == MASKED_LM else 'model'} "
            f"{f'from {settings.init_from}' if init else settings.preset}: "
            f"{module.model.num_parameters() / 1e6:.2f}M parameters, "
            f"{tokenizer.kind} tokenizer ({tokenizer.vocab_size} ids), "
            f"{datamodule.train_blocks.shape[0]} training blocks of {settings.block_size} tokens"
        )
    tokens_per_step = settings.batch_size * settings.block_size * settings.accumulate_grad_batches * scale.world_size
    if printer and scale.world_size > 1:
        printer(scale.describe_batch(settings.batch_size, settings.accumulate_grad_batches, settings.block_size))
    loggers = run_loggers(run_dir, settings, "pretrain")  # TensorBoard (and MLflow): the recorder's rows
    recorder = TrainingRecorder(tokens_per_step, every_n_steps=sample_every(settings), printer=printer,
                                loggers=loggers)
    saved_choice = decided_precision or (
        saved_precision_choice(resume[0]) if resume and settings.precision == "auto" else None)
    # A resumed run keeps the first attempt's choice: a new measurement could flip it and end elsewhere.
    choice = PrecisionChoice.from_record(saved_choice) if saved_choice else precision_choice(settings, module,
                                                                                              datamodule)
    if state_dir:
        every = settings.checkpoint_every or settings.max_steps
        callbacks = [TrainingState(state_dir, every, settings.identity(), choice.record() if choice else None),
                     *callbacks]
    if resume and printer:
        printer(f"resuming from step {resume[1]} ({resume[0]})")
    if choice and printer:
        kept = (" (kept from the run's first attempt)" if saved_choice
                else f" (measured {choice.measured_at}, remembered in {choice.remembered_in})" if choice.remembered_in
                else "")
        printer(f"precision auto: {choice.precision}{kept} ({choice.reason})")
    precision = choice.precision if choice else settings.precision
    worker_job = {"recipe": "pretrain", "settings": asdict(settings),
                  "state_dir": str(state_dir) if state_dir else None,
                  "decided_precision": choice.record() if choice else None}
    with local_ranks(scale, worker_job):  # ranks 1.. of a run nobody launched, started here
        trainer = _trainer(settings, [recorder, *callbacks], precision)
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume[0] if resume else None, weights_only=True)
        final_batches = settings.final_eval_batches if settings.final_eval_batches is not None else 1.0
        evaluation = _trainer(settings, [], precision, limit_val_batches=final_batches).validate(
            module, datamodule=datamodule, verbose=False
        )[0]
    last_train = [row["train_loss"] for row in recorder.history if "train_loss" in row]
    described = datamodule.describe()
    metrics = {
        "val_loss": evaluation["val_loss"],
        "val_ppl": evaluation["val_ppl"],
        # bits per byte where the loss codes the text (causal LM); the share of masked tokens predicted (masked LM)
        **{name: evaluation[name] for name in ("val_bpb", "val_accuracy") if name in evaluation},
        "train_loss": last_train[-1] if last_train else None,
        "steps": trainer.global_step,
        "tokens": trainer.global_step * tokens_per_step,
        "parameters": module.model.num_parameters(),
        # The yardstick: a model worth keeping codes the validation text in fewer bits than zlib.
        "zlib_bpb": described["corpus_summary"]["validation"]["zlib_bpb"],
    }
    finish_loggers(loggers, metrics, trainer.global_step)
    compute = recorder.compute_record(started=started, device=str(module.device), precision=precision)
    compute["distributed"] = scale.record(settings.batch_size, settings.accumulate_grad_batches)
    if choice:
        compute["precision_choice"] = choice.record()
    data = {"fingerprint": described["corpus_summary"]["fingerprint"], **described, "settings": asdict(settings)}
    if init:
        data["init_from"] = init.provenance
    return PretrainOutcome(module.model.eval(), tokenizer, datamodule, recorder.history, metrics, compute, data)
