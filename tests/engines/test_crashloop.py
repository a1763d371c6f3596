"""The kubelet's restart back-off on plain numbers.

The expected sequences are the kubelet's, read in its source (see
docs/facts.md, "Restarts after a crash"): ``doBackOff`` restarts a container
with no back-off entry at once and records 10 s; a crash within the back-off
waits it out from the crash's ``finishedAt``; each restart doubles it, to at
most 300 s; an entry older than 600 s is forgotten.
"""

from __future__ import annotations

import pytest

from labkit.engines.crashloop import CrashLoop


def test_the_first_crash_restarts_at_once_and_the_second_waits_ten_seconds() -> None:
    loop = CrashLoop()
    assert loop.hold("p", finished_at=100.0, now=101.0) == 0.0  # first crash: restarted on the next relist
    assert loop.hold("p", finished_at=104.0, now=105.0) == pytest.approx(9.0)  # second: 10 s from its exit
    assert loop.hold("p", finished_at=104.0, now=113.9) == pytest.approx(0.1)
    assert loop.hold("p", finished_at=104.0, now=114.0) == 0.0  # the wait is over: restarted
    assert loop.hold("p", finished_at=117.0, now=117.0) == pytest.approx(20.0)  # third crash: 20 s


def _waits(loop: CrashLoop, runs: int, ran_for: float = 3.0) -> list[float]:
    """The waits before each restart of a container that exits ``ran_for`` seconds after every start."""
    started, waits = 0.0, []
    for _ in range(runs):
        finished = started + ran_for
        hold = loop.hold("p", finished, finished)
        if hold:
            assert loop.hold("p", finished, finished + hold) == 0.0  # restarted when the back-off ends
        waits.append(hold)
        started = finished + hold
    return waits


def test_a_container_that_exits_3_s_after_each_start_restarts_at_once_then_after_10_20_40_s() -> None:
    assert _waits(CrashLoop(), 6) == [0.0, 10.0, 20.0, 40.0, 80.0, 160.0]


def test_the_back_off_stops_doubling_at_five_minutes() -> None:
    assert _waits(CrashLoop(), 9)[-3:] == [300.0, 300.0, 300.0]


def test_ten_minutes_without_a_crash_forget_the_back_off() -> None:
    loop = CrashLoop()
    assert loop.hold("p", 0.0, 0.0) == 0.0
    assert loop.hold("p", 5.0, 5.0) == 10.0
    assert loop.hold("p", 5.0, 15.0) == 0.0  # restarted at 15 s, the back-off is now 20 s
    assert loop.hold("p", 15.0 + 601.0, 15.0 + 601.0) == 0.0  # ran just over 10 minutes: at once again
    assert loop.hold("p", 620.0, 620.0) == pytest.approx(10.0)  # and the next crash waits 10 s, not 40 s


def test_containers_back_off_on_their_own() -> None:
    loop = CrashLoop()
    assert loop.hold("producer", 0.0, 0.0) == 0.0
    assert loop.hold("producer", 1.0, 1.0) == 10.0
    assert loop.hold("consumer", 1.0, 1.0) == 0.0
    assert (loop.backoff("producer"), loop.backoff("consumer"), loop.backoff("other")) == (10.0, 10.0, 0.0)
