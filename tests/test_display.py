"""What the live displays leave in a saved notebook, in a real kernel on the fake engine."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from labkit.display import MeasureProgress

ROOT = Path(__file__).resolve().parent.parent

# The producer writes a line every 0.5 s, much longer than a kernel may take between starting the
# pod and measure's first poll, so both runs find the same lines already written.
CELLS = [
    "import labkit\nfrom labkit.engines.fake import FakeEngine, Script\n"
    f"lab = labkit.Lab({str(ROOT / 'manifests' / 'multicontainer-pod.yaml')!r}, "
    "engine=FakeEngine(Script(interval=0.5)), interval=0.5)",
    "lab.apply()\nlab.wait_ready(timeout=5)",
    "report = lab.measure(lines=3, poll_interval=0.02)\nreport.show()",
    "lab.delete()\nlab.measure(lines=1)",
]


def _run(progress: str) -> list[list[dict[str, Any]]]:
    """The cells' outputs after running them in a real kernel with ``LABKIT_PROGRESS=progress``."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LABKIT_PROGRESS", progress)  # the kernel inherits it
        nbclient.NotebookClient(nb, timeout=120, allow_errors=True, kernel_name="python3").execute()
    return [json.loads(json.dumps(cell["outputs"])) for cell in nb.cells]


@pytest.fixture(scope="module")
def ran() -> list[list[dict[str, Any]]]:
    return _run("live")


def test_settled_displays_end_as_the_live_ones_do(ran):
    """Under nbval (LABKIT_PROGRESS=settled) the outputs are those the live displays settle into."""

    def text(output: dict[str, Any]) -> str:
        shown = "".join(output.get("data", {}).get("text/plain", "")) or "".join(output.get("text", ""))
        return " ".join(re.sub(r"[\d:.-]+", "N", shown).split())

    def shape(outputs: list[list[dict[str, Any]]]) -> list[list[tuple[str, str]]]:
        return [[(o["output_type"], text(o)) for o in cell] for cell in outputs]

    assert shape(_run("settled")) == shape(ran)


def _texts(outputs: list[dict[str, Any]]) -> list[str]:
    return ["".join(o.get("data", {}).get("text/plain", "")) or "".join(o.get("text", "")) for o in outputs]


def test_live_displays_settle_into_static_output(ran):
    for outputs in ran:
        for out in outputs:
            assert "application/vnd.jupyter.widget-view+json" not in out.get("data", {}), out
    ready = ran[1]
    settled = [o for o in ready if o["output_type"] == "display_data"]
    assert _texts(settled) == ["pod multicontainer-pod: producer running, consumer running"]
    assert "&#9989; running" in settled[0]["data"]["text/html"]
    progress = _texts(ran[2])[0]
    assert (
        progress.startswith("pod multicontainer-pod: observed for ")
        and "lines 3, failed polls 0, restarts 0" in progress
    )


def test_show_gives_every_part_a_readable_text(ran):
    texts = _texts(ran[2])[1:]
    assert texts[0].startswith("all checks passed: 3 new lines observed in ")
    assert texts[1].startswith("chart: 3 observed lines, each with its bounds")
    assert "image/png" in ran[2][2]["data"]
    assert texts[2].startswith("The latency, in summary\n")
    assert texts[3].splitlines()[0] == "The checks" and len(texts[3].splitlines()) == 9
    assert all(line.startswith("PASSED") for line in texts[3].splitlines()[1:])
    assert texts[4].startswith("Every line the producer wrote\n")
    for text in texts:
        assert "object at 0x" not in text and "<Figure" not in text


def test_an_error_is_its_message_and_the_cells_line(ran):
    (error,) = [o for o in ran[3] if o["output_type"] == "error"]
    assert error["ename"] == "NotReady"
    assert error["traceback"][1:] == [
        "  Cell In[4], line 2: lab.measure(lines=1)",
        "  (the kit's own traceback is one step away: run %tb in the next cell)",
    ]
    assert "was deleted (lab.delete()); run lab.apply() and lab.wait_ready() again" in error["traceback"][0]


def test_terminal_progress_is_one_line_redrawn():
    out = io.StringIO()
    bar = MeasureProgress("pod", limit=10, duration=None, lines=2, file=out)
    bar.update(1, 0, 0)
    bar.close()
    assert "pod pod: new lines" in out.getvalue() and "1/2" in out.getvalue()


def test_the_bar_ends_at_what_was_found():
    out = io.StringIO()
    bar = MeasureProgress("pod", limit=10, duration=None, lines=50, file=out)
    bar.update(None, None, 0)  # the in-pod probe: no count while it runs
    bar.update(50, 0, 0)  # the report's count, at the end
    bar.close()
    assert "50/50" in out.getvalue()


# In a kernel, Ctrl-C lands where the test chooses: the engine of tests/test_stopped.py raises it
# from the exec that reads the producer's copy, once the measurement (or the sweep's second run) observed.
STOP_CELLS = [
    "import labkit\nfrom tests.test_stopped import HIRES, StoppingEngine\nfrom labkit.engines.fake import Script\n"
    "engine = StoppingEngine(Script(interval=0.1))\n"
    f"lab = labkit.Lab({str(ROOT / 'manifests' / 'multicontainer-pod.yaml')!r}, engine=engine, interval=0.1)\n"
    "lab.apply()\nlab.wait_ready(timeout=5)",
    "engine.stop_on = {'cat'}\nreport = lab.measure(lines=2, poll_interval=0.02)\nprint('not reached')",
    "lab.last_report.interrupted, lab.measure(lines=2, poll_interval=0.02).passed",
    "lab.delete()\nsweep_engine = StoppingEngine(Script(interval=0.05))\n"
    "def stop_the_next_run(params, report):\n    sweep_engine.stop_on = {'cat'}\n"
    "labkit.sweep(HIRES, {'poll_interval': [0.02, 0.03, 0.04]}, lines=3, engine=sweep_engine, progress=False, "
    "on_run=stop_the_next_run)",
]


@pytest.fixture(scope="module")
def stopped() -> list[list[dict[str, Any]]]:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in STOP_CELLS]
    client = nbclient.NotebookClient(
        nb, timeout=120, allow_errors=True, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute()
    return [json.loads(json.dumps(cell["outputs"])) for cell in nb.cells]


def test_a_stopped_measurement_shows_its_partial_report_then_one_line(stopped):
    outputs = stopped[1]
    texts = _texts(outputs)
    assert texts[1].startswith("stopped by you, a partial report: 2 new lines observed in ")
    assert any(t.startswith("The latency, in summary\n") for t in texts)
    assert not any("not reached" in t for t in texts)
    (error,) = [o for o in outputs if o["output_type"] == "error"]
    assert error["ename"] == "Stopped" and outputs[-1] is error
    (line,) = error["traceback"]
    assert line.startswith("\u23f9 ") and "the measurement of pod multicontainer-pod after " in line
    assert line.endswith("(2 new lines seen); the partial report is shown above and in lab.last_report.")


def test_after_a_stop_the_next_measurement_works_at_once(stopped):
    (result,) = [o for o in stopped[2] if o["output_type"] == "execute_result"]
    assert result["data"]["text/plain"] == "(True, True)"


def test_a_stopped_sweep_shows_the_runs_done(stopped):
    outputs = stopped[3]
    texts = _texts(outputs)
    assert texts[0].startswith("The runs done before you stopped the sweep: 1 of 3\n")
    assert "<table" in outputs[0]["data"]["text/html"] and "p50_high_ms" in texts[0]
    (error,) = [o for o in outputs if o["output_type"] == "error"]
    assert error["ename"] == "Stopped"
    assert error["traceback"][0].endswith(
        "the sweep during run 2 of 3; run 1 done; the runs done are shown above; "
        "the partial table is this error's .table (sys.last_value.table in the next cell)."
    )
