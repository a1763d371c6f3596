"""Tests for labkit.lines.read_lines: the parser of the producer's index.html."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from labkit.lines import COLUMNS, read_lines

SEED_LINE = "multicontainer-pod Thu Nov  5 09:03:07 UTC 2026"
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
EXPECTED_DTYPES = {
    "line_no": "int64",
    "hostname": "category",
    "written_at": "datetime64[ns, UTC]",
    "raw": "object",
}


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, *, ns: int = 0
) -> pd.Timestamp:
    return pd.Timestamp(datetime(year, month, day, hour, minute, second), tz="UTC") + pd.Timedelta(ns, unit="ns")


def gnu(t: datetime, *, padded: bool = True, zone: str = "UTC") -> str:
    """``date``'s default output; ``padded=False`` is what ``echo $(date)`` leaves of it."""
    day = f"{t.day:2d}" if padded else str(t.day)
    return f"{t:%a %b} {day} {t:%H:%M:%S} {zone} {t:%Y}"


def assert_schema(df: pd.DataFrame) -> None:
    assert list(df.columns) == list(COLUMNS)
    assert {c: str(df[c].dtype) for c in df.columns} == EXPECTED_DTYPES


# --- GNU date format ---------------------------------------------------------


def test_seed_line_gives_one_row_with_all_columns():
    df = read_lines(SEED_LINE + "\n")
    assert_schema(df)
    assert len(df) == 1
    row = df.iloc[0]
    assert row.line_no == 1
    assert row.hostname == "multicontainer-pod"
    assert row.written_at == utc(2026, 11, 5, 9, 3, 7)
    assert row.raw == SEED_LINE
    assert df.attrs == {"incomplete": "", "malformed": [], "malformed_count": 0}


@pytest.mark.parametrize("padded", [True, False], ids=["date-pads-day", "echo-word-split"])
def test_every_day_of_a_31_day_month(padded):
    stamps = [datetime(2026, 3, day, day % 24, (7 * day) % 60, (13 * day) % 60) for day in range(1, 32)]
    lines = [f"pod {gnu(t, padded=padded)}" for t in stamps]
    if padded:
        assert lines[4] == "pod Thu Mar  5 05:35:05 UTC 2026"
    else:
        assert lines[4] == "pod Thu Mar 5 05:35:05 UTC 2026"
    df = read_lines("\n".join(lines) + "\n")
    assert df.attrs["malformed"] == []
    assert df.line_no.tolist() == list(range(1, 32))
    assert df.written_at.tolist() == [pd.Timestamp(t, tz="UTC") for t in stamps]
    assert df.raw.tolist() == lines


def test_zero_padded_day_is_accepted():
    df = read_lines("pod Thu Nov 05 09:03:07 UTC 2026\n")
    assert df.written_at.tolist() == [utc(2026, 11, 5, 9, 3, 7)]


def test_all_twelve_months():
    stamps = [datetime(2027, m, 28 if m == 2 else 30, 23, 59, 59) for m in range(1, 13)]
    lines = [f"pod {gnu(t)}" for t in stamps]
    assert [line.split()[2] for line in lines] == MONTHS
    df = read_lines("\n".join(lines) + "\n")
    assert df.attrs["malformed_count"] == 0
    assert df.written_at.tolist() == [pd.Timestamp(t, tz="UTC") for t in stamps]


def test_gmt_is_utc():
    df = read_lines("pod Thu Nov  5 09:03:07 GMT 2026\n")
    assert df.written_at.tolist() == [utc(2026, 11, 5, 9, 3, 7)]


def test_weekday_is_a_name_but_not_checked_against_the_date():
    # Nov 5 2026 is a Thursday; strptime does not cross-check %a either
    df = read_lines("pod Wed Nov  5 09:03:07 UTC 2026\npod Xyz Nov  5 09:03:07 UTC 2026\n")
    assert df.written_at.tolist() == [utc(2026, 11, 5, 9, 3, 7)]
    assert df.attrs["malformed"] == [(2, "pod Xyz Nov  5 09:03:07 UTC 2026")]


@pytest.mark.parametrize(
    "date, ok",
    [
        ("Tue Feb 29 12:00:00 UTC 2028", True),
        ("Tue Feb 29 12:00:00 UTC 2000", True),
        ("Thu Feb 29 12:00:00 UTC 2026", False),
        ("Thu Feb 29 12:00:00 UTC 1900", False),
        ("Mon Feb 30 12:00:00 UTC 2028", False),
        ("Mon Apr 31 12:00:00 UTC 2026", False),
        ("Mon Apr  0 12:00:00 UTC 2026", False),
        ("Mon Apr 32 12:00:00 UTC 2026", False),
        ("Mon Apr 30 24:00:00 UTC 2026", False),
        ("Mon Apr 30 25:00:00 UTC 2026", False),
        ("Mon Apr 30 23:60:00 UTC 2026", False),
        ("Mon Apr 30 23:59:60 UTC 2026", False),
        ("Mon Apr 30 23:59:59 UTC 1600", False),
        ("Mon Apr 30 23:59:59 UTC 2300", False),
    ],
)
def test_impossible_dates_and_times_are_malformed(date, ok):
    line = f"pod {date}"
    df = read_lines(line + "\n")
    if ok:
        assert len(df) == 1 and df.attrs["malformed"] == []
        expected = datetime.strptime(date, "%a %b %d %H:%M:%S UTC %Y")
        assert df.written_at.iloc[0] == pd.Timestamp(expected, tz="UTC")
    else:
        assert len(df) == 0
        assert df.attrs["malformed"] == [(1, line)]


@pytest.mark.parametrize("zone", ["CET", "CEST", "EST", "IST", "PST", "utc"])
def test_zone_other_than_utc_is_kept_aside(zone):
    bad = f"pod Thu Nov  5 09:03:07 {zone} 2026"
    df = read_lines(f"{SEED_LINE}\n{bad}\n")
    assert df.line_no.tolist() == [1]
    assert df.attrs["malformed"] == [(2, bad)]
    assert df.attrs["malformed_count"] == 1


# --- ISO-8601 format ----------------------------------------------------------


@pytest.mark.parametrize(
    "fraction, ns",
    [
        ("", 0),
        (".123", 123_000_000),
        (".123456", 123_456_000),
        (".123456789", 123_456_789),
        (",5", 500_000_000),
    ],
)
def test_iso_fraction_digits(fraction, ns):
    df = read_lines(f"pod 2026-11-05T09:03:07{fraction}+00:00\n")
    assert df.attrs["malformed"] == []
    assert df.written_at.iloc[0] == utc(2026, 11, 5, 9, 3, 7, ns=ns)
    assert df.written_at.iloc[0].value % 1_000_000_000 == ns


@pytest.mark.parametrize(
    "suffix, expected",
    [
        ("Z", utc(2026, 11, 5, 9, 3, 7)),
        ("+00:00", utc(2026, 11, 5, 9, 3, 7)),
        ("-00:00", utc(2026, 11, 5, 9, 3, 7)),
        ("+01:00", utc(2026, 11, 5, 8, 3, 7)),
        ("-05:30", utc(2026, 11, 5, 14, 33, 7)),
        ("+0100", utc(2026, 11, 5, 8, 3, 7)),
        ("+14:00", utc(2026, 11, 4, 19, 3, 7)),
    ],
)
def test_iso_offsets_are_converted_to_utc(suffix, expected):
    df = read_lines(f"pod 2026-11-05T09:03:07.000000001{suffix}\n")
    assert df.written_at.tolist() == [expected + pd.Timedelta(1, unit="ns")]


def test_iso_offset_crossing_midnight_and_year():
    df = read_lines("pod 2027-01-01T00:30:00+01:00\npod 2026-12-31T23:30:00-01:00\n")
    assert df.written_at.tolist() == [utc(2026, 12, 31, 23, 30), utc(2027, 1, 1, 0, 30)]


@pytest.mark.parametrize(
    "token",
    [
        "2026-11-05T09:03:07",  # no offset: ambiguous
        "2026-11-05 09:03:07+00:00",  # space instead of T (two tokens)
        "2026-11-05t09:03:07Z",
        "2026-11-05T09:03:07.Z",  # separator without digits
        "2026-11-05T09:03:07.1234567890Z",  # 10 fractional digits
        "2026-11-05T09:03Z",
        "2026-11-05",
        "2026-02-30T09:03:07Z",
        "2026-13-05T09:03:07Z",
        "2026-11-05T24:00:00Z",
        "2026-11-05T09:03:07+25:00",
        "2026-11-05T09:03:07*01:00",
        "2026-11-05T09:03:07.12a+00:00",
        "20261105T090307Z",
    ],
)
def test_malformed_iso_is_kept_aside(token):
    line = f"pod {token}"
    df = read_lines(line + "\n")
    assert len(df) == 0
    assert df.attrs["malformed"] == [(1, line)]


def test_both_formats_mixed():
    text = (
        "pod-a Thu Nov  5 09:03:07 UTC 2026\n"
        "pod-b 2026-11-05T09:03:17.5Z\n"
        "pod-a Thu Nov 5 09:03:27 UTC 2026\n"
        "pod-b 2026-11-05T10:03:37+01:00\n"
    )
    df = read_lines(text)
    assert df.hostname.tolist() == ["pod-a", "pod-b", "pod-a", "pod-b"]
    assert df.written_at.tolist() == [
        utc(2026, 11, 5, 9, 3, 7),
        utc(2026, 11, 5, 9, 3, 17, ns=500_000_000),
        utc(2026, 11, 5, 9, 3, 27),
        utc(2026, 11, 5, 9, 3, 37),
    ]


# --- lines, incomplete tail, malformed lines -----------------------------------


def test_incomplete_last_line_is_excluded_and_kept():
    partial = "multicontainer-pod Thu Nov  5 09:03:1"
    df = read_lines(f"{SEED_LINE}\n{partial}")
    assert df.raw.tolist() == [SEED_LINE]
    assert df.attrs["incomplete"] == partial
    assert df.attrs["malformed"] == []


def test_complete_line_without_newline_is_still_incomplete():
    df = read_lines(SEED_LINE)
    assert len(df) == 0
    assert df.attrs["incomplete"] == SEED_LINE
    assert df.attrs["malformed_count"] == 0
    assert_schema(df)


def test_garbage_lines_are_kept_aside_with_their_line_numbers():
    lines = [
        SEED_LINE,  # 1
        "",  # 2 empty
        "garbage",  # 3 hostname only
        "Thu Nov  5 09:03:07 UTC 2026",  # 4 no hostname (the weekday is taken for it)
        " Thu Nov  5 09:03:07 UTC 2026",  # 5 empty hostname
        "pod Thu Foo  5 09:03:07 UTC 2026",  # 6 unknown month
        "pod Thu Nov  5 9:03:07 UTC 2026",  # 7 unknown layout
        "pod Thu Nov  5 09:03:07 UTC 2026 ",  # 8 trailing space
        "my pod Thu Nov  5 09:03:07 UTC 2026",  # 9 space in the hostname
        "pod\tx Thu Nov  5 09:03:07 UTC 2026",  # 10 tab in the hostname
        "pod  Thu Nov  5 09:03:07 UTC 2026",  # 11 two spaces after the hostname
        "pod-2 Fri Nov  6 10:00:00 UTC 2026",  # 12
        "<html><body>",  # 13
    ]
    df = read_lines("\n".join(lines) + "\n")
    assert df.line_no.tolist() == [1, 12]
    assert df.hostname.tolist() == ["multicontainer-pod", "pod-2"]
    assert df.written_at.tolist() == [utc(2026, 11, 5, 9, 3, 7), utc(2026, 11, 6, 10)]
    expected_bad = [(i, lines[i - 1]) for i in (2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13)]
    assert df.attrs["malformed"] == expected_bad
    assert df.attrs["malformed_count"] == 11
    assert all(type(item) is tuple for item in df.attrs["malformed"])


def test_line_numbers_count_malformed_lines():
    lines = ["junk", SEED_LINE, "", "", SEED_LINE.replace("09:03:07", "09:03:17"), "x y", SEED_LINE]
    df = read_lines("\n".join(lines) + "\n")
    assert df.line_no.tolist() == [2, 5, 7]
    assert [n for n, _ in df.attrs["malformed"]] == [1, 3, 4, 6]
    assert df.index.tolist() == [0, 1, 2]


def test_empty_input_has_columns_and_dtypes():
    for text in ("", b""):
        df = read_lines(text)
        assert len(df) == 0
        assert_schema(df)
        assert df.attrs == {"incomplete": "", "malformed": [], "malformed_count": 0}


def test_only_a_newline_is_one_empty_malformed_line():
    df = read_lines("\n")
    assert len(df) == 0
    assert_schema(df)
    assert df.attrs == {"incomplete": "", "malformed": [(1, "")], "malformed_count": 1}


def test_all_lines_malformed_keeps_schema():
    df = read_lines("a\nb\n")
    assert_schema(df)
    assert df.attrs["malformed"] == [(1, "a"), (2, "b")]


def test_text_that_is_neither_str_nor_bytes_is_refused():
    with pytest.raises(TypeError):
        read_lines(42)  # type: ignore[arg-type]


# --- encodings and line endings ------------------------------------------------------


def test_crlf_line_endings():
    df = read_lines(f"{SEED_LINE}\r\npod 2026-11-05T09:03:07Z\r\n")
    assert df.raw.tolist() == [SEED_LINE, "pod 2026-11-05T09:03:07Z"]
    assert df.written_at.tolist() == [utc(2026, 11, 5, 9, 3, 7)] * 2


def test_only_one_carriage_return_is_stripped():
    df = read_lines(f"{SEED_LINE}\r\r\n{SEED_LINE}\r\n")
    assert df.line_no.tolist() == [2]
    assert df.attrs["malformed"] == [(1, SEED_LINE + "\r")]


def test_bytes_input():
    df = read_lines((SEED_LINE + "\n").encode())
    assert df.raw.tolist() == [SEED_LINE]
    assert df.written_at.tolist() == [utc(2026, 11, 5, 9, 3, 7)]
    assert read_lines(bytearray(b"pod 2026-11-05T09:03:07Z\n")).hostname.tolist() == ["pod"]


def test_bytes_with_invalid_utf8_are_replaced_not_fatal():
    data = (
        b"\xff\xfe garbage\n"
        + b"h\xc3st Thu Nov  5 09:03:07 UTC 2026\n"  # truncated sequence inside the hostname
        + SEED_LINE.encode()
        + b"\n"
        + b"cut in the middle \xe2\x82"
    )
    df = read_lines(data)
    assert df.line_no.tolist() == [2, 3]
    assert df.hostname.tolist() == ["h\ufffdst", "multicontainer-pod"]
    assert df.attrs["malformed"] == [(1, "\ufffd\ufffd garbage")]
    assert df.attrs["incomplete"] == "cut in the middle \ufffd"


def test_non_ascii_hostname_in_str_input():
    df = read_lines("hôte-é Thu Nov  5 09:03:07 UTC 2026\nπ 2026-11-05T09:03:07Z\n")
    assert df.hostname.tolist() == ["hôte-é", "π"]
    assert df.written_at.tolist() == [utc(2026, 11, 5, 9, 3, 7)] * 2


# --- hostname column ---------------------------------------------------------------------


def test_hostname_is_categorical_with_sorted_labels():
    hosts = ["web-2", "web-10", "a", "web-2", "multicontainer-pod", "a" * 40, "a"]
    df = read_lines("".join(f"{h} 2026-11-05T09:03:07Z\n" for h in hosts))
    assert isinstance(df.hostname.dtype, pd.CategoricalDtype)
    assert df.hostname.tolist() == hosts
    assert df.hostname.cat.categories.tolist() == sorted(set(hosts))
    assert df.hostname.value_counts()["web-2"] == 2


def test_very_long_hostname_still_parsed():
    long_host = "x" * 300
    df = read_lines(f"{long_host} {gnu(datetime(2026, 1, 1))}\nshort 2026-01-01T00:00:00Z\n")
    assert df.hostname.tolist() == [long_host, "short"]
    assert df.written_at.tolist() == [utc(2026, 1, 1)] * 2


def test_attrs_survive_pandas_operations():
    df = read_lines(f"junk\n{SEED_LINE}\n")
    subset = df[df.hostname == "multicontainer-pod"].copy()
    assert subset.attrs["malformed"] == [(1, "junk")]
    assert subset.attrs["malformed_count"] == 1


# --- large input against a slow reference ----------------------------------------------------

_REF_GNU = re.compile(
    r"(?P<host>[^\s]+) (?P<date>(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) [A-Z][a-z]{2} (?: \d|\d{1,2}) "
    r"\d\d:\d\d:\d\d (?:UTC|GMT) \d{4})"
)
_REF_ISO = re.compile(
    r"(?P<host>[^\s]+) (?P<main>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:[.,](?P<frac>\d{1,9}))?"
    r"(?P<off>Z|[+-]\d\d:?\d\d)"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def reference(text: str) -> tuple[list[tuple[int, str, int, str]], list[tuple[int, str]]]:
    """One line at a time with regular expressions and datetime.strptime."""
    rows, bad = [], []
    for line_no, line in enumerate(text.split("\n")[:-1], 1):
        try:
            if m := _REF_GNU.fullmatch(line):
                t = datetime.strptime(m["date"].replace("GMT", "UTC"), "%a %b %d %H:%M:%S UTC %Y")
                t, frac = t.replace(tzinfo=UTC), 0
            elif m := _REF_ISO.fullmatch(line):
                t = datetime.strptime(m["main"] + m["off"], "%Y-%m-%dT%H:%M:%S%z")
                frac = int((m["frac"] or "0").ljust(9, "0"))
            else:
                raise ValueError(line)
            if t.second == 60:  # leap second: strptime takes it, datetime64 cannot
                raise ValueError(line)
        except ValueError:
            bad.append((line_no, line))
            continue
        ns = (t - _EPOCH) // timedelta(microseconds=1) * 1000 + frac
        rows.append((line_no, m["host"], ns, line))
    return rows, bad


def generate(n: int, seed: int) -> str:
    rnd = random.Random(seed)
    hosts = ["multicontainer-pod", "producer-7f9c", "a", "node-with-a-rather-long-name-0123456789"]
    garbage = [
        "",
        "oops",
        "pod Thu Feb 30 09:03:07 UTC 2026",
        "pod Thu Nov  5 25:00:00 UTC 2026",
        "pod Thu Nov  5 09:03:07 CET 2026",
        "pod Thu Xyz  5 09:03:07 UTC 2026",
        "pod 2026-11-05T09:03:07",
        "pod 2026-02-29T09:03:07Z",
        " Thu Nov  5 09:03:07 UTC 2026",
    ]
    start = datetime(2024, 1, 1)
    out = []
    for _ in range(n):
        kind = rnd.random()
        host = rnd.choice(hosts)
        t = start + timedelta(seconds=rnd.randrange(3 * 366 * 86400))
        if kind < 0.02:
            out.append(rnd.choice(garbage))
        elif kind < 0.45:
            out.append(f"{host} {gnu(t, padded=True, zone=rnd.choice(['UTC', 'GMT']))}")
        elif kind < 0.80:
            out.append(f"{host} {gnu(t, padded=False)}")
        else:
            digits = rnd.choice([0, 1, 3, 6, 9])
            frac = "." + "".join(rnd.choice("0123456789") for _ in range(digits)) if digits else ""
            off = rnd.choice(["Z", "+00:00", "+01:00", "-07:30", "+0530"])
            out.append(f"{host} {t:%Y-%m-%dT%H:%M:%S}{frac}{off}")
    return "\n".join(out) + "\n"


def test_large_input_matches_slow_reference():
    text = generate(100_000, seed=20261105)
    df = read_lines(text)
    rows, bad = reference(text)
    assert len(rows) > 97_000 and len(bad) > 1_000
    assert df.attrs["malformed"] == bad
    assert df.attrs["malformed_count"] == len(bad)
    assert df.line_no.tolist() == [r[0] for r in rows]
    assert df.hostname.astype(object).tolist() == [r[1] for r in rows]
    assert np.array_equal(df.written_at.array.asi8, np.array([r[2] for r in rows], dtype=np.int64))
    assert df.raw.tolist() == [r[3] for r in rows]
    assert_schema(df)


# --- the vectorised paths: blocks, threads, packed hostnames ------------------------------------


@pytest.mark.parametrize("threads", [1, 2])
def test_small_blocks_and_pieces_match_reference(monkeypatch, threads):
    """Lines and bytes are processed in blocks (in parallel); their seams must not show."""
    import labkit.lines as lines_module

    monkeypatch.setattr(lines_module, "_BLOCK_LINES", 7)
    monkeypatch.setattr(lines_module, "_BLOCK_BYTES", 61)
    monkeypatch.setattr(lines_module, "_THREADS", threads)
    text = generate(3_000, seed=threads)
    df = read_lines(text)
    rows, bad = reference(text)
    assert df.attrs["malformed"] == bad
    assert df.line_no.tolist() == [r[0] for r in rows]
    assert df.hostname.astype(object).tolist() == [r[1] for r in rows]
    assert np.array_equal(df.written_at.array.asi8, np.array([r[2] for r in rows], dtype=np.int64))
    assert df.raw.tolist() == [r[3] for r in rows]


def test_non_ascii_text_in_small_pieces(monkeypatch):
    import labkit.lines as lines_module

    monkeypatch.setattr(lines_module, "_BLOCK_BYTES", 5)
    lines = [f"hôte-{i % 3}-é {gnu(datetime(2026, 11, 5, 9, 3, i))}" for i in range(40)]
    df = read_lines("\n".join(lines) + "\n")
    assert df.attrs["malformed"] == []
    assert df.raw.tolist() == lines
    assert df.hostname.cat.categories.tolist() == ["hôte-0-é", "hôte-1-é", "hôte-2-é"]


@pytest.mark.parametrize("length", [1, 7, 8, 9, 16, 17, 63, 64, 65, 70])
def test_control_or_space_anywhere_in_the_hostname_is_malformed(length):
    """Hostnames are checked for whitespace eight bytes at a time (up to 64 bytes), one by one beyond."""
    date = gnu(datetime(2026, 11, 5, 9, 3, 7), padded=False)
    good = "h" * length
    bad = [good[:k] + c + good[k + 1 :] for k in range(length) for c in ("\t", "\x01", "\x1f", "\x0b")]
    bad += [good[:k] + " " + good[k + 1 :] for k in range(1, length)]  # a space splits the hostname
    lines = [f"{good} {date}"] + [f"{h} {date}" for h in bad] + [f"{good}\x7f {date}"]
    df = read_lines("\n".join(lines) + "\n")
    assert df.line_no.tolist() == [1, len(lines)]
    assert df.hostname.tolist() == [good, good + "\x7f"]  # DEL is not whitespace
    assert df.attrs["malformed_count"] == len(bad)


def test_hostnames_differing_late_or_in_length_are_told_apart():
    hosts = ["abcdefgh", "abcdefgh1", "abcdefgh2", "abcdefghabcdefgh", "abcdefghabcdefgx", "x" * 64, "x" * 63]
    hosts += ["x" * 65]  # past the packed path: the whole frame takes the per-line one
    stamps = [gnu(datetime(2026, 11, 5, 9, 3, s)) for s in range(len(hosts))]
    for chosen in (hosts[:-1], hosts):
        text = "".join(
            f"{h} {t}\n{h} 2026-11-05T09:03:07Z\n" for h, t in zip(chosen, stamps[: len(chosen)], strict=True)
        )
        df = read_lines(text)
        assert df.attrs["malformed"] == []
        assert df.hostname.tolist() == [h for h in chosen for _ in range(2)]
        assert df.hostname.cat.categories.tolist() == sorted(chosen)


def test_one_hostname_throughout_gives_one_category():
    df = read_lines("".join(f"pod {gnu(datetime(2026, 11, 5, 9, 3, s))}\n" for s in range(50)))
    assert df.hostname.cat.categories.tolist() == ["pod"]
    assert (df.hostname == "pod").all()


def test_lone_surrogates_survive_in_malformed_lines_and_hostnames():
    df = read_lines("not a line \udc80\nh\udc80 2026-11-05T09:03:07Z\n")
    assert df.attrs["malformed"] == [(1, "not a line \udc80")]
    assert df.hostname.tolist() == ["h\udc80"]
