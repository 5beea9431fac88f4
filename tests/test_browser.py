"""What a person sees: JupyterLab in a real Chromium runs the quickstart notebook.

The test kills a fly's pid from outside and watches the dashboard's fly table show the
replacement. Chromium comes from Debian (`.ci/run` installs it); Playwright can't download
its own browser here, so it is given /usr/bin/chromium.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from _jupyter import CHROMIUM, CHROMIUM_ARGS, LabServer
from helpers import wait_for

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"

pytestmark = pytest.mark.browser


@pytest.fixture
def chromium():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI") == "true":
            pytest.fail(f"Chromium is missing at {CHROMIUM}: .ci/run must install it")
        pytest.skip(f"Chromium is not installed ({CHROMIUM}); apt-get install chromium")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def lab(tmp_path):
    for item in (ROOT / "notebooks").iterdir():
        if item.is_file():
            shutil.copy(item, tmp_path / item.name)
    server = LabServer(tmp_path)
    try:
        server.wait_ready()
        yield server
    finally:
        server.close()


def fly_rows(page):
    """(pid, state) of each row of the first fly table on the page."""
    rows = page.query_selector_all(".circus-fly-table tbody tr")
    out = []
    for row in rows:
        cells = [c.inner_text().strip() for c in row.query_selector_all("td")]
        if len(cells) >= 3 and cells[1].isdigit():
            out.append((int(cells[1]), cells[2]))
    return out


def poll(predicate, timeout, what):
    return wait_for(predicate, timeout=timeout, interval=0.05, what=what)


@pytest.mark.allow_fd_growth  # Playwright keeps its driver's pipes for the process
def test_quickstart_dashboard_shows_a_respawn(chromium, lab):
    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(lab.url("lab/tree/quickstart.ipynb"))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    page.wait_for_function("document.body.innerText.includes('| Idle')", timeout=90_000)
    cells = json.loads((lab.root / "quickstart.ipynb").read_text())["cells"]
    board = next(i for i, c in enumerate(cells) if "default_trainer()" in "".join(c["source"]))
    page.click(".jp-Notebook .jp-Cell >> nth=0")
    # Run the cells up to the one that shows the dashboard (a person pressing Shift+Enter).
    for _ in range(board + 1):
        page.keyboard.press("Shift+Enter")
    page.wait_for_selector(".circus-dashboard", timeout=60_000)
    rows = poll(lambda: (lambda r: r if len(r) == 3 and
                         all(s == "running" for _, s in r) else None)(fly_rows(page)),
                20, "3 running flies in the table")
    victim = rows[0][0]
    killed = time.monotonic()
    os.kill(victim, signal.SIGKILL)

    def replaced():
        now = fly_rows(page)
        pids = [p for p, s in now if s == "running"]
        return len(pids) == 3 and victim not in pids and now

    after = poll(replaced, 2.0, f"the table to show a replacement for pid {victim}")
    took = time.monotonic() - killed
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator(".circus-dashboard").first.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"))
    print(f"replacement shown in the browser {took * 1000:.0f} ms after SIGKILL: {after}")
    # The rest of the notebook kills, scales, reads logs and stops every fly.
    for _ in range(len(cells) - board - 1):
        page.keyboard.press("Shift+Enter")
    try:
        page.wait_for_function(
            "document.body.innerText.includes('ticker: stopped')", timeout=60_000)
    finally:
        page.screenshot(path=str(ARTIFACTS / "quickstart-end.png"), full_page=True)
    errors = page.query_selector_all('[data-mime-type="application/vnd.jupyter.error"]')
    assert not errors, [e.inner_text()[:500] for e in errors]
