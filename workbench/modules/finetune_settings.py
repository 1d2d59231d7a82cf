"""What a fine-tuning run is, as one frozen dataclass: the notebook's parameters, a spec's
values and the recipe's input are all this, so each setting's name, type, default and valid values
live here.

Every choice is checked on construction, all problems at once, before the task is parsed or a base
is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator

from workbench.data.choices import TASKS
from workbench.heads.choices import HEADS, POOLINGS
from workbench.heads.for_task import HEAD_FOR_TASK, TASK_KINDS
from workbench.modules.choices import HUB_PREFIX, NAMED_BASES, PRECISIONS, SCRATCH, STRATEGIES
from workbench.modules.scale_settings import devices_setting, distributed_strategy_setting, num_nodes_setting
from workbench.modules.tracking_settings import tracking_problems, tracking_setting, tracking_uri_setting
from workbench.settings import Settings, setting

if TYPE_CHECKING:
    from workbench.modules.strategies import Strategy


DEFAULT_HEADS = HEAD_FOR_TASK  # the head each task kind gets unless `head` says otherwise (heads/for_task.py)


@dataclass(frozen=True)
class FinetuneSettings(Settings):
    what = "fine-tuning settings"

    seed: int = setting(0, "seeds the label subsample, the head, dropout and batch order")
    base: str = setting("minilm", 'a pretraining run folder, "scratch:<run folder>" (same architecture, fresh '
                        'weights), "minilm", a Hugging Face model folder (an encoder or a causal LM), or '
                        '"hf:<repo-id>" (the Hugging Face cache, or the hub when online)', section="what to adapt")
    max_length: int = setting(64, "tokens per example, specials included", minimum=1)
    task: str = setting("docstring-topic", " | ".join(TASKS), choices=TASKS, section="the task")
    task_path: str | None = setting(None, 'a CSV, JSON(L) or Parquet file, for task="file"', path="file")
    hf_name: str | None = setting(None, 'a Hugging Face dataset, for task="hf"')
    text_column: str = setting("text", 'the text column, for task="file" or "hf"')
    label_column: str = setting("label", 'the label column, for task="file" or "hf"')
    task_kind: str | None = setting(None, "for file/hf tasks; None = inferred from the labels", choices=TASK_KINDS)
    label_fraction: float = setting(1.0, "a stratified, seeded share of the training labels", above=0, maximum=1)
    max_examples: int | None = setting(None, "a cap on the task's examples; None = all of them", minimum=1)
    head: str | None = setting(None, "None = the task kind's own head", choices=HEADS, section="the head")
    pooling: str | None = setting(None, "mean | last | first; None = the base's natural choice", choices=POOLINGS)
    dropout: float = setting(0.1, "dropout before the head", minimum=0, below=1)
    strategy: str = setting("linear_probe", " | ".join(STRATEGIES) + ": the cheapest that reads a base's "
                            "features is the default", choices=STRATEGIES, section="the strategy")
    layer_lr_decay: float | None = setting(None, "e.g. 0.8: each layer down learns 0.8x slower", above=0, maximum=1)
    unfreeze_every: int = setting(1, "gradual_unfreeze: epochs between unfreezing the next layer group", minimum=1)
    lora_rank: int = setting(8, "lora: adapter rank", minimum=1)
    lora_alpha: float = setting(16.0, "lora: adapter scale (alpha / rank multiplies the update)", above=0)
    lora_dropout: float = setting(0.0, "lora: dropout on the adapter input", minimum=0, below=1)
    lora_targets: list[str] | None = setting(None, "lora: module names to adapt; None = attention and MLP "
                                             "projections")
    batch_size: int = setting(32, "examples per batch on each device (the global batch: x devices x num_nodes)",
                              minimum=1, section="optimisation")
    max_epochs: int = setting(3, "passes over the training split", minimum=1)
    learning_rate: float = setting(1e-2, "peak rate: a linear probe wants a high one, full fine-tuning a low one "
                                   "(~1e-4 for MiniLM, ~1e-3 for the small decoders)", above=0)
    weight_decay: float = setting(0.01, "AdamW decay", minimum=0)
    warmup_fraction: float = setting(0.1, "share of the steps spent warming up", minimum=0, below=1)
    grad_clip: float = setting(1.0, "clip the gradient norm to this; 0 = no clipping", minimum=0)
    precision: str = setting("32-true", "32-true | bf16-mixed", choices=PRECISIONS)
    devices: int = devices_setting()
    num_nodes: int = num_nodes_setting()
    distributed_strategy: str = distributed_strategy_setting()
    tracking: str = tracking_setting()
    tracking_uri: str | None = tracking_uri_setting()

    def more_problems(self) -> Iterator[str]:
        yield from tracking_problems(self.tracking, self.tracking_uri)
        if self.task == "file" and not self.task_path:
            yield 'task="file" needs task_path: a CSV, JSON(L) or Parquet file'
        if self.task == "hf" and not self.hf_name:
            yield 'task="hf" needs hf_name: the Hugging Face dataset to read'
        if self.lora_targets is not None and not all(isinstance(t, str) and t for t in self.lora_targets or [""]):
            yield f"lora_targets={self.lora_targets!r} must be a non-empty list of module names, or None"

    def required_paths(self) -> dict[str, list[str]]:
        paths = super().required_paths()
        if self.task != "file":
            paths.pop("task_path", None)
        folder = self.base.removeprefix(SCRATCH)
        if folder not in NAMED_BASES and not folder.startswith(HUB_PREFIX):
            paths["base"] = [folder]
        return paths

    def strategy_value(self) -> Strategy:
        from workbench.modules.strategies import Strategy  # here: these settings are read with no framework loaded

        return Strategy(
            name=self.strategy,
            layer_lr_decay=self.layer_lr_decay,
            unfreeze_every=self.unfreeze_every,
            lora_rank=self.lora_rank,
            lora_alpha=self.lora_alpha,
            lora_dropout=self.lora_dropout,
            lora_targets=self.lora_targets,
        )

    def task_options(self) -> dict[str, Any]:
        return dict(
            seed=self.seed, label_fraction=self.label_fraction, max_examples=self.max_examples,
            path=self.task_path, text_column=self.text_column, label_column=self.label_column,
            kind=self.task_kind, hf_name=self.hf_name,
        )


@dataclass(frozen=True)
class FinetuneNotebook(FinetuneSettings):
    """notebooks/finetune.ipynb's parameters: the settings, then what the notebook keeps."""

    save_model: bool = setting(True, "write the fine-tuned weights (base + head, LoRA merged) into finetuned/ "
                               "(~4 bytes a parameter)", section="what the notebook keeps")
