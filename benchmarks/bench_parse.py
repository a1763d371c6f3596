"""Parsing speed and memory of ``labkit.read_lines`` on 1,000,000 seed-format lines (about 48 MB).

Why: a notebook re-reads the whole served file on every refresh, so parsing
must stay fast however long the lab has run. The reader is compared, in the
same run and from the same text to a datetime column for every line, with
the two ways a student would write it: a ``datetime.strptime`` loop, and
``pandas.to_datetime`` with an explicit format on the split strings. The
lines are the pod's: ``multicontainer-pod Thu Nov 5 09:03:07 UTC 2026``,
one every 10 s. The producer's unquoted ``$(date)`` collapses the day's
padding to one space, while ``date`` itself pads with two (``Nov  5``);
days 1-9 come in both spellings, alternately.

Goals: at least 15 times faster than the loop, at least 10 times faster than
``pandas.to_datetime``, and the DataFrame at most 60 MB (hostname a category;
the ``raw`` column keeps every line's text as a Python string).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pandas as pd
from benchlib import Result, best_of, main, say

import labkit

LINES = 1_000_000
FORMAT = "%a %b %d %H:%M:%S UTC %Y"
MB = 1e6


def seed_text(n: int = LINES, host: str = "multicontainer-pod") -> str:
    """``n`` lines 10 s apart from 2026-11-01, as ``echo $(hostname) $(date)`` appends them."""
    per_day = 86400 // 10
    clock = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(0, 86400, 10)]
    lines: list[str] = []
    for day in range(-(-n // per_day)):
        d = datetime(2026, 11, 1) + timedelta(days=day)
        head = f"{host} {d:%a %b}"
        tail = f"UTC {d:%Y}"
        days = [f"{d.day}", f"{d.day:2d}"]  # "Nov 5" as the file holds it, "Nov  5" as date prints it
        count = min(per_day, n - len(lines))
        lines += [f"{head} {days[i % 2]} {clock[i]} {tail}" for i in range(count)]
    return "\n".join(lines) + "\n"


def strptime_loop(text: str) -> pd.Series:
    """One line at a time: split off the hostname, ``datetime.strptime`` the rest, then make the column."""
    stamps = [datetime.strptime(line.partition(" ")[2], FORMAT) for line in text.splitlines()]
    return pd.Series(stamps, dtype="datetime64[ns]").dt.tz_localize("UTC")


def split_dates(text: str) -> list[str]:
    return [line.partition(" ")[2] for line in text.splitlines()]


def to_datetime(dates: list[str]) -> pd.DatetimeIndex:
    return pd.to_datetime(dates, format=FORMAT, utc=True)


def run() -> list[Result]:
    say(f"parse: generating {LINES:,} seed-format lines")
    text = seed_text()
    say(f"  {len(text) / MB:.1f} MB, e.g. {text[:47]!r} and {text.splitlines()[1]!r}")

    t_kit, df = best_of(5, lambda: labkit.read_lines(text))
    assert len(df) == LINES and df.attrs["malformed_count"] == 0
    memory = int(df.memory_usage(deep=True).sum())
    per_column = df.memory_usage(deep=True, index=False)
    say(f"  labkit.read_lines:                  {t_kit:.3f} s (best of 5)")
    columns = ", ".join(f"{c} {v / MB:.1f}" for c, v in per_column.items())
    say(f"  DataFrame memory: {memory / MB:.1f} MB ({columns})")
    written_at = df["written_at"]
    del df

    start = time.perf_counter()
    looped = strptime_loop(text)
    t_loop = time.perf_counter() - start
    say(f"  strptime loop:                      {t_loop:.3f} s (once)")

    t_split, dates = best_of(2, lambda: split_dates(text))
    t_pandas, converted = best_of(2, lambda: to_datetime(dates))
    t_pandas_all = t_split + t_pandas
    say(f"  split into dates:                   {t_split:.3f} s (best of 2)")
    say(f"  pandas.to_datetime(format=...):     {t_pandas:.3f} s (best of 2), {t_pandas_all:.3f} s with the split")
    # every method must give the same instants, or the comparison means nothing
    assert (looped.array == written_at.array).all() and (converted == written_at.array).all()

    def ratio(base: float) -> str:
        return f"{base / t_kit:.1f}x faster"

    return [
        Result(
            "parse 1M lines: read_lines vs strptime loop",
            f"{t_kit:.3f} s",
            f"{t_loop:.2f} s",
            ratio(t_loop),
            ">= 15x faster",
            t_loop / t_kit >= 15,
        ),
        Result(
            "parse 1M lines: read_lines vs split + to_datetime",
            f"{t_kit:.3f} s",
            f"{t_pandas_all:.2f} s",
            ratio(t_pandas_all),
            ">= 10x faster",
            t_pandas_all / t_kit >= 10,
        ),
        Result(
            "parse 1M lines: read_lines vs to_datetime alone",
            f"{t_kit:.3f} s",
            f"{t_pandas:.2f} s",
            ratio(t_pandas),
            ">= 10x faster",
            t_pandas / t_kit >= 10,
        ),
        Result(
            "parse 1M lines: DataFrame memory, all columns",
            f"{memory / MB:.1f} MB",
            f"{len(text) / MB:.1f} MB of text",
            f"{memory / len(text):.2f}x the text",
            "<= 60 MB",
            memory <= 60 * MB,
        ),
    ]


if __name__ == "__main__":
    main(run)
