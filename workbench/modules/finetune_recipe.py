"""The fine-tuning recipe: a base, a labelled task, a head and a strategy in; metrics out.

Parameters of `notebooks/finetune.ipynb` map one to one onto
`FinetuneSettings`, so a sweep spec, the notebook and the tests describe a run
the same way, and every choice is checked before the task is parsed or a base
is loaded.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import lightning as L

from workbench.data.finetune_datamodule import FinetuneDataModule, RankBatches
from workbench.data.tasks import TaskData, load_task
from workbench.heads import HEAD_FOR_TASK, build_head
from workbench.modules.base_model import LoadedBase, load_base
from workbench.modules.distributed import Scale, launched_rank, local_ranks
from workbench.modules.finetune import FinetuneModule
from workbench.modules.finetune_settings import FinetuneSettings
from workbench.modules.optim import OptimConfig
from workbench.modules.recorder import TrainingRecorder
from workbench.modules.tracking import check_tracking, finish_loggers, run_loggers
from workbench.modules.training import make_trainer, quiet_lightning


@dataclass
class FinetuneOutcome:
    """Everything a notebook shows or saves after fine-tuning."""

    module: FinetuneModule
    base: LoadedBase
    task: TaskData
    datamodule: FinetuneDataModule
    history: list[dict[str, float]]
    metrics: dict[str, Any]  # deterministic for a seed
    details: dict[str, Any]  # per split ("validation", "test"), unprefixed: confusion_matrix, per_class_f1, ...
    compute: dict[str, Any]
    data: dict[str, Any]


def finetune(
    settings: FinetuneSettings | dict[str, Any],
    *,
    callbacks: list[L.Callback] = (),
    printer: Callable[[str], None] | None = print,
    run_dir: str | os.PathLike | None = None,
) -> FinetuneOutcome:
    """Seed; load task and base; attach head and strategy; fit; test on the held-out split.

    With `run_dir` (the run folder), TensorBoard event files go into run_dir/tensorboard and, with
    `tracking="mlflow"`, the run is logged to MLflow too (modules/tracking.py).

    With `devices` > 1 and no launcher around it, this process becomes rank 0 and starts the other
    ranks (modules/distributed.py); each takes its slice of every global batch, and the validation
    and test metrics are summed over all of them.
    """
    if isinstance(settings, dict):
        settings = FinetuneSettings.from_dict(settings)
    scale = Scale.of(settings)
    scale.check()  # before the task is parsed or a base is loaded
    if run_dir is not None:
        check_tracking(settings)
    if launched_rank() != 0:
        printer = None  # rank 0 speaks for the run
    started = time.perf_counter()
    strategy = settings.strategy_value()
    quiet_lightning(modules_in_eval=strategy.base_in_eval)  # a frozen base is in eval mode on purpose
    L.seed_everything(settings.seed, workers=True, verbose=False)
    task = load_task(settings.task, **settings.task_options())
    base = load_base(settings.base, max_length=settings.max_length, seed=settings.seed)
    head_kind = settings.head or HEAD_FOR_TASK[task.kind]
    num_labels = len(task.label_names) if task.label_names else None
    head = build_head(
        head_kind, base.backbone.hidden_size, num_labels=num_labels,
        pooling=settings.pooling or base.backbone.default_pooling, dropout=settings.dropout, backbone=base.backbone,
    )
    datamodule = FinetuneDataModule(task, base.text_encoder, batch_size=settings.batch_size, seed=settings.seed)
    steps = settings.max_epochs * RankBatches.count(len(task.splits["train"]), settings.batch_size, scale.world_size)
    optim = OptimConfig(
        learning_rate=settings.learning_rate, warmup_steps=int(settings.warmup_fraction * steps),
        max_steps=max(1, steps), weight_decay=settings.weight_decay, min_lr_ratio=0.0,
    )
    module = FinetuneModule(base.backbone, head, strategy, optim, task.kind, label_names=task.label_names)
    counts = module.parameter_counts()
    if printer:
        printer(
            f"{task.name}: {len(task.splits['train'])} train / {len(task.splits['validation'])} validation / "
            f"{len(task.splits['test'])} test examples; base {base.description.get('kind')} "
            f"{counts['total'] / 1e6:.2f}M parameters, {settings.strategy} trains "
            f"{counts['trainable']:,} ({100 * counts['trainable'] / counts['total']:.2f}%)"
        )
        if scale.world_size > 1:
            printer(scale.describe_batch(settings.batch_size, 1))
    # Padded batches of examples: the recorder counts examples and real (attention-mask) tokens itself.
    loggers = run_loggers(run_dir, settings, "finetune")  # TensorBoard (and MLflow): the recorder's rows
    recorder = TrainingRecorder(None, every_n_steps=max(1, steps // 100), printer=printer, loggers=loggers)
    with local_ranks(scale, {"recipe": "finetune", "settings": asdict(settings)}):  # ranks 1.., started here
        trainer = make_trainer(
            precision=settings.precision, callbacks=[recorder, *module.strategy_callbacks(), *callbacks],
            grad_clip=settings.grad_clip, max_epochs=settings.max_epochs, scale=scale,
        )
        trainer.fit(module, datamodule=datamodule)
        validation = trainer.validate(module, datamodule=datamodule, verbose=False)[0]
        test = trainer.test(module, datamodule=datamodule, verbose=False)[0]
    metrics = {
        **{k: float(v) for k, v in sorted(validation.items())},
        **{k: float(v) for k, v in sorted(test.items())},
        "trainable_parameters": counts["trainable"],
        "total_parameters": counts["total"],
        "trainable_fraction": counts["trainable"] / counts["total"],
        "train_examples": len(task.splits["train"]),
        "label_fraction": settings.label_fraction,
        "steps": trainer.global_step,
    }
    finish_loggers(loggers, metrics, trainer.global_step)
    compute = recorder.compute_record(started=started, device=str(module.device), precision=settings.precision)
    compute["distributed"] = scale.record(settings.batch_size, 1)
    data = {"task": task.describe(), "base": base.description, "text_encoder": base.text_encoder.describe(),
            "settings": asdict(settings)}
    details = module.details()  # {"validation": {...}, "test": {...}}, each split's own entries, unprefixed
    return FinetuneOutcome(module, base, task, datamodule, recorder.history, metrics, details, compute, data)
