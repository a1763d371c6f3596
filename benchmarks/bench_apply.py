"""Time from applying the tutorial's pod on the local engine to its first served line (p50 of 5 runs).

Why: this is what a student waits for at the start of every lab (and what
every notebook run and every engine test pays). It is timed from just before
``apply()``, through ``wait_ready()``, to the first ``fetch()`` that returns a
complete line (polled every 20 ms; the producer writes its first line at once).

Baseline: ``podman kube play`` of the manifest alone cannot be timed through
the kit's API, so the baseline is ``apply()`` + ``wait_ready()``: the ratio
shows what port-forwarding, nginx and the first write add on top.
"""

from __future__ import annotations

import statistics
import time

from benchlib import MANIFESTS, Result, main, say

import labkit
from labkit.errors import FetchError, PortError

RUNS = 5
MANIFEST = MANIFESTS / "multicontainer-pod.yaml"


def one_run(i: int) -> tuple[float, float]:
    """Seconds to ready and to the first served line, both from just before apply."""
    with labkit.Lab(MANIFEST, name=f"bench-apply-{i}", engine="podman", progress=False) as lab:
        start = time.perf_counter()
        lab.apply().wait_ready(timeout=120)
        ready = time.perf_counter() - start
        while True:
            try:
                if "\n" in lab.fetch(timeout=5):
                    break
            except (FetchError, PortError):
                pass  # no file yet, or nginx not listening yet
            if time.perf_counter() - start > 60:
                raise TimeoutError("no line served within 60 s of apply")
            time.sleep(0.02)
        return ready, time.perf_counter() - start


def run() -> list[Result]:
    say(f"apply: {MANIFEST.name} on podman, {RUNS} runs")
    ready, served = [], []
    for i in range(RUNS):
        r, s = one_run(i)
        ready.append(r)
        served.append(s)
        say(f"  run {i + 1}: ready after {r:.3f} s, first line served after {s:.3f} s")
    p50_ready, p50_served = statistics.median(ready), statistics.median(served)
    say(f"  p50: ready {p50_ready:.3f} s, first line {p50_served:.3f} s")
    extra = (p50_served - p50_ready) * 1e3
    return [
        Result(
            "apply to first served line (p50 of 5)",
            f"{p50_served:.3f} s",
            f"{p50_ready:.3f} s (apply+ready)",
            f"{p50_served / p50_ready:.3f}x (+{extra:.0f} ms)",
            "(measured)",
            None,
        ),
    ]


if __name__ == "__main__":
    main(run)
