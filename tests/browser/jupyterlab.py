"""Driving JupyterLab 4 in a real browser: a private server, and a notebook tab to act on.

The server runs on a copy of the notebooks, with settings of its own (no
news pop-up, no windowing, so every cell is in the page), and the tab is
worked through the menus, the keyboard and the rendered outputs, as a
student would. What a cell produced is judged on the notebook model the
server saved, where an error is an output of type ``error``; in the page
a traceback renders as ``application/vnd.jupyter.stderr``, like any stderr.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

try:
    from playwright.sync_api import expect as expect  # re-exported for test_jupyterlab
except ImportError:  # the tests that drive a browser are skipped then (conftest.py)
    expect = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Locator, Page, Playwright, Request, ViewportSize

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}
LAB_PODS = ("multicontainer-pod", "multicontainer-pod-hires")

SETTINGS_OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {"checkForUpdates": False, "fetchNews": "false"},
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
}

PROMPT = ".jp-InputArea-prompt"
PROMPTS = f".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell {PROMPT}"
STATUS_BAR = "#jp-main-statusbar"
DIALOG = ".jp-Dialog"


# -- the server ---------------------------------------------------------------------


@dataclass
class JupyterServer:
    """A ``jupyter lab`` of this test session, on 127.0.0.1 with a random token."""

    base_url: str
    token: str
    root: Path
    process: subprocess.Popen[bytes]
    log: Path

    def api(self, method: str, path: str) -> Any:
        """Call the server's REST API; the decoded JSON answer, or None when there is none."""
        request = urllib.request.Request(
            self.base_url + path, method=method, headers={"Authorization": f"token {self.token}"}
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def notebook_url(self, name: str, workspace: str) -> str:
        """The page of notebook ``name`` in a workspace of its own, so no earlier tab is restored."""
        return f"{self.base_url}/lab/workspaces/{quote(workspace)}/tree/{quote(name)}?token={self.token}"

    def shutdown_kernels(self, timeout: float = 60) -> None:
        """Close every session and kernel; a kernel that exits deletes the pods it applied."""
        for session in self.api("GET", "/api/sessions"):
            self.api("DELETE", f"/api/sessions/{session['id']}")
        for kernel in self.api("GET", "/api/kernels"):
            self.api("DELETE", f"/api/kernels/{kernel['id']}")
        deadline = time.monotonic() + timeout
        while self.api("GET", "/api/kernels") and time.monotonic() < deadline:
            time.sleep(0.2)

    def stop(self) -> None:
        """Shut the kernels down, then the server: terminate, and kill if it lingers."""
        if self.process.poll() is None:
            try:
                self.shutdown_kernels()
            finally:
                self.process.terminate()
                try:
                    self.process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=10)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def copy_project(repo: Path, dest: Path) -> Path:
    """Copy ``notebooks/`` and ``manifests/`` side by side (the notebooks read ``../manifests``)."""
    for folder in ("notebooks", "manifests"):
        shutil.copytree(repo / folder, dest / folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return dest / "notebooks"


def start_server(root: Path, scratch: Path, pythonpath: Path, timeout: float = 60) -> JupyterServer:
    """Start ``jupyter lab`` of this venv on ``root``; its settings, state and log live under ``scratch``.

    Kernels import labkit from ``pythonpath`` and use Podman. The settings
    overrides come in through ``--LabApp.app_settings_dir``, so nothing is
    written into the virtualenv.
    """
    app_settings = scratch / "app-settings"
    app_settings.mkdir(parents=True)
    (app_settings / "overrides.json").write_text(json.dumps(SETTINGS_OVERRIDES, indent=2))
    for folder in ("user-settings", "workspaces", "config", "data", "runtime", "ipython"):
        (scratch / folder).mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(pythonpath),
        "LABKIT_ENGINE": "podman",
        "LABKIT_PROGRESS": "live",  # a student's JupyterLab: displays update in place
        "JUPYTERLAB_SETTINGS_DIR": str(scratch / "user-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(scratch / "workspaces"),
        "JUPYTER_CONFIG_DIR": str(scratch / "config"),
        "JUPYTER_DATA_DIR": str(scratch / "data"),
        "JUPYTER_RUNTIME_DIR": str(scratch / "runtime"),
        "IPYTHONDIR": str(scratch / "ipython"),
    }
    port, token = free_port(), secrets.token_hex(16)
    command = [
        str(Path(sys.executable).parent / "jupyter"),
        "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.app_settings_dir={app_settings}",
        # Time for a kernel's exit handler to delete its pods before it would be killed.
        "--KernelManager.shutdown_wait_time=30",
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log = scratch / "jupyter.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = JupyterServer(f"http://127.0.0.1:{port}", token, root, process, log)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            server.api("GET", "/api/status")
            return server
        except OSError as err:
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(
                    f"jupyter lab did not answer within {timeout:g} s:\n{log.read_text()[-3000:]}"
                ) from err
            time.sleep(0.25)


def lab_pods() -> set[str]:
    """The lab's pods that exist in Podman now (any state)."""
    out = subprocess.run(
        ["podman", "pod", "ps", "--format", "{{.Name}}"], capture_output=True, text=True, check=True
    ).stdout
    return {name for name in out.split() if name in LAB_PODS}


def containers() -> list[str]:
    """Every container's name, as ``podman ps -a`` lists them."""
    return subprocess.run(
        ["podman", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True, check=True
    ).stdout.split()


# -- the browser --------------------------------------------------------------------


def launch(playwright: Playwright, profile: Path) -> tuple[BrowserContext, list[str]]:
    """Debian's chromium, headless, with a fresh profile; and the list it fills with requests beyond 127.0.0.1.

    No host name resolves (``--host-resolver-rules``), so only the IP literal
    127.0.0.1 is reachable. Requests are not intercepted with ``route``: a
    routed request waits for this Python thread, which is often busy
    elsewhere (a ``time.sleep``, a ``podman`` call) and would stall the page.
    """
    context = playwright.chromium.launch_persistent_context(
        str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, viewport=VIEWPORT
    )
    elsewhere: list[str] = []

    def note(request: Request) -> None:
        url = urlsplit(request.url)
        if url.scheme in ("http", "https", "ws", "wss") and url.hostname != "127.0.0.1":
            elsewhere.append(request.url)

    context.on("request", note)
    return context, elsewhere


# -- notebooks on disk ---------------------------------------------------------------


def cell_indices(notebook: Path, needle: str) -> list[int]:
    """Indices of the code cells whose source contains ``needle``, counting all cells (as ``.jp-Cell`` in the page)."""
    cells = json.loads(notebook.read_text())["cells"]
    return [i for i, c in enumerate(cells) if c["cell_type"] == "code" and needle in "".join(c["source"])]


def code_cells(notebook: Path) -> list[int]:
    """Indices of all code cells."""
    return cell_indices(notebook, "")


def cell_index(notebook: Path, needle: str) -> int:
    """Index of the first code cell whose source contains ``needle``."""
    found = cell_indices(notebook, needle)
    if not found:
        raise LookupError(f"no code cell of {notebook.name} contains {needle!r}")
    return found[0]


def traceback_text(output: dict[str, Any]) -> str:
    """An error output's traceback without its ANSI colours."""
    return re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(output.get("traceback", [])))


@dataclass(frozen=True)
class CellError:
    """An ``error`` output of a saved notebook."""

    cell: int
    ename: str
    evalue: str
    traceback: str

    def __str__(self) -> str:
        return f"cell {self.cell}: {self.ename}: {self.evalue}"


def errors_of(notebook: dict[str, Any]) -> list[CellError]:
    """Every ``error`` output of a notebook's cells."""
    return [
        CellError(i, out["ename"], out["evalue"], traceback_text(out))
        for i, cell in enumerate(notebook["cells"])
        for out in cell.get("outputs", [])
        if out["output_type"] == "error"
    ]


# -- a notebook tab ------------------------------------------------------------------

RUNNING_JS = """sel => [...document.querySelectorAll(sel)].some(p => p.textContent.includes('*'))"""


class NotebookTab:
    """One notebook open in JupyterLab, with the actions a student takes on it."""

    def __init__(self, page: Page, server: JupyterServer, name: str) -> None:
        self.page, self.server, self.name = page, server, name
        self.path = server.root / name

    # opening, waiting

    def open(self, timeout: float = 90) -> NotebookTab:
        """Load the notebook in a workspace of its own, fold the file browser away, wait until the kernel is idle."""
        self.page.goto(self.server.notebook_url(self.name, f"t{secrets.token_hex(4)}"), timeout=timeout * 1000)
        expect(self.cells).to_have_count(self.cell_count, timeout=timeout * 1000)
        open_sidebar = self.page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
        if open_sidebar.count():
            open_sidebar.click()
        self.wait_idle(timeout)
        return self

    @property
    def panel(self) -> Locator:
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")

    @property
    def cells(self) -> Locator:
        return self.panel.locator(".jp-Notebook .jp-Cell")

    @property
    def cell_count(self) -> int:
        return len(json.loads(self.path.read_text())["cells"])

    def cell(self, index: int) -> Locator:
        return self.cells.nth(index)

    def find(self, needle: str) -> int:
        """Index of the first code cell whose source contains ``needle``."""
        return cell_index(self.path, needle)

    def wait_idle(self, timeout: float = 60) -> None:
        """The status bar says the kernel is Idle (the toolbar's indicator can be idle before it connects)."""
        expect(self.page.locator(STATUS_BAR)).to_contain_text("Idle", timeout=timeout * 1000)

    def prompts(self) -> list[str]:
        """The input prompt of every code cell, in order: ``[3]:``, ``[*]:`` or ``[ ]:``."""
        return [text.strip() for text in self.page.locator(PROMPTS).all_inner_texts()]

    # menus

    def menu(self, top: str, command: str) -> None:
        """Click a top menu by its label, then the item of ``command`` (Lumino's ``data-command``)."""
        self.page.locator("#jp-menu-panel .lm-MenuBar-itemLabel", has_text=re.compile(f"^{top}$")).click()
        self.page.locator(f".lm-Menu-item[data-command='{command}']").click()

    def run_all(self, timeout: float = 300) -> float:
        """Run → Run All Cells and wait until no prompt shows ``[*]`` and the kernel is idle; the seconds it took.

        Run All marks every code cell ``[*]`` at once, so the wait starts
        from a state that is seen for sure.
        """
        started = time.monotonic()
        self.start_run_all()
        self.wait_until_done(timeout)
        return time.monotonic() - started

    def start_run_all(self) -> None:
        """Run → Run All Cells, returning once the cells are queued (every code cell shows ``[*]``)."""
        self.menu("Run", "runmenu:run-all")
        self.page.wait_for_function(RUNNING_JS, arg=PROMPTS, timeout=15_000)

    def wait_until_done(self, timeout: float = 300) -> None:
        """Wait until no prompt shows ``[*]`` (the cells ran, or were left when one ended in an error) and idle."""
        self.page.wait_for_function(f"sel => !({RUNNING_JS})(sel)", arg=PROMPTS, timeout=timeout * 1000, polling=250)
        self.wait_idle(30)

    def interrupt_kernel(self) -> None:
        """Kernel → Interrupt Kernel, as a student stops a cell that runs (the toolbar's stop button does the same)."""
        self.menu("Kernel", "kernelmenu:interrupt")

    def restart_kernel(self, timeout: float = 60) -> None:
        """Kernel → Restart Kernel…, confirm with Restart, and wait until the new kernel is idle."""
        self.menu("Kernel", "kernelmenu:restart")
        dialog = self.page.locator(DIALOG)
        dialog.locator(".jp-Dialog-button.jp-mod-accept", has_text="Restart").click()
        expect(dialog).to_have_count(0, timeout=10_000)
        self.wait_idle(timeout)

    def save(self, timeout: float = 30) -> dict[str, Any]:
        """File → Save Notebook; the notebook as the server wrote it."""
        before = self.path.stat().st_mtime_ns
        self.menu("File", "docmanager:save")
        deadline = time.monotonic() + timeout
        while self.path.stat().st_mtime_ns == before:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} was not saved within {timeout:g} s")
            self.page.wait_for_timeout(100)
        expect(self.page.locator(".lm-TabBar-tab.jp-mod-current.jp-mod-dirty")).to_have_count(0, timeout=timeout * 1000)
        notebook: dict[str, Any] = json.loads(self.path.read_text())
        return notebook

    def errors(self) -> list[CellError]:
        """The error outputs of the notebook, read from the saved model (in the page they look like stderr)."""
        return errors_of(self.save())

    # one cell

    def run_cell(self, index: int, timeout: float = 120, while_running: Callable[[], None] | None = None) -> float:
        """Select cell ``index``, run it with Ctrl+Enter and wait until it has finished; the seconds it took.

        Ctrl+Enter is Shift+Enter without moving on (or adding a cell after
        the last one). The prompt is watched from before the key press, so
        a cell that finishes between two polls still counts as having run.
        ``while_running`` is called once the cell has started, to look at it
        while it runs.
        """
        prompt = self.cell(index).locator(PROMPT)
        prompt.scroll_into_view_if_needed()
        prompt.evaluate(
            """p => {
                p.dataset.sawRunning = '';
                const seen = () => { if (p.textContent.includes('*')) p.dataset.sawRunning = '1'; };
                new MutationObserver(seen).observe(p, {childList: true, characterData: true, subtree: true});
            }"""
        )
        prompt.click()
        self.page.keyboard.press("Escape")
        started = time.monotonic()
        self.page.keyboard.press("Control+Enter")
        if while_running is not None:
            while_running()
        prompt.evaluate(
            """(p, ms) => new Promise((resolve, reject) => {
                const until = Date.now() + ms;
                const poll = () => {
                    if (p.dataset.sawRunning && !p.textContent.includes('*')) return resolve();
                    if (Date.now() > until) return reject(new Error('still running: ' + p.textContent));
                    setTimeout(poll, 50);
                };
                poll();
            })""",
            timeout * 1000,
        )
        took = time.monotonic() - started
        self.wait_idle(30)
        return took

    def output_text(self, index: int) -> str:
        """What the cell's outputs show, as text."""
        return "\n".join(self.cell(index).locator(".jp-OutputArea-output").all_inner_texts())

    def widgets(self, index: int, kind: str) -> Locator:
        """The live widgets of one kind in a cell's outputs, e.g. ``widget-html`` or ``widget-slider``."""
        return self.cell(index).locator(f".jp-OutputArea-output .jupyter-widgets.{kind}")

    def progress_bars(self, index: int) -> Locator:
        """The live progress bars (tqdm's box of label, bar and counts) in a cell's outputs."""
        return self.widgets(index, "widget-hbox").filter(has=self.page.locator(".widget-hprogress"))

    def images(self, index: int) -> Locator:
        return self.cell(index).locator(".jp-OutputArea-output img")

    # widgets

    def set_slider(self, index: int, value: int) -> None:
        """Type ``value`` into the slider's readout (editable in ipywidgets 8), press Enter, see it taken."""
        readout = self.widgets(index, "widget-slider").locator(".widget-readout")
        readout.click()
        self.page.keyboard.press("Control+a")
        self.page.keyboard.type(str(value))
        self.page.keyboard.press("Enter")
        expect(readout).to_have_text(str(value))

    # screenshots

    def screenshot_cell(self, index: int, path: Path) -> Path:
        """One cell, its input and its outputs, in one image, however tall (see :meth:`screenshot`)."""
        with self._stretched(path):
            self.cell(index).screenshot(path=str(path))
        return path

    def screenshot(self, path: Path, max_height: int = 16_000) -> Path:
        """The whole notebook in one image: the viewport grows to the notebook's height for the shot.

        The notebook scrolls inside its panel, so a full-page screenshot at
        the usual size would show one screenful only.
        """
        with self._stretched(path, max_height):
            self.page.screenshot(path=str(path), full_page=True)
        return path

    @contextlib.contextmanager
    def _stretched(self, path: Path, max_height: int = 16_000) -> Iterator[None]:
        """The viewport as tall as the notebook, scrolled to its top, while a screenshot is taken into ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        scroller = self.panel.locator(".jp-WindowedPanel-outer").first
        content, shown = scroller.evaluate("el => [el.scrollHeight, el.clientHeight]")
        height = min(max_height, VIEWPORT["height"] + content - shown)
        self.page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
        try:
            scroller.evaluate("el => el.scrollTo(0, 0)")
            self.page.wait_for_timeout(500)
            yield
        finally:
            self.page.set_viewport_size(VIEWPORT)
