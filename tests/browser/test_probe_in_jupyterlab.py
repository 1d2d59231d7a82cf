"""probe.ipynb in a real JupyterLab, driven by headless Chromium: every view renders, and a slider moves a figure.

JupyterLab runs from .venv on 127.0.0.1 with a token; Playwright drives Debian's `chromium` (browser
downloads do not work here, so the system executable is launched). Screenshots of each view are saved
under $WORKBENCH_ARTIFACTS (default tests/browser/artifacts/) and their paths printed.
Under CI (CI=true) a missing chromium or playwright fails the test; elsewhere it skips, saying which.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
VIEWS = {  # screenshot name -> text found in the cell that builds the view
    "live-curves": "LiveCurves(title=",
    "playground": "GenerationPlayground(",
    "logit-lens": "LogitLensWidget(",
    "attention": "AttentionWidget(",
    "confusion": "ConfusionExplorer(",
    "examples": "ExampleBrowser(",
    "token-head": "TokenHeadBrowser(",
    "embeddings": "EmbeddingWidget(",
    "run-picker": "RunPicker(",
}


def missing_or_fail(what: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {what}")
    pytest.skip(what)


def chromium_path() -> str:
    for candidate in (os.environ.get("WORKBENCH_CHROMIUM"), *CHROMIUM_CANDIDATES, shutil.which("chromium")):
        if candidate and Path(candidate).is_file():
            return candidate
    missing_or_fail("no system chromium (install Debian's package: apt-get install -y chromium)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path):
    jupyter = Path(sys.executable).parent / "jupyter"
    if not jupyter.exists():
        missing_or_fail(f"no jupyter next to {sys.executable}")
    root = tmp_path / "lab"
    root.mkdir()
    shutil.copy(ROOT / "notebooks" / "probe.ipynb", root / "probe.ipynb")
    settings = tmp_path / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # Render every cell (no virtual scrolling), so each view is in the DOM to check and screenshot.
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    apputils = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"
    apputils.mkdir(parents=True)
    (apputils / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port, token = free_port(), secrets.token_hex(16)
    log = open(tmp_path / "jupyterlab.log", "w")
    process = subprocess.Popen(
        [str(jupyter), "lab", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
         "--ServerApp.open_browser=False", f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
         f"--LabApp.user_settings_dir={tmp_path / 'settings'}", f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
         "--ServerApp.port_retries=0", *(["--allow-root"] if os.geteuid() == 0 else [])],
        stdout=log, stderr=subprocess.STDOUT, cwd=root,
        env={**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config")},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("JupyterLab did not start:\n" + (tmp_path / "jupyterlab.log").read_text()[-3000:])
                time.sleep(0.5)
        yield url, token
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def artifacts_folder() -> Path:
    folder = Path(os.environ.get("WORKBENCH_ARTIFACTS") or ROOT / "tests" / "browser" / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_probe_notebook_runs_and_its_widgets_respond_in_jupyterlab(jupyterlab):
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing_or_fail("playwright is not installed (pip install playwright==1.65.2)")
    url, token = jupyterlab
    artifacts = artifacts_folder()
    saved = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{url}/lab/tree/probe.ipynb?token={token}")
            page.wait_for_function("() => window.jupyterapp && document.querySelector('.jp-Notebook .jp-Cell')", timeout=60_000)
            # Wait for the kernel, then run every cell as a user would (Run > Run All Cells).
            page.wait_for_function(
                "() => { const w = window.jupyterapp.shell.currentWidget;"
                " return w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel"
                " && w.sessionContext.session.kernel.status === 'idle'; }", timeout=60_000)
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            page.wait_for_function(
                "() => { const prompts = [...document.querySelectorAll('.jp-InputArea-prompt')].map(e => e.textContent);"
                " return prompts.length > 0 && !prompts.some(t => t.includes('*')) && !prompts.some(t => /\\[\\s*\\]/.test(t) && false)"
                " && document.querySelectorAll('.jp-OutputArea-output').length > 10; }", timeout=150_000)
            errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
            tracebacks = [e for e in errors if "Traceback" in e or "Error" in e.split("\n")[0]]
            assert not tracebacks, tracebacks[:2]

            def cell(marker: str):
                return page.locator(".jp-CodeCell").filter(has_text=marker).first

            # Every view rendered: plotly figures drawn as SVG, widgets as DOM controls.
            page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= 10", timeout=60_000)
            assert cell("LiveCurves(title=").locator(".js-plotly-plot .scatterlayer .trace").count() >= 2
            assert cell("GenerationPlayground(").locator(".wb-token").count() > 0
            assert cell("GenerationPlayground(").locator(".widget-slider").count() >= 5
            assert cell("LogitLensWidget(").locator(".js-plotly-plot .heatmaplayer").count() >= 1
            assert cell("TokenHeadBrowser(").locator(".wb-token-head .wb-token").count() > 0
            assert cell("EmbeddingWidget(").locator(".js-plotly-plot .scatterlayer .point").count() > 10
            assert cell("RunPicker(").locator("select[multiple]").count() == 1

            for name, marker in VIEWS.items():
                target = cell(marker)
                target.scroll_into_view_if_needed()
                path = artifacts / f"probe-{name}.png"
                target.screenshot(path=str(path))
                saved.append(path)

            # Move the attention layer slider with the keyboard: the readout and the figure title change.
            attention = cell("AttentionWidget(")
            title = attention.locator(".js-plotly-plot .gtitle").first
            assert title.text_content() == "attention, layer 0 head 0"
            handle = attention.locator(".widget-slider .noUi-handle, .widget-slider input[type=range]").first
            handle.focus()
            page.keyboard.press("ArrowRight")
            page.wait_for_function(
                "(el) => el.textContent === 'attention, layer 1 head 0'", arg=title.element_handle(), timeout=20_000)
            assert attention.locator(".widget-readout").first.inner_text().strip() == "1"
            path = artifacts / "probe-attention-after-slider.png"
            attention.screenshot(path=str(path))
            saved.append(path)

            # Clicking a confusion-matrix cell lists that cell's examples under it.
            confusion = cell("ConfusionExplorer(")
            confusion.scroll_into_view_if_needed()
            # The fullest cell, read from the figure's own data in the page (rows: true classes, top first).
            counts = confusion.locator(".js-plotly-plot").first.evaluate("el => el.data[0].customdata")
            n = len(counts)
            true, predicted = max(((i, j) for i in range(n) for j in range(n)), key=lambda c: counts[c[0]][c[1]])
            box = confusion.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
            page.mouse.click(box["x"] + box["width"] * (predicted + 0.5) / n, box["y"] + box["height"] * (true + 0.5) / n)
            caption = confusion.locator("text=/examples of/").first
            caption.wait_for(timeout=20_000)
            assert caption.inner_text().startswith(f"{counts[true][predicted]} examples of")
            assert confusion.locator(".wb-examples tr").count() == 1 + min(50, counts[true][predicted])
            path = artifacts / "probe-confusion-after-click.png"
            confusion.screenshot(path=str(path))
            saved.append(path)

            # The playground's token slider re-charts the alternatives of another token.
            playground = cell("GenerationPlayground(")
            chart_title = playground.locator(".js-plotly-plot .gtitle").first
            before = chart_title.text_content()
            token_slider = playground.locator(".widget-slider").filter(has_text="token #").locator(".noUi-handle, input[type=range]").first
            token_slider.focus()
            page.keyboard.press("ArrowRight")
            page.wait_for_function("([el, old]) => el.textContent !== old", arg=[chart_title.element_handle(), before], timeout=20_000)
        finally:
            page.screenshot(path=str(artifacts / "probe-page.png"), full_page=True)
            saved.append(artifacts / "probe-page.png")
            browser.close()
            print("screenshots:", *map(str, saved), sep="\n  ")
