"""The port-forward observer: poll the served file over HTTP from this machine, as a browser would.

A :class:`Poller` fetches the file in a thread and stamps every new complete
line with the moment it was first served. :func:`observe` runs one for as
long as the settings ask, then reads the producer's own copy of the file (by
exec, so not through the server) and lets one more poll follow, so every
line in that copy must have been served by the end. It returns an
:class:`~labkit.observation.Observation`, as the in-pod probe does.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import replace

from labkit.checks import Ending
from labkit.errors import FetchError, LabkitError, PodGone
from labkit.latency import wait_for_end
from labkit.observation import Answers, Observation
from labkit.settings import MeasureSettings

__all__ = ["OVERLAP", "Poller", "observe", "read_copy"]

OVERLAP = 64
"""Bytes re-read at the start of each range, to tell an append from a replaced file."""


def observe(
    *,
    port: int,
    path: str,
    read_written: Callable[[], str],
    settings: MeasureSettings,
    tick: Callable[[int, int], None] | None = None,
) -> Observation:
    """Poll ``http://127.0.0.1:port/path`` for as long as ``settings`` ask, then read the producer's copy.

    ``read_written()`` returns the producer's copy of the file.
    ``tick(lines_seen, failed_polls)`` is called while waiting; it may raise
    :class:`~labkit.errors.PodGone` to end observation early. Ctrl-C ends it
    too: what was seen until then is returned, with ``ended`` saying so.
    """
    poller = Poller(port, path, poll_interval=settings.poll_interval).start()
    started = time.monotonic()
    ended: Ending = "done"
    written: str | None = None
    notes: list[str] = []
    try:
        ended = wait_for_end(settings, lambda: poller.observed, lambda: poller.failed, tick, notes)
        poller.finish()
        ended, written = read_copy(read_written, ended, notes)
    finally:
        try:
            seen = poller.stop(last_poll=ended != "pod gone")
        except KeyboardInterrupt:
            seen, ended = poller.seen(), "interrupted"
    return replace(seen, written=written, ended=ended, elapsed=time.monotonic() - started, notes=[*seen.notes, *notes])


def read_copy(read_written: Callable[[], str], ended: Ending, notes: list[str]) -> tuple[Ending, str | None]:
    """The producer's copy of the file, and how observation ended once it was read.

    None where the copy cannot be had: the pod is gone (then or now), or
    the user pressed Ctrl-C (again); a note, added to ``notes``, says so.
    Other errors propagate.
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


class Poller:
    """Poll ``http://127.0.0.1:port/path`` on one kept-alive connection, in a thread.

    With ``incremental=True`` (the default) each poll asks only for the bytes
    not seen yet (``Range: bytes=N-``), so a poll costs the same however large
    the file has grown. The range starts a few bytes early and those bytes
    must match what was seen, which tells an append from a replaced file.
    Requests are never conditional: ``If-Modified-Since`` has one-second
    granularity and would hide appends. :meth:`stop` returns what was seen.
    """

    def __init__(
        self, port: int, path: str, *, poll_interval: float = 0.2, timeout: float = 5.0, incremental: bool = True
    ) -> None:
        if poll_interval <= 0:
            raise ValueError("poll_interval must be a positive number of seconds")
        self.port, self.path = port, path
        self.poll_interval, self.timeout = poll_interval, timeout
        self.incremental = incremental
        self._lines: list[str] = []
        self._served_ns: list[int] = []
        self._visible_after_ns: list[int] = []
        self._preexisting = 0
        self._polls = 0
        self._not_found = 0
        self._bytes_received = 0
        self._reconnects = 0
        self._notes: list[str] = []
        self._answers = Answers()
        self._started_ns = 0
        self._ended_ns = 0
        self._offset = 0  # bytes of the file seen so far
        self._seen_tail = b""  # the last OVERLAP bytes seen, to check the next range against
        self._partial = b""  # a line still being written
        self._first_done = False
        self._last_sent = 0
        self._conn: http.client.HTTPConnection | None = None
        self._answering = False  # the last poll got an answer
        self._stop_after: float | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="labkit-poller", daemon=True)

    @property
    def observed(self) -> int:
        """Lines first served while watching (not there at the first poll)."""
        with self._lock:
            return len(self._lines) - self._preexisting

    @property
    def failed(self) -> int:
        """Polls that got no answer so far."""
        return self._answers.failed

    def start(self) -> Poller:
        self._started_ns = self._answers.started_ns = time.time_ns()
        self._thread.start()
        return self

    def finish(self) -> None:
        """Mark the end of observation (the producer's copy is read next); polls go on until :meth:`stop`."""
        with self._lock:
            self._ended_ns = time.time_ns()
            self._answers.finish(self._ended_ns)

    def stop(self, last_poll: bool = True) -> Observation:
        """Finish one more complete poll that starts after now, then stop, and return what was seen.

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
                f"the poller of 127.0.0.1:{self.port}{self.path} did not stop; the server stopped answering"
            )
        self.close()
        return self.seen()

    def close(self) -> None:
        """Close the connection; enough on its own for a poller polled by hand with :meth:`poll_once`."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def seen(self) -> Observation:
        """What was seen so far, as an observation of its own (the producer's copy not read: ``written`` None)."""
        with self._lock:
            return Observation(
                lines=list(self._lines),
                served_ns=list(self._served_ns),
                visible_after_ns=list(self._visible_after_ns),
                preexisting=self._preexisting,
                polls=self._polls,
                failed_polls=self._answers.failed,
                not_found=self._not_found,
                bytes_received=self._bytes_received,
                reconnects=self._reconnects,
                longest_gap=self._answers.longest,
                started_ns=self._started_ns,
                ended_ns=self._ended_ns,
                copy_read_ns=self._ended_ns,
                notes=list(self._notes),
            )

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
                self._answers.missed(sent)
                if self._answering:
                    self._reconnects += 1  # answers stopped: one break, however many polls it lasts
                self._answering = False
                if self._answers.failed <= 3:
                    self._notes.append(f"poll failed ({exc.__class__.__name__}: {exc}); the run goes on")
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            return
        now = time.time_ns()
        with self._lock:
            self._answers.answered(now, sent)
            self._polls += 1
            self._bytes_received += len(body)
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
                    self._preexisting = len(lines)
                self._lines.extend(lines)
                self._served_ns.extend([now] * len(lines))
                self._visible_after_ns.extend([self._last_sent or sent] * len(lines))
        self._first_done = True
        self._last_sent = sent

    def _new_bytes(self, status: int, body: bytes, content_range: str | None) -> bytes | None:
        """The bytes appended since the last poll, or None when there are none to read."""
        if status in (403, 404) and self._offset == 0:
            self._first_done = True
            with self._lock:
                self._not_found += 1
                if self._not_found == 50:
                    self._notes.append(
                        f"{self.path} answered HTTP {status} for 50 polls: if the file exists, the server serves it "
                        "under another path (pass url_path=)"
                    )
            return None  # nothing written yet: the server has no file to serve
        if status == 416:
            self._restart("shrank or was replaced")  # shorter than the overlap: truncated, or a new, shorter file
            return None
        if status == 206:
            start = _range_start(content_range)
            overlap = self._offset - start if start is not None else -1
            if overlap < 0 or overlap > len(self._seen_tail) or body[:overlap] != self._seen_tail[-overlap:]:
                self._restart("was replaced")
                return None
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
        with self._lock:
            self._notes.append(f"the served file {how} after {len(self._lines)} lines; observation restarted")
        self._offset, self._seen_tail, self._partial = 0, b"", b""
        return

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
