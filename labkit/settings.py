"""What a measurement is asked to do: how long to watch, how often to poll, and what to accept.

:class:`MeasureSettings` is built once, by :meth:`labkit.Lab.measure`, and
handed whole to the observer that watches the served file and to the report
that judges what it saw, so both read the same numbers. It checks its
arguments when it is made, so a wrong one fails before any pod is touched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real

__all__ = ["CADENCE_SLACK", "LATENCY_SLACK", "MeasureSettings"]

# Slack for the shell loop's own run time and for scheduling on a busy machine.
CADENCE_SLACK = 0.25
LATENCY_SLACK = 0.5
# Seconds assumed between the producer's writes when the manifest does not say.
_DEFAULT_INTERVAL = 10.0
# Seconds added to the wait for lines, for the pod's first write and a slow start.
_LINES_GRACE = 30.0


@dataclass(frozen=True)
class MeasureSettings:
    """How to observe the served file and what the checks accept.

    Observation lasts ``duration`` seconds, or until ``lines`` new lines were
    served (at least one of the two), and never longer than
    :attr:`time_limit`. ``poll_interval`` is the time between fetches of the
    file; ``interval`` the producer's time between writes (None: unknown,
    the cadence check is then undecided). ``max_latency`` and
    ``cadence_tolerance`` left as None are derived from the timestamps'
    resolution (see :meth:`latency_bound` and :meth:`cadence_tolerance_at`).

    Wrong types raise :class:`TypeError`, values out of range
    :class:`ValueError`; each message says what to pass instead.
    """

    duration: float | None = None
    lines: int | None = None
    poll_interval: float = 0.2
    interval: float | None = None
    max_latency: float | None = None
    cadence_tolerance: float | None = None
    timeout: float | None = None

    def __post_init__(self) -> None:
        for name in ("duration", "interval", "max_latency", "timeout"):
            self._number(name, optional=True, positive=True)
        self._number("poll_interval", optional=False, positive=True)
        self._number("cadence_tolerance", optional=True, positive=False)
        lines = self.lines
        if lines is not None:
            if isinstance(lines, bool) or not isinstance(lines, Integral):
                raise TypeError(f"lines must be a whole number of lines such as 5, not {lines!r}")
            if lines < 1:
                raise ValueError(f"lines must be at least 1 (how many new lines to wait for), not {lines}")
            object.__setattr__(self, "lines", int(lines))
        if self.duration is None and self.lines is None:
            raise ValueError("give duration= (seconds) or lines= (how many new lines to wait for)")

    def _number(self, name: str, *, optional: bool, positive: bool) -> None:
        """Check that field ``name`` is a finite number (positive, or at least zero), and store it as a float."""
        value = getattr(self, name)
        if value is None and optional:
            return
        if isinstance(value, bool) or not isinstance(value, Real):
            what = "a number of seconds such as 0.5" + (", or None" if optional else "")
            raise TypeError(f"{name} must be {what}, not {value!r}")
        number = float(value)
        if not math.isfinite(number) or number < 0 or (positive and number == 0):
            least = "greater than 0" if positive else "0 or more"
            raise ValueError(f"{name} must be a finite number of seconds {least}, not {value!r}")
        object.__setattr__(self, name, number)

    @property
    def time_limit(self) -> float:
        """The most seconds observation may last, which is ``timeout`` if given, else ``duration``.

        Waiting for ``lines`` without either allows one producer interval per
        line, plus one and a grace period for the pod's first write.
        """
        if self.timeout is not None:
            return self.timeout
        if self.duration is not None:
            return self.duration
        assert self.lines is not None  # __post_init__ requires one of the two
        return (self.lines + 1) * (self.interval or _DEFAULT_INTERVAL) + _LINES_GRACE

    def latency_bound(self, resolution: float) -> float:
        """The latency every observed line must stay under: ``max_latency``, or one tick, one poll and a slack."""
        if self.max_latency is not None:
            return self.max_latency
        return resolution + self.poll_interval + LATENCY_SLACK

    def cadence_tolerance_at(self, resolution: float) -> float:
        """How far a gap between writes may stray from ``interval``: ``cadence_tolerance``, or one tick and a slack."""
        if self.cadence_tolerance is not None:
            return self.cadence_tolerance
        return resolution + CADENCE_SLACK
