"""Observation and the report, against a real HTTP server on 127.0.0.1 serving a real file."""

from __future__ import annotations

import functools
import io
import os
import threading
import time
from datetime import datetime, timezone
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from labkit.clocks import ClockOffset, shared_clock
from labkit.latency import Observation, Observer, measure, report_from


class _Quiet(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as nginx does

    def log_message(self, *args: object) -> None:
        pass


def _serve(root, handler_class):
    """Serve ``root`` on 127.0.0.1 with ``handler_class`` until the test ends: yields (root, port)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler_class, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def site(tmp_path):
    yield from _serve(tmp_path, _Quiet)


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


def _replace(path: Path, text: str) -> None:
    """Swap in a new file at once (as a log rotation does), so no request sees it half-written."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_observer_waits_for_the_file_and_restarts_when_it_shrinks(site):
    root, port = site
    f = root / "index.html"
    obs = Observer(port, "/index.html", poll_interval=0.02).start()
    time.sleep(0.1)  # 404 while nothing is written: not an error
    _replace(f, "a 1\nb 2\n")
    time.sleep(0.1)
    _replace(f, "c 3\n")  # replaced by a shorter file
    time.sleep(0.1)
    result = obs.stop()
    assert result.errors == 0
    assert result.lines == ["a 1", "b 2", "c 3"]
    assert any("shrank or was replaced" in n for n in result.notes)


def test_observer_counts_failed_polls_and_goes_on(site):
    root, port = site
    f = root / "index.html"
    f.write_text("x 1\n")
    obs = Observer(port, "/index.html", poll_interval=0.02).start()
    time.sleep(0.1)
    f.unlink()  # a file that was there and vanished answers 404: that is an error, not "nothing yet"
    time.sleep(0.1)
    result = obs.stop()
    assert result.lines == ["x 1"]
    assert result.errors >= 2
    assert "HTTP 404" in result.notes[0] and "the run goes on" in result.notes[0]


class _Ranged(_Quiet):
    """Serves byte ranges (``Range: bytes=N-``) as nginx does: 206, or 416 past the end."""

    def send_head(self):  # type: ignore[override]
        wanted = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if not wanted or not path.is_file():
            return super().send_head()
        data = path.read_bytes()
        first = int(wanted.removeprefix("bytes=").rstrip("-"))
        if first >= len(data):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return io.BytesIO(b"")
        part = data[first:]
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {first}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(part)))
        self.end_headers()
        return io.BytesIO(part)


@pytest.fixture
def ranged_site(tmp_path):
    yield from _serve(tmp_path, _Ranged)


def test_incremental_polls_fetch_only_new_bytes(ranged_site):
    root, port = ranged_site
    f = root / "index.html"
    f.write_text("".join(f"pod {i:06d}\n" for i in range(10_000)))  # 110 kB already there
    obs = Observer(port, "/index.html", poll_interval=0.01).start()
    time.sleep(0.2)
    with f.open("a") as out:
        out.write("pod new-line\n")
    time.sleep(0.2)
    result = obs.stop()
    assert len(result.lines) == 10_001 and result.lines[-1] == "pod new-line"
    assert result.preexisting == 10_000
    later_polls = result.bytes_received - 110_000
    assert later_polls < 100 * result.polls  # each later poll re-reads only the overlap and what is new
    assert result.errors == 0 and not result.notes


def test_incremental_polls_notice_a_replaced_or_shrunk_file(ranged_site):
    root, port = ranged_site
    f = root / "index.html"
    f.write_text("a 1\nb 2\n")
    obs = Observer(port, "/index.html", poll_interval=0.01).start()
    time.sleep(0.1)
    _replace(f, "X 9\nY 8\nc 3\n")  # longer, but not an append of what was there
    time.sleep(0.1)
    _replace(f, "".join(f"line {i:03d}\n" for i in range(20)))  # 180 bytes
    time.sleep(0.1)
    _replace(f, "d\n")  # shorter than the range asked for: 416
    time.sleep(0.1)
    result = obs.stop()
    assert result.lines[:5] == ["a 1", "b 2", "X 9", "Y 8", "c 3"]
    assert result.lines[-1] == "d" and len(result.lines) == 26
    assert [n.split(" after")[0] for n in result.notes] == [
        "the served file was replaced",
        "the served file was replaced",
        "the served file shrank",
    ]


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
    assert list(report.lines.columns) == [
        "line_no", "hostname", "written_at", "served_at", "observed", "latency", "latency_low", "latency_high", "future"
    ]
    assert not report.lines["observed"].iloc[0]  # there before observation began: no latency claimed
    assert pd.isna(report.lines["latency"].iloc[0])
    assert report.resolution == 1e-6


def _obs(lines: list[str], served: list[float], pre: int = 0, poll: float = 0.2) -> Observation:
    """An observation whose lines were first served at ``served`` (epoch seconds), polled every ``poll`` s."""
    return Observation(
        lines=lines,
        served_ns=[int(s * 1e9) for s in served],
        visible_after_ns=[int((s - poll) * 1e9) for s in served],
        preexisting=pre,
        polls=10,
    )


def _run(obs: Observation, written: str, **options):
    settings = dict(elapsed=25, poll_interval=0.2, interval=10, max_latency=None, cadence_tolerance=None,
                    clock=shared_clock("one machine"), engine="e", layout="l")
    return report_from(obs, written, **{**settings, **options})


T0 = datetime(2026, 11, 5, 9, 0, 0, tzinfo=timezone.utc).timestamp()


def test_report_on_seed_format_states_the_resolution():
    written = "p Thu Nov 5 09:00:00 UTC 2026\np Thu Nov 5 09:00:10 UTC 2026\np Thu Nov 5 09:00:20 UTC 2026\n"
    served = [T0 + 0.4, T0 + 10.3, T0 + 20.9]
    report = _run(_obs(written.splitlines(), served, pre=1), written)
    assert report.resolution == 1.0
    assert [c.status for c in report.checks] == ["passed"] * 7
    assert report.summary["count"] == 2
    assert report.summary["max"] == pytest.approx(0.9)
    assert "latencies below a second cannot be resolved" in str(report)
    assert "latency <= 1.7 s" in str(report)


def test_report_fails_on_a_missing_line_and_a_slow_one():
    written = "p Thu Nov 5 09:00:00 UTC 2026\np Thu Nov 5 09:00:10 UTC 2026\np Thu Nov 5 09:00:20 UTC 2026\n"
    lines = written.splitlines()
    report = _run(_obs([lines[0], lines[2]], [T0 + 0.1, T0 + 23.0]), written)
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
    report = _run(obs, written)
    assert report.summary["count"] == 2
    assert len(report.lines) == 3
    assert report.passed, str(report)
    assert "1 line served after the 2 asked for left out" in report.notes


def test_bounds_carry_resolution_poll_interval_and_clock():
    written = "p Thu Nov 5 09:00:00 UTC 2026\np Thu Nov 5 09:00:10 UTC 2026\n"
    obs = _obs(written.splitlines(), [T0 + 0.3, T0 + 10.4], pre=0, poll=0.2)
    report = _run(obs, written, clock=ClockOffset(0.0, 0.05, "test"))
    row = report.lines.iloc[1]
    assert row["latency"] == pytest.approx(0.4)
    assert row["latency_high"] == pytest.approx(0.45)  # + clock uncertainty
    assert row["latency_low"] == 0  # 0.2 - 1 s resolution - 0.05, clipped: nothing below a second is known
    s = report.summary
    assert s["p50_low"] <= s["p50"] <= s["p50_high"]
    assert "± 50.0 ms" in str(report)


def test_high_resolution_bounds_are_tight_and_offset_corrects_served_at():
    written = "p 2026-11-05T09:00:00.100000000+00:00\np 2026-11-05T09:00:00.200000000+00:00\n"
    # This machine's clock is 2 s behind the pod's: served at T0+0.105 local = T0+2.105 pod... as seen here.
    obs = _obs(written.splitlines(), [T0 - 2 + 0.105, T0 - 2 + 0.204], pre=0, poll=0.005)
    report = _run(obs, written, clock=ClockOffset(2.0, 0.001, "test"))
    lat = report.lines["latency"].to_numpy()
    assert lat == pytest.approx([0.005, 0.004], abs=1e-6)
    assert (report.lines["latency_high"] - report.lines["latency_low"]).max() <= 0.012
    assert not report.lines["future"].any()


def test_a_line_stamped_after_it_was_served_is_flagged():
    written = "p 2026-11-05T09:00:05.000000000+00:00\n"
    obs = _obs(written.splitlines(), [T0 + 1.0], pre=0, poll=0.005)
    report = _run(obs, written, clock=ClockOffset(0.0, 0.001, "test"))
    assert report.lines["future"].tolist() == [True]
    assert any("stamped later than it was served" in n for n in report.notes)


def test_silence_is_measured_to_when_the_copy_was_read():
    written = "p 2026-11-05T09:00:00.123456+00:00\np 2026-11-05T09:00:01.123456+00:00\n"
    obs = _obs(written.splitlines(), [T0 + 0.13, T0 + 1.13], pre=0)
    obs.started_ns, obs.copy_read_ns, obs.ended_ns = int(T0 * 1e9), int((T0 + 1.9) * 1e9), int((T0 + 9) * 1e9)
    fine = _run(obs, written, interval=1, duration=2)
    assert {c.name: c.status for c in fine.checks}["producer cadence"] == "passed"
    obs.copy_read_ns = int((T0 + 4) * 1e9)
    silent = _run(obs, written, interval=1, duration=2)
    cadence = next(c for c in silent.checks if c.name == "producer cadence")
    assert cadence.status == "failed" and cadence.detail.startswith("no line for 2.9 s")


def test_the_copy_read_ends_cleanly_when_the_pod_goes_or_the_user_stops():
    from labkit.errors import EngineError, PodGone
    from labkit.latency import read_copy

    notes: list[str] = []
    assert read_copy(lambda: "x\n", "done", notes) == ("done", "x\n")

    def gone() -> str:
        raise PodGone("pod 'p' no longer exists")

    def stopped() -> str:
        raise KeyboardInterrupt

    def broken() -> str:
        raise EngineError("exec failed")

    assert read_copy(gone, "done", notes) == ("pod gone", None)
    assert read_copy(stopped, "time limit", notes) == ("interrupted", None)
    assert read_copy(broken, "interrupted", notes) == ("interrupted", None)
    assert read_copy(gone, "pod gone", notes) == ("pod gone", None)
    with pytest.raises(EngineError):
        read_copy(broken, "done", notes)
    assert len(notes) == 2


def test_a_report_without_checks_never_passes():
    report = _run(_obs([], []), "")
    report.checks = []
    assert not report.passed
