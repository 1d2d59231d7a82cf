"""The vision recipes: settings in, a trained ViT (or a fine-tuned one) and its records out.

`pretrain_vision` and `finetune_vision` are shaped like `pretrain()` and `finetune()`: the same
Trainer plumbing, recorder and precision choice, the same metrics, history, compute and data records,
so a vision run folder holds the same files as a text one and the registry, the card and the sweep
summary read it the same way. Fine-tuning is the text side's `FinetuneModule` with its strategies, on a
`ViTBackbone`. The notebooks' parameters map one to one onto the settings, and every value is checked
before an image is read.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import lightning as L
import torch

from workbench.data.image_datamodule import VisionFinetuneDataModule, VisionPretrainDataModule
from workbench.data.image_inputs import ImageInputs
from workbench.data.image_transforms import collate_images
from workbench.errors import RequestError
from workbench.heads import build_head
from workbench.models import ViT
from workbench.modules.base_model import LoadedVisionBase, load_vision_base
from workbench.modules.choices import MAE
from workbench.modules.finetune import FinetuneModule
from workbench.modules.masked_lm import step_generator
from workbench.modules.optim import OptimConfig
from workbench.modules.precision import PrecisionChoice, choose_precision
from workbench.modules.precision_memory import remembered_choice
from workbench.modules.recorder import TrainingRecorder
from workbench.modules.tracking import check_tracking, finish_loggers, run_loggers
from workbench.modules.training import make_trainer, quiet_lightning
from workbench.modules.training_state import TrainingState, resumable_state, saved_precision_choice
from workbench.modules.vision_pretrain import VisionPretrainModule, mean_prediction_loss
from workbench.modules.vision_settings import VisionFinetuneSettings, VisionPretrainSettings
from workbench.settings import defaults

HEAD_POOLING = {"cls": "first", "mean": "mean"}  # a vision pooling name -> the heads' (the class token is first)


@dataclass
class VisionPretrainOutcome:
    """Everything a notebook shows or saves after vision pretraining."""

    model: ViT  # the encoder, in eval mode: what the checkpoint keeps and fine-tuning loads
    module: VisionPretrainModule  # with the MAE decoder (reconstructions) or the classifier
    inputs: ImageInputs  # the encoder's image size, channels, normalization and classes: saved beside it
    datamodule: VisionPretrainDataModule
    history: list[dict[str, float]]
    metrics: dict[str, Any]  # deterministic for a seed
    compute: dict[str, Any]
    data: dict[str, Any]


@dataclass
class VisionFinetuneOutcome:
    """Everything a notebook shows or saves after vision fine-tuning."""

    module: FinetuneModule
    base: LoadedVisionBase
    datamodule: VisionFinetuneDataModule
    history: list[dict[str, float]]
    metrics: dict[str, Any]  # deterministic for a seed
    details: dict[str, Any]  # per split ("validation", "test"), unprefixed: confusion_matrix, per_class_f1, ...
    compute: dict[str, Any]
    data: dict[str, Any]

    @property
    def label_names(self) -> list[str]:
        return list(self.datamodule.class_names)


def sample_every(steps: int) -> int:
    """Steps between the train-loss points a run records: about 100 points a run."""
    return max(1, steps // 100)


# ---------------------------------------------------------------- pretraining


def pretrain_vision(
    settings: VisionPretrainSettings | dict[str, Any],
    *,
    callbacks: list[L.Callback] = (),
    printer: Callable[[str], None] | None = print,
    state_dir: str | os.PathLike | None = None,
    run_dir: str | os.PathLike | None = None,
) -> VisionPretrainOutcome:
    """Seed, build the images and the model, fit, evaluate on the validation split.

    With `state_dir`, the training state is saved there every `checkpoint_every` steps and at the end;
    a state saved there under the same settings is resumed, ending with the weights and metrics of a run
    that never stopped. With `run_dir` (the run folder), TensorBoard event files go into run_dir/tensorboard
    and, with `tracking="mlflow"`, the run is logged to MLflow too (modules/tracking.py).
    """
    if isinstance(settings, dict):
        settings = VisionPretrainSettings.from_dict(settings)
    if run_dir is not None:
        check_tracking(settings)  # a server that does not answer, said before any image is read
    resume = resumable_state(state_dir, settings.identity(), defaults(VisionPretrainSettings)) if state_dir else None
    started = time.perf_counter()
    quiet_lightning()
    L.seed_everything(settings.seed, workers=True, verbose=False)
    config = settings.model_config()
    datamodule = VisionPretrainDataModule(
        settings.image_set, settings.image_options(), image_size=config.image_size, channels=config.channels,
        batch_size=settings.batch_size, seed=settings.seed, augment=settings.augment, flip=settings.flip,
    )
    datamodule.setup("fit")
    every = sample_every(settings.max_steps)
    module = VisionPretrainModule(
        config, settings.optim_config(), objective=settings.objective,
        decoder_config=settings.decoder_config() if settings.objective == MAE else None,
        mask_ratio=settings.mask_ratio, num_classes=len(datamodule.class_names), seed=settings.seed,
        log_every_n_steps=every,
    )
    images = len(datamodule.view("train"))
    if printer:
        printer(f"{settings.objective} ViT {settings.preset}: {module.encoder.num_parameters() / 1e6:.2f}M encoder "
                f"parameters, {images} training images of {config.channels}x{config.image_size}x{config.image_size}, "
                f"{config.num_patches} patches each")
    tokens_per_image = config.num_prefix_tokens + config.num_patches
    loggers = run_loggers(run_dir, settings, "pretrain-vision")  # TensorBoard (and MLflow): the recorder's rows
    recorder = TrainingRecorder(settings.batch_size * tokens_per_image, every_n_steps=every, printer=printer,
                                loggers=loggers)
    saved_choice = saved_precision_choice(resume[0]) if resume and settings.precision == "auto" else None
    # A resumed run keeps the first attempt's choice: a new measurement could flip it and end elsewhere.
    choice = PrecisionChoice.from_record(saved_choice) if saved_choice else _precision_choice(settings, module,
                                                                                               datamodule)
    if state_dir:
        save_every = settings.checkpoint_every or settings.max_steps
        callbacks = [TrainingState(state_dir, save_every, settings.identity(), choice.record() if choice else None),
                     *callbacks]
    if resume and printer:
        printer(f"resuming from step {resume[1]} ({resume[0]})")
    if choice and printer:
        printer(f"precision auto: {choice.precision} ({choice.reason})")
    precision = choice.precision if choice else settings.precision
    loop = dict(max_steps=settings.max_steps, val_check_interval=settings.eval_every, check_val_every_n_epoch=None,
                limit_val_batches=settings.eval_batches)
    trainer = make_trainer(precision=precision, callbacks=[recorder, *callbacks], grad_clip=settings.grad_clip, **loop)
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume[0] if resume else None, weights_only=True)

    final_batches = settings.final_eval_batches if settings.final_eval_batches is not None else 1.0
    evaluation = make_trainer(precision=precision, callbacks=[], **{**loop, "limit_val_batches": final_batches}
                              ).validate(module, datamodule=datamodule, verbose=False)[0]
    last_train = [row["train_loss"] for row in recorder.history if "train_loss" in row]
    metrics: dict[str, Any] = {
        "val_loss": evaluation["val_loss"],
        **({"val_accuracy": evaluation["val_accuracy"]} if "val_accuracy" in evaluation else {}),
        "train_loss": last_train[-1] if last_train else None,
        "steps": trainer.global_step,
        "images": trainer.global_step * settings.batch_size,
        "parameters": module.encoder.num_parameters(),
    }
    if settings.objective == MAE:  # the yardstick: predicting every hidden patch as its mean
        batches = _first(datamodule.val_dataloader(), settings.final_eval_batches)
        metrics["baseline_val_loss"] = mean_prediction_loss(module.eval(), batches)
    finish_loggers(loggers, metrics, trainer.global_step)
    compute = recorder.compute_record(started=started, device=str(module.device), precision=precision)
    seconds = max(compute["train_time_s"], 1e-9)
    compute.update(train_images=recorder.train_steps * settings.batch_size,
                   images_per_s=round(recorder.train_steps * settings.batch_size / seconds, 1))
    if choice:
        compute["precision_choice"] = choice.record()
    described = datamodule.describe()
    data = {"fingerprint": described["fingerprint"], "image_set": described,
            "image_inputs": datamodule.inputs.to_dict(), "settings": asdict(settings)}
    if settings.objective == MAE:
        data["mae_decoder"] = module.model.decoder_config.to_dict()  # trained beside the encoder, then dropped
    return VisionPretrainOutcome(module.encoder.eval(), module.eval(), datamodule.inputs, datamodule,
                                 recorder.history, metrics, compute, data)


def _precision_choice(settings: VisionPretrainSettings, module: VisionPretrainModule,
                      datamodule: VisionPretrainDataModule) -> PrecisionChoice | None:
    """With precision "auto", the measured choice for this model and batch shape; None otherwise.

    The batch is the first `batch_size` training images, read without touching the sampler, so training sees
    the order it would have seen anyway.
    """
    if settings.precision != "auto":
        return None
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    train = datamodule.view("train")
    batch = collate_images([train[i] for i in range(settings.batch_size)])
    model = {key: module.hparams[key] for key in ("encoder_config", "decoder_config", "objective", "mask_ratio")}
    shape = {"device": device.type, "model": model, "batch": list(batch["pixels"].shape)}
    generator = step_generator(settings.seed, 0)
    return remembered_choice(shape, lambda: choose_precision(lambda: module.loss_on(batch, generator)[0],
                                                             list(module.parameters()), device))


def _first(loader, count: int | None) -> list:
    """The first `count` batches of `loader` (all of them for None): what the final evaluation read."""
    batches = []
    for index, batch in enumerate(loader):
        if count is not None and index >= count:
            break
        batches.append(batch)
    return batches


# ---------------------------------------------------------------- fine-tuning


def finetune_vision(
    settings: VisionFinetuneSettings | dict[str, Any],
    *,
    callbacks: list[L.Callback] = (),
    printer: Callable[[str], None] | None = print,
    run_dir: str | os.PathLike | None = None,
) -> VisionFinetuneOutcome:
    """Seed; load the base and the image set; attach a head and a strategy; fit; test on the held-out split.

    `run_dir`: as for `pretrain_vision`, TensorBoard into the run folder and MLflow when asked.
    """
    if isinstance(settings, dict):
        settings = VisionFinetuneSettings.from_dict(settings)
    if not settings.base.strip():
        raise RequestError('base="" names no base: give a vision pretraining run folder or "scratch:<that folder>" '
                           "(notebooks/finetune-vision.ipynb pretrains one first when base is empty)")
    if run_dir is not None:
        check_tracking(settings)  # before the base and the images are loaded
    started = time.perf_counter()
    strategy = settings.strategy_value()
    quiet_lightning(modules_in_eval=strategy.base_in_eval)  # a frozen base is in eval mode on purpose
    L.seed_everything(settings.seed, workers=True, verbose=False)
    base = load_vision_base(settings.base, seed=settings.seed)
    pooling = _head_pooling(settings, base)
    datamodule = VisionFinetuneDataModule(
        settings.image_set, settings.image_options(), base.inputs, batch_size=settings.batch_size,
        seed=settings.seed, label_fraction=settings.label_fraction, augment=settings.augment, flip=settings.flip,
    )
    _refuse_pretrained_test_images(settings, base, datamodule)
    datamodule.setup("fit")
    train = len(datamodule.view("train"))
    head = build_head("sequence_classification", base.backbone.hidden_size, num_labels=datamodule.num_labels,
                      pooling=pooling, dropout=settings.dropout, backbone=base.backbone)
    steps = settings.max_epochs * math.ceil(train / settings.batch_size)
    optim = OptimConfig(learning_rate=settings.learning_rate, warmup_steps=int(settings.warmup_fraction * steps),
                        max_steps=max(1, steps), weight_decay=settings.weight_decay, min_lr_ratio=0.0)
    module = FinetuneModule(base.backbone, head, strategy, optim, "sequence_classification",
                            label_names=datamodule.class_names)
    counts = module.parameter_counts()
    if printer:
        sizes = {split: len(datamodule.view(split)) for split in ("train", "validation", "test")}
        printer(f"{settings.image_set}: {sizes['train']} train / {sizes['validation']} validation / {sizes['test']} "
                f"test images; base {base.description['kind']} {counts['total'] / 1e6:.2f}M parameters, "
                f"{settings.strategy} trains {counts['trainable']:,} "
                f"({100 * counts['trainable'] / counts['total']:.2f}%)")
    config = base.backbone.vit.config
    loggers = run_loggers(run_dir, settings, "finetune-vision")  # TensorBoard (and MLflow): the recorder's rows
    recorder = TrainingRecorder(None, every_n_steps=sample_every(steps), printer=printer,
                                tokens_per_image=config.num_prefix_tokens + config.num_patches, loggers=loggers)
    trainer = make_trainer(precision=settings.precision,
                           callbacks=[recorder, *module.strategy_callbacks(), *callbacks],
                           grad_clip=settings.grad_clip, max_epochs=settings.max_epochs)
    trainer.fit(module, datamodule=datamodule)
    validation = trainer.validate(module, datamodule=datamodule, verbose=False)[0]
    test = trainer.test(module, datamodule=datamodule, verbose=False)[0]
    metrics = {
        **{k: float(v) for k, v in sorted(validation.items())},
        **{k: float(v) for k, v in sorted(test.items())},
        "trainable_parameters": counts["trainable"],
        "total_parameters": counts["total"],
        "trainable_fraction": counts["trainable"] / counts["total"],
        "train_examples": train,
        "label_fraction": settings.label_fraction,
        "steps": trainer.global_step,
    }
    finish_loggers(loggers, metrics, trainer.global_step)
    compute = recorder.compute_record(started=started, device=str(module.device), precision=settings.precision)
    data = {"task": datamodule.task_record(), "image_set": datamodule.describe(), "base": base.description,
            "image_inputs": datamodule.inputs.to_dict(), "settings": asdict(settings)}
    return VisionFinetuneOutcome(module, base, datamodule, recorder.history, metrics, module.details(), compute, data)


def _head_pooling(settings: VisionFinetuneSettings, base: LoadedVisionBase) -> str:
    if settings.pooling == "cls" and base.backbone.vit.cls_token is None:
        raise RequestError(f"pooling='cls' needs a class token, and the base {settings.base!r} has none (it was "
                           "built with pooling 'mean'); use pooling='mean' or None")
    return HEAD_POOLING[settings.pooling] if settings.pooling else base.backbone.default_pooling


def _refuse_pretrained_test_images(settings: VisionFinetuneSettings, base: LoadedVisionBase,
                                   datamodule: VisionFinetuneDataModule) -> None:
    """A pretrained base whose image set is this run's must have held out the same images, or this run's test
    split could hold images it pretrained on (its scratch control, with random weights, saw nothing)."""
    pretrained = base.inputs
    if base.description["weights"] != "pretrained" or pretrained.image_set != settings.image_set:
        return
    mine = datamodule.held_out()
    if pretrained.held_out is not None and pretrained.held_out != mine:
        changed = sorted(k for k in set(mine) | set(pretrained.held_out) if mine.get(k) != pretrained.held_out.get(k))
        shown = ", ".join(f"{k}: base {pretrained.held_out.get(k)!r}, here {mine.get(k)!r}" for k in changed)
        raise RequestError(f"the base {settings.base!r} pretrained on {settings.image_set} with other held-out "
                           f"splits ({shown}), so this run's test images may be ones it trained on: fine-tune with "
                           "its split_seed, validation_fraction and test_fraction, or on another image set")
