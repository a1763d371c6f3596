"""The in-pod probe: watch the served file from inside the serving container.

Through a port-forward, ``served_at`` is stamped by this machine's clock while
``written_at`` comes from the pod's, so on a cluster every latency carries
the uncertainty of the clock offset. The probe removes that term: a small
shell loop, run by exec in the serving container, fetches the file from
``127.0.0.1`` with ``curl`` and stamps each fetch with ``date +%s%N``, the
pod's own clock, the one the producer stamps lines with.

The loop asks only for the bytes it has not seen (``Range: bytes=N-``) and
prints one record per fetch: when it was sent, when the answer was complete,
the HTTP status and how many bytes of the file have been served so far. The
lines themselves are matched afterwards against the producer's copy of the
file by their byte offsets, so the probe's output stays small however long
the lines are. As with the port-forward poller, the producer's copy is read
first and one more fetch follows it, so every line in that copy must have
been served by the end. :func:`observe` returns an
:class:`~labkit.observation.Observation`, as the poller does.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace

import numpy as np

from labkit.engines.base import ExecResult
from labkit.errors import FetchError, LabkitError, PodGone, ProbeUnavailable
from labkit.latency import wait_for_end
from labkit.observation import Answers, Observation
from labkit.settings import MeasureSettings

__all__ = ["PROBE_SCRIPT", "Fetch", "observation_from", "observe", "parse_records"]

# Arguments: port, URL path, seconds between fetches, a budget in ms after which the loop
# ends on its own (a host that vanished must not leave it running), how many new lines
# to wait for (0: no count), and the path of the stop file.  It creates "$stop.reached"
# once that many new lines were served, and ends after one more fetch once "$stop" exists.
# Each record: SENT_NS RECEIVED_NS STATUS START END MD5, where bytes START..END of the
# file came in this fetch (MD5 of those bytes, "-" for none).  A file found shorter than
# what was seen (416 with a smaller total) restarts at 0, printed as START = END = 0.
PROBE_SCRIPT = r"""
port=$1 path=$2 every=$3 budget_ms=$4 want=$5 stop=$6
command -v curl >/dev/null 2>&1 || { echo "labkit-probe: curl not found" >&2; exit 69; }
body=$(mktemp /tmp/labkit-probe-XXXXXX) || exit 70
trap 'rm -f "$body" "$stop" "$stop.reached"' EXIT
trap 'exit 143' INT TERM
url="http://127.0.0.1:${port}${path}"
size=0 new=0 answered=0 last=0
end=$(( $(date +%s%N) + budget_ms * 1000000 ))
while [ "$last" = 0 ]; do
    [ -e "$stop" ] && last=1
    sent=$(date +%s%N)
    [ "$sent" -lt "$end" ] || last=1
    res=$(curl -s --connect-timeout 2 -m 10 -o "$body" -r "${size}-" -H 'Cache-Control: no-cache' \
        -w '%{http_code} %{size_download} %header{content-range}' "$url") || res="000 0"
    got=$(date +%s%N)
    set -- $res
    status=$1 bytes=$2 total=${4#*/}
    start=$size sum=-
    case $status in
        206) size=$((size + bytes)) ;;
        200) start=0 size=$bytes ;;
        416) case $total in ''|*[!0-9]*) ;; *) [ "$total" -ge "$size" ] || start=0 size=0 ;; esac ;;
    esac
    case $status in
        200|206) if [ "$bytes" -gt 0 ]; then sum=$(md5sum < "$body"); sum=${sum%% *}; fi ;;
    esac
    echo "$sent $got $status $start $size $sum"
    case $status in
        200|206)
            if [ "$answered" = 1 ] && [ "$want" -gt 0 ] && [ "$new" -lt "$want" ]; then
                new=$((new + $(tr -cd '\n' < "$body" | wc -c)))
                [ "$new" -lt "$want" ] || : > "$stop.reached"
            fi
            answered=1 ;;
        404|403|416) answered=1 ;;
    esac
    [ "$last" = 1 ] || sleep "$every"
done
"""

# Seconds between the host's looks at the probe's progress when waiting for a number of lines.
_CHECK_EVERY = 0.5
# Seconds to wait for the probe to end after it was told to stop because of an error or Ctrl-C.
_STOP_GRACE = 15


@dataclass(frozen=True)
class Fetch:
    """One fetch of the probe, on the pod's clock: bytes ``start..end`` of the file came in it.

    ``md5`` is the hex digest of those bytes, or None when none came.
    """

    sent_ns: int
    received_ns: int
    status: int
    start: int
    end: int
    md5: str | None = None


def parse_records(text: str) -> list[Fetch]:
    """The probe's output, one :class:`Fetch` per record line."""
    fetches = []
    for line in text.splitlines():
        parts = line.split()
        ok = len(parts) == 6 and all(p.isdigit() for p in parts[:5])
        ok = ok and (parts[5] == "-" or (len(parts[5]) == 32 and all(c in "0123456789abcdef" for c in parts[5])))
        if not ok:
            raise FetchError(f"the in-pod probe printed {line!r}, not 'SENT_NS RECEIVED_NS STATUS START END MD5'")
        sent, got, status, start, end = (int(p) for p in parts[:5])
        fetches.append(Fetch(sent, got, status, start, end, None if parts[5] == "-" else parts[5]))
    return fetches


def observation_from(fetches: Sequence[Fetch], written: bytes, later: bytes | None = None) -> Observation:
    """Which line of ``written`` (the producer's copy, as bytes) each fetch served first.

    A line is served by the first fetch whose bytes reach the end of the line;
    it became visible after the fetch before that one was sent. Lines already
    there at the first answered fetch were written before anyone watched.
    Every fetch's bytes are compared (by MD5) with the producer's file at the
    same place, as read again after the probe ended (``later``, which the
    last fetches cannot have outrun), so a server that serves another file,
    or a file replaced behind the probe, does not count as serving the lines.
    The observation returned holds what was served; its ``written`` is None.
    """
    reference = written if later is None else later
    answered = [f for f in fetches if f.status in (200, 206, 416) or (f.status in (403, 404) and f.end == 0)]
    answers = Answers(fetches[0].sent_ns if fetches else 0)
    for f in fetches:
        if f.status in (200, 206, 416, 403, 404):
            answers.answered(f.received_ns, f.sent_ns)
        else:
            answers.missed(f.sent_ns)
    if fetches:
        answers.finish(fetches[-1].received_ns)
    failed = len(fetches) - len(answered)
    notes: list[str] = []
    if failed:
        notes.append(f"{failed} fetches of the in-pod probe failed (curl could not connect or got an error page)")
    restart = max((k for k in range(1, len(answered)) if answered[k].start < answered[k - 1].end), default=0)
    if restart:
        notes.append(
            f"the served file shrank or was replaced after {restart} fetches; observation restarted from there"
        )
    use = answered[restart:]
    for k, f in enumerate(use):
        if f.md5 is not None and (
            f.end > len(reference) or hashlib.md5(reference[f.start : f.end]).hexdigest() != f.md5
        ):
            notes.append(
                f"the probe was served bytes {f.start}-{f.end} that differ from the producer's file there: the "
                "server serves another file (check url_path=) or the file was replaced; they do not count as served"
            )
            use = use[:k]
            break
    lines: list[str] = []
    served_ns: list[int] = []
    visible_after_ns: list[int] = []
    preexisting = 0
    if use:
        raws = written.split(b"\n")[:-1]  # the bytes after the last newline are not a line yet
        ends = np.cumsum([len(r) + 1 for r in raws], dtype=np.int64)
        reached = np.maximum.accumulate(np.array([f.end for f in use], dtype=np.int64))
        first = np.searchsorted(reached, ends, side="left")
        for raw, k in zip(raws, first.tolist(), strict=True):
            if k >= len(use):
                break  # this line and those after it were never served
            lines.append(raw.removesuffix(b"\r").decode("utf-8", "replace"))
            served_ns.append(use[k].received_ns)
            before = use[k - 1] if k else answered[restart - 1] if restart else use[0]
            visible_after_ns.append(before.sent_ns)
            preexisting += k == 0 and not restart
    return Observation(
        lines=lines,
        served_ns=served_ns,
        visible_after_ns=visible_after_ns,
        preexisting=preexisting,
        polls=len(answered),
        failed_polls=failed,
        not_found=sum(f.status in (403, 404) for f in answered),
        longest_gap=answers.longest,
        started_ns=answers.started_ns,
        ended_ns=fetches[-1].received_ns if fetches else 0,
        notes=notes,
    )


def observe(
    run: Callable[[list[str], float], ExecResult],
    read_written: Callable[[], bytes],
    *,
    port: int,
    path: str,
    settings: MeasureSettings,
    exists: Callable[[str], bool],
    touch: Callable[[str], object],
    tick: Callable[[int | None, int | None], None] | None = None,
    clock: Callable[[], int] | None = None,
) -> Observation:
    """Run the probe for as long as ``settings`` ask, and return what it saw.

    ``run(argv, timeout)`` execs in the serving container; ``exists`` and
    ``touch`` look at and create files there; ``read_written()`` returns the
    producer's copy of the file; ``clock()`` reads the pod's clock (ns), just
    before that copy is read, so silence is measured up to that moment.
    ``tick(None, None)`` is called while waiting (the probe counts no lines
    until it ends) and may raise :class:`~labkit.errors.PodGone`. Ctrl-C and
    a pod that went away end observation early, with what the probe had
    seen when that can be read. The producer's file is read once more at the
    end, to check the bytes of every fetch against.
    """
    _check_tools(run)
    stop = f"/tmp/labkit-probe-{uuid.uuid4().hex}.stop"
    lines = settings.lines
    budget = settings.time_limit + 60
    argv = [
        "sh",
        "-c",
        PROBE_SCRIPT,
        "labkit-probe",
        str(port),
        path,
        f"{settings.poll_interval:.6f}",
        str(int(budget * 1000)),
        str(lines or 0),
        stop,
    ]
    outcome: dict[str, object] = {}

    def probe() -> None:
        try:
            outcome["result"] = run(argv, budget + 30)
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=probe, name="labkit-probe", daemon=True)
    started = time.monotonic()
    thread.start()
    notes: list[str] = []
    written = b""
    read_at = 0
    try:
        ended = wait_for_end(
            settings,
            lambda: 0,
            lambda: 0,
            None if tick is None else lambda seen, failed: tick(None, None),
            notes,
            reached=lambda: not thread.is_alive() or (lines is not None and exists(stop + ".reached")),
            every=_CHECK_EVERY if lines is not None else 0.1,
        )
        if ended in ("done", "time limit") and not thread.is_alive() and tick is not None:
            try:
                tick(None, None)  # the probe ended early: a pod that went is the likely reason
            except PodGone as exc:
                notes.append(f"observation ended early: {exc}")
                ended = "pod gone"
        if ended in ("done", "time limit") and thread.is_alive():
            read_at = clock() if clock is not None else 0
            written = read_written()
            touch(stop)
        elif thread.is_alive():
            with suppress(LabkitError):  # the pod may be going; the loop there ends with it
                touch(stop)
    except BaseException:
        # An error or Ctrl-C: tell the loop in the container to end, whatever became of its exec;
        # a failure to tell it must not hide the error that brought us here.
        with suppress(LabkitError):
            touch(stop)
        thread.join(_STOP_GRACE)
        raise
    thread.join(budget + 40 if ended in ("done", "time limit") else _STOP_GRACE)
    elapsed = time.monotonic() - started
    result = outcome.get("result")
    if ended in ("interrupted", "pod gone"):
        seen = _partial(result, read_written)
        return replace(seen, ended=ended, elapsed=elapsed, notes=[*notes, *seen.notes])
    if not (isinstance(result, ExecResult) and result.returncode == 0) and not written:
        # The exec ended early (its client was killed, the stream broke): the loop may still run there.
        with suppress(LabkitError):
            touch(stop)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    if not isinstance(result, ExecResult):
        raise FetchError("the in-pod probe did not finish; its exec is still running in the serving container")
    if result.returncode != 0:
        raise FetchError(
            f"the in-pod probe failed with exit code {result.returncode}: {result.stderr.strip()[:300]}; "
            "measure through the port-forward instead (the default)"
        )
    later = read_written()  # what every fetch, the last ones too, must agree with
    if not written:
        written = later  # the probe ended on its own budget
    if not later.startswith(written):
        notes.append("the producer's file changed other than by appending while the probe stopped")
    seen = observation_from(parse_records(result.stdout), written, later)
    return replace(
        seen,
        written=written.decode("utf-8", "replace"),
        ended=ended,
        elapsed=elapsed,
        copy_read_ns=read_at,
        notes=[*notes, *seen.notes],
    )


def _check_tools(run: Callable[[list[str], float], ExecResult]) -> None:
    """Raise :class:`~labkit.errors.ProbeUnavailable` unless the serving container has curl and a date with ns."""
    tools = run(["sh", "-c", "command -v curl >/dev/null || exit 3; date +%s%N"], 30)
    if tools.returncode == 3:
        raise ProbeUnavailable(
            "the serving container has no curl, which the in-pod probe needs to fetch the file from inside "
            "the pod; measure through the port-forward instead (the default), or serve with an image that "
            "has curl (the official nginx image does)"
        )
    if tools.returncode != 0:
        raise ProbeUnavailable(
            f"the serving container cannot run the in-pod probe's tools (sh -c exited {tools.returncode}: "
            f"{tools.stderr.strip()[:200]!r}); measure through the port-forward instead (the default)"
        )
    if not tools.stdout.strip().isdigit():
        raise ProbeUnavailable(
            "the serving container's date cannot print nanoseconds (date +%s%N gave "
            f"{tools.stdout.strip()[:40]!r}, as busybox's does), which the in-pod probe stamps fetches with; "
            "measure through the port-forward instead (the default)"
        )


def _partial(result: object, read_written: Callable[[], bytes]) -> Observation:
    """What the probe saw before it was stopped early, when its records and the producer's copy can still be read.

    The copy is not kept (``written`` None): read after the stop, it may
    hold lines written after observation ended.
    """
    seen = Observation()
    if isinstance(result, ExecResult) and result.returncode == 0:
        with suppress(LabkitError, KeyboardInterrupt):
            written = read_written()
            seen = observation_from(parse_records(result.stdout), written, written)
    if not seen.polls:
        seen = replace(seen, notes=[*seen.notes, "the in-pod probe's records could not be read after it was stopped"])
    return seen
