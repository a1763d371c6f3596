"""Tests for labkit.probe: reading the in-pod probe's records and matching them to written lines.

The probe's shell loop itself runs in a container; the engine contract suite
runs it on every engine.
"""

from __future__ import annotations

import hashlib
import threading
from typing import NoReturn

import pytest

from labkit.engines.base import ExecResult
from labkit.errors import FetchError, ProbeUnavailable
from labkit.probe import Fetch, observation_from, observe, parse_records
from labkit.settings import MeasureSettings

A = b"pod 2026-11-05T09:03:07.100000000+00:00\n"
B = b"pod 2026-11-05T09:03:07.200000000+00:00\n"
C = b"pod 2026-11-05T09:03:07.300000000+00:00\n"
MS = 1_000_000


def fetch(k: int, status: int, start: int, end: int, served: bytes | None = None) -> Fetch:
    """The k-th fetch: sent at k*10 ms, answered 2 ms later, with bytes start..end of ``served``."""
    md5 = hashlib.md5(served[start:end]).hexdigest() if served is not None and end > start else None
    return Fetch(k * 10 * MS, k * 10 * MS + 2 * MS, status, start, end, md5)


def text(line: bytes) -> str:
    return line.decode().removesuffix("\n")


def test_records_are_read_one_per_line():
    digest = hashlib.md5(A).hexdigest()
    records = f"1000 2000 206 0 41 {digest}\n3000 4000 416 41 41 -\n"
    assert parse_records(records) == [Fetch(1000, 2000, 206, 0, 41, digest), Fetch(3000, 4000, 416, 41, 41, None)]


@pytest.mark.parametrize(
    "bad", ["1000 2000 206 0 41\n", "1000 2000 206 0 x -\n", "1000 2000 206 0 41 nothex\n", "curl: (7) Failed\n"]
)
def test_a_garbled_record_is_an_error_that_quotes_it(bad):
    with pytest.raises(FetchError, match=r"in-pod probe printed .*SENT_NS RECEIVED_NS STATUS START END MD5"):
        parse_records(bad)


def test_each_line_is_served_by_the_first_fetch_that_reaches_its_end():
    file = A + B + C
    ab5 = len(A + B) + 5
    fetches = [
        fetch(0, 206, 0, len(A), file),
        fetch(1, 416, len(A), len(A)),
        fetch(2, 206, len(A), ab5, file),
        fetch(3, 206, ab5, len(file), file),
    ]
    obs = observation_from(fetches, file)
    assert obs.lines == [text(A), text(B), text(C)]
    assert obs.preexisting == 1  # A was there at the first fetch
    assert obs.served_ns == [fetches[0].received_ns, fetches[2].received_ns, fetches[3].received_ns]
    # B was not in fetch 1's answer, so it became visible after fetch 1 was sent
    assert obs.visible_after_ns[1:] == [fetches[1].sent_ns, fetches[2].sent_ns]
    assert (obs.polls, obs.failed_polls, obs.notes) == (4, 0, [])


def test_offsets_are_bytes_even_where_the_text_is_not_utf8():
    bad = b"pod \xff not a line\n"
    file = bad + A + B
    obs = observation_from([fetch(0, 206, 0, len(bad + A), file), fetch(1, 206, len(bad + A), len(file), file)], file)
    assert obs.lines == ["pod \ufffd not a line", text(A), text(B)]
    assert obs.served_ns[2] == 1 * 10 * MS + 2 * MS


def test_lines_never_served_are_left_out_for_the_checks_to_count():
    file = A + B + b"pod 2026-11-05T09:0"
    obs = observation_from([fetch(0, 206, 0, len(A), file), fetch(1, 416, len(A), len(A))], file)
    assert obs.lines == [text(A)]


def test_not_found_before_the_file_exists_then_failed_fetches_are_counted():
    fetches = [fetch(0, 404, 0, 0), fetch(1, 0, 0, 0), fetch(2, 206, 0, len(A), A), fetch(3, 502, len(A), len(A))]
    obs = observation_from(fetches, A)
    assert (obs.polls, obs.not_found, obs.failed_polls) == (2, 1, 2)
    assert obs.preexisting == 0 and obs.lines == [text(A)]
    assert obs.visible_after_ns == [fetches[0].sent_ns]
    assert "2 fetches of the in-pod probe failed" in obs.notes[0]


def test_a_file_that_shrank_restarts_the_matching():
    old, new = A + B + C, B + C
    fetches = [
        fetch(0, 206, 0, len(old), old),
        fetch(1, 416, 0, 0),  # the probe found the file shorter than what it had seen
        fetch(2, 206, 0, len(new), new),
    ]
    obs = observation_from(fetches, new)
    assert any("shrank or was replaced after 1 fetches; observation restarted" in n for n in obs.notes)
    assert obs.lines == [text(B), text(C)]
    assert obs.preexisting == 0  # served after the restart, not before anyone watched
    assert obs.served_ns == [fetches[2].received_ns] * 2
    assert obs.visible_after_ns == [fetches[1].sent_ns] * 2


def test_bytes_that_differ_from_the_producers_file_do_not_count_as_served():
    welcome = b"<html><body>Welcome to nginx!</body></html>\n"
    obs = observation_from([fetch(0, 206, 0, len(welcome), welcome)], A)
    assert obs.lines == []
    assert any("differ from the producer's file" in n and "url_path" in n for n in obs.notes)


def test_the_last_fetches_are_checked_against_the_file_as_read_again_after_them():
    file = A + B
    later = file + C  # the last fetch follows the read of the producer's copy
    fetches = [fetch(0, 206, 0, len(A), file), fetch(1, 206, len(A), len(later), later)]
    obs = observation_from(fetches, file, later)
    assert obs.lines == [text(A), text(B)] and obs.notes == []  # C came after the copy: not asked for
    # without the later read, the last fetch cannot be checked, so it does not count
    assert observation_from(fetches, file).lines == [text(A)]


def _probe_with(tools: ExecResult) -> None:
    """Run the probe where the serving container answers the tool check with ``tools``; nothing else may run."""

    def run(argv: list[str], timeout: float) -> ExecResult:
        assert "curl" in argv[-1] and "date +%s%N" in argv[-1], argv  # only the tool check
        return tools

    def never(*args: object) -> NoReturn:
        raise AssertionError("the probe went on after a failed tool check")

    observe(
        run,
        never,
        port=80,
        path="/index.html",
        settings=MeasureSettings(duration=1, poll_interval=0.01, timeout=1),
        exists=never,
        touch=never,
    )


def test_without_curl_the_probe_says_what_to_use_instead():
    with pytest.raises(ProbeUnavailable, match=r"no curl.*port-forward.*official nginx image"):
        _probe_with(ExecResult(["sh"], 3))


def test_a_date_without_nanoseconds_is_refused_before_the_probe_starts():
    with pytest.raises(ProbeUnavailable, match=r"date cannot print nanoseconds \(date \+%s%N gave '1764000000%N'"):
        _probe_with(ExecResult(["sh"], 0, b"1764000000%N\n"))


def test_ctrl_c_while_waiting_tells_the_loop_in_the_container_to_stop():
    stopped = threading.Event()
    touched: list[str] = []

    def run(argv: list[str], timeout: float) -> ExecResult:
        if "date +%s%N" in argv[-1] and len(argv) == 3:
            return ExecResult(argv, 0, b"1764000000123456789\n")  # the tool check
        assert stopped.wait(10), "the probe loop was never told to stop"
        return ExecResult(argv, 0, b"")

    def exists(path: str) -> bool:
        raise KeyboardInterrupt

    def touch(path: str) -> None:
        touched.append(path)
        stopped.set()

    settings = MeasureSettings(lines=5, poll_interval=0.01, timeout=60)
    obs = observe(run, lambda: b"", port=80, path="/index.html", settings=settings, exists=exists, touch=touch)
    assert obs.ended == "interrupted"  # the partial observation is returned, not lost
    assert any("stopped by the user" in n for n in obs.notes)
    assert len(touched) == 1 and touched[0].startswith("/tmp/labkit-probe-") and touched[0].endswith(".stop")


def test_a_probe_exec_that_ends_early_still_tells_the_loop_to_stop():
    touched: list[str] = []

    def run(argv: list[str], timeout: float) -> ExecResult:
        if len(argv) == 3:
            return ExecResult(argv, 0, b"1764000000123456789\n")  # the tool check
        return ExecResult(argv, 137, b"", b"exec client killed")  # the loop itself may go on in the container

    with pytest.raises(FetchError, match="exit code 137: exec client killed"):
        observe(
            run,
            lambda: b"",
            port=80,
            path="/index.html",
            settings=MeasureSettings(duration=5, poll_interval=0.01, timeout=60),
            exists=lambda path: False,
            touch=touched.append,
        )
    assert len(touched) == 1 and touched[0].endswith(".stop")


def test_a_finished_probe_returns_one_observation_with_the_producers_copy():
    file = A + B
    records = "".join(
        f"{f.sent_ns} {f.received_ns} {f.status} {f.start} {f.end} {f.md5 or '-'}\n"
        for f in (fetch(0, 206, 0, len(A), file), fetch(1, 206, len(A), len(file), file))
    )
    stopped = threading.Event()

    def run(argv: list[str], timeout: float) -> ExecResult:
        if len(argv) == 3:
            return ExecResult(argv, 0, b"1764000000123456789\n")  # the tool check
        assert stopped.wait(10), "the probe loop was never told to stop"
        return ExecResult(argv, 0, records.encode())

    settings = MeasureSettings(duration=0.05, poll_interval=0.01)
    obs = observe(
        run,
        lambda: file,
        port=80,
        path="/index.html",
        settings=settings,
        exists=lambda path: False,
        touch=lambda path: stopped.set(),
        clock=lambda: 42,
    )
    assert (obs.ended, obs.written, obs.copy_read_ns) == ("done", (A + B).decode(), 42)
    assert obs.lines == [text(A), text(B)] and obs.preexisting == 1 and obs.polls == 2
    assert obs.elapsed >= 0.05 and obs.notes == []
