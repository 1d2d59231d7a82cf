"""Browse the counterfactual probe's most-moved examples one at a time: the text, its swapped twin with the
swapped words marked, and the prediction before and after.

The swapped words are found by a word-level diff of the two texts, so the view needs nothing but the probe's
result dict (audit.json), and every piece of text is HTML-escaped: the examples are corpus text.
"""

from __future__ import annotations

import difflib
import html
import re

import ipywidgets as widgets

LABELS = {"description_width": "initial"}  # widget labels at their full width, never cut short
SHOW = ("all", "flips only")
WORDS = re.compile(r"\w+|\W+")
MARK_BEFORE = "background:#ffd8a8"
MARK_AFTER = "background:#b2f2bb"


def is_flip(row: dict) -> bool:
    return row.get("label") != row.get("counterfactual_label")


def marked_pair(text: str, counterfactual: str) -> tuple[str, str]:
    """Both texts as escaped HTML with the words that differ between them wrapped in <mark>.

    A swap replaces words one for one, so texts with as many words are compared word by word (a diff would
    pair "his & her" with "her & his" wrongly); others, e.g. a multi-word term, by difflib's alignment."""
    a, b = WORDS.findall(text), WORDS.findall(counterfactual)
    if len(a) == len(b):
        opcodes = [("equal" if x == y else "replace", i, i + 1, i, i + 1)
                   for i, (x, y) in enumerate(zip(a, b, strict=True))]
    else:
        opcodes = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    left, right = [], []
    for op, i1, i2, j1, j2 in opcodes:
        before, after = html.escape("".join(a[i1:i2])), html.escape("".join(b[j1:j2]))
        if op == "equal":
            left.append(before)
            right.append(after)
            continue
        if before:
            left.append(f'<mark style="{MARK_BEFORE}">{before}</mark>')
        if after:
            right.append(f'<mark style="{MARK_AFTER}">{after}</mark>')
    return "".join(left), "".join(right)


def example_html(row: dict, position: str = "") -> str:
    """One example: original and counterfactual text, marked, with the label and the probability of the
    originally predicted class under each."""
    original, swapped = marked_pair(str(row.get("text", "")), str(row.get("counterfactual", "")))
    label, new_label = html.escape(str(row.get("label"))), html.escape(str(row.get("counterfactual_label")))
    p, q = row.get("probability"), row.get("counterfactual_probability")
    change = row.get("change", (q - p) if p is not None and q is not None else None)
    verdict = '<b style="color:#c92a2a">flipped</b>' if is_flip(row) else "same label"
    probs = f"p({label}) {p:.3f} → {q:.3f} (change {change:+.3f})" if None not in (p, q, change) else ""
    box = 'style="white-space:pre-wrap;max-height:16em;overflow:auto;border:1px solid #ddd;padding:4px"'
    return (f'<div class="wb-counterfactual"><div>{html.escape(position)} <b>{label}</b> → <b>{new_label}</b>: '
            f"{verdict}; {probs}</div>"
            f"<div><b>original</b></div><pre {box}>{original}</pre>"
            f"<div><b>counterfactual</b></div><pre {box}>{swapped}</pre></div>")


def summary_html(counterfactual: dict) -> str:
    rate, change = counterfactual.get("flip_rate"), counterfactual.get("mean_abs_change")
    terms = html.escape(", ".join(map(str, counterfactual.get("terms") or [])) or "none")
    rate_text = f"{rate:.1%}" if isinstance(rate, (int, float)) else "n/a"
    change_text = f"{change:.3f}" if isinstance(change, (int, float)) else "n/a"
    return (f"<div>terms: <b>{terms}</b> ({counterfactual.get('pairs', '?')} pairs); "
            f"{counterfactual.get('changed', '?')} of {counterfactual.get('examples', '?')} texts had a term to "
            f"swap; flip rate <b>{rate_text}</b>, mean |change| <b>{change_text}</b>{_by_list(counterfactual)}</div>")


def _by_list(counterfactual: dict) -> str:
    """Each term list's own flip rate, where the probe measured more than one."""
    parts = [f"{html.escape(str(name))} {row['flip_rate']:.1%} of {row.get('changed', '?')}"
             for name, row in (counterfactual.get("by_list") or {}).items()
             if isinstance(row.get("flip_rate"), (int, float))]
    return "; by list: " + ", ".join(parts) if parts else ""


def examples_html(counterfactual: dict, *, limit: int = 5) -> str:
    """The summary and the first `limit` most-moved examples as static HTML: the fallback a notebook stores
    beside the widget for a reader without a kernel."""
    rows = counterfactual.get("most_moved") or []
    if not rows:
        return summary_html(counterfactual) + f"<i>{html.escape(_empty_message(counterfactual))}</i>"
    shown = [example_html(row, f"#{i + 1}") for i, row in enumerate(rows[:limit])]
    more = f"<i>and {len(rows) - limit} more</i>" if len(rows) > limit else ""
    return summary_html(counterfactual) + "<hr>".join(shown) + more


def _empty_message(counterfactual: dict) -> str:
    return (f"no example to show: none of the {counterfactual.get('examples', '?')} texts held a term to swap "
            f"({counterfactual.get('changed', 0)} changed)")


class CounterfactualBrowser(widgets.VBox):
    """The probe's most-moved examples one at a time (a slider, previous/next buttons), all or flips only."""

    def __init__(self, counterfactual: dict) -> None:
        self.counterfactual = counterfactual
        self.rows = list(counterfactual.get("most_moved") or [])
        self.only = widgets.Dropdown(options=SHOW, value="all", description="show", style=LABELS)
        self.index = widgets.IntSlider(value=0, min=0, max=max(0, len(self.rows) - 1), description="example",
                                       continuous_update=False, style=LABELS)
        self.previous = widgets.Button(description="previous", icon="arrow-left")
        self.next = widgets.Button(description="next", icon="arrow-right")
        self.summary = widgets.HTML(summary_html(counterfactual))
        self.view = widgets.HTML()
        self.only.observe(self._filter, names="value")
        self.index.observe(self._show, names="value")
        self.previous.on_click(lambda _: self.step(-1))
        self.next.on_click(lambda _: self.step(1))
        controls = widgets.HBox([self.only, self.previous, self.index, self.next])
        super().__init__([self.summary, controls, self.view])
        self._filter()

    @property
    def shown(self) -> list[dict]:
        return [r for r in self.rows if is_flip(r)] if self.only.value == "flips only" else self.rows

    def step(self, by: int) -> None:
        """Move `by` examples along, staying within the examples shown."""
        self.index.value = min(max(self.index.value + by, self.index.min), self.index.max)

    def _filter(self, change=None) -> None:
        shown = self.shown
        self.index.value = 0
        self.index.max = max(0, len(shown) - 1)
        for control in (self.index, self.previous, self.next):
            control.disabled = len(shown) < 2
        self._show()

    def _show(self, change=None) -> None:
        shown = self.shown
        if not self.rows:
            self.view.value = f"<i>{html.escape(_empty_message(self.counterfactual))}</i>"
        elif not shown:
            self.view.value = f"<i>no prediction flipped among the {len(self.rows)} most-moved examples</i>"
        else:
            i = min(self.index.value, len(shown) - 1)
            self.view.value = example_html(shown[i], f"{i + 1} of {len(shown)}:")
