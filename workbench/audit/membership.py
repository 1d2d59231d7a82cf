"""Membership inference: can a document's score tell whether the model trained on it?

Training documents (members) and held-out ones are sampled from the two splits and each is scored on its
first block_size tokens. Three attacks, each a score where higher means "member":
  loss       the mean loss per token (nats); a model fits what it saw better (Yeom et al. 2018);
  zlib       the model's bits per byte over zlib's bits per byte of the same text (Carlini et al. 2021):
             text that is simply easy (repetitive code) is easy for zlib too, so the ratio calibrates it;
  reference  the model's bits per byte minus a second model's on the same text (Carlini et al. 2021): what
             any model finds easy cancels. Bits per byte, not per token, so the two tokenizers may differ.
Each reports ROC AUC, the true-positive rate at 1% false positives (interpolated on the ROC), and the ROC.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from workbench.audit.scoring import token_log_probs
from workbench.data.compression import zlib_bits_per_byte
from workbench.errors import RequestError

SPLITS = ("train", "validation")
ROC_POINTS = 200
LOW_FPR = 0.01


def membership_inference(model, tokenizer, corpus, *, documents: int = 200, reference=None, seed: int = 0,
                         batch_size: int = 32) -> dict:
    """Loss, zlib and (with `reference=(model2, tokenizer2)`) reference attacks on train vs validation docs."""
    _check(corpus, documents, reference, batch_size)
    rng = np.random.default_rng(seed)
    block = model.config.block_size
    sampled = {split: _sample(list(corpus[split]["text"]), tokenizer, block, documents, rng) for split in SPLITS}
    for split, docs in sampled.items():
        if len(docs) < 2:
            raise RequestError(f"the {split!r} split has {len(docs)} document(s) of 2 or more tokens; "
                               f"membership inference needs at least 2 per split")
    members = np.array([1] * len(sampled["train"]) + [0] * len(sampled["validation"]))
    docs = sampled["train"] + sampled["validation"]
    nats, bpb, texts = _score(model, docs, batch_size)
    zlib_bpb = np.array([zlib_bits_per_byte([t]) for t in texts])
    attacks = {"loss": _attack(members, -nats), "zlib": _attack(members, -(bpb / zlib_bpb))}
    if reference is not None:
        model2, tokenizer2 = reference
        block2 = model2.config.block_size
        # The reference reads the text the audited model scored, cut to its own block.
        ref_docs = [_document(t, tokenizer2, block2) for t in texts]
        _, ref_bpb, _ = _score(model2, ref_docs, batch_size)
        attacks["reference"] = _attack(members, -(bpb - ref_bpb))
    return {"documents": {"train": len(sampled["train"]), "validation": len(sampled["validation"])},
            "seed": seed, "scored_tokens": block, "attacks": attacks}


def _sample(texts: list[str], tokenizer, block: int, documents: int, rng: np.random.Generator) -> list[tuple]:
    """Up to `documents` documents of 2+ tokens, in a seeded random order, tokenized only as they are taken."""
    out = []
    for index in rng.permutation(len(texts)):
        doc = _document(texts[int(index)], tokenizer, block)
        if len(doc[0]) >= 2:
            out.append(doc)
            if len(out) == documents:
                break
    return out


def _document(text: str, tokenizer, block: int) -> tuple[list[int], str, str]:
    """The first `block` ids, the text they cover, and the text of the ids after the first (those scored)."""
    ids, offsets = tokenizer.encode_with_offsets(text)
    ids, offsets = ids[:block], offsets[:block]
    if len(ids) < 2:
        return ids, text, text
    return ids, text[offsets[0][0]:offsets[-1][1]], text[offsets[1][0]:offsets[-1][1]]


def _score(model, docs: list[tuple], batch_size: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Mean nats per predicted token, bits per byte of the predicted text, and each document's scored text."""
    rows = token_log_probs(model, [ids for ids, _, _ in docs], batch_size=batch_size)
    nats = np.array([-float(r.mean()) for r in rows])
    bits = np.array([-float(r.sum()) / math.log(2) for r in rows])
    predicted_bytes = np.array([max(1, len(predicted.encode("utf-8"))) for _, _, predicted in docs])
    return nats, bits / predicted_bytes, [covered for _, covered, _ in docs]


def _attack(members: np.ndarray, scores: np.ndarray) -> dict:
    fpr, tpr, _ = roc_curve(members, scores)
    points = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), ROC_POINTS)).round().astype(int))
    return {"auc": float(roc_auc_score(members, scores)), "tpr_at_1pct_fpr": float(np.interp(LOW_FPR, fpr, tpr)),
            "roc": [[round(float(fpr[i]), 6), round(float(tpr[i]), 6)] for i in points]}


def _check(corpus, documents, reference, batch_size) -> None:
    for name, value, low in (("documents", documents, 2), ("batch_size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise RequestError(f"{name} must be an int >= {low}, got {value!r}")
    if reference is not None:
        if not isinstance(reference, (tuple, list)) or len(reference) != 2:
            raise RequestError(f"reference must be None or a (model, tokenizer) pair, got {type(reference).__name__}")
        if not hasattr(getattr(reference[0], "config", None), "block_size"):
            raise RequestError("reference's model has no config.block_size; it needs the Decoder's interface")
    missing = [s for s in SPLITS if s not in corpus]
    if missing:
        raise RequestError(f"the corpus lacks split(s) {missing}; it needs {list(SPLITS)}, it has {list(corpus)}")
    for split in SPLITS:
        if "text" not in corpus[split].column_names:
            raise RequestError(f"the corpus's {split!r} split has no 'text' column "
                               f"(columns: {corpus[split].column_names})")
