"""Fixtures every test folder shares. Helpers live in uniquely named modules (`hf_models.py`): `from conftest
import ...` would pick whichever of the tree's conftest.py files was imported first."""

from __future__ import annotations

import os
import tempfile

import pytest
from hf_models import build_causal_lm

# precision auto's remembered measurements (modules/precision_memory.py) go to a folder of this session's,
# not the user's cache: a test never reuses a choice measured outside it, and leaves nothing behind.
os.environ.setdefault("WORKBENCH_CACHE_DIR", tempfile.mkdtemp(prefix="workbench-test-cache-"))


@pytest.fixture(scope="session")
def hf_causal_folder(tmp_path_factory):
    """A function: family -> the folder of a tiny random model of that family (built once per session)."""
    made = {}

    def folder(family: str):
        if family not in made:
            model, tokenizer = build_causal_lm(family)
            path = tmp_path_factory.mktemp(f"hf-{family}")
            model.save_pretrained(path)
            tokenizer.save_pretrained(path)
            made[family] = path
        return made[family]

    return folder
