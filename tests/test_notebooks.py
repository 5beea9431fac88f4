"""Every notebook runs top to bottom on a real kernel and leaves no fly behind."""

from __future__ import annotations

import os
import pathlib
import sys
import time

import nbformat
import psutil
import pytest
from nbclient import NotebookClient

NOTEBOOKS = pathlib.Path(__file__).resolve().parent.parent / "notebooks"

pytestmark = [pytest.mark.slow, pytest.mark.allow_fd_growth]


def flies_of_this_run() -> list[psutil.Process]:
    run = os.environ["CIRCUS_TEST_RUN"]
    found = []
    for proc in psutil.process_iter():
        try:
            env = proc.environ()
        except psutil.Error:
            continue
        if env.get("CIRCUS_TEST_RUN") == run and "CIRCUS_SHOW" in env and "CIRCUS_WID" in env:
            found.append(proc)
    return found


@pytest.mark.parametrize("name", ["quickstart.ipynb", "worker_pool.ipynb"])
def test_notebook_runs(name):
    book = nbformat.read(NOTEBOOKS / name, as_version=4)
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    client = NotebookClient(book, timeout=60, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    t0 = time.monotonic()
    client.execute(env=env)
    elapsed = time.monotonic() - t0
    assert elapsed < 20, f"{name} took {elapsed:.1f} s"
    outputs = [o for cell in book.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    if name == "quickstart.ipynb":
        views = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in
                 o.get("data", {})]
        assert views and "text/html" in views[0]["data"], "the dashboard was not displayed"
    deadline = time.monotonic() + 5
    while (left := flies_of_this_run()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"flies left behind: {[p.pid for p in left]}"
