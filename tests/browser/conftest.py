"""One JupyterLab (over a worktree of HEAD) and one headless Chromium for every browser test of a session."""

from __future__ import annotations

import pytest
from browser_lab import chromium_path, committed_worktree, jupyterlab_server, missing_or_fail, shut_down_kernels


@pytest.fixture(scope="session")
def worktree(tmp_path_factory):
    with committed_worktree(tmp_path_factory.mktemp("committed")) as folder:
        yield folder


@pytest.fixture(scope="session")
def jupyterlab(worktree, tmp_path_factory):
    with jupyterlab_server(worktree, tmp_path_factory.mktemp("lab")) as server:
        yield server


@pytest.fixture(scope="session")
def browser():
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing_or_fail("playwright is not installed (pip install playwright==1.65.2)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, jupyterlab):
    """A fresh tab; afterwards every kernel is shut down so the next notebook has the cores to itself."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    yield tab
    context.close()
    shut_down_kernels(*jupyterlab)
