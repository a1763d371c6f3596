"""What the benchmarks share: a result row, best-of-N timing, and the table they print.

Every benchmark measures its baseline in the same run as its figure, so a ratio
compares like with like on whatever machine runs it.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = ROOT / "manifests"


@dataclass
class Result:
    """One row of the table: a figure against its baseline, and whether the goal is met.

    ``met`` is None where the row has no goal (a baseline shown for context) or
    the figure could not be measured.
    """

    benchmark: str
    figure: str
    baseline: str
    ratio: str
    goal: str
    met: bool | None


def best_of(n: int, fn: Callable[[], T]) -> tuple[float, T]:
    """The shortest wall time of ``n`` calls (garbage collected before each), and the last result."""
    best = float("inf")
    results: list[T] = []
    for _ in range(n):
        results.clear()  # free the previous result before timing the next call
        gc.collect()
        start = time.perf_counter()
        results.append(fn())
        best = min(best, time.perf_counter() - start)
    return best, results[-1]


def say(text: str) -> None:
    print(text, flush=True)


def table(results: Iterable[Result]) -> str:
    """The results as a plain-text table with a column each for benchmark, figure, baseline, ratio, goal, met?"""
    head = ("benchmark", "figure", "baseline", "ratio", "goal", "met?")
    rows = [
        (r.benchmark, r.figure, r.baseline, r.ratio, r.goal, "n/a" if r.met is None else ("yes" if r.met else "NO"))
        for r in results
    ]
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()

    return "\n".join([line(head), line(tuple("-" * w for w in widths)), *map(line, rows)])


def main(run: Callable[[], list[Result]]) -> None:
    """Run one benchmark on its own and print its rows as a table."""
    results = run()
    say("")
    say(table(results))
    sys.exit(0 if all(r.met is not False for r in results) else 1)
