"""The notebooks as a student meets them: JupyterLab in a real browser (Debian's chromium).

Every notebook is run with Run → Run All Cells and judged on what the page
shows (live widgets, figures) and on the notebook the server saved (error
outputs, execution counts). Then a few things students do: run a cell again
after the clean-up, re-run a check out of order, restart the kernel halfway,
press stop (Kernel → Interrupt Kernel) during Run All.
Screenshots go to ``build/screenshots/``; each is one image of the whole
notebook, taken with the viewport stretched to the notebook's height.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .jupyterlab import NotebookTab, cell_indices, containers, errors_of, expect

pytestmark = [pytest.mark.browser, pytest.mark.podman]

ROOT = Path(__file__).resolve().parents[2]
# The students' notebooks; the instructor's needs a class on a cluster (tests/test_notebooks.py runs it).
NOTEBOOKS = sorted(n for n in (ROOT / "notebooks").glob("*.ipynb") if not n.name.startswith("07-"))

OpenNotebook = Callable[[str], NotebookTab]
IN_POD = 'via="in-pod"'


@dataclass(frozen=True)
class Shows:
    """What a notebook's page must show after Run All, each located by a piece of its cells' source."""

    ready: str | None = "lab.wait_ready("
    measured: str | None = "lab.measure("
    slider: str | None = None
    figures: tuple[str, ...] = ()
    texts: dict[str, str] = field(default_factory=dict)


SHOWS = {
    "01-sidecar-basics": Shows(
        measured=None,
        texts={
            'lab.exec("top-secret-tool --help")': "127 top-secret-tool: command not found",
            "lab.delete()": "pod exists: False | port-forward closed: True",
        },
    ),
    "02-write-to-serve-latency": Shows(
        slider='slider("new lines"',
        figures=("report.show()",),
        texts={
            "report.show()": "all checks passed: 2 new lines observed",
            "for check in report.checks": "passed  all lines served",
            "lab.delete()": "pod exists: False",
        },
    ),
    "03-measuring-precisely": Shows(
        figures=("plt.subplots(",),
        texts={
            "print(clock.describe())": "offset",
            "assert inpod.passed": "no line served before it was written: True",
        },
    ),
    "04-shared-volume-experiments": Shows(
        ready="crash.wait_ready(",
        measured=None,
        texts={
            '"| lines from before the crash kept:"': "last exit code: 3 | lines from before the crash kept: True",
            '"| producer still appending:"': "consumer's write refused: True | producer still appending: True",
            '"| write past 16 MiB refused:"': "tmpfs in both: True | shared: True | write past 16 MiB refused: True",
            '"consumer sees only index.html:"': "consumer sees only index.html: True",
            '"| freed with the file:"': "not to the reader: True | freed with the file: True",
            '"| the renamed file is not:"': "appends seen through the file mount: True | the renamed file is not: True",
        },
    ),
    "05-what-a-reader-sees": Shows(
        ready="quiet.wait_ready(",
        measured=None,
        figures=("plt.subplots(",),
        texts={
            '"| a 304 hid the new line:"': "statuses: [304, 200, 206, 416] | a 304 hid the new line: True",
            '"| one line per record:"': "every byte both writers wrote is in the file: True",
            '"| copy-then-truncate lost lines:"': "observer noticed each rotation: True",
        },
    ),
    "06-sweeping-the-intervals": Shows(
        ready=None,
        measured=None,
        figures=("plt.subplots(",),
        texts={'"| each combination once:"': "every run passed: True | one row per line: True"},
    ),
}
ONLY_RUNS = Shows(ready=None, measured=None)


def assert_ran_cleanly(tab: NotebookTab) -> None:
    """No error output and an execution count on every code cell, in the saved notebook and in the page."""
    saved = tab.save()
    errors = [str(e) for e in errors_of(saved)]
    assert not errors, errors
    unrun = [i for i, c in enumerate(saved["cells"]) if c["cell_type"] == "code" and c["execution_count"] is None]
    assert not unrun, f"code cells without an execution count: {unrun}"
    prompts = tab.prompts()
    assert all(p[1:-2].isdigit() for p in prompts), prompts


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_run_all(notebook: Path, open_notebook: OpenNotebook, screenshots: Path) -> None:
    tab = open_notebook(notebook.stem)
    shows = SHOWS.get(notebook.stem, ONLY_RUNS)
    tab.run_all()
    tab.screenshot(screenshots / f"{notebook.stem}.png")

    assert_ran_cleanly(tab)
    if shows.ready:
        cells = cell_indices(tab.path, shows.ready)
        assert cells
        for i in cells:
            # The live table of the containers has settled into a static one of how they ended.
            assert not tab.widgets(i, "widget-html").count(), f"cell {i}: the ready table is still a live widget"
            table = tab.cell(i).locator(".jp-OutputArea-output table").filter(has_text="producer")
            assert table.inner_text().count("running") == 2, table.inner_text()
    if shows.measured:
        for i in cell_indices(tab.path, shows.measured):
            assert not tab.progress_bars(i).count(), f"cell {i}: the progress bar is still a live widget"
            asked = re.search(r"lines=(\d+)", tab.cell(i).locator(".jp-InputArea").inner_text())
            lines = asked.group(1) if asked else "2"  # 02 collects the slider's value, 2 by default
            assert f"(lines {lines}, failed polls" in tab.output_text(i), tab.output_text(i)
    if shows.slider:
        slider = tab.widgets(tab.find(shows.slider), "widget-slider")
        assert slider.is_visible()
        assert slider.locator(".widget-readout").inner_text() == "2"
    for needle in shows.figures:
        for i in cell_indices(tab.path, needle):
            image = tab.images(i)
            assert image.is_visible(), f"cell {i}: no figure"
            assert image.evaluate("img => img.complete && img.naturalWidth > 300"), f"cell {i}: the figure is empty"
    for needle, text in shows.texts.items():
        assert text in tab.output_text(tab.find(needle)), needle


# -- what students do ---------------------------------------------------------------------


def collect_again_after_cleanup(tab: NotebookTab) -> tuple[int, float]:
    """02 after Run All (its last code cell deleted the pod): slider to 1, run the collect cell again."""
    tab.run_all()
    tab.set_slider(tab.find('slider("new lines"'), 1)
    collect = tab.find("lab.measure(")
    return collect, tab.run_cell(collect, timeout=60)


def test_02_collect_after_cleanup_says_apply_again_and_after_reapply_collects(
    open_notebook: OpenNotebook, screenshots: Path
) -> None:
    tab = open_notebook("02-write-to-serve-latency")
    collect, took = collect_again_after_cleanup(tab)
    tab.screenshot(screenshots / "02-collect-after-cleanup.png")

    assert took < 5, f"the collect cell took {took:.1f} s to fail"
    errors = tab.errors()
    assert [e.cell for e in errors] == [collect], [str(e) for e in errors]
    shown = tab.output_text(collect)
    lines = [line for line in shown.splitlines() if line.strip()]
    assert len(lines) <= 4, shown
    assert "was deleted (lab.delete()); run lab.apply() and lab.wait_ready() again" in shown, shown
    assert "lab.measure(lines=new_lines.value" in shown and "%tb" in shown, shown

    def progress_is_live() -> None:
        expect(tab.progress_bars(collect)).to_be_visible(timeout=30_000)

    tab.run_cell(tab.find("lab.apply()"))
    tab.run_cell(collect, timeout=90, while_running=progress_is_live)
    check = tab.find("for check in report.checks")
    tab.run_cell(check)
    tab.screenshot(screenshots / "02-collect-again.png")

    after_reapply = [str(e) for e in tab.errors()]
    assert not after_reapply, after_reapply
    shown = tab.output_text(collect)
    assert "all checks passed: 1 new line observed" in shown, shown
    assert "(lines 1, failed polls" in shown and "1 new lines served" in shown, shown
    assert tab.images(collect).is_visible()
    checks = tab.output_text(check)
    assert "passed  1 new lines served" in checks and "failed" not in checks and "undecided" not in checks, checks


def test_01_check_rerun_after_cleanup_fails_clearly(open_notebook: OpenNotebook, screenshots: Path) -> None:
    tab = open_notebook("01-sidecar-basics")
    tab.run_all()
    check = tab.find('producer_files = lab.exec(["ls", "-A", "/var/log"]')
    took = tab.run_cell(check, timeout=60)
    tab.screenshot(screenshots / "01-check-after-cleanup.png")

    assert took < 5, f"the check took {took:.1f} s to fail"
    errors = tab.errors()
    assert [e.cell for e in errors] == [check], [str(e) for e in errors]
    error = errors[0]
    assert error.ename == "NotReady", str(error)
    assert error.evalue == (
        "lab.exec(): pod 'multicontainer-pod' was deleted (lab.delete()); run lab.apply() and lab.wait_ready() again"
    )


def test_03_in_pod_progress_reaches_the_end(open_notebook: OpenNotebook) -> None:
    tab = open_notebook("03-measuring-precisely")
    for needle in ("import labkit", "fast = {", IN_POD):
        tab.run_cell(tab.find(needle), timeout=90)
    assert not [str(e) for e in tab.errors()]
    assert "(lines 50, failed polls" in tab.output_text(tab.find(IN_POD))


def test_02_kernel_restart_removes_the_pod(open_notebook: OpenNotebook, screenshots: Path) -> None:
    tab = open_notebook("02-write-to-serve-latency")
    tab.run_cell(tab.find("import labkit"))
    tab.run_cell(tab.find("lab.apply()"))
    pod_containers = {"multicontainer-pod-producer", "multicontainer-pod-consumer"}
    assert pod_containers <= set(containers())

    tab.restart_kernel()
    restarted = time.monotonic()
    while (left := pod_containers & set(containers())) and time.monotonic() - restarted < 10:
        time.sleep(0.2)
    tab.screenshot(screenshots / "02-restart-kernel.png")

    assert not left, f"still there 10 s after the restart: {sorted(left)}"
    exists = subprocess.run(["podman", "pod", "exists", "multicontainer-pod"], capture_output=True)
    assert exists.returncode == 1, "the pod multicontainer-pod is still there"


# -- the stop button -----------------------------------------------------------------------

STOPPED_NOTE = "\u23f9 Stopped by you: "


def assert_stopped_at(tab: NotebookTab, cell: int) -> None:
    """The cell ended in one ``Stopped`` line, and no code cell after it ran: the stop ended Run All there."""
    saved = tab.save()
    errors = errors_of(saved)
    assert [(e.cell, e.ename) for e in errors] == [(cell, "Stopped")], [str(e) for e in errors]
    assert len(errors[0].traceback.splitlines()) == 1 and errors[0].traceback.startswith(STOPPED_NOTE), errors[0]
    later = [
        i
        for i, c in enumerate(saved["cells"])
        if i > cell and c["cell_type"] == "code" and (c["execution_count"] is not None or c["outputs"])
    ]
    assert not later, f"code cells that ran after the stopped one: {later}"
    assert "AssertionError" not in tab.panel.inner_text()


def test_02_stop_during_the_measurement_ends_run_all_with_the_partial_report(
    open_notebook: OpenNotebook, screenshots: Path
) -> None:
    tab = open_notebook("02-write-to-serve-latency")
    collect = tab.find("lab.measure(")
    tab.start_run_all()
    expect(tab.progress_bars(collect)).to_be_visible(timeout=180_000)
    tab.page.wait_for_timeout(4_000)
    tab.interrupt_kernel()
    tab.wait_until_done(60)
    path = tab.screenshot_cell(collect, screenshots / "02-stopped.png")
    print(f"screenshot of the stopped cell: {path}")

    assert_stopped_at(tab, collect)
    shown = tab.output_text(collect)
    assert re.search(r"stopped by you, a partial report: \d+ new lines? observed in", shown), shown
    assert "The checks" in shown and "stopped by the user" in shown, shown
    note = re.search(r"\u23f9 Stopped by you: the measurement of pod multicontainer-pod after [\d.]+ s .*", shown)
    assert note and note.group(0).endswith("the partial report is shown above and in lab.last_report."), shown
    assert not tab.progress_bars(collect).count(), "the progress bar is still a live widget"

    # The pod stayed: running the cell again measures at once, and a restart of the kernel removes the pod.
    tab.run_cell(collect, timeout=90)
    shown = tab.output_text(collect)
    assert "all checks passed: 2 new lines observed" in shown, shown
    assert STOPPED_NOTE not in shown
    assert not [str(e) for e in tab.errors()]
    tab.restart_kernel()
    restarted = time.monotonic()
    pod_containers = {"multicontainer-pod-producer", "multicontainer-pod-consumer"}
    while (left := pod_containers & set(containers())) and time.monotonic() - restarted < 10:
        time.sleep(0.2)
    assert not left, f"still there 10 s after the restart: {sorted(left)}"
    exists = subprocess.run(["podman", "pod", "exists", "multicontainer-pod"], capture_output=True)
    assert exists.returncode == 1, "the pod multicontainer-pod is still there"


def pod_id(name: str) -> str | None:
    """The ID of Podman's pod ``name`` now, None when there is none."""
    found = subprocess.run(["podman", "pod", "inspect", "--format", "{{.Id}}", name], capture_output=True, text=True)
    return (found.stdout.strip() or None) if found.returncode == 0 else None


def test_06_stop_during_the_sweep_shows_the_runs_done_and_leaves_no_pod(
    open_notebook: OpenNotebook, screenshots: Path
) -> None:
    tab = open_notebook("06-sweeping-the-intervals")
    sweep = tab.find("labkit.sweep(")
    pod = "multicontainer-pod-hires-sweep"  # labkit.sweep runs each run's pod under the manifest's name + "-sweep"
    tab.start_run_all()
    seen: list[str] = []
    deadline = time.monotonic() + 240
    while len(seen) < 2:  # a second pod: the first run is done and the second under way
        assert time.monotonic() < deadline, f"the sweep's second run did not start within 240 s (pods seen: {seen})"
        now = pod_id(pod)
        if now is not None and now not in seen:
            seen.append(now)
        time.sleep(0.2)
    tab.page.wait_for_timeout(1_000)
    tab.interrupt_kernel()
    tab.wait_until_done(120)
    path = tab.screenshot_cell(sweep, screenshots / "06-stopped.png")
    print(f"screenshot of the stopped cell: {path}")

    assert_stopped_at(tab, sweep)
    shown = tab.output_text(sweep)
    done = re.search(r"The runs done before you stopped the sweep: (\d) of 6", shown)
    assert done and int(done.group(1)) >= 1, shown
    assert "p50_high_ms" in shown and "poll_interval" in shown, shown
    assert re.search(r"\u23f9 Stopped by you: the sweep (during|after) run \d of 6", shown), shown
    exists = subprocess.run(["podman", "pod", "exists", pod], capture_output=True)
    assert exists.returncode == 1, f"the pod {pod} of the stopped run is still there"
