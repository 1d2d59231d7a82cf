"""TensorBoard on a runs folder, opened in headless Chromium: for the browser test, and for a screenshot by hand.

    .venv/bin/python tests/browser/tensorboard_view.py experiments/runs docs/screenshots/tensorboard-demo.png

starts `tensorboard --logdir experiments/runs` on a free port of 127.0.0.1, waits until the page lists every
run's curves, saves a full-page screenshot, and stops the server.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from browser_lab import chromium_path, free_port, stop


@contextmanager
def tensorboard_server(logdir: Path, log_path: Path):
    """`tensorboard --logdir logdir` on a free port of 127.0.0.1; yields its URL, stops it afterwards."""
    port = free_port()
    log = open(log_path, "w")
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "tensorboard"), "--logdir", str(logdir), "--host", "127.0.0.1",
         "--port", str(port), "--reload_interval", "1"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/data/runs", timeout=2) as answer:
                    if answer.read().strip() not in (b"", b"[]"):
                        break  # up, and the event files loaded
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("tensorboard did not serve the runs:\n" + log_path.read_text()[-3000:])
            time.sleep(0.5)
        yield url
    finally:
        stop(process)
        log.close()


def show_scalars(browser, url: str, screenshot: Path, expected: list[str]) -> str:
    """Open TensorBoard's scalars in a page of `browser`, wait for every `expected` text, screenshot; its text."""
    page = browser.new_page(viewport={"width": 1600, "height": 2400})
    try:
        page.goto(f"{url}/#timeseries", wait_until="networkidle")
        for text in expected:
            page.get_by_text(text, exact=False).first.wait_for(timeout=60_000)
        for group in page.locator("metrics-card-group-toolbar").all():  # TensorBoard opens only the first groups
            if group.inner_text().split("\n")[0].strip() in expected and "expand_more" in group.inner_html():
                group.click()
        page.locator("line-chart canvas").first.wait_for(timeout=60_000)  # the curves themselves, drawn
        time.sleep(2)  # the line charts animate in
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True)
        return page.inner_text("body")
    finally:
        page.close()


def main(argv: list[str]) -> None:
    logdir, screenshot = Path(argv[0]), Path(argv[1])
    runs = sorted(p.parent.relative_to(logdir).as_posix() for p in logdir.glob("**/tensorboard/events.out.*"))
    if not runs:
        sys.exit(f"no TensorBoard event files under {logdir}")
    from playwright.sync_api import sync_playwright

    log = Path(tempfile.mkdtemp(prefix="tensorboard-view-")) / "tensorboard.log"
    with tensorboard_server(logdir, log) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            show_scalars(browser, url, screenshot, ["val_loss", "train_loss"])
        finally:
            browser.close()
    print(f"{len(runs)} run(s): {', '.join(sorted(set(runs)))}\nscreenshot: {screenshot}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main(sys.argv[1:])
