"""Fixtures for the browser tests: one JupyterLab and one headless chromium per module, a fresh tab per test.

``tests/conftest.py`` skips tests marked ``browser``, with the reason, when
Debian's chromium or the ``playwright`` module is missing (the browser is
never downloaded: Playwright drives ``/usr/bin/chromium``), and, as they are
marked ``podman`` too, when Podman is missing.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .jupyterlab import JupyterServer, NotebookTab, copy_project, lab_pods, launch, start_server

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "build" / "screenshots"


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """``jupyter lab`` on a copy of ``notebooks/`` and ``manifests/``, with kernels importing this checkout's labkit."""
    scratch = tmp_path_factory.mktemp("jupyterlab")
    server = start_server(copy_project(ROOT, scratch / "project"), scratch / "server", pythonpath=ROOT)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BrowserContext, list[str]]]:
    """Headless chromium with a fresh profile, and the requests it made beyond 127.0.0.1."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context, elsewhere = launch(playwright, tmp_path_factory.mktemp("chromium-profile"))
        try:
            yield context, elsewhere
        finally:
            context.close()


@pytest.fixture
def open_notebook(
    jupyter: JupyterServer, browser: tuple[BrowserContext, list[str]]
) -> Iterator[Callable[[str], NotebookTab]]:
    """Open a notebook, as committed, in a new tab; afterwards close the tabs, stop the kernels, see the pods go.

    The copy is put back from the checkout first: an earlier test saved its
    own outputs into it.
    """
    context, elsewhere = browser
    before = lab_pods()
    pages: list[Page] = []

    def open_(stem: str) -> NotebookTab:
        name = f"{stem}.ipynb"
        shutil.copyfile(ROOT / "notebooks" / name, jupyter.root / name)
        page = context.new_page()
        pages.append(page)
        return NotebookTab(page, jupyter, name).open()

    yield open_
    for page in pages:
        page.close()
    jupyter.shutdown_kernels()
    deadline = time.monotonic() + 30
    while (left := lab_pods() - before) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, f"pods left behind after the kernels were shut down: {sorted(left)}"
    assert not elsewhere, f"the browser asked for more than 127.0.0.1: {elsewhere[:5]}"


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
