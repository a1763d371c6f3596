"""Running a measurement: an observer, the wait both observers share, then the report."""

from __future__ import annotations

import threading
import time

import pandas as pd
import pytest

from labkit.errors import PodGone
from labkit.latency import measure, wait_for_end
from labkit.observation import Observation
from labkit.poller import observe
from labkit.report import Lifecycle
from labkit.settings import MeasureSettings
from tests import test_poller
from tests.test_poller import _stamp

site = test_poller.site  # the poller tests' fixture: a local HTTP server on a temporary directory


def test_measure_end_to_end_on_a_real_file(site):
    root, port = site
    f = root / "index.html"
    f.write_text(_stamp())
    stop = threading.Event()

    def producer() -> None:
        while not stop.is_set():
            time.sleep(0.1)
            with f.open("a") as out:
                out.write(_stamp())

    t = threading.Thread(target=producer)
    t.start()
    settings = MeasureSettings(lines=5, poll_interval=0.02, interval=0.1)
    try:
        report = measure(
            lambda: observe(port=port, path="/index.html", read_written=f.read_text, settings=settings), settings
        )
    finally:
        stop.set()
        t.join()
    assert report.passed, str(report)
    assert report.summary["count"] >= 5
    assert 0 <= report.summary["min"] <= report.summary["max"] < 0.5
    assert list(report.lines.columns) == [
        "line_no",
        "hostname",
        "written_at",
        "served_at",
        "observed",
        "latency",
        "latency_low",
        "latency_high",
        "future",
    ]
    assert not report.lines["observed"].iloc[0]  # there before observation began: no latency claimed
    assert pd.isna(report.lines["latency"].iloc[0])
    assert report.resolution == 1e-6


def test_ctrl_c_while_the_containers_are_read_marks_the_report_interrupted():
    def lifecycle() -> Lifecycle:
        raise KeyboardInterrupt

    settings = MeasureSettings(duration=1)
    report = measure(lambda: Observation(written="", elapsed=1.0), settings, lifecycle=lifecycle)
    assert report.interrupted and not report.passed
    assert report.containers is None


def test_the_wait_ends_when_the_lines_came():
    seen = iter(range(100))
    notes: list[str] = []
    ended = wait_for_end(MeasureSettings(lines=3, timeout=5), lambda: next(seen), lambda: 0, None, notes, every=0.001)
    assert ended == "done" and notes == []


def test_the_wait_ends_at_the_time_limit_with_a_note():
    notes: list[str] = []
    ended = wait_for_end(MeasureSettings(lines=3, timeout=0.05), lambda: 0, lambda: 0, None, notes, every=0.01)
    assert ended == "time limit"
    assert notes == ["stopped after 0.05 s, before 3 new lines were served"]


@pytest.mark.parametrize(
    ("raised", "ended", "note"),
    [
        (PodGone("pod 'p' no longer exists"), "pod gone", "observation ended early: pod 'p' no longer exists"),
        (KeyboardInterrupt(), "interrupted", "observation was stopped by the user (Ctrl-C)"),
    ],
)
def test_the_wait_ends_early_when_the_tick_raises(raised, ended, note):
    calls: list[tuple[int, int]] = []

    def tick(seen: int, failed: int) -> None:
        calls.append((seen, failed))
        if len(calls) == 3:
            raise raised

    notes: list[str] = []
    assert wait_for_end(MeasureSettings(duration=10), lambda: 1, lambda: 2, tick, notes, every=0.001) == ended
    assert calls == [(1, 2)] * 3
    assert len(notes) == 1 and notes[0].startswith(note)
