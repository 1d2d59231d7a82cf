"""The audit's figures and its plain-text summary, drawn from the dicts the audits return (audit.json).

Each view is a plain function from one audit's dict to a plotly figure, so a notebook executed headless
keeps it and a reader can redraw it from a run's audit.json alone. An optional part of a result (a
"reference" attack, an empty bucket list) is left out of the drawing, never an error; a dict missing what
the figure is about is a RequestError naming the key.
"""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.colors import qualitative

from workbench.errors import RequestError

PALETTE = qualitative.Plotly
SPLIT_COLOURS = {"train": "#1f77b4", "validation": "#ff7f0e"}
DASHES = ["solid", "dash", "dot", "dashdot", "longdash"]
ATTACK_ORDER = ("loss", "zlib", "reference")


def _require(result: dict, key: str, what: str):
    """`result[key]`, or a RequestError naming the missing key, the audit and the keys there are."""
    if not isinstance(result, dict):
        raise RequestError(f"the {what} result must be a dict (an audit's output), got {type(result).__name__}")
    if key not in result:
        raise RequestError(f"the {what} result has no {key!r}; it has {sorted(result)}")
    return result[key]


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _note(figure: go.Figure, text: str) -> None:
    figure.add_annotation(text=text, xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False,
                          font=dict(size=14, color="#666"))


def extraction_figure(extraction: dict) -> go.Figure:
    """Extraction rate against how often the true continuation occurs in the training split: one line per
    split (colour) and k (dash). Carlini et al. (2021) found memorization rises with duplication; a held-out
    line at the same height as the training one says the continuations are predictable, not memorized."""
    by_k = _require(extraction, "by_k", "extraction")
    buckets: dict[str, tuple] = {}
    for entry in by_k.values():
        for row in entry.get("by_duplicates") or []:
            buckets.setdefault(str(row["duplicates"]), (row.get("low", 0), row.get("high", 0)))
    order = sorted(buckets, key=lambda name: (buckets[name][0] if _finite(buckets[name][0]) else math.inf,
                                              buckets[name][1] if _finite(buckets[name][1]) else math.inf))
    figure = go.Figure()
    for k_index, (k, entry) in enumerate(sorted(by_k.items(), key=lambda item: int(item[0]))):
        splits = list(dict.fromkeys(row["split"] for row in entry.get("by_duplicates") or []))
        for split in splits:
            rows = {str(r["duplicates"]): r for r in entry["by_duplicates"] if r["split"] == split}
            shown = [name for name in order if name in rows]
            overall = (entry.get(split) or {}).get("rate")
            suffix = f" (overall {overall:.1%})" if _finite(overall) else ""
            figure.add_scatter(
                x=shown, y=[rows[name]["rate"] for name in shown], mode="lines+markers", name=f"{split}, k={k}{suffix}",
                line=dict(color=SPLIT_COLOURS.get(split, PALETTE[k_index % len(PALETTE)]),
                          dash=DASHES[k_index % len(DASHES)]),
                customdata=[[rows[name]["extracted"], rows[name]["prefixes"]] for name in shown],
                hovertemplate=(f"{split}, k={k}<br>continuation seen %{{x}} times in train<br>"
                               "%{customdata[0]} of %{customdata[1]} extracted (%{y:.1%})<extra></extra>"))
    if not figure.data:
        _note(figure, "no prefixes by duplicate count recorded")
    prefix = extraction.get("prefix_tokens")
    figure.update_layout(
        title=f"extraction: greedy continuation of a {prefix}-token prefix reproduces the true next k tokens",
        xaxis=dict(title="times the true continuation occurs in the training split", type="category",
                   categoryorder="array", categoryarray=order),
        yaxis=dict(title="extraction rate", range=[0, 1.02], tickformat=".0%"),
        template="plotly_white", legend_title_text="split, k", height=420)
    return figure


def exposure_figure(canaries: dict) -> go.Figure:
    """Each canary's exposure against how often it was planted (log x), under the ceiling log2(candidates):
    The Secret Sharer's test that a model memorizes a secret more the more often it saw it."""
    rows = _require(canaries, "canaries", "canary exposure")
    candidates = _require(canaries, "candidates", "canary exposure")
    method = canaries.get("method", "unknown method")
    drawn = sorted((r for r in rows if _finite(r.get("exposure")) and _finite(r.get("repetitions"))
                    and r["repetitions"] > 0), key=lambda r: (r["repetitions"], r["exposure"]))
    left_out = len(rows) - len(drawn)
    ceiling = math.log2(candidates)
    figure = go.Figure()
    if drawn:
        figure.add_scatter(
            x=[r["repetitions"] for r in drawn], y=[r["exposure"] for r in drawn], mode="lines+markers",
            name="canary", marker=dict(size=9, color=PALETTE[0]),
            customdata=[[str(r.get("secret", "")), r.get("rank") if r.get("rank") is not None else "-",
                         r.get("log_perplexity", float("nan"))] for r in drawn],
            hovertemplate=("secret %{customdata[0]}: planted %{x} times<br>exposure %{y:.2f} bits, rank "
                           "%{customdata[1]}<br>log-perplexity %{customdata[2]:.2f}<extra></extra>"))
        low, high = drawn[0]["repetitions"], drawn[-1]["repetitions"]
        span = [low / 1.5, high * 1.5]
    else:
        span = [1, 64]
        _note(figure, "no canary with a measured exposure")
    figure.add_scatter(x=span, y=[ceiling, ceiling], mode="lines", line=dict(color="#999", dash="dash"),
                       name=f"ceiling log2(candidates) = {ceiling:.1f} bits", hoverinfo="skip")
    samples = canaries.get("samples")
    how = f"{method}, {samples} samples" if samples else method
    note = f"; {left_out} canaries not drawn (never planted or no finite exposure)" if left_out else ""
    figure.update_layout(
        title=f"canary exposure against repetitions ({how}{note})",
        xaxis=dict(title="times the canary was planted in the training split", type="log",
                   tickvals=sorted({r["repetitions"] for r in drawn}) or None),
        yaxis=dict(title="exposure (bits)", range=[0, max([ceiling] + [r["exposure"] for r in drawn]) * 1.08]),
        template="plotly_white", height=420)
    return figure


def _attack_names(attacks: dict) -> list[str]:
    """The attacks recorded (a None or empty one is not), the usual ones first."""
    return [a for a in ATTACK_ORDER if attacks.get(a)] + [a for a in attacks if a not in ATTACK_ORDER and attacks[a]]


def roc_figure(membership: dict, *, log_scale: bool = False) -> go.Figure:
    """One ROC curve per membership attack with its AUC, the chance diagonal, and each attack's TPR at 1%
    FPR marked (the low-FPR regime is what matters for privacy, Carlini et al. 2022; `log_scale` shows it)."""
    attacks = _require(membership, "attacks", "membership")
    names = _attack_names(attacks)
    figure = go.Figure()
    diagonal = [1e-3, 1] if log_scale else [0, 1]
    figure.add_scatter(x=diagonal, y=diagonal, mode="lines", name="chance (AUC 0.5)",
                       line=dict(color="#999", dash="dash"), hoverinfo="skip")
    for i, name in enumerate(names):
        attack, colour = attacks[name], PALETTE[i % len(PALETTE)]
        auc = attack.get("auc")
        label = f"{name} (AUC {auc:.3f})" if _finite(auc) else name
        roc = attack.get("roc") or []
        figure.add_scatter(x=[p[0] for p in roc], y=[p[1] for p in roc], mode="lines", name=label,
                           legendgroup=name, line=dict(color=colour, width=2),
                           hovertemplate=f"{name}<br>FPR %{{x:.3f}}<br>TPR %{{y:.3f}}<extra></extra>")
        tpr = attack.get("tpr_at_1pct_fpr")
        if _finite(tpr):
            figure.add_scatter(x=[0.01], y=[tpr], mode="markers", name=f"{name}: TPR at 1% FPR",
                               legendgroup=name, showlegend=False,
                               marker=dict(color=colour, size=11, symbol="diamond", line=dict(color="black", width=1)),
                               hovertemplate=f"{name}: TPR %{{y:.3f}} at 1% FPR<extra></extra>")
    if not names:
        _note(figure, "no membership attack recorded")
    documents = membership.get("documents") or {}
    axis = dict(type="log", range=[-3, 0]) if log_scale else dict(range=[0, 1])
    figure.update_layout(
        title=(f"membership inference: {documents.get('train', '?')} training vs "
               f"{documents.get('validation', '?')} held-out documents"),
        xaxis=dict(title="false positive rate", **axis), yaxis=dict(title="true positive rate", **axis),
        template="plotly_white", legend=dict(title_text="attack", x=0.98, y=0.02, xanchor="right", yanchor="bottom"),
        height=480, width=560)
    return figure


def group_figure(groups: dict) -> go.Figure:
    """Accuracy and macro F1 per group with their bootstrap 95% intervals: a gap is only a finding where
    the intervals do not overlap."""
    table = _require(groups, "groups", "group metrics")
    names = list(table)
    ticks = [f"{g} (n={table[g].get('n', '?')})" for g in names]
    figure = go.Figure()
    for i, (metric, title) in enumerate([("accuracy", "accuracy"), ("macro_f1", "macro F1")]):
        values = [table[g].get(metric) for g in names]
        cis = [table[g].get(f"{metric}_ci") for g in names]
        have = all(ci and _finite(ci[0]) and _finite(ci[1]) and _finite(v) for ci, v in zip(cis, values, strict=True))
        error = dict(type="data", symmetric=False, array=[ci[1] - v for ci, v in zip(cis, values, strict=True)],
                     arrayminus=[v - ci[0] for ci, v in zip(cis, values, strict=True)]) if have and names else None
        figure.add_bar(x=ticks, y=values, name=title, marker_color=PALETTE[i], error_y=error,
                       customdata=[[table[g].get("error_rate", float("nan"))] for g in names],
                       hovertemplate=(f"%{{x}}<br>{title} %{{y:.3f}}<br>"
                                      "error rate %{customdata[0]:.3f}<extra></extra>"))
    if not names:
        _note(figure, "no groups recorded")
    gap = (groups.get("largest_gap") or {}).get("accuracy") or {}
    between = gap.get("between") or []
    suffix = (f": largest accuracy gap {gap['value']:.3f} ({' vs '.join(map(str, between))})"
              if _finite(gap.get("value")) else "")
    figure.update_layout(title=f"per-group metrics with bootstrap 95% intervals{suffix}", barmode="group",
                         xaxis_title="group", yaxis=dict(title="score", range=[0, 1.05]),
                         template="plotly_white", height=420)
    return figure


def _pct(value) -> str:
    return f"{value:.1%}" if _finite(value) else "n/a"


def _num(value, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if _finite(value) else "n/a"


def _regurgitation_line(result: dict) -> str:
    parts = []
    for split in ("train", "validation"):
        s = result.get(split)
        if s:
            parts.append(f"{s.get('reproduced', 0)} of {s.get('occurrences', 0)} {split} occurrences "
                         f"({s.get('distinct', '?')} distinct; {_pct(s.get('rate'))})")
    context = result.get("context_tokens")
    return (f"regurgitation: greedy decoding from {context} tokens of context reproduces the e-mail address in "
            + ", ".join(parts or ["no split measured"]))


def _extraction_line(result: dict) -> str:
    parts = []
    for k, entry in sorted((result.get("by_k") or {}).items(), key=lambda item: int(item[0])):
        splits = [f"{split} {_pct(entry[split].get('rate'))} of {entry[split].get('prefixes', '?')}"
                  for split in ("train", "validation") if entry.get(split)]
        parts.append(f"k={k}: " + ", ".join(splits))
    return (f"extraction ({result.get('prefix_tokens')}-token prefixes, next k tokens reproduced): "
            + "; ".join(parts or ["nothing measured"]))


def _canaries_line(result: dict) -> str:
    rows = sorted(result.get("canaries") or [], key=lambda r: (r.get("repetitions", 0), r.get("exposure") or 0))
    exposures = " / ".join(_num(r.get("exposure"), 1) for r in rows)
    repetitions = " / ".join(str(r.get("repetitions")) for r in rows)
    candidates = result.get("candidates")
    ceiling = f"{math.log2(candidates):.1f}" if _finite(candidates) and candidates > 0 else "?"
    method = result.get("method", "unknown method")
    if result.get("samples"):
        method += f" from {result['samples']} samples"
    if not rows:
        return f"canaries: none measured (of {ceiling} possible bits, {method})"
    return f"canaries: exposure {exposures} bits at {repetitions} repetitions (of {ceiling} possible, {method})"


def _membership_line(result: dict) -> str:
    attacks = result.get("attacks") or {}
    names = _attack_names(attacks)
    aucs = ", ".join(f"{a} {_num(attacks[a].get('auc'))}" for a in names)
    tprs = ", ".join(f"{a} {_num(attacks[a].get('tpr_at_1pct_fpr'))}" for a in names)
    documents = result.get("documents") or {}
    return (f"membership: AUC {aucs or 'n/a'} (TPR at 1% FPR: {tprs or 'n/a'}) on "
            f"{documents.get('train', '?')} training vs {documents.get('validation', '?')} held-out documents")


def _counterfactual_line(result: dict) -> str:
    changed, rate = result.get("changed", 0), result.get("flip_rate")
    terms = ", ".join(map(str, result.get("terms") or [])) or "no"
    if not changed:
        return (f"counterfactual: none of the {result.get('examples', '?')} texts held a {terms} term to swap; "
                "nothing measured")
    flips = result.get("flips", round(rate * changed) if _finite(rate) else "?")
    return (f"counterfactual: {flips} of {changed} predictions flip ({_pct(rate)}) when {terms} terms are swapped "
            f"({changed} of {result.get('examples', '?')} texts had a term to swap, {result.get('pairs', '?')} "
            f"pairs); mean |change| in the predicted class's probability {_num(result.get('mean_abs_change'))}")


def _groups_line(result: dict) -> str:
    table = result.get("groups") or {}
    parts = []
    for name, row in table.items():
        ci = row.get("accuracy_ci") or [None, None]
        parts.append(f"{name} {_num(row.get('accuracy'))} [{_num(ci[0])}, {_num(ci[1])}] (n={row.get('n', '?')})")
    line = "groups: accuracy " + (", ".join(parts) if parts else "not measured (no groups)")
    gap = (result.get("largest_gap") or {}).get("accuracy") or {}
    if _finite(gap.get("value")):
        between = " and ".join(map(str, gap.get("between") or []))
        line += f"; largest accuracy gap {_num(gap['value'])} between {between}"
    return line


def _pairs_line(result: dict) -> str:
    ci = result.get("ci") or [None, None]
    by_type = result.get("by_bias_type") or {}
    types = "; by type: " + ", ".join(f"{t} {_pct(v.get('share'))} of {v.get('pairs', '?')}"
                                       for t, v in sorted(by_type.items())) if by_type else ""
    return (f"paired sentences ({result.get('source', 'unknown source')}): the stereotyping sentence scores higher "
            f"in {result.get('stereotype_preferred', '?')} of {result.get('pairs', '?')} pairs "
            f"({_pct(result.get('share'))}, 95% CI {_pct(ci[0])} to {_pct(ci[1])}){types}")


SUMMARIES = {"regurgitation": _regurgitation_line, "extraction": _extraction_line, "canaries": _canaries_line,
             "membership": _membership_line, "counterfactual": _counterfactual_line, "groups": _groups_line,
             "pairs": _pairs_line}


def summary_lines(audit: dict) -> list[str]:
    """One plain-text line per audit present in `audit` (audit.json's shape), in a fixed order, for a notebook
    to print as its summary paragraph. A key that is absent or None is skipped; a string (e.g. why an audit
    was not run) is printed as it is."""
    lines = []
    for key, line in SUMMARIES.items():
        result = audit.get(key)
        if result is None:
            continue
        lines.append(f"{key}: {result}" if isinstance(result, str) else line(result))
    return lines
