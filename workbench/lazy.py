"""Package namespaces that import a submodule only when one of its names is first used.

`from workbench.data import PretrainDataModule` still works, but importing the light
parts of a package (a settings dataclass, a table of names) no longer loads torch,
Lightning and `datasets` through the package's `__init__`: `workbench run` checks
a spec in well under a second of imports, and a notebook pays for what it uses.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any, Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for `package`, serving each name in `exports` from the module named there."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        setattr(sys.modules[package], name, value)  # once: the next lookup is a plain attribute
        return value

    def __dir__() -> list[str]:
        return sorted(set(exports) | set(vars(sys.modules[package])))

    class LazyPackage(types.ModuleType):
        """Importing a submodule sets it as an attribute of its package. Where a submodule has the name of
        an export (modules/pretrain.py and `pretrain()`, models/generate.py and `generate()`), that would
        shadow the export whenever the submodule loads after it; the export keeps the name instead."""

        def __setattr__(self, name: str, value: Any) -> None:
            if name in exports and isinstance(value, types.ModuleType):
                return
            super().__setattr__(name, value)

    sys.modules[package].__class__ = LazyPackage
    return __getattr__, __dir__


def exports_of(modules: dict[str, list[str]]) -> dict[str, str]:
    """{name: module} from {module: [names]}, so an `__init__` lists its names by module, as imports would."""
    return {name: module for module, names in modules.items() for name in names}
