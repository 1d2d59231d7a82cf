"""Lazy package namespaces: an export keeps its name even when a submodule of that name loads after it."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize(("submodule", "package", "name"), [
    ("workbench.modules.pretrain", "workbench.modules", "pretrain"),
    ("workbench.models.generate", "workbench.models", "generate"),
])
def test_a_submodule_never_shadows_the_export_of_its_name(submodule, package, name):
    code = (f"import {package}; from {package} import {name} as first; import {submodule}; "
            f"from {package} import {name} as second; assert callable(first) and second is first, second")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_light_modules_load_no_framework():
    code = ("import sys, workbench.modules.pretrain_settings, workbench.modules.finetune_settings, "
            "workbench.runs.interface; heavy = {'torch', 'lightning', 'datasets', 'papermill'} & set(sys.modules); "
            "assert not heavy, heavy")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
