"""What an audit is, as one frozen dataclass: notebooks/audit.ipynb's parameters, a spec's values and
`run_audit`'s input. Light: it loads without torch, so `workbench run` checks a spec before any kernel starts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from workbench.settings import Settings, setting

# Every audit, in the order a report lists them; each says which kind of run it reads.
LM_AUDITS = ("regurgitation", "extraction", "canaries", "membership", "pairs")  # a causal LM (pretraining run)
CLASSIFIER_AUDITS = ("counterfactual", "groups")  # a fine-tuned sequence classifier
AUDITS = LM_AUDITS + CLASSIFIER_AUDITS


@dataclass(frozen=True)
class AuditSettings(Settings):
    what = "audit settings"

    run: str = setting("", "the run folder to audit (pretraining or fine-tuning); \"\" = run "
                       "experiments/audit-quick.yaml first and audit its runs")
    audits: list[str] | None = setting(None, "which audits: " + " | ".join(AUDITS) + "; None = every one that "
                                       "applies to the run")
    seed: int = setting(0, "seeds every sample the audit draws: the same seed gives the same audit.json")
    context_tokens: int = setting(64, "regurgitation: tokens of context before each e-mail address",
                                  minimum=1, section="memorization")
    max_addresses: int | None = setting(None, "regurgitation: a cap on the addresses tried per split; None = all",
                                        minimum=1)
    prefixes: int = setting(100, "extraction: prefixes sampled from training documents, and as many held out",
                            minimum=1)
    prefix_tokens: int = setting(32, "extraction: tokens of each prefix", minimum=1)
    extraction_k: list[int] = setting([32, 64], "extraction: continuation lengths checked for an exact match")
    membership_documents: int = setting(200, "membership inference: documents per side (training, held out)",
                                        minimum=2)
    reference: str | None = setting(None, "membership inference: a second pretraining run to calibrate "
                                    "against (the same tokenizer or not); None = only loss and zlib", path="folder")
    canary_exact_limit: int = setting(100_000, "canaries: rank among every candidate up to this many, else the "
                                      "paper's skew-normal estimate", minimum=1)
    canary_samples: int = setting(10_000, "canaries: candidates sampled for the estimate", minimum=100)
    terms_csv: str | None = setting(None, "counterfactual: extra term pairs (a CSV with columns a,b) beside the "
                                    "shipped gendered words and given names", path="file", section="bias")
    counterfactual_examples: int | None = setting(None, "counterfactual: a cap on the test texts; None = all",
                                                  minimum=1)
    group_file: str | None = setting(None, "per-group metrics: a labelled file with a group column; None = the "
                                     "run's own task file (task=\"file\")", path="file")
    group_column: str | None = setting(None, "per-group metrics: the column naming each row's group; None = skip")
    pairs_path: str | None = setting(None, "paired sentences: a CrowS-Pairs CSV; None = the built-in templates "
                                     "(they exercise the code; they are not a benchmark)", path="file")

    def more_problems(self) -> Iterator[str]:
        unknown = [a for a in self.audits or [] if a not in AUDITS]
        if unknown:
            yield f"audits={self.audits!r}: unknown {unknown!r}; valid audits are: {', '.join(AUDITS)}"
        bad = [k for k in self.extraction_k if isinstance(k, bool) or not isinstance(k, int) or k < 1]
        if bad or not self.extraction_k:
            yield f"extraction_k={self.extraction_k!r}: give one or more positive ints (bad: {bad!r})"
        if self.group_file and not self.group_column:
            yield f"group_file={self.group_file!r} needs group_column: the column that names each row's group"


@dataclass(frozen=True)
class AuditNotebook(AuditSettings):
    """notebooks/audit.ipynb's parameters: the settings, then what the notebook shows."""

    examples_shown: int = setting(10, "counterfactual examples the browser holds", minimum=1,
                                  section="what the notebook shows")
