"""Small local corpora and a fresh-process runner for the data tests."""

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

WORDS = "the quick brown fox jumps over a lazy dog while seven wizards quietly box jam".split()


def ascii_text(seed: int, n_words: int) -> str:
    rng = random.Random(seed)
    lines = [" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(n_words // 12)]
    return "\n".join(lines) + "\n"


@pytest.fixture
def text_files(tmp_path) -> Path:
    """A folder of 12 ASCII .txt files, about 4 KB each."""
    folder = tmp_path / "texts"
    folder.mkdir()
    for i in range(12):
        (folder / f"doc{i:02d}.txt").write_text(ascii_text(i, 600), encoding="utf-8")
    return folder


@pytest.fixture
def cache_dir(tmp_path) -> str:
    return str(tmp_path / "cache")


@pytest.fixture
def run_fresh():
    """Run code in a new Python process (with extra env vars); return its last stdout line as JSON."""
    return _run_fresh


@pytest.fixture
def make_text():
    return ascii_text


def _run_fresh(code: str, **env: str):
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
