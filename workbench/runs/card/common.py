"""The card's sections that read the same for every kind of run, and the base class of the kind-specific ones."""

from __future__ import annotations

import yaml

from workbench.runs.card.format import NOT_RECORDED, number, shown_path, table
from workbench.runs.outputs import SPEC_FILE
from workbench.runs.run_folder import RunFolder, is_number, lookup


class KindSections:
    """The sections whose content depends on what the run trained; a subclass per kind of run."""

    def __init__(self, run: RunFolder) -> None:
        self.run = run

    def what(self) -> str:
        """The card's first sentence: what this model is."""
        raise NotImplementedError

    def model(self) -> list[str]:
        raise NotImplementedError

    def data(self) -> list[str]:
        raise NotImplementedError

    def missing_yardstick(self) -> list[str]:
        """What the metrics section says when the zlib yardstick is not there."""
        return []

    def data_seen(self) -> list[tuple[str, str]]:
        """The compute rows that count what training saw (tokens, or examples)."""
        raise NotImplementedError

    def throughput(self) -> str:
        raise NotImplementedError

    def intended_use(self) -> list[str]:
        raise NotImplementedError

    def limitations(self) -> list[str]:
        """Known limitations particular to this kind of run (the common ones follow them)."""
        return []

    def untested(self) -> str:
        """What was not evaluated."""
        return "No evaluation beyond the task's own splits (no robustness, bias or out-of-distribution tests)."


def summary(run: RunFolder, kind: KindSections) -> list[str]:
    facts = [
        "interactive (JupyterLab" + (f", `{run.notebook}`)" if run.notebook else ")") if run.interactive else None,
        f"spec `{run.spec_name}`" if run.spec_name else None,
        f"stage `{run.stage}`" if run.stage and run.stage != run.spec_name else None,
        f"status {run.recorded_status or NOT_RECORDED}",
        f"finished {run.finished}" if run.finished else None,
    ]
    return [kind.what(), "", "Run " + " · ".join(f for f in facts if f) + "."]


def reproduce(run: RunFolder) -> list[str]:
    lines = []
    if run.has_spec_file:
        lines += ["```bash", f".venv/bin/workbench run {shown_path(run.spec_file)}", "```", ""]
    else:
        source = run.spec_path
        lines += [f"The single-run spec ({SPEC_FILE}) is {NOT_RECORDED} in this folder"
                  + (f"; the run came from `{source}` with the parameters below." if source else "."), ""]
    git = run.git
    if git.get("commit"):
        lines.append(f"Run it from a checkout of commit `{git['commit']}`"
                     + (" (the working tree had uncommitted changes then; they are not saved with the run, so "
                        "the code may differ)." if git.get("dirty") else "."))
    else:
        lines.append(f"The code version (git commit) is {NOT_RECORDED}.")
    lines.append("The same spec and seed on the same machine give the same metrics.json, to the last digit; "
                 "another machine or thread count may differ in the last digits.")
    return lines


def parameters(run: RunFolder) -> list[str]:
    if run.params is None:
        return [f"The injected parameters (params.yaml) are {NOT_RECORDED}."]
    shown = {k: v for k, v in run.params.items() if k != "output_dir"}
    text = yaml.safe_dump(shown, sort_keys=False, default_flow_style=False).rstrip()
    lines = ["As injected into the notebook (params.yaml):", "", "```yaml", text, "```"]
    if run.varied:
        lines += ["", "Set by the sweep for this run: " + ", ".join(f"`{k}={v}`" for k, v in run.varied.items()) + "."]
    return lines


def metrics(run: RunFolder, kind: KindSections) -> list[str]:
    if run.metrics is None:
        return [f"The final metrics (metrics.json) are {NOT_RECORDED}."]
    scalars = {k: v for k, v in run.metrics.items() if is_number(v)}
    lines = table([(k, number(v)) for k, v in scalars.items()], header=("metric", "value"))
    bpb, zlib = scalars.get("val_bpb"), scalars.get("zlib_bpb")
    if bpb is not None and zlib is not None:
        verdict = "better than" if bpb < zlib else "no better than"
        lines += ["", f"Yardstick: on the validation text the model needs {bpb:.3f} bits per byte, zlib (level 9) "
                      f"{zlib:.3f}: the model compresses it {verdict} a general-purpose compressor."]
    else:
        lines += kind.missing_yardstick()
    return [*lines, "", *_curve_summary(run)]


def _curve_summary(run: RunFolder) -> list[str]:
    if run.history is None:
        return [f"The curves (history.json) are {NOT_RECORDED}."]
    evaluations = _validation_losses(run)
    if not evaluations:
        return ["history.json holds no validation evaluations."]
    best = min(evaluations, key=lambda e: e[1])
    shown = ", ".join(f"{step}: {number(loss)}" for step, loss in evaluations[-6:])
    return [f"Validation loss by step (history.json, last {min(6, len(evaluations))} of {len(evaluations)}): {shown}; "
            f"best {number(best[1])} at step {best[0]}."]


def compute(run: RunFolder, kind: KindSections) -> list[str]:
    c = run.compute or {}
    seconds = run.wall_time_s
    rows = [
        *kind.data_seen(),
        ("optimizer steps", number(c["train_steps"]) if "train_steps" in c else NOT_RECORDED),
        ("time in training steps", f"{c['train_time_s']:.1f} s" if is_number(c.get("train_time_s")) else NOT_RECORDED),
        ("throughput", kind.throughput()),
        ("wall time (notebook)", f"{c['wall_time_s']:.1f} s" if is_number(c.get("wall_time_s")) else NOT_RECORDED),
        ("wall time (whole run)", f"{seconds:.1f} s" if seconds is not None else NOT_RECORDED),
        ("device", c.get("device") or NOT_RECORDED),
        ("precision", _precision_phrase(c)),
        ("torch threads", str(c["torch_threads"]) if "torch_threads" in c else NOT_RECORDED),
    ]
    if c.get("resumed_at_steps"):
        rows.append(("resumed at steps", ", ".join(map(str, c["resumed_at_steps"]))))
    return table(rows)


def environment(run: RunFolder) -> list[str]:
    env = run.environment
    if env is None:
        return [f"The environment record (environment.json) is {NOT_RECORDED}."]
    git = run.git
    packages = env.get("packages") if isinstance(env.get("packages"), dict) else {}
    commit = git.get("commit")
    cores = lookup(env, "cpu", "logical_cores")
    seed = env["seed"] if "seed" in env else run.param("seed")
    rows = [
        ("git commit", f"`{commit}`" + (" (uncommitted changes present)" if git.get("dirty") else " (clean)")
         if commit else NOT_RECORDED),
        ("python", lookup(env, "python", "version") or NOT_RECORDED),
        ("torch", packages.get("torch") or lookup(env, "torch", "version") or NOT_RECORDED),
        ("lightning", packages.get("lightning") or NOT_RECORDED),
        ("platform", env.get("platform") or NOT_RECORDED),
        ("cpu", ", ".join(x for x in (lookup(env, "cpu", "model"), f"{cores} logical cores" if cores is not None
                                      else None) if x) or NOT_RECORDED),
        ("seed", str(seed) if seed is not None else NOT_RECORDED),
    ]
    return table(rows)


def limitations(run: RunFolder, kind: KindSections) -> list[str]:
    items = [*kind.limitations(), _validation_trend(run), kind.untested()]
    if run.git.get("dirty"):
        items.append("The code had uncommitted changes when it ran, so the commit alone may not reproduce it.")
    return [f"- {item}" for item in items if item]


def _validation_trend(run: RunFolder) -> str | None:
    """What the validation curve says about the final weights: still improving (undertrained) or past
    its best (overfitting); nothing when it flattened out."""
    evaluations = _validation_losses(run, need_step=False)
    if len(evaluations) < 2:
        return None
    (_, previous), (last_step, last) = evaluations[-2], evaluations[-1]
    best_step, best = min(evaluations, key=lambda e: e[1])
    if last > best * 1.02:
        return (f"Validation loss was lowest at step {best_step} ({number(best)}) and {number(last)} at the end "
                f"(step {last_step}): the final weights are past their best, overfitting the training data.")
    if last < previous * 0.99:
        return (f"Validation loss was still falling at the end ({number(previous)} → {number(last)}): "
                "undertrained; a longer run would do better.")
    return None


def _validation_losses(run: RunFolder, need_step: bool = True) -> list[tuple[object, float]]:
    """(step, val_loss) of every evaluation in history.json."""
    return [(row.get("step"), row["val_loss"]) for row in run.history or []
            if is_number(row.get("val_loss")) and (not need_step or "step" in row)]


def _precision_phrase(compute: dict) -> str:
    """The precision trained in; for `auto`, what was chosen and why (modules/precision.py)."""
    chosen = compute.get("precision") or NOT_RECORDED
    choice = compute.get("precision_choice")
    if isinstance(choice, dict) and choice.get("reason"):
        remembered = (f"; measured {choice.get('measured_at')}, remembered in {choice['remembered_in']}"
                      if choice.get("remembered_in") else "")
        return f"{chosen} (auto: {choice['reason']}{remembered})"
    return chosen
