"""What a pretraining run is, as one frozen dataclass: the notebook's parameters, a spec's values and
the recipe's input are all this, so each setting's name, type, default and valid values live here.

Every value is checked on construction, all problems at once, before any data is read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterator

from workbench.data.choices import CORPORA, PII_MODES, TOKENIZERS
from workbench.data.tokenizers import check_tokenizer_options
from workbench.errors import RequestError
from workbench.models.config import PRESETS, DecoderConfig
from workbench.modules.choices import CAUSAL_LM, HUB_PREFIX, MASKED_LM, OBJECTIVES, OPTIMIZERS, PRETRAIN_PRECISIONS
from workbench.modules.optim import OptimConfig
from workbench.modules.scale_settings import devices_setting, distributed_strategy_setting, num_nodes_setting
from workbench.modules.tracking_settings import tracking_problems, tracking_setting, tracking_uri_setting
from workbench.settings import Settings, setting

# None of these changes the trained weights.
RESUME_MAY_CHANGE = ("checkpoint_every", "final_eval_batches", "tracking", "tracking_uri", "num_proc")


@dataclass(frozen=True)
class PretrainSettings(Settings):
    what = "pretraining settings"

    seed: int = setting(0, "seeds data order, initialisation and dropout: the same seed gives the same metrics")
    corpus: str = setting("stdlib", "stdlib | text | hf", choices=CORPORA, section="data")
    corpus_paths: list[str] | None = setting(None, 'files or globs, for corpus="text"', path="glob")
    hf_name: str | None = setting(None, 'a Hugging Face dataset, for corpus="hf" (needs the hub or its local cache)')
    text_column: str = setting("text", 'the text column, for corpus="hf"')
    hf_streaming: bool = setting(False, 'for corpus="hf": read the dataset with load_dataset(streaming=True), row '
                                 "by row, instead of downloading it whole first; the rows are written once into "
                                 "the local Arrow cache, the same path as every corpus")
    max_files: int | None = setting(None, "a subset of the corpus's files; None = every file", minimum=1)
    validation_fraction: float = setting(0.05, "share of files held out for validation", above=0, below=1)
    pii: str = setting("keep", "keep | mask: mask replaces the e-mail addresses, credentials in URLs, IP addresses, "
                       "phone numbers and secrets the corpus scan finds with placeholders (<EMAIL>, ...) before "
                       "tokenization; the scan's counts go into data.json and the card either way", choices=PII_MODES)
    canary_repetitions: list[int] = setting([], "plant one random secret per entry, repeated that many times in the "
                                            "training split, e.g. [1, 4, 16, 64] (Carlini et al. 2019: the audit "
                                            "measures each one's exposure); [] = none")
    canary_digits: int = setting(6, "digits of each canary's secret: 10**digits candidates", minimum=1, maximum=12)
    tokenizer: str = setting("byte", "byte | char | bpe", choices=TOKENIZERS)
    vocab_size: int | None = setting(None, 'for tokenizer="bpe": 256 bytes plus merges')
    num_proc: int | None = setting(None, "processes that scan and tokenize the corpus (Dataset.map); None = one per "
                                   "core once the corpus is 64 MB or more, else one; the result is the same either "
                                   "way", minimum=1)
    objective: str = setting(CAUSAL_LM, "causal_lm | masked_lm: a decoder that predicts the next token, or an "
                             "encoder (the same blocks without the causal mask) that predicts masked tokens, BERT's "
                             "recipe: 15% selected, of those 80% masked, 10% random, 10% kept", choices=OBJECTIVES,
                             section="model")
    init_from: str | None = setting(None, "start from these weights (continued pretraining): a pretraining run "
                                    "folder, a Hugging Face Llama folder or hf:<repo-id>; its architecture and "
                                    "tokenizer replace preset and tokenizer", path="folder")
    preset: str = setting("tiny", " | ".join(PRESETS), choices=tuple(PRESETS))
    block_size: int = setting(128, "tokens per training sequence", minimum=1)
    dropout: float = setting(0.0, "", minimum=0, below=1)
    model_overrides: dict[str, Any] = setting({}, "any DecoderConfig field over the preset, e.g. {n_layer: 3}")
    batch_size: int = setting(16, "sequences per batch on each device", minimum=1, section="optimisation")
    accumulate_grad_batches: int = setting(1, "batches per optimizer step: a larger batch in the same memory",
                                           minimum=1)
    max_steps: int = setting(150, "optimizer steps", minimum=1)
    optimizer: str = setting("adamw", "adamw | muon: Muon (orthogonalized momentum) on the attention and MLP "
                             "matrices, AdamW on embeddings, head and gains, both at learning_rate (Muon's "
                             "updates scaled to AdamW's RMS); muon's best rate is higher: sweep it",
                             choices=OPTIMIZERS)
    learning_rate: float = setting(3e-3, "peak learning rate", above=0)
    min_lr_ratio: float = setting(0.1, "the cosine schedule ends at learning_rate * min_lr_ratio", minimum=0, maximum=1)
    warmup_steps: int = setting(15, "linear warmup steps", minimum=0)
    weight_decay: float = setting(0.1, "decoupled decay (AdamW's, and Muon's with optimizer=muon), on matrices "
                                  "and embeddings only", minimum=0)
    grad_clip: float = setting(1.0, "clip the gradient norm to this; 0 = no clipping", minimum=0)
    precision: str = setting("auto", "auto | 32-true | bf16-mixed: auto takes bf16-mixed where a measured step at "
                             "this model and batch shape is 1.2x faster (native bf16 CPUs, bf16 GPUs), else fp32; "
                             "the measurement is remembered per machine and shape, and compute.json and the "
                             "card say which and why", choices=PRETRAIN_PRECISIONS)
    compile: bool = setting(False, "torch.compile the decoder: pays on a GPU; on CPU only in runs of thousands of "
                            "steps",
                            section="speed (neither changes what is learned)")
    activation_checkpointing: bool = setting(False, "recompute activations in the backward pass: less memory, "
                                             "~1/3 more compute")
    devices: int = devices_setting()
    num_nodes: int = num_nodes_setting()
    distributed_strategy: str = distributed_strategy_setting()
    eval_every: int = setting(50, "steps between periodic evaluations", minimum=1, section="evaluation")
    eval_batches: int = setting(10, "validation batches per periodic evaluation", minimum=1)
    final_eval_batches: int | None = setting(None, "validation batches of the final evaluation; None = the whole "
                                             "validation split", minimum=1)
    checkpoint_every: int = setting(50, "save the training state every N steps (0 = only at the end), so "
                                    "`workbench run --resume` continues a killed run", minimum=0)
    tracking: str = tracking_setting()
    tracking_uri: str | None = tracking_uri_setting()

    def more_problems(self) -> Iterator[str]:
        yield from tracking_problems(self.tracking, self.tracking_uri)
        if self.corpus == "text" and not self.corpus_paths:
            yield 'corpus="text" needs corpus_paths: a file, a glob, or a list of them'
        if self.corpus == "hf" and not self.hf_name:
            yield 'corpus="hf" needs hf_name: the Hugging Face dataset to read'
        if self.hf_streaming and self.corpus != "hf":
            yield (f'hf_streaming=True does not apply to corpus={self.corpus!r}: only corpus="hf" is streamed '
                   "(set hf_streaming=False)")
        bad = [r for r in self.canary_repetitions if isinstance(r, bool) or not isinstance(r, int) or r < 1]
        if bad:
            yield f"canary_repetitions={self.canary_repetitions!r}: each entry is a positive int (bad: {bad!r})"
        if self.tokenizer in TOKENIZERS:
            yield from _raised(lambda: check_tokenizer_options(self.tokenizer, self.vocab_size))
        if self.init_from and self.model_overrides:
            yield (f"model_overrides={self.model_overrides!r} cannot apply with init_from={self.init_from!r}: the "
                   "architecture is the saved model's (leave model_overrides empty)")
        if self.init_from and self.objective == MASKED_LM:
            yield (f"init_from={self.init_from!r} needs objective={CAUSAL_LM!r}: continued pretraining starts from "
                   "a decoder, and objective='masked_lm' trains an encoder from scratch")
        if self.init_from and self.vocab_size is not None:
            yield f"vocab_size={self.vocab_size} cannot apply with init_from: the saved model brings its tokenizer"
        if self.preset in PRESETS and self.block_size >= 1 and 0 <= self.dropout < 1:
            yield from _raised(lambda: self.model_config(vocab_size=256))
        if (self.learning_rate > 0 and self.max_steps >= 1 and self.warmup_steps >= 0 and 0 <= self.min_lr_ratio <= 1
                and self.optimizer in OPTIMIZERS):
            yield from _raised(self.optim_config)

    def required_paths(self) -> dict[str, list[str]]:
        paths = super().required_paths()
        if self.corpus != "text":
            paths.pop("corpus_paths", None)
        if self.init_from and self.init_from.startswith(HUB_PREFIX):
            paths.pop("init_from", None)  # a hub name, not a path: resolved (cache, then hub) when the run starts
        return paths

    def model_config(self, vocab_size: int) -> DecoderConfig:
        """The model for a tokenizer of `vocab_size` ids: an encoder's vocabulary adds the mask token."""
        overrides = {"block_size": self.block_size, "dropout": self.dropout, **self.model_overrides}
        if self.objective == MASKED_LM:
            from workbench.models.encoder import EncoderConfig  # loads torch: the settings alone stay light

            return EncoderConfig.for_tokenizer(self.preset, vocab_size, **overrides)
        return DecoderConfig.from_preset(self.preset, **overrides, vocab_size=vocab_size)

    def optim_config(self) -> OptimConfig:
        return OptimConfig(
            learning_rate=self.learning_rate,
            min_lr_ratio=self.min_lr_ratio,
            warmup_steps=min(self.warmup_steps, self.max_steps),
            max_steps=self.max_steps,
            weight_decay=self.weight_decay,
            optimizer=self.optimizer,
        )

    def identity(self) -> dict[str, Any]:
        """The settings that shape training: a run may only resume under the same ones."""
        return {k: v for k, v in asdict(self).items() if k not in RESUME_MAY_CHANGE}

    def corpus_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"validation_fraction": self.validation_fraction, "max_files": self.max_files}
        if self.corpus == "text":
            options["paths"] = self.corpus_paths
        if self.corpus == "hf":
            options.update(hf_name=self.hf_name, text_column=self.text_column, streaming=self.hf_streaming)
        return options


@dataclass(frozen=True)
class PretrainNotebook(PretrainSettings):
    """notebooks/pretrain.ipynb's parameters: the settings, then what the notebook shows."""

    samples: int = setting(2, "completions printed at the end", minimum=0, section="what the notebook shows")
    sample_tokens: int = setting(160, "tokens per completion", minimum=1)


def _raised(check) -> Iterator[str]:
    """The message of the RequestError `check` raises, if it does: rules written as raising checks."""
    try:
        check()
    except RequestError as error:
        yield str(error)
