"""The pretraining DataModule: corpus -> prepared corpus -> tokenizer -> packed blocks -> (x, y) batches.

The prepared corpus (prepared.py) is the raw one scanned for private data, masked and planted with
canaries when asked; the tokenizer is fitted on its train text, as the audit rebuilds it.

All arguments are checked in `__init__`, so a typo in a notebook parameter or a
spec fails before a corpus is read. Blocks are windows on one token stream on disk
(blocks.py), a batch is its rows read with os.pread, so the data path costs about
0.1 ms per step and memory does not grow with the corpus.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from workbench.data.blocks import TokenBlocks, count_bytes, count_tokens, token_blocks, tokenize
from workbench.data.corpora import auto_num_proc, check_corpus_options, describe_corpus, load_corpus
from workbench.data.prepared import check_prepare_options, prepare_corpus
from workbench.data.tokenizers import Tokenizer, TokenizerError, build_tokenizer, check_tokenizer_options
from workbench.errors import RequestError


class PretrainDataModule(L.LightningDataModule):
    """Next-token batches: x = block[:-1], y = block[1:], each (batch_size, block_size)."""

    def __init__(
        self,
        corpus: str = "stdlib",
        corpus_options: dict | None = None,
        tokenizer: str | Tokenizer = "byte",
        vocab_size: int | None = None,
        block_size: int = 128,
        batch_size: int = 32,
        seed: int = 0,
        num_proc: int | None = None,
        pii: str = "keep",
        canary_repetitions: Sequence[int] = (),
        canary_digits: int = 6,
    ):
        super().__init__()
        corpus_options = dict(corpus_options or {})
        check_corpus_options(corpus, corpus_options)
        if isinstance(tokenizer, Tokenizer):
            if vocab_size is not None and vocab_size != tokenizer.vocab_size:
                raise TokenizerError(
                    f"vocab_size={vocab_size} disagrees with the given {tokenizer.kind} tokenizer's "
                    f"{tokenizer.vocab_size}"
                )
        elif isinstance(tokenizer, str):
            check_tokenizer_options(tokenizer, vocab_size)
        else:
            raise TokenizerError(f"tokenizer must be a kind name or a Tokenizer, got {type(tokenizer).__name__}")
        _check_int("block_size", block_size, minimum=1)
        _check_int("batch_size", batch_size, minimum=1)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise RequestError(f"seed must be an int, got {seed!r}")
        if num_proc is not None:
            _check_int("num_proc", num_proc, minimum=1)
        check_prepare_options(pii, canary_repetitions, canary_digits, seed)
        self.corpus_name = corpus
        self.corpus_options = corpus_options
        self.tokenizer_spec = tokenizer
        self.vocab_size = vocab_size
        self.block_size = block_size
        self.batch_size = batch_size
        self.seed = seed
        self.num_proc = num_proc
        self.pii = pii
        self.canary_repetitions = tuple(canary_repetitions)
        self.canary_digits = canary_digits
        self.batches_served = 0  # set from a checkpoint on resume: training continues where it stopped
        self._ready = False

    def setup(self, stage: str | None = None) -> None:
        """Load, prepare (scan, mask, plant canaries), tokenize and stream both splits once; later calls do nothing.

        `setup_seconds` says where the time went, stage by stage (seconds with a cache hit, minutes on
        a cold multi-GB corpus); `tokenize_num_proc` how many processes tokenized the train split.
        """
        if self._ready:
            return
        clock = _StageClock()
        self.raw_corpus = load_corpus(self.corpus_name, **self.corpus_options)
        clock.lap("load")
        prepared = prepare_corpus(self.raw_corpus, pii=self.pii, canary_repetitions=self.canary_repetitions,
                                  canary_digits=self.canary_digits, seed=self.seed, num_proc=self.num_proc)
        self.corpus, self.pii_record, self.canary_record = prepared
        clock.lap("prepare")
        if isinstance(self.tokenizer_spec, Tokenizer):
            self.tokenizer = self.tokenizer_spec
        else:
            self.tokenizer = build_tokenizer(self.tokenizer_spec, self.corpus["train"]["text"], self.vocab_size)
        clock.lap("fit_tokenizer")
        self.tokenize_num_proc = self.num_proc or auto_num_proc(self.corpus["train"]) or 1
        tokens = {split: tokenize(self.corpus[split], self.tokenizer, num_proc=self.num_proc) for split in self.corpus}
        clock.lap("tokenize")
        blocks = {}
        for split in ("train", "validation"):
            try:
                blocks[split] = token_blocks(tokens[split], self.block_size, vocab_size=self.tokenizer.vocab_size)
            except ValueError as error:
                raise RequestError(f"{self.corpus_name} corpus, {split} split: {error}") from error
        clock.lap("stream")
        describe_corpus(self.corpus)  # the one pass that sizes and fingerprints it, kept beside its cache
        clock.lap("summary")
        self.train_blocks, self.val_blocks = blocks["train"], blocks["validation"]
        self.token_counts = {split: count_tokens(tokens[split]) for split in ("train", "validation")}
        self.bytes_per_token = count_bytes(tokens["validation"]) / self.token_counts["validation"]
        self.setup_seconds = clock.laps
        self._ready = True

    def train_dataloader(self) -> DataLoader:
        self._require_setup()
        if len(self.train_blocks) < self.batch_size:
            raise RequestError(
                f"the train split has {len(self.train_blocks)} blocks of {self.block_size} tokens, "
                f"fewer than one batch of {self.batch_size}; lower batch_size or block_size, or use more data"
            )
        rank, world = self._rank_and_world()
        if len(self.train_blocks) < self.batch_size * world:
            raise RequestError(
                f"the train split has {len(self.train_blocks)} blocks of {self.block_size} tokens, fewer than one "
                f"global batch of {self.batch_size} x {world} processes; lower batch_size or block_size, or use "
                "more data"
            )
        sampler = ShuffledBatches(len(self.train_blocks), self.batch_size, seed=self.seed, start=self.batches_served,
                                  rank=rank, world=world)
        return _loader(self.train_blocks, sampler)

    def val_dataloader(self) -> DataLoader:
        self._require_setup()
        rank, world = self._rank_and_world()
        sampler = EvaluationBatches(len(self.val_blocks), self.batch_size, rank=rank, world=world)
        return _loader(self.val_blocks, sampler)

    def _rank_and_world(self) -> tuple[int, int]:
        """This process's share of each global batch: (its rank, the number of processes) in the Trainer's run."""
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer else (0, 1)

    def state_dict(self) -> dict:
        """Saved in Lightning checkpoints: how many training batches the run has consumed.

        Checkpoints are taken on optimizer-step boundaries, so that is the
        global step times the accumulation factor.
        """
        trainer = self.trainer
        return {"batches_served": trainer.global_step * trainer.accumulate_grad_batches if trainer else 0}

    def load_state_dict(self, state_dict: dict) -> None:
        """Lightning restores this before it builds the dataloaders, so the sampler starts mid-stream."""
        self.batches_served = int(state_dict["batches_served"])

    def describe(self) -> dict:
        """A JSON-serialisable record of what was trained on, for the run folder."""
        self.setup()
        return {
            "corpus": self.corpus_name,
            "corpus_options": json.loads(json.dumps(self.corpus_options, default=str)),  # Paths -> str
            "corpus_summary": describe_corpus(self.corpus),
            "tokenizer": {
                "kind": self.tokenizer.kind,
                "vocab_size": self.tokenizer.vocab_size,
                "fingerprint": self.tokenizer.fingerprint(),
            },
            "block_size": self.block_size,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "blocks": {"train": len(self.train_blocks), "validation": len(self.val_blocks)},
            "tokens": dict(self.token_counts),
            "bytes_per_token": self.bytes_per_token,
            "pii": self.pii_record,
            **({"canaries": self.canary_record} if self.canary_record else {}),
        }

    def _require_setup(self) -> None:
        if not self._ready:
            raise RuntimeError("call setup() before asking for a dataloader")


class NextTokenBlocks(Dataset):
    """Rows of block_size + 1 ids served as (inputs, targets), a whole batch per gather."""

    def __init__(self, blocks: TokenBlocks):
        self.blocks = blocks

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, index: int):
        row = self.blocks[index]
        return row[:-1], row[1:]

    def __getitems__(self, indices):
        rows = self.blocks[torch.as_tensor(indices)]
        return rows[:, :-1].contiguous(), rows[:, 1:].contiguous()


class ShuffledBatches(Sampler):
    """A fresh permutation each epoch from a generator seeded once: same seed, same batches.

    The stream of batches is a pure function of the seed, so a run resumed
    after `start` batches replays the permutations of the epochs it finished
    (microseconds each) and continues mid-epoch exactly where it stopped.
    The first iteration serves the rest of the epoch `start` falls in; later
    iterations serve whole epochs, as Lightning expects of a resumed epoch.

    With `world` processes, every rank draws the same permutation and cuts the
    same global batches of batch_size x world; rank r takes the r-th slice of
    each. The processes together see what one process at the global batch sees.
    """

    def __init__(self, n: int, batch_size: int, seed: int, start: int = 0, *, rank: int = 0, world: int = 1):
        if start < 0:
            raise RequestError(f"start must be >= 0, got {start}")
        if not 0 <= rank < world:
            raise RequestError(f"rank must be in [0, {world}), got {rank}")
        self.n, self.batch_size, self.rank, self.world = n, batch_size, rank, world
        self.generator = torch.Generator().manual_seed(seed)
        epochs_done, self._offset = divmod(start, len(self)) if len(self) else (0, 0)
        for _ in range(epochs_done):
            _permutation(self.n, self.generator)

    def __len__(self) -> int:
        return self.n // (self.batch_size * self.world)  # drop_last: every batch is full

    def __iter__(self):
        order = _permutation(self.n, self.generator)
        width = self.batch_size * self.world
        batches = order[: len(self) * width].view(len(self), width)
        offset, self._offset = self._offset, 0
        own = slice(self.rank * self.batch_size, (self.rank + 1) * self.batch_size)
        for i in range(offset, len(batches)):  # row by row: iterating the tensor would unbind every batch at once
            yield batches[i, own]


class EvaluationBatches(Sampler):
    """Every block once, in one fixed shuffled order; the last batch may be short.

    Blocks are stored file by file, so the first batches in storage order come
    from a handful of files. Shuffling once, with a constant seed, makes any
    prefix (a periodic evaluation limited to a few batches) a fair sample of
    the whole split, and the same sample for every run and training seed.

    With `world` processes, global batches of batch_size x world are cut from the
    order and rank r evaluates the r-th slice of each: N batches on every rank
    read the blocks one process reads in N batches of the global size. A rank
    whose slice of the short last batch is empty skips it.
    """

    ORDER_SEED = 0

    def __init__(self, n: int, batch_size: int, *, rank: int = 0, world: int = 1):
        self.n, self.batch_size, self.rank, self.world = n, batch_size, rank, world
        self.order = _permutation(n, torch.Generator().manual_seed(self.ORDER_SEED))

    def __len__(self) -> int:
        """Global batches, less the last one when this rank's slice of it is empty."""
        width = self.batch_size * self.world
        n_global = math.ceil(self.n / width)
        last = self.n - (n_global - 1) * width
        return n_global - 1 + (last > self.rank * self.batch_size) if n_global else 0

    def __iter__(self):
        width = self.batch_size * self.world
        own = slice(self.rank * self.batch_size, (self.rank + 1) * self.batch_size)
        for start in range(0, self.n, width):  # lazily: a split of the whole order makes every batch at once
            if len(piece := self.order[start:start + width][own]):
                yield piece


class _StageClock:
    def __init__(self):
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.laps[stage], self._last = now - self._last, now


def _permutation(n: int, generator: torch.Generator) -> torch.Tensor:
    """randperm as int32: the same order as int64 (same draws), half the memory on a corpus of many blocks."""
    return torch.randperm(n, generator=generator, dtype=torch.int32)


def _loader(blocks: TokenBlocks, sampler: Sampler) -> DataLoader:
    # A private generator: by default each iter(DataLoader) draws a seed from torch's global RNG,
    # which would shift dropout's random stream by one draw in a resumed run.
    # Pinned host memory lets Lightning's copy to a GPU run asynchronously (non_blocking); pointless on CPU.
    return DataLoader(NextTokenBlocks(blocks), batch_sampler=sampler, collate_fn=_as_is, generator=torch.Generator(),
                      pin_memory=torch.cuda.is_available())


def _as_is(batch):
    """The dataset already returns the stacked batch; nothing to collate."""
    return batch


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise RequestError(f"{name} must be an int >= {minimum}, got {value!r}")
