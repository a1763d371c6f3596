"""Tests for labkit.probe: reading the in-pod probe's records and matching them to written lines.

The probe's shell loop itself runs in a container; the engine contract suite
runs it on every engine.
"""

from __future__ import annotations

import pytest

from labkit.engines.base import ExecResult
from labkit.errors import FetchError, ProbeUnavailable
from labkit.probe import Fetch, observation_from, parse_records, run_probe

A = "pod 2026-11-05T09:03:07.100000000+00:00\n"
B = "pod 2026-11-05T09:03:07.200000000+00:00\n"
C = "pod 2026-11-05T09:03:07.300000000+00:00\n"
MS = 1_000_000


def fetch(k: int, status: int, size: int) -> Fetch:
    """The k-th fetch: sent at k*10 ms, answered 2 ms later."""
    return Fetch(k * 10 * MS, k * 10 * MS + 2 * MS, status, size)


def test_records_are_read_one_per_line():
    text = "1000 2000 206 41\n3000 4000 416 41\n"
    assert parse_records(text) == [Fetch(1000, 2000, 206, 41), Fetch(3000, 4000, 416, 41)]


@pytest.mark.parametrize("bad", ["1000 2000 206\n", "1000 2000 206 x\n", "curl: (7) Failed\n"])
def test_a_garbled_record_is_an_error_that_quotes_it(bad):
    with pytest.raises(FetchError, match="in-pod probe printed .*SENT_NS RECEIVED_NS STATUS SIZE"):
        parse_records(bad)


def test_each_line_is_served_by_the_first_fetch_that_reaches_its_end():
    fetches = [fetch(0, 206, len(A)), fetch(1, 416, len(A)), fetch(2, 206, len(A + B) + 5), fetch(3, 206, len(A + B + C))]
    obs = observation_from(fetches, A + B + C)
    assert obs.lines == [A[:-1], B[:-1], C[:-1]]
    assert obs.preexisting == 1  # A was there at the first fetch
    assert obs.served_ns == [fetches[0].received_ns, fetches[2].received_ns, fetches[3].received_ns]
    # B was not in fetch 1's answer, so it became visible after fetch 1 was sent
    assert obs.visible_after_ns[1:] == [fetches[1].sent_ns, fetches[2].sent_ns]
    assert (obs.polls, obs.errors, obs.notes) == (4, 0, [])


def test_lines_never_served_are_left_out_for_the_checks_to_count():
    obs = observation_from([fetch(0, 206, len(A)), fetch(1, 416, len(A))], A + B + "pod 2026-11-05T09:0")
    assert obs.lines == [A[:-1]]


def test_not_found_before_the_file_exists_then_failed_fetches_are_counted():
    fetches = [fetch(0, 404, 0), fetch(1, 0, 0), fetch(2, 206, len(A)), fetch(3, 502, len(A))]
    obs = observation_from(fetches, A)
    assert (obs.polls, obs.not_found, obs.errors) == (2, 1, 2)
    assert obs.preexisting == 0 and obs.lines == [A[:-1]]
    assert obs.visible_after_ns == [fetches[0].sent_ns]
    assert "2 fetches of the in-pod probe failed" in obs.notes[0]


def test_a_file_that_shrank_is_noted():
    obs = observation_from([fetch(0, 206, len(A + B)), fetch(1, 200, len(A))], A + B)
    assert any("shrank" in n for n in obs.notes)


def _probe_with(tools: ExecResult) -> None:
    """Run the probe where the serving container answers the tool check with ``tools``; nothing else may run."""

    def run(argv: list[str], timeout: float) -> ExecResult:
        assert "curl" in argv[-1] and "date +%s%N" in argv[-1], argv  # only the tool check
        return tools

    def never(*args: object) -> object:
        raise AssertionError("the probe went on after a failed tool check")

    run_probe(run, never, port=80, path="/index.html", poll_interval=0.01, duration=1, lines=None, timeout=1,
              exists=never, touch=never)


def test_without_curl_the_probe_says_what_to_use_instead():
    with pytest.raises(ProbeUnavailable, match="no curl.*port-forward.*official nginx image"):
        _probe_with(ExecResult(["sh"], 3))


def test_a_date_without_nanoseconds_is_refused_before_the_probe_starts():
    with pytest.raises(ProbeUnavailable, match=r"date cannot print nanoseconds \(date \+%s%N gave '1764000000%N'"):
        _probe_with(ExecResult(["sh"], 0, b"1764000000%N\n"))
