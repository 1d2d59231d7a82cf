"""A real JupyterLab and a headless Chromium page on it, for the browser tests.

JupyterLab serves a git worktree of HEAD (the committed notebooks, opened and saved as a researcher would,
without touching the checkout's own files) from .venv on 127.0.0.1 with a token. Playwright drives Debian's
`chromium` (browser downloads do not work here, so the system executable is launched). Under CI (CI=true) a
missing chromium or playwright fails the test; elsewhere it skips, saying which.
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
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
ANYWIDGET_FAILURE = "[anywidget] Failed to initialize model"

KERNEL = "() => { const w = window.jupyterapp.shell.currentWidget;" \
         " return w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel; }"

# Records, in the page, every kernel status message (with the type of the request it answers) and, four times a
# second, the kernel status JupyterLab shows and the code of the cell executing at that moment.
STATUS_RECORDER = """() => {
  const kernel = (%s)();
  const record = window.__wbStatus = {samples: [], messages: [], current: null};
  kernel.iopubMessage.connect((_, msg) => {
    const type = msg.header.msg_type;
    if (type === 'execute_input') record.current = {code: msg.content.code, id: msg.parent_header.msg_id};
    if (type === 'status') {
      const state = msg.content.execution_state;
      record.messages.push([state, msg.parent_header.msg_type || '']);
      if (state === 'idle' && record.current && msg.parent_header.msg_id === record.current.id) record.current = null;
    }
  });
  window.__wbStatusTimer = setInterval(() => {
    const bar = document.querySelector('.jp-StatusBar-Widget, #jp-main-statusbar');
    record.samples.push({code: record.current ? record.current.code : null, status: kernel.status,
                         bar: bar ? bar.innerText : ''});
  }, 250);
}""" % KERNEL


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


def artifacts_folder() -> Path:
    folder = Path(os.environ.get("WORKBENCH_ARTIFACTS") or ROOT / "tests" / "browser" / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@contextmanager
def committed_worktree(tmp: Path):
    """A detached worktree of HEAD: the committed notebooks, sharing the checkout's git config (its filters)."""
    folder = tmp / "worktree"
    git("worktree", "add", "--detach", str(folder), "HEAD", cwd=ROOT)
    try:
        yield folder
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(folder)], cwd=ROOT, capture_output=True)


def write_lab_settings(folder: Path) -> None:
    notebook = folder / "@jupyterlab" / "notebook-extension"
    notebook.mkdir(parents=True)
    # Render every cell (no virtual scrolling), so each view is in the DOM to check and screenshot.
    (notebook / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    apputils = folder / "@jupyterlab" / "apputils-extension"
    apputils.mkdir(parents=True)
    quiet = {"fetchNews": "false", "checkForUpdates": False}
    (apputils / "notification.jupyterlab-settings").write_text(json.dumps(quiet))


@contextmanager
def jupyterlab_server(root: Path, tmp: Path):
    """JupyterLab on a free port of 127.0.0.1 serving `root`; yields (url, token)."""
    jupyter = Path(sys.executable).parent / "jupyter"
    if not jupyter.exists():
        missing_or_fail(f"no jupyter next to {sys.executable}")
    write_lab_settings(tmp / "settings")
    port, token = free_port(), secrets.token_hex(16)
    log_path = tmp / "jupyterlab.log"
    log = open(log_path, "w")
    process = subprocess.Popen(
        [str(jupyter), "lab", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         f"--IdentityProvider.token={token}", "--ServerApp.open_browser=False", f"--ServerApp.root_dir={root}",
         "--LabApp.expose_app_in_browser=True",
         f"--LabApp.user_settings_dir={tmp / 'settings'}", f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
         "--ServerApp.port_retries=0", *(["--allow-root"] if os.geteuid() == 0 else [])],
        stdout=log, stderr=subprocess.STDOUT, cwd=root,
        env={**os.environ, "JUPYTER_CONFIG_DIR": str(tmp / "jupyter-config")},
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
                    raise RuntimeError("JupyterLab did not start:\n" + log_path.read_text()[-3000:]) from None
                time.sleep(0.5)
        yield url, token
    finally:
        stop(process)
        log.close()


def stop(process: subprocess.Popen, timeout: float = 15) -> None:
    """Terminate a server this module started; kill it if it has not ended after `timeout` s."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def shut_down_kernels(url: str, token: str) -> None:
    """End every session, so the next notebook does not share the 2 cores with a finished one's kernel."""
    with urllib.request.urlopen(f"{url}/api/sessions?token={token}", timeout=10) as response:
        sessions = json.load(response)
    for session in sessions:
        request = urllib.request.Request(f"{url}/api/sessions/{session['id']}?token={token}", method="DELETE")
        urllib.request.urlopen(request, timeout=30).close()


class LabPage:
    """One notebook open in a JupyterLab tab, with the actions a researcher takes and what the page logged."""

    def __init__(self, page, url: str, token: str, path: str) -> None:
        self.page, self.url, self.token, self.path = page, url, token, path
        self.console: list[str] = []
        self.panel = ".jp-NotebookPanel"
        page.on("console", lambda message: self.console.append(message.text))

    def open(self, *, reset: bool = True) -> None:
        """The notebook alone in a workspace of its own (no tab of an earlier test restored beside it)."""
        workspace = "wb-" + Path(self.path).stem
        self.page.goto(f"{self.url}/lab/workspaces/{workspace}/tree/{self.path}?token={self.token}"
                       + ("&reset" if reset else ""))
        self.page.wait_for_function("() => window.jupyterapp && document.querySelector('.jp-Notebook .jp-Cell')"
                                    " && window.jupyterapp.shell.currentWidget"
                                    f" && window.jupyterapp.shell.currentWidget.context.path === {self.path!r}",
                                    timeout=90_000)
        self.page.wait_for_function(f"() => {{ const k = ({KERNEL})(); return k && k.status === 'idle'; }}",
                                    timeout=90_000)
        self.panel = "#" + self.page.evaluate("() => window.jupyterapp.shell.currentWidget.id")

    def kernel_id(self) -> str:
        return self.page.evaluate(f"() => ({KERNEL})().id")

    def record_status(self) -> None:
        self.page.evaluate(STATUS_RECORDER)

    def status_record(self) -> dict:
        return self.page.evaluate("() => { clearInterval(window.__wbStatusTimer); return window.__wbStatus; }")

    def run_all(self, timeout_s: float = 600) -> None:
        """Run > Run All Cells, then wait until every code cell has run (or one failed)."""
        self.page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        self.page.wait_for_function(
            f"() => {{ const prompts = [...document.querySelectorAll('{self.panel} .jp-CodeCell .jp-InputArea-prompt')]"
            ".map(e => e.textContent);"
            f" const failed = document.querySelector(\"{self.panel} .jp-OutputArea-output[data-mime-type="
            "'application/vnd.jupyter.error']\");"
            " return prompts.length > 0 && !prompts.some(t => t.includes('*'))"
            " && (failed || prompts.every(t => /\\[\\d+\\]/.test(t))); }",
            timeout=timeout_s * 1000, polling=500)

    def tracebacks(self) -> list[str]:
        output = f"{self.panel} .jp-OutputArea-output[data-mime-type='application/vnd.jupyter"
        errors = self.page.locator(f"{output}.stderr'], {output}.error']")
        return [e for e in errors.all_inner_texts() if "Traceback" in e or "Error" in e.split("\n")[0]]

    def cell(self, marker: str):
        return self.page.locator(f"{self.panel} .jp-CodeCell").filter(has_text=marker).first

    def save(self) -> None:
        self.page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
        self.page.wait_for_function("() => { const w = window.jupyterapp.shell.currentWidget;"
                                    " return w && w.context && !w.context.model.dirty; }", timeout=30_000)

    def reload(self) -> None:
        """Load the tab's page again with the kernel alive; JupyterLab reconnects to the same kernel.
        (By its URL rather than page.reload(): JupyterLab rewrites the address bar to the file browser's folder.)"""
        self.open(reset=False)

    def anywidget_failures(self) -> int:
        return sum(ANYWIDGET_FAILURE in text for text in self.console)

    def screenshot(self, target, name: str, saved: list[Path]) -> None:
        path = artifacts_folder() / f"{name}.png"
        target.scroll_into_view_if_needed()
        target.screenshot(path=str(path))
        saved.append(path)


def busy_while(record: dict, marker: str) -> tuple[int, list[str]]:
    """How many samples were taken while the cell containing `marker` executed, and the statuses JupyterLab
    showed at those samples that were not busy."""
    during = [s for s in record["samples"] if s["code"] and marker in s["code"]]
    return len(during), [s["status"] for s in during if s["status"] != "busy"]
