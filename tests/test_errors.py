"""How a LabkitError reads in a notebook: its message and the user's own line, the kit's frames one step away."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from labkit.errors import LabkitError, NotReady, short_traceback

ROOT = Path(__file__).resolve().parent.parent


def _raised_through_the_kit() -> NotReady:
    import labkit

    lab = labkit.Lab(ROOT / "manifests" / "multicontainer-pod.yaml", engine="fake", progress=False)
    try:
        lab.measure(lines=1)
    except NotReady as exc:
        return exc
    raise AssertionError("measure before apply did not raise")


def test_short_traceback_keeps_the_message_and_the_callers_line_only():
    import traceback

    error = _raised_through_the_kit()
    lines = short_traceback(error, traceback.extract_tb(error.__traceback__))
    text = "\n".join(lines)
    assert lines[0].endswith("NotReady\x1b[0m: " + str(error))
    assert "lab.measure(lines=1)" in text and "test_errors.py" in text
    assert "labkit/lab.py" not in text
    assert "%tb" in lines[-1]
    assert len(lines) == 3


def test_in_ipython_the_error_is_short_and_tb_shows_it_whole(monkeypatch):
    IPython = pytest.importorskip("IPython")
    monkeypatch.delenv("LABKIT_TRACEBACK", raising=False)
    shell = IPython.core.interactiveshell.InteractiveShell.instance()
    shell.run_cell(
        f"import labkit\nlab = labkit.Lab({str(ROOT / 'manifests' / 'multicontainer-pod.yaml')!r}, engine='fake')"
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        shell.run_cell("x = 1\nlab.measure(lines=1)")
    short = out.getvalue()
    assert "run lab.apply() and lab.wait_ready() first" in short
    assert "Cell In[" in short and ", line 2: lab.measure(lines=1)" in short
    assert "labkit/lab.py" not in short and len(short.splitlines()) == 3
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        shell.run_cell("%tb")
    assert "labkit/lab.py" in out.getvalue()[len(short) :]


def test_labkit_traceback_full_shows_everything_at_once(monkeypatch):
    monkeypatch.setenv("LABKIT_TRACEBACK", "full")
    error = _raised_through_the_kit()
    assert "labkit/lab.py" in "".join(error._render_traceback_())


def test_every_labkit_error_renders_short():
    assert issubclass(NotReady, LabkitError)
    try:
        raise LabkitError("what happened; what to do")
    except LabkitError as exc:
        lines = exc._render_traceback_()
    assert "what happened; what to do" in lines[0]
