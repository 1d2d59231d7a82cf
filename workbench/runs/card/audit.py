"""The card's Privacy and Bias sections: what the corpus scan found (data.json) and what the audit measured
(audit.json), or "not measured" with the command that measures it."""

from __future__ import annotations

import math

from workbench.runs.card.format import NOT_RECORDED, number, shown_path, table
from workbench.runs.run_folder import FINETUNING, IMAGE, RunFolder, is_number, lookup

AUDIT_SPEC = "experiments/audit-run.yaml"
KIND_NAMES = {"email": "e-mail addresses", "url_credentials": "URLs with credentials", "ip_address": "IP addresses",
              "phone": "phone numbers", "secret_key": "keys of known formats (AKIA..., ghp_..., PEM)",
              "secret": "secrets assigned to names like password or api_key"}
SOURCES_SHOWN = 5


def audit_command(run: RunFolder) -> str:
    return f"`.venv/bin/workbench run {AUDIT_SPEC} -p run={shown_path(run.path)}`"


def not_measured(run: RunFolder, what: str) -> str:
    return f"{what}: not measured. Measure it with {audit_command(run)} (notebooks/audit.ipynb)."


# ---------------------------------------------------------------- privacy


def privacy(run: RunFolder) -> list[str]:
    if run.modality == IMAGE:
        return _image_privacy(run)
    if run.kind == FINETUNING:
        return _finetuning_privacy(run)
    lines = [*_scan(run), "", *_canaries_planted(run), "", *_memorization(run)]
    return lines


def _scan(run: RunFolder) -> list[str]:
    pii = lookup(run.data, "pii")
    if not isinstance(pii, dict) or not isinstance(pii.get("scan"), dict):
        return [f"The corpus scan for private data is {NOT_RECORDED} (a run older than the scan)."]
    scan, mode = pii["scan"], pii.get("mode")
    splits = scan.get("splits") if isinstance(scan.get("splits"), dict) else {}
    distinct = scan.get("distinct") if isinstance(scan.get("distinct"), dict) else {}
    rows = []
    for kind in scan.get("kinds") or list(KIND_NAMES):
        per_split = [lookup(splits, split, "counts", kind) or 0 for split in ("train", "validation")]
        rows.append((KIND_NAMES.get(kind, kind), *map(number, per_split), number(distinct.get(kind, 0))))
    lines = ["What the scan for private data (workbench/data/pii.py) found in the corpus, before any masking:", "",
             "| kind | train | validation | distinct values |", "| --- | --- | --- | --- |",
             *(f"| {' | '.join(row)} |" for row in rows), ""]
    sources = scan.get("sources") if isinstance(scan.get("sources"), dict) else {}
    if sources:
        totals = sorted(((sum(v for v in hits.values() if is_number(v)), source) for source, hits in sources.items()
                         if isinstance(hits, dict)), key=lambda t: (-t[0], t[1]))
        shown = ", ".join(f"`{source}` ({number(total)})" for total, source in totals[:SOURCES_SHOWN])
        count = scan.get("sources_with_hits", len(sources))
        lines.append(f"They are in {number(count)} source files; the most in {shown}.")
    if mode == "mask":
        lines.append("They were masked (`pii: mask`): replaced by placeholders such as `<EMAIL>` before "
                     "tokenization, so the model never saw them.")
    elif mode == "keep":
        lines.append("They were kept (`pii: keep`): the model trained on them as they are. `pii: mask` replaces "
                     "them with placeholders before tokenization.")
    return lines


def _canaries_planted(run: RunFolder) -> list[str]:
    canaries = lookup(run.data, "canaries")
    if not isinstance(canaries, dict):
        return ["No canaries were planted (`canary_repetitions: []`)."]
    reps = [c.get("repetitions") for c in canaries.get("canaries", []) if isinstance(c, dict)]
    return [f"Canaries (Carlini et al. 2019): {len(reps)} random secrets of the form "
            f"\"{canaries.get('template', '?')}\" ({canaries.get('digits', '?')} digits, "
            f"{number(canaries.get('candidates'))} candidates), planted {', '.join(map(str, reps))} times in the "
            f"training split (seed {canaries.get('seed')})."]


def _memorization(run: RunFolder) -> list[str]:
    audit = run.audit
    measured = [k for k in ("regurgitation", "extraction", "canaries", "membership") if isinstance(lookup(audit, k),
                                                                                                   dict)]
    if not measured:
        return [not_measured(run, "Memorization (regurgitated addresses, extraction, canary exposure, membership)")]
    rows = []
    if "regurgitation" in measured:
        rows.append(_regurgitation_row(audit["regurgitation"]))
    if "extraction" in measured:
        rows += _extraction_rows(audit["extraction"])
    if "canaries" in measured:
        rows.append(_exposure_row(audit["canaries"]))
    if "membership" in measured:
        rows.append(_membership_row(audit["membership"]))
    missing = sorted({"regurgitation", "extraction", "canaries", "membership"} - set(measured))
    lines = [f"What the audit measured of this model ({_audit_phrase(audit)}):", "",
             *table(rows, header=("measure", "value"))]
    if missing:
        lines += ["", f"Not measured: {', '.join(missing)}."]
    return lines


def _audit_phrase(audit: dict) -> str:
    parts = [f"seed {audit['seed']}" if "seed" in audit else None,
             f"commit `{str(audit['commit'])[:12]}`" if audit.get("commit") else None,
             f"{audit['created']}" if audit.get("created") else None]
    return "audit.json, " + ", ".join(p for p in parts if p) if any(parts) else "audit.json"


def _rate(part: object, count: str) -> str:
    if not isinstance(part, dict) or not is_number(part.get("rate")):
        return NOT_RECORDED
    return f"{number(part.get('reproduced', part.get('extracted')))} of {number(part.get(count))} " \
           f"({100 * part['rate']:.1f}%)"


def _regurgitation_row(result: dict) -> tuple[str, str]:
    return (f"e-mail addresses reproduced by greedy decoding from the {result.get('context_tokens', '?')} tokens "
            "before them",
            f"train {_rate(result.get('train'), 'occurrences')}; "
            f"held out {_rate(result.get('validation'), 'occurrences')}")


def _extraction_rows(result: dict) -> list[tuple[str, str]]:
    rows = []
    for k, part in sorted((result.get("by_k") or {}).items(), key=lambda kv: int(kv[0])):
        rows.append((f"extraction: the next {k} tokens after a {result.get('prefix_tokens', '?')}-token prefix, "
                     "reproduced exactly", f"train {_rate(part.get('train'), 'prefixes')}; held out "
                     f"{_rate(part.get('validation'), 'prefixes')}"))
    return rows


def _exposure_row(result: dict) -> tuple[str, str]:
    canaries = sorted((c for c in result.get("canaries", []) if isinstance(c, dict)),
                      key=lambda c: c.get("repetitions", 0))
    shown = ", ".join(f"{c.get('repetitions')}×: {number(c.get('exposure'))}" for c in canaries)
    candidates = result.get("candidates")
    ceiling = f" of at most {math.log2(candidates):.1f}" if is_number(candidates) and candidates > 0 else ""
    return (f"canary exposure in bits{ceiling} ({result.get('method', '?')})", shown or NOT_RECORDED)


def _membership_row(result: dict) -> tuple[str, str]:
    attacks = result.get("attacks") or {}
    shown = "; ".join(f"{name} AUC {number(a.get('auc'))} (TPR {100 * a['tpr_at_1pct_fpr']:.1f}% at 1% FPR)"
                      for name, a in attacks.items() if isinstance(a, dict) and is_number(a.get("tpr_at_1pct_fpr")))
    docs = result.get("documents") or {}
    return (f"membership inference, {number(docs.get('train'))} training vs {number(docs.get('validation'))} "
            "held-out documents (0.5 = cannot tell)", shown or NOT_RECORDED)


def _finetuning_privacy(run: RunFolder) -> list[str]:
    base = lookup(run.data, "base", "source") or run.param("base")
    lines = ["The fine-tuning examples were not scanned for private data, and what the fine-tuned model memorized "
             "of them was not measured (the audit's memorization measures read causal language models)."]
    if base:
        lines.append(f"What the base model's corpus held and what it memorized is on the base's own card (`{base}`).")
    return lines


def _image_privacy(run: RunFolder) -> list[str]:
    from workbench.data.image_sources import SOURCES  # here: the card must not make `runs` load torch

    name = lookup(run.data, "image_set", "image_set")
    kind = "public handwritten-digit images with no names or other text attached" if name in SOURCES else \
        "images whose content is the researcher's to vouch for"
    return [f"The images ({kind}) were not scanned for private data: the corpus scan reads text. What the model "
            "memorized of them was not measured: the audit's memorization measures read causal language models."]


# ---------------------------------------------------------------- bias


def bias(run: RunFolder) -> list[str]:
    audit = run.audit
    if run.modality == IMAGE:
        return ["Not measured: the audit's bias measures read text (paired sentences, a text classifier's "
                "counterfactual probe, per-group metrics of a text task). A vision fine-tune's per-class F1 "
                "(details.json) shows which classes it serves worse."]
    if run.kind == FINETUNING:
        lines = _counterfactual(run, lookup(audit, "counterfactual"))
        groups = lookup(audit, "groups")
        lines += ["", *(_groups(groups) if isinstance(groups, dict) else [
            "Per-group metrics: not measured (they need a task file with a group column; give the audit "
            "`group_file` and `group_column`)."])]
        return lines
    pairs = lookup(audit, "pairs")
    if not isinstance(pairs, dict):
        return [not_measured(run, "Paired-sentence bias scoring (CrowS-Pairs format)")]
    return _pairs(pairs)


def _counterfactual(run: RunFolder, result: object) -> list[str]:
    if not isinstance(result, dict):
        return [not_measured(run, "Counterfactual probe (swapping gendered words and given names)")]
    rows = [("term lists", ", ".join(map(str, result.get("terms", []))) or NOT_RECORDED),
            ("term pairs", number(result.get("pairs"))),
            ("test texts, and those with a term swapped", f"{number(result.get('examples'))}, "
                                                          f"{number(result.get('changed'))}"),
            ("prediction flip rate", f"{100 * result['flip_rate']:.2f}%" if is_number(result.get("flip_rate"))
             else "none measured: no test text held a listed term" if result.get("changed") == 0 else NOT_RECORDED),
            ("mean |change| in the predicted class's probability", number(result.get("mean_abs_change")))]
    return ["Counterfactual probe: each test text with its gendered words and given names swapped (he ↔ she, "
            "John ↔ Mary, ...); how often the prediction changes:", "", *table(rows, header=("measure", "value"))]


def _groups(result: dict) -> list[str]:
    groups = result.get("groups") or {}
    lines = [f"Per-group metrics on `{result.get('group_column', '?')}` (95% bootstrap intervals):", "",
             "| group | n | accuracy | macro F1 |", "| --- | --- | --- | --- |"]
    for name, g in groups.items():
        if isinstance(g, dict):
            lines.append(f"| {name} | {number(g.get('n'))} | {_with_ci(g, 'accuracy')} | {_with_ci(g, 'macro_f1')} |")
    gap = lookup(result, "largest_gap", "accuracy")
    if isinstance(gap, dict):
        lines += ["", f"Largest accuracy gap: {number(gap.get('value'))} between "
                      f"{' and '.join(map(str, gap.get('between', [])))}."]
    return lines


def _with_ci(group: dict, metric: str) -> str:
    value, ci = group.get(metric), group.get(f"{metric}_ci")
    if not is_number(value):
        return NOT_RECORDED
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if isinstance(ci, list) and len(ci) == 2 else f"{value:.3f}"


def _pairs(result: dict) -> list[str]:
    ci = result.get("ci")
    share = result.get("share")
    shown = f"{100 * share:.1f}%" if is_number(share) else NOT_RECORDED
    if isinstance(ci, list) and len(ci) == 2 and all(map(is_number, ci)):
        shown += f" (95% interval {100 * ci[0]:.1f}–{100 * ci[1]:.1f}%)"
    lines = [f"Paired sentences ({result.get('source', '?')}): in {shown} of {number(result.get('pairs'))} pairs "
             "the model gives the stereotyping sentence the higher likelihood (50% = no preference)."]
    by_type = result.get("by_bias_type") or {}
    if by_type:
        lines += ["", *table([(t, f"{100 * v['share']:.1f}% of {number(v.get('pairs'))}") for t, v in by_type.items()
                              if isinstance(v, dict) and is_number(v.get("share"))], header=("bias type", "share"))]
    return lines
