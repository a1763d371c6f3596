"""Observation and the report, against a real HTTP server on 127.0.0.1 serving a real file."""

from __future__ import annotations

import functools
import threading
import time
from datetime import datetime, timezone
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from labkit.latency import Observation, Observer, _report, measure


class _Quiet(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as nginx does

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def site(tmp_path):
    handler = functools.partial(_Quiet, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield tmp_path, server.server_address[1]
    server.shutdown()
    server.server_close()


def _stamp(t: float | None = None, host: str = "pod") -> str:
    now = datetime.fromtimestamp(time.time() if t is None else t, tz=timezone.utc)
    return f"{host} {now.isoformat(timespec='microseconds')}\n"


def test_observer_stamps_each_new_line_once(site):
    root, port = site
    f = root / "index.html"
    f.write_text(_stamp())
    obs = Observer(port, "/index.html", poll_interval=0.02).start()
    time.sleep(0.15)
    with f.open("a") as out:
        out.write(_stamp())
        out.write("pod half-writ")  # not a line yet
    time.sleep(0.15)
    with f.open("a") as out:
        out.write("ten\n")
    time.sleep(0.15)
    result = obs.stop()
    assert len(result.lines) == 3
    assert result.lines[2] == "pod half-written"
    assert result.preexisting == 1
    assert result.served_ns == sorted(result.served_ns)
    assert result.errors == 0 and result.polls >= 5


def test_observer_waits_for_the_file_and_restarts_when_it_shrinks(site):
    root, port = site
    f = root / "index.html"
    obs = Observer(port, "/index.html", poll_interval=0.02).start()
    time.sleep(0.1)  # 404 while nothing is written: not an error
    f.write_text("a 1\nb 2\n")
    time.sleep(0.1)
    f.write_text("c 3\n")  # replaced by a shorter file
    time.sleep(0.1)
    result = obs.stop()
    assert result.errors == 0
    assert result.lines == ["a 1", "b 2", "c 3"]
    assert any("shrank or was replaced" in n for n in result.notes)


def test_observer_counts_failed_polls_and_goes_on(site):
    root, port = site
    (root / "index.html").write_text("x 1\n")
    obs = Observer(port, "/missing.html", poll_interval=0.02)
    obs._body = b"seen"  # a file that was there and then vanished answers 404: an error
    obs.start()
    time.sleep(0.1)
    result = obs.stop()
    assert result.errors >= 2 and result.polls == 0
    assert "HTTP 404" in result.notes[0] and "the run goes on" in result.notes[0]


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
    try:
        report = measure(port=port, path="/index.html", read_written=f.read_text, lines=5,
                         poll_interval=0.02, interval=0.1)
    finally:
        stop.set()
        t.join()
    assert report.passed, str(report)
    assert report.summary["count"] >= 5
    assert 0 <= report.summary["min"] <= report.summary["max"] < 0.5
    assert list(report.lines.columns) == ["line_no", "hostname", "written_at", "served_at", "observed", "latency"]
    assert not report.lines["observed"].iloc[0]  # there before observation began: no latency claimed
    assert pd.isna(report.lines["latency"].iloc[0])
    assert report.resolution == 1e-6


def _obs(lines: list[str], served: list[float], pre: int = 0) -> Observation:
    return Observation(lines=lines, served_ns=[int(s * 1e9) for s in served], preexisting=pre, polls=10)


T0 = datetime(2026, 11, 5, 9, 0, 0, tzinfo=timezone.utc).timestamp()


def test_report_on_seed_format_states_the_resolution():
    written = "p Thu Nov 5 09:00:00 UTC 2026\np Thu Nov 5 09:00:10 UTC 2026\np Thu Nov 5 09:00:20 UTC 2026\n"
    served = [T0 + 0.4, T0 + 10.3, T0 + 20.9]
    report = _report(_obs(written.splitlines(), served, pre=1), written, 25, 0.2, 10, None, None, "e", "l")
    assert report.resolution == 1.0
    assert [c.status for c in report.checks] == ["passed"] * 5
    assert report.summary["count"] == 2
    assert report.summary["max"] == pytest.approx(0.9)
    assert "latencies below a second cannot be resolved" in str(report)
    assert "latency <= 1.7 s" in str(report)


def test_report_fails_on_a_missing_line_and_a_slow_one():
    written = "p Thu Nov 5 09:00:00 UTC 2026\np Thu Nov 5 09:00:10 UTC 2026\np Thu Nov 5 09:00:20 UTC 2026\n"
    lines = written.splitlines()
    report = _report(_obs([lines[0], lines[2]], [T0 + 0.1, T0 + 23.0]), written, 25, 0.2, 10, None, None, "e", "l")
    status = {c.name: c.status for c in report.checks}
    assert status["all lines served"] == "failed"
    assert status["served in order"] == "failed"
    assert status["latency <= 1.7 s"] == "failed"
    assert not report.passed
    assert "some checks did not pass" in str(report)


def test_measure_needs_a_stopping_rule():
    with pytest.raises(ValueError, match="duration= .* or lines="):
        measure(port=1, path="/", read_written=str)


def test_asking_for_n_lines_reports_exactly_n():
    from labkit.latency import _keep_first

    written = "".join(f"p Thu Nov 5 09:00:{s:02d} UTC 2026\n" for s in (0, 10, 20, 30))
    lines = written.splitlines()
    obs = _obs(lines, [T0 + 0.5, T0 + 10.5, T0 + 20.5, T0 + 30.5], pre=1)
    _keep_first(obs, 2)
    report = _report(obs, written, 35, 0.2, 10, None, None, "e", "l")
    assert report.summary["count"] == 2
    assert len(report.lines) == 3
    assert report.passed, str(report)
    assert "1 lines served after the 2 asked for were left out" in report.notes
