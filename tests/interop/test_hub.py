"""`hf:<repo-id>`: the Hugging Face cache first, the hub when reachable, and a fast, clear failure otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

from workbench.interop.hub import HubError, hub_folder, split_hub_name

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def cached(cache, repo_id: str, folder) -> None:
    """Lay `folder` out in `cache` as huggingface_hub keeps a downloaded snapshot (refs/main -> snapshots/<commit>)."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(folder, repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)


@pytest.mark.parametrize("offline", ["1", ""])
def test_a_name_in_neither_cache_nor_reachable_hub_fails_in_seconds_naming_repo_and_cache(offline, tmp_path):
    script = textwrap.dedent("""
        import workbench
        from workbench.modules.base_model import load_base
        for attempt in (lambda: load_base("hf:nobody/nothing"), lambda: workbench.load("hf:nobody/nothing")):
            try:
                attempt()
            except Exception as error:
                print(type(error).__name__, error)
    """)
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": offline}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - started
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2, done.stdout + done.stderr
    for line in lines:
        assert line.startswith("HubError") and "nobody/nothing" in line and str(tmp_path / "cache") in line
    assert elapsed < 10, f"took {elapsed:.1f} s"


def test_a_cached_model_loads_offline(hf_causal_folder, tmp_path, monkeypatch):
    import huggingface_hub

    cached(tmp_path, "tiny-org/tiny-llama", hf_causal_folder("llama"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    from workbench.modules.base_model import load_base

    folder = hub_folder("hf:tiny-org/tiny-llama")
    assert folder == tmp_path / "models--tiny-org--tiny-llama" / "snapshots" / COMMIT
    base = load_base("hf:tiny-org/tiny-llama", max_length=32)
    assert base.description["name"] == "hf:tiny-org/tiny-llama" and base.description["mapped"] == "workbench-decoder"
    with pytest.raises(HubError, match=r"tiny-org/other is not in the Hugging Face cache .*HF_HUB_OFFLINE"):
        hub_folder("hf:tiny-org/other")


@pytest.mark.parametrize("name, expected", [("hf:org/name", ("org/name", None)), ("hf:gpt2", ("gpt2", None)),
                                            ("hf:org/name@v1.0", ("org/name", "v1.0"))])
def test_hub_names_split_into_repository_and_revision(name, expected):
    assert split_hub_name(name) == expected


@pytest.mark.parametrize("name", ["hf:", "hf:a/b/c", "hf:/name", "hf:org/"])
def test_a_malformed_hub_name_says_the_form(name):
    with pytest.raises(ValueError, match=r"hf:<org>/<name>\[@revision\]"):
        split_hub_name(name)
