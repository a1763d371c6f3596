"""The latency report: what was written joined with what was served, its bounds, summary and checks.

:func:`build_report` is a pure function of plain data: an
:class:`~labkit.observation.Observation` (what was served, and the producer's
copy of the file), the :class:`~labkit.settings.MeasureSettings`, the clock
offset and what became of the containers. It starts no thread, does no I/O
and never changes its arguments, so it can be tested, and re-run, on data
built by hand.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from labkit import checks, views
from labkit.checks import Check, Ending
from labkit.clocks import ClockOffset
from labkit.engines.base import ContainerState
from labkit.lines import read_lines
from labkit.observation import Observation
from labkit.settings import MeasureSettings

__all__ = ["LatencyReport", "Lifecycle", "build_report"]


@dataclass(frozen=True)
class Lifecycle:
    """The containers at the start and the end of observation (``after`` None: the pod was gone).

    ``restart_backoff`` says whether the engine holds repeated crashes in
    CrashLoopBackOff (a kubelet does, Podman 4.3 does not), which the report
    explains.
    """

    before: dict[str, ContainerState]
    after: dict[str, ContainerState] | None
    restart_backoff: bool
    problem: str = ""  # why the states at the end could not be read, if they could not


@dataclass(repr=False)
class LatencyReport:
    """The outcome of one write-to-serve measurement.

    ``lines`` has one row per written line; ``latency`` is ``served_at``
    minus ``written_at`` as stamped, and ``latency_low``/``latency_high``
    bound the true value, from the timestamps' resolution, the poll interval
    and the clock uncertainty. ``summary`` gives count, min, p50, p95, max
    and mean of ``latency``, and the bounds of p50, p95 and max
    (``p50_low``, ``p50_high``, ...), in seconds. Both keep full precision
    for computation; :meth:`table`, :meth:`summary_table`, :meth:`plot` and
    :meth:`show` are the forms to read. ``duration`` is how long observation
    lasted, in seconds; ``engine_description`` and ``lab_description`` say,
    in words, what ran the pod and what the pod does.
    """

    lines: pd.DataFrame
    checks: list[Check]
    summary: pd.Series
    engine_description: str
    lab_description: str
    duration: float
    polls: int
    poll_errors: int
    resolution: float
    clock: ClockOffset
    notes: list[str]
    ended: Ending = "done"
    containers: dict[str, ContainerState] | None = None

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def interrupted(self) -> bool:
        """True when the user stopped the observation before it ended (the report is partial)."""
        return self.ended == "interrupted"

    @property
    def verdict(self) -> str:
        """Whether every check passed, and whether the report is partial."""
        verdict = "all checks passed" if self.passed else "some checks did not pass"
        if self.ended == "interrupted":
            verdict += " (stopped by the user: a partial report)"
        elif self.ended == "pod gone":
            verdict += " (the pod disappeared: a partial report)"
        return verdict

    def checks_frame(self) -> pd.DataFrame:
        """The checks as a DataFrame: check, status and detail."""
        return checks.checks_frame(self.checks)

    def table(self) -> pd.DataFrame:
        """The lines to read: times to the millisecond, latencies in ms (see :func:`labkit.views.lines_table`)."""
        return views.lines_table(self)

    def summary_table(self) -> pd.DataFrame:
        """min, p50, p95, max and mean with their bounds (see :func:`labkit.views.summary_table`)."""
        return views.summary_table(self)

    def plot(self, ax: Any = None, **options: Any) -> Any:
        """Each observed line's latency as an interval with its midpoint (see :func:`labkit.views.plot`)."""
        return views.plot(self, ax, **options)

    def show(self) -> None:
        """Display verdict, chart, summary, checks and lines together (see :func:`labkit.views.show`)."""
        views.show(self)

    def __repr__(self) -> str:
        return f"<LatencyReport: {views.headline(self)}>"

    def __str__(self) -> str:
        s = self.summary
        out = [
            "write-to-serve latency report",
            f"  engine:   {self.engine_description}",
            f"  pod:      {self.lab_description}",
            f"  observed: {self.duration:.1f} s, {self.polls} polls, {self.poll_errors} failed polls",
            f"  lines:    {len(self.lines)} written, {int(s['count'])} written while observed",
        ]
        if s["count"] > 1:
            out.append("  latency:  " + ", ".join(f"{k} {s[k]:.3f} s" for k in ("min", "p50", "p95", "max", "mean")))
            out.append(
                "  bounds:   "
                + ", ".join(f"{k} in [{s[k + '_low']:.3f}, {s[k + '_high']:.3f}] s" for k in ("p50", "p95", "max"))
            )
        elif s["count"] == 1:
            out.append(
                f"  latency:  one line observed: {s['max']:.3f} s in [{s['max_low']:.3f}, {s['max_high']:.3f}] s; "
                "one line has no spread, so p50, p95 and max are that line"
            )
        else:
            out.append(f"  latency:  {views.NOTHING_OBSERVED}")
        if self.containers is not None:
            out.append("  containers: " + "; ".join(_describe_container(c) for c in self.containers.values()))
        out.append(f"  clock:    {self.clock.describe()}")
        if self.resolution >= 1:
            out.append(
                f"  note:     timestamps have {self.resolution:g} s resolution, so latencies below "
                "a second cannot be resolved"
            )
        out += [f"  note:     {n}" for n in self.notes]
        out.append("checks:")
        out += [f"  {c}" for c in self.checks]
        out.append(f"result:   {self.verdict}")
        return "\n".join(_wrap(line) for line in out)


WIDTH = 100


def _wrap(line: str) -> str:
    """A report line folded at word boundaries, continued under where its text starts."""
    if len(line) <= WIDTH:
        return line
    label = re.match(r" *(?:[a-z]+: +|(?:PASSED|FAILED|UNDECIDED) +)?", line)
    indent = " " * (label.end() if label else 0)
    return textwrap.fill(line, WIDTH, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)


def _describe_container(st: ContainerState) -> str:
    text = f"{st.name} {st.state}"
    if st.reason and st.state != "running":
        text += f" ({st.reason})"
    text += f", {st.restarts} restart{'s' if st.restarts != 1 else ''}"
    if st.last_exit_code is not None:
        when = f" at {st.last_finished_at:%H:%M:%S}" if st.last_finished_at else ""
        text += f" (last exit code {st.last_exit_code}{when})"
    return text


def build_report(
    observation: Observation,
    settings: MeasureSettings,
    *,
    clock: ClockOffset,
    lifecycle: Lifecycle | None = None,
    engine_description: str = "",
    lab_description: str = "",
) -> LatencyReport:
    """Join what was served with what the producer wrote, bound each latency, and run the checks.

    With ``settings.lines``, only that many new lines are kept, so a run
    asked for N lines reports N (the observation itself is left as it is).
    ``observation.written`` None means the producer's copy could not be read
    (the pod was gone, or the user stopped the run): the served lines stand
    in for it, and the checks that compare the two cannot be decided.
    ``clock`` is the offset of the clock that stamped the answers from the
    pod's, ``lifecycle`` what became of the containers (None: not watched);
    the two descriptions name the engine and the lab in the text report.
    """
    obs, last_kept, trimmed = _keep_first(observation, settings.lines)
    copy_missing = obs.written is None
    written = read_lines("".join(line + "\n" for line in obs.lines) if obs.written is None else obs.written)
    if last_kept is not None:
        # Lines written after the last one kept are left out too; a missing line before it still counts.
        hits = (written["raw"] == last_kept).to_numpy().nonzero()[0]
        if len(hits):
            written = written.iloc[: hits[0] + 1]
    resolution = _resolution(written["written_at"])
    table = _join(obs, written, clock, resolution)
    verdicts = _checks(obs, observation.observed, written, table, settings, clock, resolution, lifecycle)
    notes = [*obs.notes, *trimmed]
    if copy_missing:
        notes.append("the producer's copy could not be read: the lines shown are those that were served")
    if obs.reconnects:
        notes.append(
            f"the connection to the server broke {obs.reconnects} time{'s' if obs.reconnects > 1 else ''} "
            f"({obs.failed_polls} failed poll{'s' if obs.failed_polls != 1 else ''}) and was opened again; the "
            f"longest time without an answer was {obs.longest_gap.seconds:.2f} s"
        )
    if lifecycle is not None:
        notes += _restart_notes(lifecycle)
    future = int(table["future"].sum())
    if future:
        notes.append(
            f"{future} line{'s' if future > 1 else ''} stamped later than {'they were' if future > 1 else 'it was'} "
            "served, beyond the clock uncertainty: the pod's clock runs ahead (see the 'future' column)"
        )
    if written.attrs.get("malformed_count"):
        notes.append(f"{written.attrs['malformed_count']} written lines were not in a known format and were left out")
    return LatencyReport(
        lines=table,
        checks=verdicts,
        summary=_summary(table),
        engine_description=engine_description,
        lab_description=lab_description,
        duration=obs.elapsed,
        polls=obs.polls,
        poll_errors=obs.failed_polls,
        resolution=resolution,
        clock=clock,
        notes=notes,
        ended=obs.ended,
        containers=None if lifecycle is None else lifecycle.after,
    )


def _keep_first(obs: Observation, lines: int | None) -> tuple[Observation, str | None, list[str]]:
    """What came before and the first ``lines`` new lines, as a new observation; the last line kept and a note.

    ``obs`` is returned as it is when nothing is left out.
    """
    if lines is None or len(obs.lines) <= obs.preexisting + lines:
        return obs, None, []
    keep = obs.preexisting + lines
    extra = len(obs.lines) - keep
    kept = replace(
        obs,
        lines=obs.lines[:keep],
        served_ns=obs.served_ns[:keep],
        visible_after_ns=obs.visible_after_ns[:keep],
    )
    note = f"{extra} line{'s' if extra > 1 else ''} served after the {lines} asked for left out"
    return kept, kept.lines[-1], [note]


def _join(obs: Observation, written: pd.DataFrame, clock: ClockOffset, resolution: float) -> pd.DataFrame:
    """One row per written line: when it was written and first served, and the bounds of its latency."""
    first: dict[str, tuple[int, int, bool]] = {}
    for i, (line, served_ns, visible_ns) in enumerate(zip(obs.lines, obs.served_ns, obs.visible_after_ns, strict=True)):
        first.setdefault(line, (served_ns, visible_ns, i >= obs.preexisting))
    found = [first.get(r) for r in written["raw"]]
    observed = np.array([f is not None and f[2] for f in found], dtype=bool)
    shift = pd.Timedelta(seconds=clock.offset)

    def stamps(k: int) -> pd.Series:
        ns = pd.Series([float(f[k]) if f else np.nan for f in found], dtype="float64")
        return (pd.to_datetime(ns, unit="ns", utc=True) + shift).dt.round("us")

    served_at, visible_after = stamps(0), stamps(1)
    table = pd.DataFrame(
        {
            "line_no": written["line_no"].to_numpy(),
            "hostname": written["hostname"].reset_index(drop=True),
            "written_at": written["written_at"].reset_index(drop=True),
            "served_at": served_at,
            "observed": observed,
        }
    )
    w = table["written_at"]
    u = clock.uncertainty
    point = (served_at - w).dt.total_seconds()
    low = ((visible_after - w).dt.total_seconds() - resolution - u).clip(lower=0)
    high = point + u
    table["latency"] = point.where(table["observed"])
    table["latency_low"] = low.where(table["observed"])
    table["latency_high"] = high.where(table["observed"])
    table["future"] = (point < -u) & table["served_at"].notna()
    return table


def _checks(
    obs: Observation,
    observed_count: int,
    written: pd.DataFrame,
    table: pd.DataFrame,
    settings: MeasureSettings,
    clock: ClockOffset,
    resolution: float,
    lifecycle: Lifecycle | None,
) -> list[Check]:
    """The lab's checks on the joined table; ``observed_count`` counts new lines before any were left out."""
    shift = pd.Timedelta(seconds=clock.offset)
    tolerance = settings.cadence_tolerance_at(resolution)
    written_raw = list(written["raw"])
    if obs.written is None:
        unknown = "the producer's copy of the file could not be read, so what was written is not known"
        compared = [Check("all lines served", "undecided", unknown), Check("served in order", "undecided", unknown)]
    else:
        compared = [checks.all_served(written_raw, obs.lines), checks.in_order(written_raw, obs.lines)]

    def pod_time(ns: int) -> pd.Timestamp | None:
        return pd.Timestamp(ns, unit="ns", tz="UTC") + shift if ns else None

    # Silence counts up to when the copy was read, unless observation ended as asked once the lines came.
    asked_lines_came = settings.lines is not None and obs.ended == "done"
    read_at = obs.copy_read_ns or obs.ended_ns
    silence_until = None if obs.written is None or asked_lines_came else pod_time(read_at)
    verdicts = [
        *compared,
        checks.no_duplicates(obs.lines),
        checks.latency_within(table["latency_low"], table["latency_high"], settings.latency_bound(resolution)),
        checks.cadence(
            table["written_at"],
            settings.interval,
            tolerance,
            since=pod_time(obs.started_ns),
            until=silence_until,
            slack=resolution + clock.uncertainty,
        ),
        checks.server_answered(
            obs.longest_gap.seconds,
            obs.failed_polls,
            settings.interval,
            tolerance,
            poll_interval=settings.poll_interval,
            when=_gap_when(obs, shift),
        ),
    ]
    if lifecycle is not None:
        verdicts.append(checks.stayed_up(lifecycle.before, lifecycle.after, problem=lifecycle.problem))
    verdicts.append(
        checks.observation_complete(
            obs.ended,
            elapsed=obs.elapsed,
            duration=settings.duration,
            lines=settings.lines,
            observed=observed_count if settings.lines is None else min(observed_count, settings.lines),
            limit=settings.time_limit,
        )
    )
    return verdicts


def _gap_when(obs: Observation, shift: pd.Timedelta) -> str:
    gap = obs.longest_gap
    if not gap.failed_polls and gap.end_ns - gap.start_ns < 1e9:
        return ""
    a, b = (pd.Timestamp(t, unit="ns", tz="UTC") + shift for t in (gap.start_ns, gap.end_ns))
    return f"from {a:%H:%M:%S} to {b:%H:%M:%S}"


def _restart_notes(lifecycle: Lifecycle) -> list[str]:
    """What a restart means on this engine, where the containers restarted."""
    before, after = lifecycle.before, lifecycle.after or {}
    restarted = [c for c, st in after.items() if checks.restarts_between(before.get(c), st)]
    earlier = [
        f"{c} had restarted {st.restarts} time{'s' if st.restarts != 1 else ''} before observation began"
        for c, st in before.items()
        if st.restarts
    ]
    if not restarted:
        return earlier
    if lifecycle.restart_backoff:
        how = (
            "a kubelet restarts a container at once after its first crash and holds each later crash in "
            "CrashLoopBackOff (10 s, doubling up to 5 minutes, by default), so a container that keeps crashing "
            "stays down for longer each time"
        )
    else:
        how = (
            "this engine restarts a crashed container at once, every time (Podman 4.3 has no back-off); a "
            "kubelet restarts the first crash at once too, but holds each later one in CrashLoopBackOff (10 s, "
            "doubling up to 5 minutes, by default): on a cluster a container that keeps crashing stays down longer"
        )
    return [*earlier, f"{', '.join(restarted)} restarted while observed; {how}"]


def _summary(table: pd.DataFrame) -> pd.Series:
    """Statistics of the observed latencies; the bounds of an order statistic are those of the bounds."""
    obs = table[table["observed"]]
    lat, low, high = obs["latency"], obs["latency_low"], obs["latency_high"]
    out: dict[str, float] = {"count": float(len(lat))}
    stats = {"min": 0.0, "p50": 0.5, "p95": 0.95, "max": 1.0}
    for name, q in stats.items():
        out[name] = float(lat.quantile(q)) if len(lat) else np.nan
    out["mean"] = float(lat.mean()) if len(lat) else np.nan
    for name in ("p50", "p95", "max"):
        q = stats[name]
        out[f"{name}_low"] = float(low.quantile(q)) if len(low) else np.nan
        out[f"{name}_high"] = float(high.quantile(q)) if len(high) else np.nan
    return pd.Series(out, name="latency_s")


def _resolution(written_at: pd.Series) -> float:
    """1 s when every stamp is a whole second (the ``date`` default), else the finest seen."""
    if written_at.empty:
        return 1.0
    ns = written_at.astype("int64") % 1_000_000_000
    if (ns == 0).all():
        return 1.0
    for digits in (3, 6, 9):
        if (ns % 10 ** (9 - digits) == 0).all():
            return 10.0**-digits
    return 1e-9
