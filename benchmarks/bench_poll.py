"""Cost of one poll of the served file as it grows: 10 KB against 50 MB, incremental against a full GET.

Why: the poller polls every few milliseconds for as long as the lab runs.
If every poll downloaded the whole ``index.html`` (the baseline here), a poll
would get slower and coarser the longer the lab has run. The incremental
poller asks only for the bytes it has not seen (``Range: bytes=N-``, from a
64-byte overlap), so its cost should not depend on the file's size.

How: the tutorial's pod runs on the local engine (Podman); its producer's
file is grown by exec to 10 KB and then to 50 MB of lines. At each size a
``Poller`` is created, its first poll (which reads the whole file) is not
counted, and then ``poll_once()`` is timed call by call through the lab's
port-forward; ``seen().bytes_received`` gives the bytes per poll.

Goal: the incremental poll's cost at 50 MB within 2 times its cost at 10 KB.
"""

from __future__ import annotations

import statistics
import time

from benchlib import MANIFESTS, Result, main, say

import labkit
from labkit.poller import Poller

SIZES = {"10 KB": 10 * 1024, "50 MB": 50 * 1024 * 1024}
POLLS_INCREMENTAL = 300
POLLS_FULL = {"10 KB": 300, "50 MB": 8}  # full GETs of 50 MB are slow; a few suffice
LINE = "bench-poll Thu Nov  5 09:03:07 UTC 2026"


def grow(lab: labkit.Lab, size: int) -> int:
    """Append seed-format lines to the producer's file until it holds about ``size`` bytes; its new size."""
    script = (
        f"f=/var/log/index.html; n=$(( ({size} - $(wc -c < $f)) / {len(LINE) + 1} )); "
        f"[ $n -gt 0 ] && yes '{LINE}' | head -n $n >> $f; wc -c < $f"
    )
    return int(lab.exec(script, shell=True, check=True).stdout)


def poll_cost(port: int, *, incremental: bool, polls: int) -> tuple[float, float]:
    """Median seconds and mean bytes per poll, after a first poll that reads the whole file."""
    poller = Poller(port, "/index.html", poll_interval=0.005, incremental=incremental)
    poller.poll_once()
    first_bytes = poller.seen().bytes_received
    times = []
    for _ in range(polls):
        start = time.perf_counter()
        poller.poll_once()
        times.append(time.perf_counter() - start)
    poller.close()  # stop() is for a started poller; this one was polled by hand
    seen = poller.seen()
    if seen.failed_polls:
        raise RuntimeError(f"{seen.failed_polls} polls failed: {seen.notes}")
    return statistics.median(times), (seen.bytes_received - first_bytes) / polls


def run() -> list[Result]:
    cost: dict[tuple[str, bool], tuple[float, float]] = {}
    with labkit.Lab(MANIFESTS / "multicontainer-pod.yaml", name="bench-poll", engine="podman", progress=False) as lab:
        lab.apply().wait_ready(timeout=120)
        port = lab.port_forward(None).local_port
        for label, size in SIZES.items():
            actual = grow(lab, size)
            say(f"poll: index.html at {label} ({actual:,} bytes)")
            for incremental in (True, False):
                polls = POLLS_INCREMENTAL if incremental else POLLS_FULL[label]
                seconds, per_poll = poll_cost(port, incremental=incremental, polls=polls)
                cost[label, incremental] = seconds, per_poll
                kind = "incremental" if incremental else "full GET   "
                say(f"  {kind}: {seconds * 1e3:8.2f} ms per poll (median of {polls}), {per_poll:,.0f} bytes per poll")

    def ms(key: tuple[str, bool]) -> str:
        return f"{cost[key][0] * 1e3:.2f} ms, {cost[key][1]:,.0f} B"

    inc = cost["50 MB", True][0] / cost["10 KB", True][0]
    full = cost["50 MB", False][0] / cost["10 KB", False][0]
    vs_full = cost["50 MB", False][0] / cost["50 MB", True][0]
    return [
        Result(
            "poll at 50 MB vs 10 KB: incremental",
            ms(("50 MB", True)),
            ms(("10 KB", True)),
            f"{inc:.2f}x",
            "<= 2x",
            inc <= 2,
        ),
        Result(
            "poll at 50 MB vs 10 KB: full GET (baseline)",
            ms(("50 MB", False)),
            ms(("10 KB", False)),
            f"{full:.0f}x",
            "(baseline)",
            None,
        ),
        Result(
            "poll at 50 MB: incremental vs full GET",
            ms(("50 MB", True)),
            ms(("50 MB", False)),
            f"{vs_full:.0f}x faster",
            "(context)",
            None,
        ),
    ]


if __name__ == "__main__":
    main(run)
