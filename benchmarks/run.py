"""Run every benchmark in this directory and print one table of their figures, baselines, ratios and goals.

``make bench`` runs this. Each benchmark also runs on its own, e.g.
``python benchmarks/bench_parse.py``. A missed goal is reported in the table
and in a closing line; the exit code is 2 only when a benchmark could not
run (its row then says why), else 0.
"""

from __future__ import annotations

import importlib
import sys
import time
import traceback

from benchlib import Result, say, table

BENCHMARKS = [
    "bench_parse",
    "bench_poll",
    "bench_resolution",
    "bench_probe",
    "bench_apply",
    "bench_watch",
    "bench_class",
]


def main() -> int:
    started = time.perf_counter()
    results: list[Result] = []
    crashed = False
    for name in BENCHMARKS:
        say(f"== {name}")
        t0 = time.perf_counter()
        try:
            results += importlib.import_module(name).run()
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            results.append(Result(name, f"error: {type(exc).__name__}: {exc}"[:80], "", "", "", False))
            crashed = True
        say(f"   ({time.perf_counter() - t0:.1f} s)\n")
    say(table(results))
    say(f"\nall benchmarks: {time.perf_counter() - started:.0f} s")
    missed = sum(r.met is False for r in results)
    if missed:
        say(f"goals missed: {missed} (see the table)")
    # A missed goal is a finding, not a failure of the run; a benchmark that crashed is.
    return 2 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
