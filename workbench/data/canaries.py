"""Canaries (Carlini et al. 2019, "The Secret Sharer"): random secrets of a known format, planted in training.

Each entry of `repetitions` gets one fresh secret of `digits` decimal digits, written as
CANARY_TEMPLATE and inserted that many times into the train split only. The audit later ranks the
planted secret among all 10**digits candidates by the model's likelihood: its exposure.

Each copy goes in as its own line, at a line boundary inside a training document chosen at random
(documents with replacement, so a document may take several copies). Not as new documents: the
train split keeps its documents and sources, so membership and extraction audits that sample training
documents sample real files, and packing puts each canary amid ordinary code, as a secret pasted into
a file would sit. The record holds the secrets: they are synthetic, made to be measured.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Sequence

import datasets

from workbench.data.corpora import WRITER_BATCH_ROWS
from workbench.errors import RequestError

CANARY_TEMPLATE = "the random number is {secret}"
ALPHABET = "0123456789"
MAX_DIGITS = 12
# Bump when the same corpus, repetitions, digits and seed would plant differently.
CANARY_VERSION = "canaries-v1"


class CanaryError(RequestError):
    """Canaries were asked for with bad repetitions, digits or seed."""


def check_canary_options(repetitions, digits: int = 6, seed: int = 0) -> list[int]:
    """The repetitions as a list, after checking every option; raises CanaryError naming the bad one."""
    if isinstance(repetitions, (str, bytes)) or not isinstance(repetitions, Sequence):
        raise CanaryError(f"canary repetitions must be a sequence of positive ints such as (1, 4, 16, 64), "
                          f"got {repetitions!r}")
    bad = [r for r in repetitions if isinstance(r, bool) or not isinstance(r, int) or r < 1]
    if bad:
        raise CanaryError(f"canary repetitions must be positive ints, got {list(repetitions)!r} (bad: {bad!r})")
    if isinstance(digits, bool) or not isinstance(digits, int) or not 1 <= digits <= MAX_DIGITS:
        raise CanaryError(f"canary digits must be an int in [1, {MAX_DIGITS}], got {digits!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise CanaryError(f"canary seed must be an int, got {seed!r}")
    if len(repetitions) > 10**digits:
        raise CanaryError(f"{len(repetitions)} canaries need distinct secrets, but {digits} digit(s) give only "
                          f"{10**digits}; use more digits")
    return list(repetitions)


def plant_canaries(
    corpus: datasets.DatasetDict, repetitions: Sequence[int], *, digits: int = 6, seed: int = 0
) -> tuple[datasets.DatasetDict, dict]:
    """`corpus` with one canary per entry of `repetitions` planted that many times in "train", and the record.

    Same corpus, repetitions, digits and seed: same secrets in the same places. Other splits are untouched.
    """
    repetitions = check_canary_options(repetitions, digits, seed)
    if "train" not in corpus or len(corpus["train"]) == 0:
        raise CanaryError(f"canaries go into a non-empty 'train' split; the corpus has: {', '.join(corpus)}")
    train = corpus["train"]
    rng = random.Random(f"{CANARY_VERSION}:{seed}")
    secrets = [format(n, f"0{digits}d") for n in rng.sample(range(10**digits), len(repetitions))]
    insertions: dict[int, list[tuple[float, str]]] = {}
    record_canaries = []
    for secret, r in zip(secrets, repetitions, strict=True):
        text = CANARY_TEMPLATE.format(secret=secret)
        documents = [rng.randrange(len(train)) for _ in range(r)]
        for document in documents:
            insertions.setdefault(document, []).append((rng.random(), text))
        record_canaries.append({"secret": secret, "repetitions": r, "text": text, "documents": documents})
    sources = train.select_columns(["source"]).to_dict()["source"]
    for canary in record_canaries:
        per_source = Counter(sources[d] for d in canary.pop("documents"))
        canary["sources"] = dict(sorted(per_source.items()))
    plan = {str(d): sorted(v) for d, v in sorted(insertions.items())}
    planted = train.map(
        _insert,
        with_indices=True,
        batched=True,
        fn_kwargs={"plan": plan},
        features=train.features,
        batch_size=WRITER_BATCH_ROWS,
        writer_batch_size=WRITER_BATCH_ROWS,
        new_fingerprint=_hash(train._fingerprint, CANARY_VERSION, json.dumps(plan, sort_keys=True)),
        desc="planting canaries",
    )
    record = {
        "template": CANARY_TEMPLATE,
        "digits": digits,
        "alphabet": ALPHABET,
        "seed": seed,
        "candidates": 10**digits,
        "split": "train",
        "placement": "own line at a random line boundary of a random training document",
        "canaries": record_canaries,
    }
    return datasets.DatasetDict({**corpus, "train": planted}), record


def _insert(batch: dict, indices: list[int], plan: dict) -> dict:
    texts = list(batch["text"])
    for row, index in enumerate(indices):
        if str(index) in plan:
            texts[row] = insert_lines(texts[row], plan[str(index)])
    return {**batch, "text": texts}


def insert_lines(text: str, insertions: Sequence[tuple[float, str]]) -> str:
    """`text` with each (u, line) inserted as its own line at "\n"-boundary floor(u * (lines + 1))."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    boundaries = len(lines) + 1
    by_slot: dict[int, list[str]] = {}
    for u, line in insertions:
        by_slot.setdefault(min(int(u * boundaries), boundaries - 1), []).append(line + "\n")
    out = []
    for slot in range(boundaries):
        if slot in by_slot and out and not out[-1].endswith("\n"):
            out[-1] += "\n"  # the document's last line had no newline; the canary still gets a line of its own
        out += by_slot.get(slot, [])
        if slot < len(lines):
            out.append(lines[slot])
    return "".join(out)


def canary_candidates(record: dict) -> int:
    """How many secrets the format allows: the denominator of exposure."""
    return len(record["alphabet"]) ** record["digits"]


def canary_prefix(record: dict) -> str:
    """The template's text before the secret ("the random number is "): the audit's prompt."""
    return record["template"].split("{secret}")[0]


def canary_text(record: dict, secret: str | int) -> str:
    """The canary line for any candidate secret: an int is written with the record's digits, zero-padded."""
    digits = record["digits"]
    if isinstance(secret, int) and not isinstance(secret, bool):
        if not 0 <= secret < canary_candidates(record):
            raise CanaryError(f"candidate {secret} is outside [0, {canary_candidates(record)}) for {digits} digits")
        secret = format(secret, f"0{digits}d")
    if not isinstance(secret, str) or len(secret) != digits or any(c not in record["alphabet"] for c in secret):
        raise CanaryError(f"a secret is {digits} characters of {record['alphabet']!r}, got {secret!r}")
    return record["template"].format(secret=secret)


def _hash(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:16]
