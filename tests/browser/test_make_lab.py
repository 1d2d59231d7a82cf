"""`make lab` starts JupyterLab (as root too), bound to 127.0.0.1 with a token, and prints the URL to open."""

from __future__ import annotations

import json
import os
import re
import selectors
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from browser_lab import ROOT, free_port
from process_groups import stop_group

pytestmark = pytest.mark.slow

URL = re.compile(r"JupyterLab: (http://127\.0\.0\.1:(\d+)/lab\?token=([0-9a-f]+))")


def first_match(process: subprocess.Popen, pattern: re.Pattern, timeout_s: float) -> tuple[re.Match, list[str]]:
    lines: list[str] = []
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not selector.select(timeout=1):
            continue
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if match := pattern.search(line):
            return match, lines
    raise AssertionError("make lab printed no URL:\n" + "".join(lines[-30:]))


def wait_for_status(url: str, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.load(response)
        except urllib.error.HTTPError:
            raise
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_make_lab_prints_its_url_and_serves_with_that_token(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        ["make", "--no-print-directory", "-s", "lab", f"LAB_PORT={port}"], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
        env={**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path)},
    )
    try:
        match, lines = first_match(process, URL, timeout_s=120)
        url, printed_port, token = match.groups()
        assert int(printed_port) == port and len(token) >= 32, url
        status = wait_for_status(f"http://127.0.0.1:{port}/api/status?token={token}")
        assert "started" in status, status
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/sessions", timeout=5)
        assert refused.value.code == 403, "JupyterLab answered without the token"
        assert process.poll() is None, "".join(lines)
    finally:
        stop_group(process)


def test_make_lab_uses_the_token_it_is_given():
    out = subprocess.run(["make", "-n", "--no-print-directory", "lab", "LAB_TOKEN=abc123", "LAB_IP=0.0.0.0"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert 'token="abc123"' in out and "--ServerApp.ip=0.0.0.0" in out, out
