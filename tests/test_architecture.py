"""The rooms of docs/architecture.md, enforced: which packages of workbench/ each package may import.

Every import in every module is read with `ast`: at the top, inside functions, under `if TYPE_CHECKING:`
(an annotation is knowledge of the other room too), and `importlib.import_module("...")` with a literal
name. Each import a room may not make fails the test, naming file, line and the import. Change the table
and docs/architecture.md together, in the same commit, when a room's job changes.
"""

from __future__ import annotations

import ast
import fnmatch
import textwrap
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
LIBRARY = PROJECT / "workbench"

# The ground floor: every room may import it; it imports nothing above it. settings.py is the base of every
# settings dataclass (the single source of a notebook's parameters), so the rooms that define settings need it.
FOUNDATION = frozenset({"errors", "config", "files", "settings", "lazy", "host"})

# room -> what it may import besides itself. "x" is room x and every module in it; "x.y" one module;
# "x.*_settings" a pattern. "workbench" is the package's own __init__ (its re-exports, for users).
ROOMS: dict[str, frozenset[str]] = {
    "errors": frozenset(),
    "files": frozenset({"errors"}),
    "lazy": frozenset(),
    "host": frozenset(),
    "config": frozenset({"errors"}),
    "settings": frozenset({"errors", "config"}),
    # A base model maps token ids to hidden states: no Lightning, data or heads.
    "models": FOUNDATION,
    # Heads know hidden states and labels. The backbone a head reads through (build_head's `backbone`)
    # is the nn.Module it is handed, so heads need nothing from models/.
    "heads": FOUNDATION,
    # Corpora, tokenizers, tasks, DataModules: never the objectives that train on them. A task's kind of label
    # is one of the heads' table of kinds (heads/for_task.py), the one table from task kind to default head.
    "data": FOUNDATION | {"heads.for_task"},
    # LightningModules join a base, a head and an optimiser; base loading goes through interop/ once it exists.
    "modules": FOUNDATION | {"models", "heads", "data", "interop"},
    # Hugging Face in and out: exports read modules' checkpoint formats and LoRA, and a run's records through
    # its one reader (the hub model card is built from them).
    "interop": FOUNDATION | {"models", "heads", "data", "modules", "runs.run_folder"},
    # Specs, pre-flight checks, papermill, run folders: training happens inside the kernel, never here. The
    # settings check every run; a strategy describes itself on the model card (as a corpus and a task do).
    "runs": FOUNDATION | {"models", "data", "modules.*_settings", "modules.strategies"},
    # Read checkpoints, runs and models; never train (no training module, no Trainer, no .fit).
    "probe": FOUNDATION | {"models", "heads", "data", "runs", "modules.checkpoint", "modules.finetuned",
                           "modules.base_model", "modules.metrics", "modules.training_state"},
    "audit": FOUNDATION | {"models", "heads", "data", "runs", "modules.checkpoint", "modules.finetuned",
                           "modules.base_model", "modules.metrics"},
    # Thin: parses, then calls runs/ or interop/.
    "cli": FOUNDATION | {"workbench", "runs", "interop"},
    "__main__": frozenset({"cli"}),  # `python -m workbench` (and `torchrun -m workbench`) is the command
    "workbench": frozenset({"*"}),
}
ROOMS_TO_COME: set[str] = set()  # rooms in the table before their code lands

# Third-party packages a room may not import, and why.
FORBIDDEN_PACKAGES: dict[str, dict[str, str]] = {
    "models": {"lightning": "models/ knows nothing of Lightning", "datasets": "models/ knows nothing of data",
               "huggingface_hub": "models/ may wrap a transformers model handed to it, but never reads a hub"},
    "heads": {"lightning": "heads/ know only hidden states and labels", "datasets": "heads/ know no data",
              "transformers": "heads/ know only hidden states and labels"},
    "cli": {"torch": "cli.py is thin (and starts without torch)", "lightning": "cli.py is thin",
            "datasets": "cli.py is thin"},
}
ONLY_IN = {"papermill": {"runs"}}  # runs/ is the only place that calls papermill
NEVER_TRAIN = {"probe", "audit"}
# (importer pattern, imported pattern, why): rules inside a room.
WITHIN = [("modules.*_recipe", "modules.*_recipe", "recipes import components, never each other")] + [
    (f"modules.{fmt}", "modules.*_recipe", "a file format knows no recipe")
    for fmt in ("checkpoint", "finetuned", "training_state")]
OUTSIDE_THE_LIBRARY = {"benchmarks", "tests", "notebooks"}  # the library never imports its users


@dataclass(frozen=True)
class Import:
    line: int
    module: str  # dotted, absolute
    text: str  # the source line, for the message


def _submodule_exists(package_dir: Path, dotted: str) -> bool:
    path = package_dir.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports_of(path: Path, package_dir: Path) -> list[Import]:
    """Every import in the file, resolved to absolute dotted names (`from a import b` is a.b when b is a module)."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    here = list(path.relative_to(package_dir.parent).with_suffix("").parts)
    if here[-1] == "__init__":
        here.pop()
    package = here if path.name == "__init__.py" else here[:-1]
    found = []
    for node in ast.walk(ast.parse(source, filename=str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            names = [f"{module}.{a.name}" if _submodule_exists(package_dir, f"{module}.{a.name}") else module
                     for a in node.names]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str) and not node.args[0].value.startswith(".")):
            names = [node.args[0].value]
        found += [Import(node.lineno, name, lines[node.lineno - 1].strip()) for name in dict.fromkeys(names)]
    return found


def _room_of(dotted_in_package: str) -> str:
    return dotted_in_package.split(".")[0] if dotted_in_package else "workbench"


def _allowed(target: str, entries: frozenset[str]) -> bool:
    """`target` is dotted inside the package ("" for its __init__); entries as in ROOMS."""
    target = target or "workbench"
    return any(entry == "*" or target == entry or target.startswith(entry + ".") or fnmatch.fnmatch(target, entry)
               for entry in entries)


def _trains(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name == "fit":
            return ".fit(...)"
        if name == "Trainer":
            return "Trainer(...)"
    return None


def violations(package_dir: Path) -> list[str]:
    """Every import (and training call) in `package_dir` that breaks the rules above, as 'file:line: ...'."""
    name = package_dir.name
    problems = []
    for path in sorted(package_dir.rglob("*.py")):
        inside = path.relative_to(package_dir).with_suffix("")
        parts = [p for p in inside.parts if p != "__init__"]
        room, module = _room_of(".".join(parts)), ".".join(parts)
        where = f"{path.relative_to(package_dir.parent)}"
        if room not in ROOMS:
            if any(f"room {room!r} " in problem for problem in problems):
                continue
            problems.append(f"{where}:1: room {room!r} is not in the table of tests/test_architecture.py "
                            f"(add it, with what it may import, here and in docs/architecture.md)")
            continue
        for imp in imports_of(path, package_dir):
            top = imp.module.split(".")[0]
            said = f"{where}:{imp.line}: `{imp.text}`"
            if top == name:
                target = imp.module[len(name) + 1:]
                if _room_of(target) == room:
                    for importer, imported, why in WITHIN:
                        if (fnmatch.fnmatch(module, importer) and fnmatch.fnmatch(target, imported)
                                and target != module):
                            problems.append(f"{said}: {module} may not import {target} ({why})")
                elif not _allowed(target, ROOMS[room]):
                    problems.append(f"{said}: {room} may not import {target or name}; it may import "
                                    f"{', '.join(sorted(ROOMS[room])) or 'nothing of the workbench'}")
            elif top in OUTSIDE_THE_LIBRARY:
                problems.append(f"{said}: the library never imports {top}/ (it uses the library, not the other way)")
            elif top in ONLY_IN and room not in ONLY_IN[top]:
                problems.append(f"{said}: only {', '.join(sorted(ONLY_IN[top]))} may import {top}")
            elif top in FORBIDDEN_PACKAGES.get(room, {}):
                problems.append(f"{said}: {FORBIDDEN_PACKAGES[room][top]}")
        if room in NEVER_TRAIN:
            source = path.read_text(encoding="utf-8").splitlines()
            for node in ast.walk(ast.parse("\n".join(source))):
                if call := _trains(node):
                    problems.append(f"{where}:{node.lineno}: `{source[node.lineno - 1].strip()}`: "
                                    f"{room} reads models and runs, it never trains ({call})")
    return problems


def test_every_import_in_the_library_keeps_to_its_room():
    problems = violations(LIBRARY)
    assert not problems, "imports that break the rooms of docs/architecture.md:\n" + "\n".join(problems)


def test_the_table_names_the_rooms_that_exist_and_the_rooms_to_come():
    present = {p.stem if p.is_file() else p.name for p in LIBRARY.iterdir()
               if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()}
    assert present - set(ROOMS) == set(), "rooms with no row in the table"
    assert set(ROOMS) - present - {"workbench"} <= ROOMS_TO_COME, "rows for rooms that are neither here nor to come"
    named = {entry for entries in ROOMS.values() for entry in entries if "." in entry and "*" not in entry}
    missing = {entry for entry in named if not _submodule_exists(LIBRARY, f"workbench.{entry}")
               and _room_of(entry) not in ROOMS_TO_COME}
    assert not missing, f"the table names modules that do not exist (renamed? follow the rename): {sorted(missing)}"


def test_benchmarks_reach_papermill_only_through_workbench_run():
    bench = PROJECT / "benchmarks"
    problems = [f"{path.relative_to(PROJECT)}:{imp.line}: `{imp.text}`"
                for path in sorted(bench.rglob("*.py")) for imp in imports_of(path, bench)
                if imp.module.split(".")[0] in ONLY_IN]
    assert not problems, "only runs/ calls papermill; benchmarks use `workbench run`:\n" + "\n".join(problems)


def test_only_models_and_interop_know_transformers():
    """interop/ is the only place that knows Hugging Face's folder formats; models/ may wrap a model handed to it."""
    problems = [f"{path.relative_to(PROJECT)}:{imp.line}: `{imp.text}`"
                for path in sorted(LIBRARY.rglob("*.py"))
                if _room_of(".".join(path.relative_to(LIBRARY).with_suffix("").parts)) not in ("models", "interop")
                for imp in imports_of(path, LIBRARY) if imp.module.split(".")[0] == "transformers"]
    assert not problems, "\n".join(problems)


# The checker itself, on a small planted package.

def _plant(root: Path, files: dict[str, str]) -> Path:
    package = root / "workbench"
    for name, text in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    for folder in [package, *(p for p in package.rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()
    return package


def test_the_checker_catches_planted_violations_naming_file_line_and_import(tmp_path):
    package = _plant(tmp_path, {
        "errors.py": "",
        "modules/pretrain.py": "",
        "modules/pretrain_recipe.py": "",
        "modules/finetune_recipe.py": "from workbench.modules.pretrain import x\nfrom . import pretrain_recipe\n",
        "models/decoder.py": """\
            from workbench.errors import RequestError
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from workbench.heads import Head

            def late():
                import lightning
                from ..data import corpora
            """,
        "heads/__init__.py": "",
        "data/corpora.py": "import importlib\nimportlib.import_module('workbench.modules.pretrain')\n",
        "probe/view.py": """\
            from workbench.modules import checkpoint, pretrain
            from workbench.runs import registry

            def train(trainer, module):
                trainer.fit(module)
            """,
        "modules/checkpoint.py": "from workbench.modules.finetune_recipe import Outcome\n",
        "runs/registry.py": "import papermill\n",
        "cli.py": "import torch\nimport benchmarks\n",
        "newroom/thing.py": "",
    })
    found = "\n".join(violations(package))
    expected = [
        "workbench/modules/finetune_recipe.py:2: `from . import pretrain_recipe`: modules.finetune_recipe may not "
        "import modules.pretrain_recipe (recipes import components, never each other)",
        "workbench/modules/checkpoint.py:1: `from workbench.modules.finetune_recipe import Outcome`: "
        "modules.checkpoint may not import modules.finetune_recipe (a file format knows no recipe)",
        "workbench/models/decoder.py:4: `from workbench.heads import Head`: models may not import heads",
        "workbench/models/decoder.py:7: `import lightning`: models/ knows nothing of Lightning",
        "workbench/models/decoder.py:8: `from ..data import corpora`: models may not import data.corpora",
        "workbench/data/corpora.py:2: `importlib.import_module('workbench.modules.pretrain')`: data may not import "
        "modules.pretrain",
        "workbench/probe/view.py:1: `from workbench.modules import checkpoint, pretrain`: probe may not import "
        "modules.pretrain",
        "workbench/probe/view.py:5: `trainer.fit(module)`: probe reads models and runs, it never trains (.fit(...))",
        "workbench/cli.py:1: `import torch`: cli.py is thin",
        "workbench/cli.py:2: `import benchmarks`: the library never imports benchmarks/",
        "workbench/newroom/__init__.py:1: room 'newroom' is not in the table",
    ]
    for line in expected:
        assert line in found, f"not reported: {line}\nreported:\n{found}"
    for allowed in ("decoder.py:1:", "finetune_recipe.py:1:", "registry.py:1:", "probe/view.py:2:"):
        assert allowed not in found, f"an allowed import was reported ({allowed}):\n{found}"
    assert len(found.splitlines()) == len(expected), found


def test_papermill_outside_runs_is_caught(tmp_path):
    package = _plant(tmp_path, {"probe/run_it.py": "def go():\n    import papermill\n"})
    assert violations(package) == ["workbench/probe/run_it.py:2: `import papermill`: only runs may import papermill"]
