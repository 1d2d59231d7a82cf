"""The one place a raw corpus becomes what a run trains on: scanned, maybe masked, maybe with canaries.

The pretraining DataModule calls it between loading the corpus and fitting the tokenizer, and the
audit calls it again to rebuild exactly the text a run saw, so the two can never drift apart. Every
step is a `Dataset.map` with a derived fingerprint: a second call reads the cache. With the defaults
(keep, no canaries) the raw corpus itself comes back, so the blocks a run trains on are unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import datasets

from workbench.data.canaries import check_canary_options, plant_canaries
from workbench.data.choices import PII_MODES
from workbench.data.pii import mask_corpus, scan_corpus
from workbench.errors import RequestError


class PreparedCorpus(NamedTuple):
    corpus: datasets.DatasetDict
    pii_record: dict  # {"mode": "keep" | "mask", "scan": scan_corpus(raw)}
    canary_record: dict | None  # plant_canaries' record, None when none were planted


def check_prepare_options(pii: str = "keep", canary_repetitions: Sequence[int] = (), canary_digits: int = 6,
                          seed: int = 0) -> None:
    """Fail on a bad option before any corpus is read (the DataModule calls this in its __init__)."""
    if pii not in PII_MODES:
        raise RequestError(f"unknown pii mode {pii!r}; valid modes are: {', '.join(PII_MODES)}")
    check_canary_options(canary_repetitions, canary_digits, seed)


def prepare_corpus(
    raw: datasets.DatasetDict,
    *,
    pii: str = "keep",
    canary_repetitions: Sequence[int] = (),
    canary_digits: int = 6,
    seed: int = 0,
    num_proc: int | None = None,
) -> PreparedCorpus:
    """Scan `raw` (always: every run records what private data its corpus held), mask it when pii == "mask",
    then plant the canaries, after masking so the mask cannot touch them."""
    check_prepare_options(pii, canary_repetitions, canary_digits, seed)
    pii_record = {"mode": pii, "scan": scan_corpus(raw, num_proc=num_proc)}
    corpus = mask_corpus(raw, num_proc=num_proc) if pii == "mask" else raw
    canary_record = None
    if canary_repetitions:
        corpus, canary_record = plant_canaries(corpus, canary_repetitions, digits=canary_digits, seed=seed)
    return PreparedCorpus(corpus, pii_record, canary_record)
