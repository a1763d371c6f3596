"""Write-to-serve latency: when did each line the producer wrote first come back over HTTP?

An :class:`Observer` polls the serving container through a port-forward and
stamps every new complete line with the moment it was first served. When
observation ends, the producer's own copy of the file (read by exec, so
not through the server) says what was written; :func:`measure` joins the
two and runs the lab's checks.
"""

from __future__ import annotations

import http.client
import re
import socket
import textwrap
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from labkit import checks, views
from labkit.checks import Check
from labkit.clocks import ClockOffset, shared_clock
from labkit.engines.base import ContainerState
from labkit.errors import FetchError, LabkitError, PodGone
from labkit.lines import read_lines

# Bytes re-read at the start of each range, to tell an append from a replaced file.
OVERLAP = 64
# Slack for the shell loop's own run time and for scheduling on a busy machine.
CADENCE_SLACK = 0.25
LATENCY_SLACK = 0.5


@dataclass
class Observation:
    """What the observer saw: each served line with the time it was first served."""

    lines: list[str] = field(default_factory=list)
    served_ns: list[int] = field(default_factory=list)
    preexisting: int = 0  # lines already there at the first poll, written before anyone watched
    polls: int = 0
    errors: int = 0
    bytes_received: int = 0
    not_found: int = 0  # polls answered 403/404 before the file first appeared
    visible_after_ns: list[int] = field(default_factory=list)  # the previous poll's send time, per line
    notes: list[str] = field(default_factory=list)
    last_kept: str | None = None  # set when lines after a requested count were dropped
    started_ns: int = 0  # when observation began and ended, on the clock that stamped served_ns
    ended_ns: int = 0
    copy_read_ns: int = 0  # when the producer's copy was read, on the same clock (0: not known)
    drops: int = 0  # times the answers stopped (the observer opened a new connection each time)
    last_answer_ns: int = 0
    gap: tuple[int, int, int] = (0, 0, 0)  # the longest stretch without an answer: from, to, failed polls in it
    _missed_since_answer: int = 0

    def answered(self, now_ns: int) -> None:
        """The server answered at ``now_ns``: close the stretch without answers that ends here.

        The wait for the first answer is not a gap: setting up the first
        connection (a tunnel's handshake) is not an outage of the server.
        """
        if self.last_answer_ns:
            self._close_gap(now_ns)
        self.last_answer_ns = now_ns
        self._missed_since_answer = 0

    def missed(self) -> None:
        """A poll got no answer."""
        self.errors += 1
        self._missed_since_answer += 1

    def finish(self, now_ns: int) -> None:
        """Observation ended at ``now_ns``: the time since the last answer (or, with none, since the start) counts."""
        self.ended_ns = now_ns
        self._close_gap(now_ns)

    def longest_gap(self) -> float:
        """The longest time without an answer, in seconds."""
        return (self.gap[1] - self.gap[0]) / 1e9

    def _close_gap(self, now_ns: int) -> None:
        since = self.last_answer_ns or self.started_ns or now_ns
        if now_ns - since > self.gap[1] - self.gap[0]:
            self.gap = (since, now_ns, self._missed_since_answer)


class Observer:
    """Poll ``http://127.0.0.1:port/path`` on one kept-alive connection, in a thread.

    With ``incremental=True`` (the default) each poll asks only for the bytes
    not seen yet (``Range: bytes=N-``), so a poll costs the same however large
    the file has grown. The range starts a few bytes early and those bytes
    must match what was seen, which tells an append from a replaced file.
    Requests are never conditional: ``If-Modified-Since`` has one-second
    granularity and would hide appends.
    """

    def __init__(
        self, port: int, path: str, *, poll_interval: float = 0.2, timeout: float = 5.0, incremental: bool = True
    ) -> None:
        if poll_interval <= 0:
            raise ValueError("poll_interval must be a positive number of seconds")
        self.port, self.path = port, path
        self.poll_interval, self.timeout = poll_interval, timeout
        self.incremental = incremental
        self.obs = Observation()
        self._offset = 0  # bytes of the file seen so far
        self._seen_tail = b""  # the last OVERLAP bytes seen, to check the next range against
        self._partial = b""  # a line still being written
        self._first_done = False
        self._last_sent = 0
        self._conn: http.client.HTTPConnection | None = None
        self._answering = False  # the last poll got an answer
        self._stop_after: float | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="labkit-observer", daemon=True)

    @property
    def observed(self) -> int:
        """Lines first served while watching (not there at the first poll)."""
        with self._lock:
            return len(self.obs.lines) - self.obs.preexisting

    def start(self) -> Observer:
        self.obs.started_ns = time.time_ns()
        self._thread.start()
        return self

    @property
    def failed(self) -> int:
        """Polls that got no answer so far."""
        return self.obs.errors

    def finish(self) -> None:
        """Mark the end of observation (the producer's copy is read next); polls go on until :meth:`stop`."""
        with self._lock:
            self.obs.finish(time.time_ns())
            self.obs.copy_read_ns = self.obs.ended_ns

    def stop(self, last_poll: bool = True) -> Observation:
        """Finish one more complete poll that starts after now, then stop.

        ``last_poll=False`` stops at once instead, cutting a request in flight:
        when the pod is gone, nothing more is to be learned.
        """
        with self._lock:
            self._stop_after = time.monotonic() if last_poll else float("-inf")
            conn = self._conn
        if not last_poll and conn is not None and conn.sock is not None:
            with suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=self.timeout + self.poll_interval + 5)
        if self._thread.is_alive():
            raise FetchError(
                f"the observer of 127.0.0.1:{self.port}{self.path} did not stop; the server stopped answering"
            )
        if self._conn is not None:
            self._conn.close()
        return self.obs

    def _loop(self) -> None:
        while True:
            begun = time.monotonic()
            self.poll_once()
            with self._lock:
                if self._stop_after is not None and begun > self._stop_after:
                    return
            time.sleep(max(0.0, self.poll_interval - (time.monotonic() - begun)))

    def poll_once(self) -> None:
        """One request; new complete lines are stamped with the time the answer arrived.

        A new line was not there when the server answered the previous poll,
        so it became visible after that poll was sent: that time is kept too.
        """
        sent = time.time_ns()
        try:
            status, body, content_range = self._get()
        except (OSError, http.client.HTTPException) as exc:
            with self._lock:
                self.obs.missed()
                if self._answering:
                    self.obs.drops += 1  # answers stopped: one break, however many polls it lasts
                self._answering = False
            if self.obs.errors <= 3:
                self.obs.notes.append(f"poll failed ({exc.__class__.__name__}: {exc}); the run goes on")
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            return
        now = time.time_ns()
        with self._lock:
            self.obs.answered(now)
        self.obs.polls += 1
        self.obs.bytes_received += len(body)
        new = self._new_bytes(status, body, content_range)
        if new is None:
            self._last_sent = sent
            return
        self._offset += len(new)
        self._seen_tail = (self._seen_tail + new)[-OVERLAP:]
        data = self._partial + new
        cut = data.rfind(b"\n") + 1
        self._partial = data[cut:]
        if cut:
            lines = data[:cut].decode("utf-8", "replace").split("\n")[:-1]
            with self._lock:  # the main thread reads the counts while this thread polls
                if not self._first_done:
                    self.obs.preexisting = len(lines)
                self.obs.lines.extend(lines)
                self.obs.served_ns.extend([now] * len(lines))
                self.obs.visible_after_ns.extend([self._last_sent or sent] * len(lines))
        self._first_done = True
        self._last_sent = sent

    def _new_bytes(self, status: int, body: bytes, content_range: str | None) -> bytes | None:
        """The bytes appended since the last poll, or None when there are none to read."""
        if status in (403, 404) and self._offset == 0:
            self._first_done = True
            self.obs.not_found += 1
            if self.obs.not_found == 50:
                self.obs.notes.append(
                    f"{self.path} answered HTTP {status} for 50 polls: if the file exists, the server serves it "
                    "under another path (pass url_path=)"
                )
            return None  # nothing written yet: the server has no file to serve
        if status == 416:
            return self._restart("shrank")  # even the overlap is gone
        if status == 206:
            start = _range_start(content_range)
            overlap = self._offset - start if start is not None else -1
            if overlap < 0 or overlap > len(self._seen_tail) or body[:overlap] != self._seen_tail[-overlap:]:
                return self._restart("was replaced")
            return body[overlap:]
        # 200: the whole file, because nothing was seen yet or the server ignored the range.
        if self._offset == 0:
            return body
        known = body[self._offset - len(self._seen_tail) : self._offset]
        if len(body) < self._offset or known != self._seen_tail:
            self._restart("shrank or was replaced")
            return body
        return body[self._offset :]

    def _restart(self, how: str) -> None:
        self.obs.notes.append(f"the served file {how} after {len(self.obs.lines)} lines; observation restarted")
        self._offset, self._seen_tail, self._partial = 0, b"", b""
        return None

    def _get(self) -> tuple[int, bytes, str | None]:
        if self._conn is None:
            self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        headers = {"Cache-Control": "no-cache"}
        if self.incremental and self._offset:
            headers["Range"] = f"bytes={self._offset - len(self._seen_tail)}-"
        self._conn.request("GET", self.path, headers=headers)
        resp = self._conn.getresponse()
        body = resp.read()
        self._answering = True
        if resp.will_close:
            self._conn.close()
            self._conn = None
        if resp.status not in (200, 206, 416) and not (resp.status in (403, 404) and self._offset == 0):
            raise http.client.HTTPException(f"HTTP {resp.status} {resp.reason}")
        return resp.status, body, resp.getheader("Content-Range")


def _range_start(content_range: str | None) -> int | None:
    """The first byte of a ``Content-Range: bytes START-END/SIZE`` header."""
    if not content_range or not content_range.startswith("bytes "):
        return None
    first = content_range[6:].split("-", 1)[0]
    return int(first) if first.isdigit() else None


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
    :meth:`show` are the forms to read.
    """

    lines: pd.DataFrame
    checks: list[Check]
    summary: pd.Series
    engine: str
    layout: str
    duration: float
    polls: int
    poll_errors: int
    resolution: float
    clock: ClockOffset
    notes: list[str]
    ended: checks.Ending = "done"
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
            f"  engine:   {self.engine}",
            f"  pod:      {self.layout}",
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
            out.append("  latency:  no line was written while observed, so there is no latency to report")
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
    return textwrap.fill(
        line, WIDTH, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False
    )


def _describe_container(st: ContainerState) -> str:
    text = f"{st.name} {st.state}"
    if st.reason and st.state != "running":
        text += f" ({st.reason})"
    text += f", {st.restarts} restart{'s' if st.restarts != 1 else ''}"
    if st.last_exit_code is not None:
        when = f" at {st.last_finished_at:%H:%M:%S}" if st.last_finished_at else ""
        text += f" (last exit code {st.last_exit_code}{when})"
    return text


def measure(
    *,
    port: int,
    path: str,
    read_written: Callable[[], str],
    duration: float | None = None,
    lines: int | None = None,
    poll_interval: float = 0.2,
    interval: float | None = None,
    max_latency: float | None = None,
    cadence_tolerance: float | None = None,
    clock: ClockOffset | None = None,
    engine: str = "",
    layout: str = "",
    timeout: float | None = None,
    tick: Callable[[int, int], None] | None = None,
    lifecycle: Callable[[], Lifecycle] | None = None,
) -> LatencyReport:
    """Observe the served file, then check it against what the producer wrote.

    Observation lasts ``duration`` seconds, or until ``lines`` new lines were
    served (bounded by ``timeout``). ``read_written`` returns the producer's
    copy of the file; ``clock`` is the pod's clock offset (none by default).
    Bounds left as None are derived from the timestamp resolution and the
    poll interval. ``tick(lines_seen, failed_polls)`` is called while
    waiting; it may raise :class:`~labkit.errors.PodGone` to end the
    observation early. Ctrl-C ends it too: the report of what was seen is
    returned, marked as interrupted. ``lifecycle()`` says what became of the
    containers, once observation ended.
    """
    limit = span(duration, lines, timeout, interval)
    observer = Observer(port, path, poll_interval=poll_interval).start()
    started = time.monotonic()
    ended: checks.Ending = "done"
    written_text: str | None = None
    after: Lifecycle | None = None
    try:
        ended = observe(duration, lines, limit, lambda: observer.observed, lambda: observer.failed, tick, observer.obs)
        observer.finish()
        ended, written_text = read_copy(read_written, ended, observer.obs.notes)
    finally:
        try:
            obs = observer.stop(last_poll=ended != "pod gone")
        except KeyboardInterrupt:
            obs, ended = observer.obs, "interrupted"
    if lifecycle is not None:
        try:
            after = lifecycle()
        except KeyboardInterrupt:
            ended = "interrupted"
    return report_from(
        obs,
        written_text,
        elapsed=time.monotonic() - started,
        lines=lines,
        duration=duration,
        limit=limit,
        ended=ended,
        poll_interval=poll_interval,
        interval=interval,
        max_latency=max_latency,
        cadence_tolerance=cadence_tolerance,
        clock=clock or shared_clock("no clock offset was given"),
        engine=engine,
        layout=layout,
        lifecycle=after,
    )


@dataclass(frozen=True)
class Lifecycle:
    """The containers at the start and the end of observation (``after`` None: the pod was gone)."""

    before: dict[str, ContainerState]
    after: dict[str, ContainerState] | None
    restart_backoff: bool
    problem: str = ""  # why the states at the end could not be read, if they could not


def observe(
    duration: float | None,
    lines: int | None,
    limit: float,
    seen: Callable[[], int],
    failed: Callable[[], int],
    tick: Callable[[int, int], None] | None,
    obs: Observation,
    *,
    reached: Callable[[], bool] | None = None,
    every: float = 0.05,
) -> checks.Ending:
    """Wait while an observer works, and say how observation ended.

    ``done`` when the duration passed or the lines came, ``time limit``
    when ``limit`` ended it first, ``interrupted`` on Ctrl-C and ``pod gone``
    when ``tick`` raised :class:`~labkit.errors.PodGone`; a note says so.
    """

    def call_tick() -> None:
        if tick is not None:
            tick(seen(), failed())

    done = reached or (lambda: lines is not None and seen() >= lines)
    try:
        late = wait_for(duration, lines, limit, done, every=every, tick=call_tick)
    except KeyboardInterrupt:
        obs.notes.append("observation was stopped by the user (Ctrl-C); what was seen until then is reported")
        return "interrupted"
    except PodGone as exc:
        obs.notes.append(f"observation ended early: {exc}")
        return "pod gone"
    try:
        call_tick()  # the last look, so progress shows the end and a pod gone meanwhile is seen
    except PodGone as exc:
        obs.notes.append(f"observation ended: {exc}")
        return "pod gone"
    except KeyboardInterrupt:
        obs.notes.append("observation was stopped by the user (Ctrl-C); what was seen until then is reported")
        return "interrupted"
    if late:
        obs.notes.append(late)
        return "time limit"
    return "done"


def read_copy(
    read_written: Callable[[], str], ended: checks.Ending, notes: list[str]
) -> tuple[checks.Ending, str | None]:
    """The producer's copy of the file, and how observation ended once it was read.

    None where the copy cannot be had: the pod is gone (then or now), or
    the user pressed Ctrl-C (again); a note says so. Other errors propagate.
    """
    if ended == "pod gone":
        return ended, None
    try:
        return ended, read_written()
    except PodGone as exc:
        notes.append(f"the pod went before its copy of the file could be read: {exc}")
        return "pod gone", None
    except KeyboardInterrupt:
        if ended != "interrupted":
            notes.append("stopped by the user (Ctrl-C) while the producer's copy was read")
        return "interrupted", None
    except LabkitError:
        if ended != "interrupted":
            raise
        return ended, None


def span(duration: float | None, lines: int | None, timeout: float | None, interval: float | None) -> float:
    """Check how long to observe (``duration`` seconds or ``lines`` new lines) and return the time limit."""
    if duration is None and lines is None:
        raise ValueError("give duration= (seconds) or lines= (how many new lines to wait for)")
    if duration is not None and duration <= 0:
        raise ValueError("duration must be a positive number of seconds")
    if lines is not None and lines < 1:
        raise ValueError("lines must be at least 1")
    if timeout is not None:
        return timeout
    return duration if duration is not None else (lines + 1) * (interval or 10) + 30


def _keep_first(obs: Observation, lines: int) -> None:
    """Keep what came before and the first ``lines`` new lines, so a run asked for N lines reports N."""
    keep = obs.preexisting + lines
    if len(obs.lines) > keep:
        extra = len(obs.lines) - keep
        obs.notes.append(f"{extra} line{'s' if extra > 1 else ''} served after the {lines} asked for left out")
        del obs.lines[keep:], obs.served_ns[keep:], obs.visible_after_ns[keep:]
        obs.last_kept = obs.lines[-1]


def wait_for(
    duration: float | None,
    lines: int | None,
    timeout: float,
    reached: Callable[[], bool],
    every: float = 0.05,
    tick: Callable[[], None] | None = None,
) -> str | None:
    """Wait until ``duration`` has passed or ``reached()`` is true, at most ``timeout`` seconds.

    Returns None, or a note saying the time limit ended the wait first.
    ``tick()`` is called on every round (to show progress, or to raise and end the wait).
    """
    started = time.monotonic()
    while True:
        if tick is not None:
            tick()
        elapsed = time.monotonic() - started
        if duration is not None and elapsed >= duration:
            return None
        if reached():
            return None
        if elapsed >= timeout:
            wanted = f"{lines} new lines were served" if lines is not None else f"{duration:g} s had passed"
            return f"stopped after {timeout:g} s, before {wanted}"
        time.sleep(every)


def report_from(
    obs: Observation,
    written_text: str | None,
    *,
    elapsed: float,
    lines: int | None = None,
    duration: float | None = None,
    limit: float | None = None,
    ended: checks.Ending = "done",
    poll_interval: float,
    interval: float | None,
    max_latency: float | None,
    cadence_tolerance: float | None,
    clock: ClockOffset,
    engine: str,
    layout: str,
    lifecycle: Lifecycle | None = None,
) -> LatencyReport:
    """Join what was served (``obs``) with what the producer wrote, and run the checks.

    With ``lines``, only that many new lines are kept, so a run asked for N lines reports N.
    ``written_text`` None means the producer's copy could not be read (the
    pod was gone, or the user stopped the run): the served lines stand in
    for it, and the checks that compare the two cannot be decided.
    """
    observed_count = len(obs.lines) - obs.preexisting
    if lines is not None:
        _keep_first(obs, lines)
    copy_missing = written_text is None
    written = read_lines("".join(line + "\n" for line in obs.lines) if written_text is None else written_text)
    if obs.last_kept is not None:
        # Lines written after the last one kept are left out too; a missing line before it still counts.
        hits = (written["raw"] == obs.last_kept).to_numpy().nonzero()[0]
        if len(hits):
            written = written.iloc[: hits[0] + 1]
    resolution = _resolution(written["written_at"])
    first: dict[str, tuple[int, int, bool]] = {}
    for i, (line, high, low) in enumerate(zip(obs.lines, obs.served_ns, obs.visible_after_ns, strict=True)):
        first.setdefault(line, (high, low, i >= obs.preexisting))
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

    bound = max_latency if max_latency is not None else resolution + poll_interval + LATENCY_SLACK
    tol = cadence_tolerance if cadence_tolerance is not None else resolution + CADENCE_SLACK
    written_raw = list(written["raw"])
    if copy_missing:
        unknown = "the producer's copy of the file could not be read, so what was written is not known"
        compared = [Check("all lines served", "undecided", unknown), Check("served in order", "undecided", unknown)]
    else:
        compared = [checks.all_served(written_raw, obs.lines), checks.in_order(written_raw, obs.lines)]

    def pod_time(ns: int) -> pd.Timestamp | None:
        return pd.Timestamp(ns, unit="ns", tz="UTC") + shift if ns else None

    read_at = obs.copy_read_ns or obs.ended_ns
    silence_until = None if copy_missing or lines is not None and ended == "done" else pod_time(read_at)
    verdicts = [
        *compared,
        checks.no_duplicates(obs.lines),
        checks.latency_within(table["latency_low"], table["latency_high"], bound),
        checks.cadence(
            table["written_at"],
            interval,
            tol,
            since=pod_time(obs.started_ns),
            until=silence_until,
            slack=resolution + u,
        ),
        checks.server_answered(
            obs.longest_gap(), obs.errors, interval, tol, poll_interval=poll_interval, when=_gap_when(obs, shift)
        ),
    ]
    if lifecycle is not None:
        verdicts.append(checks.stayed_up(lifecycle.before, lifecycle.after, problem=lifecycle.problem))
    verdicts.append(
        checks.observation_complete(
            ended,
            elapsed=elapsed,
            duration=duration,
            lines=lines,
            observed=observed_count if lines is None else min(observed_count, lines),
            limit=limit if limit is not None else elapsed,
        )
    )
    notes = list(obs.notes)
    if copy_missing:
        notes.append("the producer's copy could not be read: the lines shown are those that were served")
    if obs.drops:
        notes.append(
            f"the connection to the server broke {obs.drops} time{'s' if obs.drops > 1 else ''} "
            f"({obs.errors} failed poll{'s' if obs.errors != 1 else ''}) and was opened again; the longest "
            f"time without an answer was {obs.longest_gap():.2f} s"
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
        engine=engine,
        layout=layout,
        duration=elapsed,
        polls=obs.polls,
        poll_errors=obs.errors,
        resolution=resolution,
        clock=clock,
        notes=notes,
        ended=ended,
        containers=None if lifecycle is None else lifecycle.after,
    )


def _gap_when(obs: Observation, shift: pd.Timedelta) -> str:
    start, end, missed = obs.gap
    if not missed and end - start < 1e9:
        return ""
    a, b = (pd.Timestamp(t, unit="ns", tz="UTC") + shift for t in (start, end))
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
            "this engine restarts a crashed container after a back-off (Kubernetes waits 10 s, then doubles "
            "the wait up to 5 minutes), so the container stays down for longer after each crash"
        )
    else:
        how = (
            "this engine restarts a crashed container at once (Podman 4.3 has no back-off), where Kubernetes "
            "would wait 10 s before the first restart and double the wait each time: on a cluster the same "
            "crash leaves the container down for longer"
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
