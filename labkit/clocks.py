"""Which clock stamped what: the pod's clock against this machine's.

A line's ``written_at`` comes from the pod's clock (``date`` in the
producer) and its ``served_at`` from this machine's clock (when the answer
arrived). On one machine they are the same clock; on a cluster they differ
by an offset that must be measured, and its uncertainty carried into every
latency.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from labkit.errors import LabkitError


@dataclass(frozen=True)
class ClockOffset:
    """The pod's clock minus this machine's clock, in seconds, known to ± ``uncertainty``."""

    offset: float
    uncertainty: float
    method: str

    def describe(self) -> str:
        if self.offset == 0 and self.uncertainty == 0:
            return f"offset exactly 0 s: {self.method}"
        return (
            f"pod clock {self.offset * 1000:+.1f} ms ± {self.uncertainty * 1000:.1f} ms "
            f"from this machine's ({self.method})"
        )


def shared_clock(why: str) -> ClockOffset:
    """Both sides read one clock, so there is no offset to estimate."""
    return ClockOffset(0.0, 0.0, why)


def estimate_offset(read_pod_clock: Callable[[], str], *, rounds: int = 8) -> ClockOffset:
    """Estimate the offset from ``rounds`` reads of the pod's clock (``date +%s.%N`` by exec).

    The pod read its clock somewhere between sending the request and
    receiving the answer, so each round pins the offset to within half its
    round trip; the round with the smallest round trip is kept.
    """
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    best = (float("inf"), 0.0)
    for _ in range(rounds):
        before = time.time()
        text = read_pod_clock()
        after = time.time()
        try:
            pod_time = float(text.strip())
        except ValueError:
            raise LabkitError(
                f"the pod's clock read {text.strip()!r}, not seconds since the epoch; the image's `date` "
                "must understand +%s.%N (GNU coreutils or busybox)"
            ) from None
        round_trip = after - before
        if round_trip < best[0]:
            best = (round_trip, pod_time - (before + after) / 2)
    round_trip, offset = best
    return ClockOffset(offset, round_trip / 2, f"best of {rounds} exec round trips, {round_trip * 1000:.1f} ms")
