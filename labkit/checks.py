"""The lab's claims, each turned into a check that can pass, fail, or be undecided.

Every check is a pure function of what was observed, so it can be tested
without a pod and shown, one row each, in a notebook.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from labkit.engines.base import ContainerState

Status = Literal["passed", "failed", "undecided"]


@dataclass(frozen=True)
class Check:
    """One claim about the lab and the verdict on it."""

    name: str
    status: Status
    detail: str

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def __str__(self) -> str:
        return f"{self.status.upper():9} {self.name}: {self.detail}"


def checks_frame(checks: Sequence[Check]) -> pd.DataFrame:
    """The checks as a table with one row each, for display."""
    return pd.DataFrame(
        {"check": [c.name for c in checks], "status": [c.status for c in checks], "detail": [c.detail for c in checks]}
    )


def all_served(written: Sequence[str], served: Sequence[str]) -> Check:
    """Every line the producer wrote was served."""
    seen = set(served)
    missing = [line for line in written if line not in seen]
    if not written:
        return Check("all lines served", "undecided", "the producer had written no complete line yet; observe longer")
    if missing:
        return Check(
            "all lines served",
            "failed",
            f"{len(missing)} of {len(written)} written lines never served, first: {missing[0]!r}",
        )
    return Check("all lines served", "passed", f"{len(written)} of {len(written)} written lines served")


def in_order(written: Sequence[str], served: Sequence[str]) -> Check:
    """The served file starts with exactly the lines written, in the order written."""
    if not written:
        return Check("served in order", "undecided", "no written lines to compare")
    head = list(served[: len(written)])
    if head == list(written):
        return Check("served in order", "passed", "served lines follow the write order")
    for i, (w, s) in enumerate(zip(written, head, strict=False), start=1):
        if w != s:
            return Check("served in order", "failed", f"line {i} was written as {w!r} but served as {s!r}")
    return Check("served in order", "failed", f"only {len(head)} of {len(written)} written lines were served")


def no_duplicates(served: Sequence[str]) -> Check:
    """No served line appears twice."""
    dup = [line for line, n in Counter(served).items() if n > 1]
    if dup:
        return Check("no duplicates", "failed", f"{len(dup)} lines served more than once, first: {dup[0]!r}")
    return Check("no duplicates", "passed", f"{len(served)} served lines, each once")


def latency_within(low: pd.Series, high: pd.Series, bound: float) -> Check:
    """Every observed latency is at most ``bound`` seconds, judged on its bounds.

    Passed only when even the upper bounds are within; failed only when a
    lower bound is beyond; anything between cannot be decided.
    """
    name = f"latency <= {bound:g} s"
    high, low = high.dropna(), low.dropna()
    if high.empty:
        return Check(name, "undecided", "no line was written while the observer watched; observe longer")
    worst_high, worst_low = float(high.max()), float(low.max())
    detail = f"max in [{worst_low:.3f}, {worst_high:.3f}] s over {len(high)} lines"
    if worst_high <= bound:
        return Check(name, "passed", detail)
    if worst_low > bound:
        return Check(name, "failed", detail)
    return Check(name, "undecided", detail + "; the bounds straddle the limit: measure more precisely")


def cadence(
    written_at: pd.Series,
    interval: float | None,
    tolerance: float,
    *,
    since: pd.Timestamp | None = None,
    until: pd.Timestamp | None = None,
    slack: float = 0.0,
) -> Check:
    """The producer writes once per ``interval`` seconds, within ``tolerance``, up to the end of observation.

    Gaps between written lines count, and so does the silence from the last
    line (or, when none was written, from ``since``) to ``until``, the end of
    observation on the pod's clock: a producer that stopped writing fails.
    ``slack`` widens only the silence (the stamps' resolution and the clock
    uncertainty), so a healthy producer never fails for when we looked.
    """
    name = "producer cadence"
    if interval is None:
        return Check(name, "undecided", "the manifest's write interval is unknown; pass interval=")
    stamps = written_at.dropna().sort_values()
    last = stamps.iloc[-1] if len(stamps) else since
    if until is not None and last is not None:
        silence = (until - last).total_seconds()
        pad = slack if len(stamps) else 0.0  # ``since`` and ``until`` come from one clock, exactly
        if silence - pad > interval + tolerance:
            since_what = "since observation began" if not len(stamps) else f"after the line stamped {last:%H:%M:%S}"
            return Check(
                name,
                "failed",
                f"no line for {silence:.1f} s {since_what}, expected one every {interval:g} s "
                "(the producer stopped writing)",
            )
    gaps = stamps.diff().dropna().dt.total_seconds()
    if gaps.empty:
        return Check(name, "undecided", "fewer than two written lines; observe for longer than two intervals")
    off = (gaps - interval).abs()
    worst = float(gaps.iloc[int(off.to_numpy().argmax())])
    detail = (
        f"{len(gaps)} gaps, median {gaps.median():.3g} s, worst {worst:.3g} s "
        f"(expected {interval:g} ± {tolerance:.3g} s)"
    )
    return Check(name, "passed" if float(off.max()) <= tolerance else "failed", detail)


Ending = Literal["done", "time limit", "interrupted", "pod gone"]


def observation_complete(
    ended: Ending, *, elapsed: float, duration: float | None, lines: int | None, observed: int, limit: float
) -> Check:
    """Observation ran as asked: for ``duration`` seconds, or until ``lines`` new lines were served.

    A run cut short never passes: by the time limit it fails (the lines did
    not come), by the user it is undecided, by the pod's disappearance it fails.
    """
    if lines is not None:
        name = f"{lines} new lines served"
    else:
        name = f"observed for {duration:g} s" if duration is not None else "observation completed"
    got = f"{observed} of {lines} new lines" if lines is not None else f"{observed} new lines"
    if ended == "interrupted":
        return Check(name, "undecided", f"stopped by the user after {elapsed:.1f} s, with {got} served")
    if ended == "pod gone":
        return Check(name, "failed", f"the pod disappeared after {elapsed:.1f} s, with {got} served")
    if lines is not None and observed < lines:
        return Check(name, "failed", f"only {got} served before the time limit of {limit:g} s ended the observation")
    if ended == "time limit" and lines is None:
        return Check(name, "failed", f"the time limit of {limit:g} s ended the observation first")
    if lines is not None:
        return Check(name, "passed", f"{got} served in {elapsed:.1f} s")
    return Check(name, "passed", f"observed for {elapsed:.1f} s; {got} served")


def server_answered(
    longest: float,
    failed: int,
    interval: float | None,
    tolerance: float,
    *,
    poll_interval: float = 0.0,
    when: str = "",
) -> Check:
    """The server kept answering: no stretch without an answer longer than the producer's interval.

    ``longest`` is the longest time, in seconds, between answers (from the
    first answer up to the end of observation; over all of it when nothing
    answered); ``failed`` counts polls that got no answer. Answers come at
    best once per ``poll_interval``, so the limit is the longer of the two
    intervals, plus the tolerance and one poll. A brief hiccup is counted and
    passes; an outage in which a line could be written and not served fails.
    """
    name = "server answered"
    counted = f"{failed} failed poll{'s' if failed != 1 else ''}"
    if interval is None:
        if failed:
            return Check(name, "undecided", f"{counted}, longest gap {longest:.1f} s; the write interval is unknown")
        return Check(name, "passed", f"every poll answered, longest gap {longest:.2f} s")
    limit = max(interval, poll_interval) + tolerance + poll_interval
    if longest > limit:
        return Check(
            name,
            "failed",
            f"no answer for {longest:.1f} s{f' ({when})' if when else ''}, longer than the producer's interval of "
            f"{interval:g} s; {counted}",
        )
    return Check(name, "passed", f"longest gap between answers {longest:.2f} s (at most {limit:.3g} s); {counted}")


def restarts_between(then: ContainerState | None, now: ContainerState) -> int:
    """How often a container restarted between two looks at it.

    The engine's restart count, and at least one when the container started
    anew (a restart by hand, which a restart policy does not count).
    """
    counted = now.restarts - (then.restarts if then else 0)
    if counted <= 0 and then is not None and then.started_at and now.started_at and now.started_at != then.started_at:
        return 1
    return max(counted, 0)


def stayed_up(
    before: Mapping[str, ContainerState],
    after: Mapping[str, ContainerState] | None,
    *,
    problem: str = "",
) -> Check:
    """No container restarted or stopped while it was observed.

    ``after`` is None when the pod was gone at the end; ``problem`` says why
    the states at the end could not be read (undecided). Every container seen
    at the start must be seen at the end. A restart is named with its count
    and the last exit code and time, which is what a student needs to find
    the crash in the logs.
    """
    name = "containers stayed up"
    if after is None:
        return Check(name, "failed", "the pod disappeared while it was observed (deleted or evicted)")
    if problem:
        return Check(name, "undecided", f"the containers' states could not be read at the end: {problem}")
    if not before or not after:
        return Check(name, "undecided", "the engine reported no container states to compare")
    problems = []
    for cname, now in after.items():
        then = before.get(cname)
        restarted = restarts_between(then, now)
        if restarted > 0:
            last = ""
            if now.last_exit_code is not None:
                last = f", last exit code {now.last_exit_code}"
                if now.last_finished_at is not None:
                    last += f" at {now.last_finished_at:%H:%M:%S}"
            problems.append(f"{cname} restarted {restarted} time{'s' if restarted > 1 else ''}{last}")
        elif now.state != "running":
            why = f" ({now.reason})" if now.reason else ""
            code = f", exit code {now.exit_code}" if now.exit_code is not None else ""
            problems.append(f"{cname} is {now.state}{why}{code}")
    missing = [c for c in before if c not in after]
    problems += [f"{c} is gone" for c in missing]
    if problems:
        return Check(name, "failed", "; ".join(problems))
    counts = ", ".join(f"{c} {s.restarts}" for c, s in after.items())
    return Check(name, "passed", f"every container ran throughout, no restart (restart counts: {counts})")
