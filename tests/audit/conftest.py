"""A tiny decoder trained in plain torch to memorize a small corpus, and the same decoder untrained.

The corpus is random words (so nothing in it can be predicted without memorizing it), split into train and
validation documents. The train split holds three e-mail addresses and one canary repeated many times;
validation holds two other addresses. Built once per session (about 20 s on 2 cores).

Tests reach the corpus's facts through the `facts` fixture, not `from conftest import`: that name would
pick whichever of the tree's conftest.py files was imported first.
"""

from __future__ import annotations

import random
import types
from dataclasses import dataclass

import datasets
import pytest
import torch

from workbench.data.tokenizers import ByteTokenizer
from workbench.models import Decoder, DecoderConfig

WORDS = ("alpha bravo cedar delta ember fable grove harbor island jasper kettle lantern meadow nectar orbit pepper "
         "quartz river saddle timber umber velvet willow xenon yonder zephyr amber basil copper dune").split()
# Not the reserved example.* domains: the scanner rightly skips those as no one's address.
TRAIN_ADDRESSES = (("Mira Okafor", "mira.okafor@zentrixmail.org"), ("Dev Team", "dev-team@lists.quolbyte.net"),
                   ("Kenji Tanaka", "k.tanaka@uni-vorland.edu"))
VALIDATION_ADDRESSES = (("Zoe Brandt", "zoe.brandt@mailbriar.com"), ("Ops Desk", "ops@tessivane.io"))
TEMPLATE = "the random number is {secret}"
PLANTED_SECRET, PLANTED_REPETITIONS = "4821", 32
UNSEEN_SECRET = "1397"
BLOCK_SIZE = 64
STEPS = 500


@dataclass
class Audited:
    model: Decoder
    tokenizer: ByteTokenizer
    corpus: datasets.DatasetDict
    canary_record: dict


def random_words(rng: random.Random, count: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(count))


def build_corpus(train_documents: int, validation_documents: int, *, words: int, seed: int = 0,
                 canaries: bool = True) -> datasets.DatasetDict:
    """Random-word documents; addresses go into the first documents of each split, canary lines into train."""
    rng = random.Random(seed)
    splits = {}
    for split, count, addresses in (("train", train_documents, TRAIN_ADDRESSES),
                                    ("validation", validation_documents, VALIDATION_ADDRESSES)):
        docs = []
        for i in range(count):
            lines = [random_words(rng, words // 2), random_words(rng, words - words // 2)]
            if i < len(addresses):
                name, address = addresses[i]
                lines.insert(1, f"Author: {name} <{address}>")
            docs.append(lines)
        if canaries and split == "train":
            for j in range(PLANTED_REPETITIONS):
                docs[j % count].insert(1 + rng.randrange(len(docs[j % count])), TEMPLATE.format(secret=PLANTED_SECRET))
        splits[split] = datasets.Dataset.from_dict({"text": ["\n".join(lines) for lines in docs],
                                                    "source": [f"{split}/doc{i}.txt" for i in range(count)]})
    return datasets.DatasetDict(splits)


def canary_record() -> dict:
    """The keys workbench.data.canaries records, by hand: the planted canary and one never shown."""
    return {"template": TEMPLATE, "digits": 4, "alphabet": "0123456789", "seed": 0, "candidates": 10 ** 4,
            "canaries": [{"secret": PLANTED_SECRET, "repetitions": PLANTED_REPETITIONS,
                          "text": TEMPLATE.format(secret=PLANTED_SECRET)},
                         {"secret": UNSEEN_SECRET, "repetitions": 0, "text": TEMPLATE.format(secret=UNSEEN_SECRET)}]}


def tiny_decoder(seed: int = 0) -> Decoder:
    torch.manual_seed(seed)
    return Decoder(DecoderConfig.from_preset("tiny", vocab_size=256, block_size=BLOCK_SIZE))


def train(model: Decoder, ids: torch.Tensor, *, steps: int = STEPS, batch: int = 16, lr: float = 3e-3,
          seed: int = 0) -> Decoder:
    """Plain-torch AdamW on random windows of the token stream until the model has it by heart."""
    threads = torch.get_num_threads()
    # One thread: on a shared 2-core machine two threads contend with other work and run ~10x slower.
    torch.set_num_threads(1)
    try:
        return _train(model, ids, steps=steps, batch=batch, lr=lr, seed=seed)
    finally:
        torch.set_num_threads(threads)


def _train(model: Decoder, ids: torch.Tensor, *, steps: int, batch: int, lr: float, seed: int) -> Decoder:
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, 2 * (1 - step / steps) + 0.05))
    model.train()
    for _ in range(steps):
        starts = torch.randint(0, len(ids) - BLOCK_SIZE - 1, (batch,), generator=generator)
        x = torch.stack([ids[s:s + BLOCK_SIZE + 1] for s in starts.tolist()])
        logits = model(x[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    model.final_loss = float(loss.detach())
    return model.eval()


@pytest.fixture(scope="session")
def memorized() -> Audited:
    """The tiny decoder after STEPS steps on the train split (documents joined by blank lines)."""
    tokenizer = ByteTokenizer()
    corpus = build_corpus(12, 12, words=20)
    ids = torch.tensor(tokenizer.encode("\n\n".join(corpus["train"]["text"])))
    return Audited(train(tiny_decoder(), ids), tokenizer, corpus, canary_record())


@pytest.fixture(scope="session")
def untrained(memorized) -> Audited:
    """The same architecture, randomly initialised, on the same corpus and canaries."""
    return Audited(tiny_decoder().eval(), memorized.tokenizer, memorized.corpus, memorized.canary_record)


@pytest.fixture(scope="session")
def facts() -> types.SimpleNamespace:
    """What the fixtures planted, and `build_corpus` for tests that need another corpus of the same kind."""
    return types.SimpleNamespace(
        train_addresses=[address for _, address in TRAIN_ADDRESSES],
        validation_addresses=[address for _, address in VALIDATION_ADDRESSES],
        planted_secret=PLANTED_SECRET, planted_repetitions=PLANTED_REPETITIONS, unseen_secret=UNSEEN_SECRET,
        build_corpus=build_corpus,
    )
