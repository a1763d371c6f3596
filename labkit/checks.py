"""The lab's claims, each turned into a check that can pass, fail, or be undecided.

Every check is a pure function of what was observed, so it can be tested
without a pod and shown, one row each, in a notebook.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pandas as pd

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
            "all lines served", "failed", f"{len(missing)} of {len(written)} written lines never served, first: {missing[0]!r}"
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


def cadence(written_at: pd.Series, interval: float | None, tolerance: float) -> Check:
    """The producer writes once per ``interval`` seconds, within ``tolerance``."""
    name = "producer cadence"
    if interval is None:
        return Check(name, "undecided", "the manifest's write interval is unknown; pass interval=")
    gaps = written_at.sort_values().diff().dropna().dt.total_seconds()
    if gaps.empty:
        return Check(name, "undecided", "fewer than two written lines; observe for longer than two intervals")
    off = (gaps - interval).abs()
    worst = float(gaps.iloc[int(off.to_numpy().argmax())])
    detail = f"{len(gaps)} gaps, median {gaps.median():g} s, worst {worst:g} s (expected {interval:g} ± {tolerance:g} s)"
    return Check(name, "passed" if float(off.max()) <= tolerance else "failed", detail)
