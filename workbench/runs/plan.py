"""Expand a spec into the runs it stands for, and check every one before any runs.

A stage becomes one run per combination of its sweep (grid x list x seeds).
A parameter may refer to an earlier stage: `${pretrain}` is that stage's run
folder (the run with the same seed when the stage repeated over seeds), and
`${pretrain.runs}` the list of all its run folders. Run folders are fixed by
the plan, so references resolve before anything executes and `--dry-run`
shows exactly what would run.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.runs.interface import missing_paths, notebook_interface
from workbench.runs.parameters import RESERVED, ParameterError, validate_parameters
from workbench.runs.spec import Spec, SpecError, Stage

REFERENCE = re.compile(r"\$\{([A-Za-z0-9_-]+)(\.runs)?\}")


@dataclass(frozen=True)
class PlannedRun:
    stage: str
    folder: Path  # absolute; inside the experiment folder, or the run folder itself for a single run
    notebook: Path
    parameters: dict[str, Any]  # references resolved
    varied: dict[str, Any]  # what this run's sweep position and seed set
    depends_on: tuple[Path, ...] = ()

    @property
    def label(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.varied.items())
        return f"{self.stage}/{self.folder.name}" + (f" ({shown})" if shown else "")


@dataclass
class Plan:
    spec: Spec
    root: Path
    runs: list[PlannedRun] = field(default_factory=list)

    def of_stage(self, stage: str) -> list[PlannedRun]:
        return [run for run in self.runs if run.stage == stage]


def variants(stage: Stage) -> list[dict[str, Any]]:
    """The parameter values each run of `stage` sets: grid x list x seeds, in spec order."""
    names = list(stage.grid)
    grid = [dict(zip(names, values, strict=True)) for values in itertools.product(*stage.grid.values())] or [{}]
    cases = stage.cases or [{}]
    seeds = [{"seed": seed} for seed in stage.seeds] if stage.seeds else [{}]
    return [{**g, **c, **s} for g, c, s in itertools.product(grid, cases, seeds)]


def make_plan(spec: Spec, root: Path, *, validate: bool = True) -> Plan:
    """Lay out every run under `root`; with `validate`, raise one error listing every problem."""
    plan = Plan(spec, Path(root))
    problems: list[str] = []
    for stage in spec.stages:
        stage_variants = variants(stage)
        for index, varied in enumerate(stage_variants):
            if spec.single_run:
                folder = plan.root
            elif len(stage_variants) == 1:
                folder = plan.root / stage.name
            else:
                folder = plan.root / f"{stage.name}-{index:03d}"
            params = {**stage.parameters, **varied}
            depends: list[Path] = []
            try:
                params = _resolve(params, plan, stage, varied.get("seed", params.get("seed")), depends)
            except SpecError as error:
                problems.append(f"stage {stage.name!r}: {error}" if spec.pipeline else str(error))
            plan.runs.append(PlannedRun(stage.name, folder, stage.notebook, params, varied, tuple(depends)))
    if validate:
        problems += _parameter_problems(plan)
    if problems:
        unique = list(dict.fromkeys(problems))
        raise ParameterError(f"{spec.path}: {len(unique)} problem(s), nothing was run:\n- " + "\n- ".join(unique))
    return plan


def format_plan(plan: Plan) -> str:
    """What `--dry-run` prints: per stage its notebook and shared parameters, then a line per run."""
    lines = [f"{plan.spec.name}: {len(plan.runs)} run(s) in {len(plan.spec.stages)} stage(s) -> {plan.root}"]
    for stage in plan.spec.stages:
        runs = plan.of_stage(stage.name)
        notebook = plan.spec.shown(stage.notebook)
        lines.append(f"stage {stage.name}: {len(runs)} run(s) of {notebook}")
        # Shared: the same in every run (a reference can differ per run even when no sweep sets it).
        differ = [k for k in runs[0].parameters if len({repr(run.parameters.get(k)) for run in runs}) > 1]
        for name, value in runs[0].parameters.items():
            if name not in differ:
                lines.append(f"    {name}: {_short(value, plan.root)}")
        if len(runs) > 1:
            for run in runs:
                values = ", ".join(f"{k}={_short(run.parameters[k], plan.root)}" for k in differ)
                lines.append(f"  {run.folder.name}: {values}")
    return "\n".join(lines)


def _short(value: Any, root: Path) -> str:
    """Paths inside the plan shown relative to it, so run lines stay readable."""
    if isinstance(value, list):
        return "[" + ", ".join(_short(v, root) for v in value) + "]"
    text = str(value) if not isinstance(value, str) else value
    return text.replace(f"{root}/", "") if isinstance(value, str) else repr(value)


def _resolve(value: Any, plan: Plan, stage: Stage, seed: Any, depends: list[Path]) -> Any:
    if isinstance(value, dict):
        return {k: _resolve(v, plan, stage, seed, depends) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, plan, stage, seed, depends) for v in value]
    if not isinstance(value, str) or "${" not in value:
        return value
    whole = REFERENCE.fullmatch(value)
    if whole and whole.group(2):  # ${stage.runs}: every run folder of that stage
        runs = _earlier_runs(whole.group(1), plan, stage)
        depends.extend(run.folder for run in runs)
        return [str(run.folder) for run in runs]

    def one_folder(match: re.Match) -> str:
        if match.group(2):
            raise SpecError(f"{match.group(0)} is a list; use it as a whole value, not inside text")
        run = _matching_run(match.group(1), plan, stage, seed)
        depends.append(run.folder)
        return str(run.folder)

    resolved = REFERENCE.sub(one_folder, value)
    if "${" in resolved:
        raise SpecError(f"{value!r}: a reference is written ${{stage}} or ${{stage.runs}}")
    return resolved


def _earlier_runs(name: str, plan: Plan, stage: Stage) -> list[PlannedRun]:
    names = [s.name for s in plan.spec.stages]
    if name not in names:
        raise SpecError(f"${{{name}}} names no stage; stages are: {', '.join(names)}")
    if names.index(name) >= names.index(stage.name):
        raise SpecError(f"${{{name}}} must name an earlier stage (stages run in the order written)")
    return plan.of_stage(name)


def _matching_run(name: str, plan: Plan, stage: Stage, seed: Any) -> PlannedRun:
    runs = _earlier_runs(name, plan, stage)
    if len(runs) == 1:
        return runs[0]
    same_seed = [run for run in runs if run.parameters.get("seed") == seed]
    if seed is not None and len(same_seed) == 1:
        return same_seed[0]
    raise SpecError(
        f"${{{name}}} is ambiguous: stage {name!r} has {len(runs)} runs; give both stages the same "
        f"seeds (each run then uses the one with its seed), or take them all with ${{{name}.runs}}"
    )


def _parameter_problems(plan: Plan) -> list[str]:
    """Every problem of every run: names and types against the notebook's cell, then values against
    the settings class it is rendered from (choices, ranges, cross-field rules, files that must exist).
    A problem shared by several runs of a stage is listed once, naming the runs."""
    by_message: dict[str, list[PlannedRun]] = {}
    for run in plan.runs:
        try:
            resolved = validate_parameters(run.notebook, run.parameters)
        except ParameterError as error:
            by_message.setdefault(str(error), []).append(run)
            continue
        for problem in _value_problems(run, resolved, plan):
            by_message.setdefault(problem, []).append(run)
    return [f"{_runs_label(runs, plan)}: {message}" for message, runs in by_message.items()]


def _value_problems(run: PlannedRun, resolved: dict[str, Any], plan: Plan) -> list[str]:
    interface = notebook_interface(run.notebook)
    if interface is None:
        return []
    values = {k: v for k, v in resolved.items() if k != RESERVED}
    problems = interface.problems_with(values)
    if not problems:
        planned = tuple(r.folder for r in plan.runs)
        problems = missing_paths(interface.from_dict(values), plan.spec.project_root, planned)
    return problems


def _runs_label(runs: list[PlannedRun], plan: Plan) -> str:
    """`run pretrain-003 (stage pretrain)`, or `runs finetune-000, finetune-001 and 4 more (stage finetune)`."""
    if plan.spec.single_run:
        return f"run {plan.spec.name}"
    names = [run.folder.name for run in runs]
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    stages = ", ".join(dict.fromkeys(run.stage for run in runs))
    return f"{'run' if len(names) == 1 else 'runs'} {shown} (stage {stages})"
