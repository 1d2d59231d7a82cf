"""Does a classifier's prediction change with who a text is about? Swap paired terms and compare.

Each text holding at least one listed term (he/she, Emily/Lakisha, ...) is classified as written and with
every term swapped for its partner; the texts are otherwise identical, so any change is the model reading
the attribute. Texts without a term are counted but not compared.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from workbench.audit.terms import TermPair, load_terms, swap_terms, swapper
from workbench.errors import RequestError

__all__ = ["TermPair", "load_terms", "swap_terms", "classifier_of", "counterfactual_probe"]

Predictor = Callable[[list[str]], np.ndarray]


def classifier_of(finetuned, *, batch_size: int = 64) -> Predictor:
    """Texts -> class probabilities (N, classes) from a `Finetuned` (or a fine-tuning outcome): eval mode, no grad,
    batches right-padded with the encoder's pad id and masked."""
    module = finetuned.module
    encoder = finetuned.text_encoder if hasattr(finetuned, "text_encoder") else finetuned.base.text_encoder
    kind = finetuned.task_kind if hasattr(finetuned, "task_kind") else finetuned.task.kind
    if kind != "sequence_classification":
        raise RequestError(f"the counterfactual probe needs a sequence_classification fine-tune; this one is {kind}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise RequestError(f"batch_size must be an int >= 1, got {batch_size!r}")

    @torch.no_grad()
    def predict_proba(texts: list[str]) -> np.ndarray:
        encoded = encoder.encode(list(texts))
        was_training = module.training
        module.eval()
        device = next(module.parameters()).device
        out = []
        try:
            for start in range(0, len(encoded), batch_size):
                chunk = encoded[start:start + batch_size]
                width = max(1, max(len(e.ids) for e in chunk))
                ids = torch.full((len(chunk), width), encoder.pad_id, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                for row, item in enumerate(chunk):
                    ids[row, :len(item.ids)] = torch.tensor(item.ids, dtype=torch.long)
                    mask[row, :len(item.ids)] = 1
                out.append(module(ids.to(device), mask.to(device)).float().softmax(-1).cpu().numpy())
        finally:
            module.train(was_training)
        classes = len(finetuned.label_names or []) if not out else out[0].shape[-1]
        return np.concatenate(out) if out else np.zeros((0, classes), dtype=np.float32)

    return predict_proba


def _probabilities(predict_proba: Predictor, texts: list[str], what: str) -> np.ndarray:
    probs = np.asarray(predict_proba(texts), dtype=np.float64)
    if probs.ndim != 2 or probs.shape[0] != len(texts) or probs.shape[1] < 2:
        raise RequestError(f"predict_proba must return an array (N, classes >= 2) for N texts; for {len(texts)} "
                           f"{what} texts it returned shape {probs.shape}")
    return probs


def counterfactual_probe(predict_proba: Predictor, texts: Sequence[str], *, pairs: Sequence[TermPair] | None = None,
                         label_names: Sequence[str] | None = None, top: int = 20) -> dict:
    """Flip rate and mean |change| in the originally predicted class's probability when paired terms are swapped,
    with the `top` texts whose probability moved most, overall and for each term list alone (`by_list`)."""
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise RequestError("texts must be a list of strings")
    if isinstance(top, bool) or not isinstance(top, int) or top < 0:
        raise RequestError(f"top must be an int >= 0, got {top!r}")
    pairs = load_terms() if pairs is None else [TermPair(*p) if len(p) == 3 else TermPair(*p, "given") for p in pairs]
    swap = swapper(pairs)  # fails on an empty list
    texts = list(texts)
    lists = list(dict.fromkeys(p.list_name for p in pairs))
    result = _compare(predict_proba, texts, swap, label_names, top)
    result = {"terms": lists, "pairs": len(pairs), **result}
    if len(lists) > 1:
        result["by_list"] = {}
        for name in lists:
            alone = _compare(predict_proba, texts, swapper([p for p in pairs if p.list_name == name]), label_names, 0)
            result["by_list"][name] = {k: alone[k] for k in ("changed", "flips", "flip_rate", "mean_abs_change")}
    return result


def _compare(predict_proba: Predictor, texts: list[str], swap, label_names, top: int) -> dict:
    swapped = [swap(t) for t in texts]
    kept = [i for i, (_, n) in enumerate(swapped) if n > 0]
    empty = {"examples": len(texts), "changed": len(kept), "swaps": 0, "flips": 0, "flip_rate": None,
             "mean_abs_change": None, "most_moved": []}
    if not kept:
        return empty
    originals = [texts[i] for i in kept]
    counterfactuals = [swapped[i][0] for i in kept]
    before = _probabilities(predict_proba, originals, "original")
    after = _probabilities(predict_proba, counterfactuals, "counterfactual")
    if before.shape != after.shape:
        raise RequestError(f"predict_proba gave {before.shape[1]} classes for the originals but {after.shape[1]} "
                           "for the counterfactuals")
    if label_names is not None and len(label_names) != before.shape[1]:
        raise RequestError(f"label_names has {len(label_names)} names but the predictor gives {before.shape[1]} "
                           f"classes: {list(label_names)!r}")
    label, new_label = before.argmax(1), after.argmax(1)
    rows = np.arange(len(kept))
    change = after[rows, label] - before[rows, label]
    name = (lambda c: label_names[int(c)]) if label_names is not None else int
    order = sorted(range(len(kept)), key=lambda r: (-abs(change[r]), r))[:top]
    most_moved = [{"index": kept[r], "text": originals[r], "counterfactual": counterfactuals[r],
                   "label": name(label[r]), "counterfactual_label": name(new_label[r]),
                   "probability": float(before[r, label[r]]), "counterfactual_probability": float(after[r, label[r]]),
                   "change": float(change[r])} for r in order]
    flips = int((label != new_label).sum())
    return {**empty, "swaps": int(sum(swapped[i][1] for i in kept)), "flips": flips, "flip_rate": flips / len(kept),
            "mean_abs_change": float(np.abs(change).mean()), "most_moved": most_moved}
