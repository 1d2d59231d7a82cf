"""One audit of one run folder: rebuild exactly what the run saw, measure its model, write audit.json.

The corpus (or task) is rebuilt from the run's own data record and checked against the fingerprint the
run recorded, so the audit measures the data the model was trained on and nothing else. Every check
(the run, its model, the audits asked for) happens before the first model is loaded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from workbench.audit.audit_settings import AUDITS, CLASSIFIER_AUDITS, LM_AUDITS, AuditSettings
from workbench.errors import RequestError, ResourceError
from workbench.runs.run_folder import FINETUNING, IMAGE, PRETRAINING, RunFolder, lookup

AUDIT_FORMAT = "workbench-audit-v1"
HASH_CHUNK = 1 << 20


class AuditError(RequestError):
    """An audit was asked of a run it cannot read, or with audits that do not apply to it."""


@dataclass
class AuditOutcome:
    run: Path
    results: dict[str, Any]  # audit.json: deterministic for a seed
    seconds: dict[str, float]  # what each audit took: varies from run to run, so kept out of audit.json


def applicable(run: RunFolder, settings: AuditSettings) -> list[str]:
    """The audits to run: those asked for (all must apply), or every one that applies to this run."""
    if run.modality == IMAGE:  # every audit reads text: a corpus, a causal model's likelihoods, sentences
        fits = []
    elif run.kind == PRETRAINING:
        fits = [a for a in LM_AUDITS if a != "canaries" or isinstance(lookup(run.data, "canaries"), dict)]
    elif run.kind == FINETUNING and lookup(run.data, "task", "kind") == "sequence_classification":
        fits = [a for a in CLASSIFIER_AUDITS if a != "groups" or settings.group_column]
    else:
        fits = []
    if settings.audits is None:
        return fits
    wrong = [a for a in settings.audits if a not in fits]
    if wrong:
        raise AuditError(f"audits {wrong!r} do not apply to {run.path} (a {run.kind} run"
                         f"{'' if run.kind != FINETUNING else ' of a ' + str(lookup(run.data, 'task', 'kind'))}); "
                         f"the audits that apply are: {', '.join(fits) or 'none'}"
                         + ("; 'canaries' needs a run that planted them (canary_repetitions)" if "canaries" in wrong
                            else "") + ("; 'groups' needs group_column" if "groups" in wrong else ""))
    return [a for a in AUDITS if a in settings.audits]


def check_run(settings: AuditSettings) -> RunFolder:
    if not settings.run:
        raise AuditError("run is empty: give the run folder to audit")
    run = RunFolder(settings.run)
    if not run.path.is_dir():
        raise AuditError(f"run={settings.run!r} is not a folder")
    if run.data is None:
        raise ResourceError(f"{run.path} has no readable data.json: the audit rebuilds the run's data from it",
                            path=run.path)
    if run.kind == PRETRAINING and not run.has_checkpoint:
        raise ResourceError(f"{run.path} holds no model checkpoint to audit", path=run.path)
    if run.kind not in (PRETRAINING, FINETUNING):
        raise AuditError(f"{run.path} is neither a pretraining nor a fine-tuning run; nothing to audit")
    if run.kind == PRETRAINING and run.param("objective") == "masked_lm":
        raise AuditError(f"{run.path} pretrained a masked-LM encoder: the memorization audits score and continue text "
                         "left to right, which needs a causal LM (objective causal_lm); audit a classifier "
                         "fine-tuned on it instead")
    return run


def run_audit(settings: AuditSettings | dict, *, printer: Callable[[str], None] | None = print,
              save: bool = True) -> AuditOutcome:
    """Audit `settings.run`; with `save`, write audit.json into that run folder and rewrite its model card."""
    if isinstance(settings, dict):
        settings = AuditSettings.from_dict(settings)
    run = check_run(settings)
    chosen = applicable(run, settings)
    if not chosen:
        raise AuditError(f"no audit applies to {run.path} with these settings (a {run.kind} run)")
    results: dict[str, Any] = {"format": AUDIT_FORMAT, "run": run.path.name, "kind": run.kind, "seed": settings.seed,
                               "audits": chosen, "settings": dataclasses.asdict(settings)}
    seconds: dict[str, float] = {}
    measure = _LanguageModelAudit(run, settings) if run.kind == PRETRAINING else _ClassifierAudit(run, settings)
    results["model"] = measure.identity()
    commit = lookup(run.environment, "git", "commit")
    if commit:
        results["commit"] = commit
    for name in chosen:
        started = time.perf_counter()
        try:
            results[name] = getattr(measure, name)()
        except Exception as error:
            if save and len(seconds):  # keep what was measured before the failure
                results["failed"] = {"audit": name, "error": f"{type(error).__name__}: {error}"}
                _save(run, results)
                error.add_note(f"the audits before {name!r} ({', '.join(seconds)}) are saved in "
                               f"{run.path / 'audit.json'}")
            raise
        seconds[name] = time.perf_counter() - started
        if printer:
            printer(f"{name}: {seconds[name]:.1f} s")
    if save:
        _save(run, results)
    else:
        results["headline"] = headline(results)
    return AuditOutcome(run.path, results, seconds)


def _save(run: RunFolder, results: dict) -> None:
    """audit.json into the audited run's folder, and its model card rewritten from it."""
    from workbench.runs.model_card import write_model_card
    from workbench.runs.outputs import save_audit

    results["headline"] = headline(results)
    save_audit(run.path, results)
    write_model_card(run.path)


def headline(results: dict) -> dict[str, float]:
    """The audit's numbers that one scalar each can say, for metrics tables and comparisons across runs."""
    out: dict[str, float] = {}
    for split in ("train", "validation"):
        rate = lookup(results, "regurgitation", split, "rate")
        if rate is not None:
            out[f"regurgitation_{split}_rate"] = rate
    for k, part in (lookup(results, "extraction", "by_k") or {}).items():
        for split in ("train", "validation"):
            if lookup(part, split, "rate") is not None:
                out[f"extraction_{k}_{split}_rate"] = part[split]["rate"]
    for canary in lookup(results, "canaries", "canaries") or []:
        out[f"canary_exposure_{canary['repetitions']}x"] = canary["exposure"]
    for attack, part in (lookup(results, "membership", "attacks") or {}).items():
        out[f"membership_{attack}_auc"] = part["auc"]
    for key, path in (("counterfactual_flip_rate", ("counterfactual", "flip_rate")),
                      ("counterfactual_mean_abs_change", ("counterfactual", "mean_abs_change")),
                      ("pairs_stereotype_share", ("pairs", "share")),
                      ("groups_accuracy_gap", ("groups", "largest_gap", "accuracy", "value"))):
        value = lookup(results, *path)
        if value is not None:
            out[key] = value
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class _LanguageModelAudit:
    """The audits of a pretraining run's causal LM, each a method returning its audit.json entry."""

    def __init__(self, run: RunFolder, settings: AuditSettings) -> None:
        from workbench.modules.checkpoint import checkpoint_dir, load_pretrained

        self.run, self.settings = run, settings
        self.weights = checkpoint_dir(run.path) / "model.safetensors"
        self.model, self.tokenizer = load_pretrained(run.path)
        self.model.eval()
        self._prepared = None

    def identity(self) -> dict:
        return {"weights_sha256": _sha256(self.weights), "tokenizer": self.tokenizer.fingerprint()}

    @property
    def prepared(self):
        """The corpus as the run trained on it: loaded, masked and planted as its data record says."""
        if self._prepared is None:
            from workbench.data.corpora import corpus_fingerprint, load_corpus
            from workbench.data.prepared import prepare_corpus

            data = self.run.data
            options = dict(data.get("corpus_options") or {})
            recorded = data.get("settings") or {}
            raw = load_corpus(data["corpus"], **options)
            prepared = prepare_corpus(raw, pii=recorded.get("pii", "keep"),
                                      canary_repetitions=tuple(recorded.get("canary_repetitions") or ()),
                                      canary_digits=recorded.get("canary_digits", 6), seed=recorded.get("seed", 0))
            found = corpus_fingerprint(prepared.corpus)
            if data.get("fingerprint") and found != data["fingerprint"]:
                raise ResourceError(f"the corpus rebuilt from {self.run.path}'s data.json has fingerprint {found}, "
                                    f"the run trained on {data['fingerprint']}: its files changed since (another "
                                    "Python, edited files); the audit would measure other data", path=self.run.path)
            self._prepared = (raw, prepared)
        return self._prepared

    def regurgitation(self) -> dict:
        from workbench.audit.regurgitation import email_regurgitation

        raw, _ = self.prepared
        return email_regurgitation(self.model, self.tokenizer, raw, context_tokens=self.settings.context_tokens,
                                   max_addresses=self.settings.max_addresses, seed=self.settings.seed)

    def extraction(self) -> dict:
        from workbench.audit.extraction import extraction_rates

        _, prepared = self.prepared
        return extraction_rates(self.model, self.tokenizer, prepared.corpus, prefixes=self.settings.prefixes,
                                prefix_tokens=self.settings.prefix_tokens, ks=tuple(self.settings.extraction_k),
                                seed=self.settings.seed)

    def canaries(self) -> dict:
        from workbench.audit.exposure import canary_exposure

        _, prepared = self.prepared
        return canary_exposure(self.model, self.tokenizer, prepared.canary_record,
                               exact_limit=self.settings.canary_exact_limit, samples=self.settings.canary_samples,
                               seed=self.settings.seed)

    def membership(self) -> dict:
        from workbench.audit.membership import membership_inference

        _, prepared = self.prepared
        reference = None
        if self.settings.reference:
            from workbench.modules.checkpoint import load_pretrained

            reference = load_pretrained(self.settings.reference)
            reference[0].eval()
        return membership_inference(self.model, self.tokenizer, prepared.corpus,
                                    documents=self.settings.membership_documents, reference=reference,
                                    seed=self.settings.seed)

    def pairs(self) -> dict:
        from workbench.audit.pairs import paired_sentences

        return paired_sentences(self.model, self.tokenizer, path=self.settings.pairs_path, seed=self.settings.seed)


class _ClassifierAudit:
    """The audits of a fine-tuned sequence classifier, on its task's test split."""

    def __init__(self, run: RunFolder, settings: AuditSettings) -> None:
        from workbench.audit.counterfactual import classifier_of
        from workbench.modules.finetuned import load_finetuned

        self.run, self.settings = run, settings
        self.finetuned = load_finetuned(run.path)
        self.predict = classifier_of(self.finetuned)
        self._task = None

    def identity(self) -> dict:
        weights = self.run.path / "finetuned" / "model.safetensors"
        return {"weights_sha256": _sha256(weights)} if weights.is_file() else {}

    @property
    def task(self):
        """The run's task, rebuilt from its data record and checked against the fingerprint it recorded."""
        if self._task is None:
            from workbench.data.tasks import load_task

            record = self.run.data["task"]
            accepted = inspect.signature(load_task).parameters  # the record also notes facts (python, dropped_rows)
            options = {k: v for k, v in (record.get("options") or {}).items() if k in accepted and k != "name"}
            task = load_task(record["name"], **options)
            if record.get("fingerprint") and task.fingerprint() != record["fingerprint"]:
                raise ResourceError(f"the task rebuilt from {self.run.path}'s data.json differs from the one the "
                                    "run was trained on (its fingerprint moved); the audit would measure other data",
                                    path=self.run.path)
            self._task = task
        return self._task

    def counterfactual(self) -> dict:
        from workbench.audit.counterfactual import counterfactual_probe, load_terms

        test = self.task.splits["test"]
        texts = test["text"][: self.settings.counterfactual_examples] if self.settings.counterfactual_examples \
            else test["text"]
        return counterfactual_probe(self.predict, list(texts), pairs=load_terms(self.settings.terms_csv),
                                    label_names=self.finetuned.label_names)

    def groups(self) -> dict:
        from workbench.audit.groups import group_metrics_for_file

        path = self.settings.group_file or (self.task.options.get("path") if self.task.name == "file" else None)
        if not path:
            raise AuditError(f"groups: {self.run.path} was fine-tuned on task {self.task.name!r}, not a file; give "
                             "group_file (a labelled file with the group column)")
        options = self.task.options
        result = group_metrics_for_file(self.predict, path, text_column=options.get("text_column", "text"),
                                        label_column=options.get("label_column", "label"),
                                        group_column=self.settings.group_column,
                                        label_names=self.finetuned.label_names)
        return {"group_column": self.settings.group_column, "file": str(path), **result}
