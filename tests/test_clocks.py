from __future__ import annotations

import time

import pytest

from labkit.clocks import estimate_offset, shared_clock
from labkit.errors import LabkitError


def test_shared_clock_is_exactly_zero_and_says_why():
    clock = shared_clock("one machine")
    assert (clock.offset, clock.uncertainty) == (0.0, 0.0)
    assert clock.describe() == "offset exactly 0 s: one machine"


def test_offset_from_the_fastest_round_trip():
    delays = iter([0.06, 0.01, 0.04])

    def pod_clock_two_seconds_ahead() -> str:
        delay = next(delays)
        time.sleep(delay / 2)
        now = time.time() + 2.0
        time.sleep(delay / 2)
        return f"{now:.9f}\n"

    clock = estimate_offset(pod_clock_two_seconds_ahead, rounds=3)
    assert clock.offset == pytest.approx(2.0, abs=clock.uncertainty + 0.002)
    assert 0.005 <= clock.uncertainty < 0.02  # half of the 10 ms round, plus scheduling
    assert "best of 3 exec round trips" in clock.describe()


def test_unreadable_pod_clock_is_explained():
    with pytest.raises(LabkitError, match="not seconds since the epoch"):
        estimate_offset(lambda: "Thu Nov 5 09:00:00 UTC 2026", rounds=1)
    with pytest.raises(ValueError):
        estimate_offset(lambda: "1", rounds=0)
