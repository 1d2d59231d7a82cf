"""Fine-tuning batches: a task's texts through a base's text encoder, padded on the right.

Each batch is {"input_ids": (B, T) long, "attention_mask": (B, T) long, "labels": ...},
padded to the longest sequence in the batch with the encoder's pad_id. Labels by kind:
  sequence_classification  (B,) long
  regression               (B,) float
  token_classification     (B, T) long: each id takes the label of the first labelled
                           character it covers; -100 on special tokens, padding and ids
                           that cover no labelled character
  causal_lm                (B, T) long: input_ids, with -100 on prompt ids and padding
                           (the module shifts them for next-token prediction)
Texts are encoded once, in `setup`; the train loader reshuffles each epoch from
a generator seeded once, so the same seed gives the same batches.

On several processes (DDP), every rank draws the same order and takes its slice of each global
batch of batch_size x processes (`RankBatches`), so together they see the batches one process
sees at the global batch size.
"""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler

from workbench.data.tasks.base import IGNORE, SPLITS, TaskData
from workbench.data.text_encoders import Encoded, TextEncoder
from workbench.errors import RequestError

ENCODE_BATCH = 1000


class FinetuneDataModule(L.LightningDataModule):
    def __init__(self, task: TaskData, text_encoder: TextEncoder, batch_size: int = 32, seed: int = 0):
        super().__init__()
        if not isinstance(task, TaskData):
            raise TypeError(f"task must be a TaskData (from load_task), got {type(task).__name__}")
        if not isinstance(text_encoder, TextEncoder):
            raise TypeError(f"text_encoder must be a TextEncoder, got {type(text_encoder).__name__}")
        missing = [split for split in SPLITS if split not in task.splits]
        if missing:
            raise RequestError(f"task {task.name!r} lacks split(s) {', '.join(missing)}; it needs {', '.join(SPLITS)}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise RequestError(f"batch_size must be an int >= 1, got {batch_size!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise RequestError(f"seed must be an int, got {seed!r}")
        self.task = task
        self.text_encoder = text_encoder
        self.batch_size = batch_size
        self.seed = seed
        self.num_labels = task.num_labels
        self.datasets: dict[str, EncodedExamples] = {}

    def setup(self, stage: str | None = None) -> None:
        """Encode every split once; later calls do nothing."""
        if self.datasets:
            return
        for split in SPLITS:
            self.datasets[split] = encode_split(self.task, split, self.text_encoder)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", training=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("validation")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def _loader(self, split: str, training: bool = False) -> DataLoader:
        if not self.datasets:
            raise RuntimeError("call setup() before asking for a dataloader")
        rank, world = self._rank_and_world()
        return rank_loader(self.datasets[split], self.batch_size, seed=self.seed if training else None, rank=rank,
                           world=world, collate_fn=PadCollator(self.text_encoder.pad_id, self.task.kind))

    def _rank_and_world(self) -> tuple[int, int]:
        """This process's share of each global batch: (its rank, the number of processes) in the Trainer's run."""
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer else (0, 1)

    def describe(self) -> dict:
        """A JSON-serialisable record of the batches: task, encoder, sizes, truncation."""
        self.setup()
        return {
            "task": self.task.describe(),
            "text_encoder": self.text_encoder.describe(),
            "batch_size": self.batch_size,
            "seed": self.seed,
            "tokens": {split: sum(len(ids) for ids in data.input_ids) for split, data in self.datasets.items()},
            "truncated": {split: data.truncated for split, data in self.datasets.items()},
        }


def rank_loader(data: Dataset, batch_size: int, *, seed: int | None, rank: int = 0, world: int = 1,
                collate_fn=None) -> DataLoader:
    """This rank's batches of `data`: shuffled from `seed` (training), or in order (seed None: evaluation).

    On one process, the batches of DataLoader(batch_size, shuffle=True, generator seeded once): the
    loader and the shuffle share the generator, as they do there (each epoch's iterator draws a
    base seed from it before the permutation), so a run's batches did not move when ranks came.
    """
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    order = RandomSampler(data, generator=generator) if generator is not None else None
    batches = RankBatches(len(data), batch_size, order=order, rank=rank, world=world, training=seed is not None)
    return DataLoader(data, batch_sampler=batches, collate_fn=collate_fn, generator=generator)


class RankBatches(Sampler):
    """Global batches of batch_size x world cut from an order; rank r takes the r-th slice of each.

    The order is `order`'s (training: a RandomSampler seeded once, a new permutation each epoch), or
    the split's own (evaluation). On one process these are DataLoader(batch_size, shuffle)'s batches,
    the short last one included. The short last global batch is split as evenly as it goes; in
    training it is dropped when it has fewer examples than processes, because every rank must take
    every optimizer step, while in evaluation a rank whose slice is empty skips it.
    """

    def __init__(self, n: int, batch_size: int, *, order: Sampler | None = None, rank: int = 0, world: int = 1,
                 training: bool = False):
        if not 0 <= rank < world:
            raise RequestError(f"rank must be in [0, {world}), got {rank}")
        self.n, self.batch_size, self.order, self.rank, self.world = n, batch_size, order, rank, world
        self.training = training

    @staticmethod
    def count(n: int, batch_size: int, world: int = 1, rank: int = 0, training: bool = True) -> int:
        """How many batches `rank` gets from n examples (training: every rank's, an epoch's optimizer steps)."""
        full, short = divmod(n, batch_size * world)
        return full + bool(short >= world if training else short > rank)

    def __len__(self) -> int:
        return self.count(self.n, self.batch_size, self.world, self.rank, self.training)

    def __iter__(self):
        order = torch.as_tensor(list(self.order) if self.order is not None else range(self.n), dtype=torch.long)
        width = self.batch_size * self.world
        for start in range(0, self.n, width):
            batch = order[start:start + width]
            if self.training and len(batch) < self.world:
                return
            piece = torch.tensor_split(batch, self.world)[self.rank]
            if len(piece):
                yield piece.tolist()


class EncodedExamples(Dataset):
    """One split's ids and labels as tensors, one pair per example (lengths vary)."""

    def __init__(self, input_ids: list[torch.Tensor], labels: list, truncated: int):
        self.input_ids, self.labels, self.truncated = input_ids, labels, truncated

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, index: int):
        return self.input_ids[index], self.labels[index]


def encode_split(task: TaskData, split: str, text_encoder: TextEncoder) -> EncodedExamples:
    """Encode a split's texts and derive each example's labels from its kind."""
    data = task.splits[split]
    input_ids, labels, truncated = [], [], 0
    for start in range(0, len(data), ENCODE_BATCH):
        rows = data[start : start + ENCODE_BATCH]
        encoded = text_encoder.encode(rows["text"])
        for i, item in enumerate(encoded):
            input_ids.append(torch.tensor(item.ids, dtype=torch.long))
            truncated += _is_truncated(item, rows["text"][i])
            if task.kind == "sequence_classification":
                labels.append(int(rows["label"][i]))
            elif task.kind == "regression":
                labels.append(float(rows["label"][i]))
            elif task.kind == "token_classification":
                labels.append(token_labels(item, rows["char_labels"][i]))
            else:
                labels.append(completion_labels(item, len(rows["prompt"][i])))
    return EncodedExamples(input_ids, labels, truncated)


def token_labels(encoded: Encoded, char_labels: Sequence[int]) -> torch.Tensor:
    """Each id's label: that of the first labelled character in its span, else -100.

    "First labelled" rather than "first": a byte-level BPE token often starts
    with the space before a word (" return"), and spaces are unlabelled.
    Special tokens have empty spans, so they get -100.
    """
    labels = []
    for start, end in encoded.offsets:
        label = IGNORE
        for position in range(start, end):
            if char_labels[position] != IGNORE:
                label = char_labels[position]
                break
        labels.append(label)
    return torch.tensor(labels, dtype=torch.long)


def completion_labels(encoded: Encoded, prompt_chars: int) -> torch.Tensor:
    """The ids themselves where the id covers completion text, -100 on the prompt and special tokens.

    An id that straddles the prompt's end carries completion characters, so it is learnt.
    """
    labels = [
        token if end > prompt_chars and end > start else IGNORE
        for token, (start, end) in zip(encoded.ids, encoded.offsets, strict=True)
    ]
    return torch.tensor(labels, dtype=torch.long)


def _is_truncated(encoded: Encoded, text: str) -> bool:
    covered = max((end for _, end in encoded.offsets), default=0)
    return covered < len(text.rstrip())


class PadCollator:
    """Stack examples of different lengths, padding on the right to the longest in the batch."""

    def __init__(self, pad_id: int, kind: str):
        self.pad_id, self.kind = pad_id, kind

    def __call__(self, examples: list[tuple[torch.Tensor, object]]) -> dict[str, torch.Tensor]:
        ids = [ids for ids, _ in examples]
        lengths = torch.tensor([len(i) for i in ids])
        width = max(int(lengths.max()), 1)
        input_ids = torch.full((len(ids), width), self.pad_id, dtype=torch.long)
        for row, row_ids in enumerate(ids):
            input_ids[row, : len(row_ids)] = row_ids
        attention_mask = (torch.arange(width)[None, :] < lengths[:, None]).long()
        labels = [label for _, label in examples]
        if self.kind == "sequence_classification":
            batch_labels = torch.tensor(labels, dtype=torch.long)
        elif self.kind == "regression":
            batch_labels = torch.tensor(labels, dtype=torch.float32)
        else:
            batch_labels = torch.full((len(ids), width), IGNORE, dtype=torch.long)
            for row, row_labels in enumerate(labels):
                batch_labels[row, : len(row_labels)] = row_labels
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": batch_labels}
