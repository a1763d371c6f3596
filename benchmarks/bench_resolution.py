"""Resolution of the write-to-serve latency on the local engine, with the high-resolution pod.

Why: the seed's ``$(date)`` has one-second resolution, so its latencies say
little below a second. The high-resolution pod stamps each line with
nanoseconds; with a 50 ms cadence and 5 ms polls for 30 s, the p50 latency
should be known to within a few milliseconds. What remains is the poll
interval and the clock uncertainty (zero on Podman: one host clock), which
the report's bounds carry.

Baseline: the seed pod's own resolution, 1 s (its timestamps' granularity).

Goal: the p50's bounds no wider than 10 ms (``p50_high - p50_low``).
"""

from __future__ import annotations

import math

from benchlib import MANIFESTS, Result, main, say

import labkit

DURATION = 30
POLL = 0.005
INTERVAL = "0.05"


def run() -> list[Result]:
    manifest = MANIFESTS / "multicontainer-pod-hires.yaml"
    env: dict[str, dict[str, object]] = {"producer": {"INTERVAL": INTERVAL}}
    with labkit.Lab(manifest, name="bench-resolution", engine="podman", env=env, progress=False) as lab:
        lab.apply().wait_ready(timeout=120)
        say(f"resolution: {manifest.name}, INTERVAL={INTERVAL} s, {POLL * 1e3:g} ms polls for {DURATION} s")
        report = lab.measure(duration=DURATION, poll_interval=POLL)
    say("\n".join("  " + line for line in str(report).splitlines()))

    s = report.summary
    p50 = s["p50"] * 1e3
    low, high = s["p50_low"] * 1e3, s["p50_high"] * 1e3
    width = high - low
    say(
        f"  p50 {p50:.2f} ms in [{low:.2f}, {high:.2f}] ms: bounds {width:.2f} ms wide, "
        f"over {int(s['count'])} lines observed"
    )
    return [
        Result(
            "p50 write-to-serve latency, hires pod: bounds",
            f"{p50:.1f} ms in [{low:.1f}, {high:.1f}]",
            "1000 ms (seed resolution)",
            f"{width:.1f} ms wide, {1000 / width:.0f}x narrower" if width > 0 else f"{width:.1f} ms wide",
            "<= 10 ms wide",
            bool(width <= 10) if not math.isnan(width) else None,
        ),
    ]


if __name__ == "__main__":
    main(run)
