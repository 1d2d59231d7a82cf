"""What a pretraining run is, as one frozen dataclass: the notebook's parameters, a spec's
values and the recipe's input are all this, so each setting's name, type and default live here.

Every value is checked on construction, before any data is read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from workbench.config import ConfigError, from_dict
from workbench.data import CORPORA, TOKENIZERS
from workbench.models import PRESETS, DecoderConfig
from workbench.modules.optim import OptimConfig
from workbench.modules.training import PRECISIONS

RESUME_MAY_CHANGE = ("checkpoint_every", "final_eval_batches")  # neither changes the trained weights


@dataclass(frozen=True)
class PretrainSettings:
    seed: int = 0
    # data
    corpus: str = "stdlib"
    corpus_paths: list[str] | None = None  # files or globs, for corpus "text"
    hf_name: str | None = None  # dataset name, for corpus "hf"
    text_column: str = "text"
    max_files: int | None = None  # a subset of the corpus for quick runs
    validation_fraction: float = 0.05
    tokenizer: str = "byte"
    vocab_size: int | None = None  # BPE only
    # model
    preset: str = "tiny"
    block_size: int = 128
    dropout: float = 0.0
    model_overrides: dict[str, Any] = field(default_factory=dict)
    # optimisation
    batch_size: int = 16
    accumulate_grad_batches: int = 1  # batches per optimizer step: a larger effective batch in the same memory
    max_steps: int = 200
    learning_rate: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 20
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    precision: str = "32-true"
    # speed: measured by `python -m benchmarks`; neither changes what is learned
    compile: bool = False  # torch.compile the decoder: pays on GPU, and on CPU only in runs of thousands of steps
    activation_checkpointing: bool = False  # recompute activations in the backward pass: less memory, ~1/3 more compute
    # evaluation
    eval_every: int = 50
    eval_batches: int = 20
    final_eval_batches: int | None = None  # None: the whole validation split
    # resumability: training state saved every N optimizer steps (0: only at the end)
    checkpoint_every: int = 0

    def __post_init__(self) -> None:
        choices = {"corpus": CORPORA, "tokenizer": TOKENIZERS, "preset": tuple(PRESETS), "precision": PRECISIONS}
        for name, valid in choices.items():
            if getattr(self, name) not in valid:
                raise ConfigError(f"{name}={getattr(self, name)!r} is not one of: {', '.join(valid)}")
        for name in ("max_steps", "batch_size", "accumulate_grad_batches", "block_size", "eval_every", "eval_batches"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.checkpoint_every < 0:
            raise ConfigError(f"checkpoint_every must be 0 (only at the end) or a number of steps, got {self.checkpoint_every}")
        # Build the configs now so their errors surface before the corpus is read.
        self.optim_config()
        self.model_config(vocab_size=256)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "PretrainSettings":
        return from_dict(cls, values, what="pretraining settings")

    def model_config(self, vocab_size: int) -> DecoderConfig:
        overrides = {"block_size": self.block_size, "dropout": self.dropout, **self.model_overrides}
        return DecoderConfig.from_preset(self.preset, **overrides, vocab_size=vocab_size)

    def optim_config(self) -> OptimConfig:
        return OptimConfig(
            learning_rate=self.learning_rate,
            min_lr_ratio=self.min_lr_ratio,
            warmup_steps=min(self.warmup_steps, self.max_steps),
            max_steps=self.max_steps,
            weight_decay=self.weight_decay,
        )

    def identity(self) -> dict[str, Any]:
        """The settings that shape training: a run may only resume under the same ones."""
        return {k: v for k, v in asdict(self).items() if k not in RESUME_MAY_CHANGE}

    def corpus_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"validation_fraction": self.validation_fraction, "max_files": self.max_files}
        if self.corpus == "text":
            options["paths"] = self.corpus_paths
        if self.corpus == "hf":
            options.update(hf_name=self.hf_name, text_column=self.text_column)
        return options
