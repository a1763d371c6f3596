"""Read the lines the lab's producer appends to ``index.html`` into a DataFrame.

The producer container of the sidecar pod runs::

    while true; do echo $(hostname) $(date) >> /var/log/index.html; sleep 10; done

so every line is ``HOSTNAME DATE``.  Two date spellings are understood, and
they may be mixed in one file:

* GNU ``date`` default output in UTC, e.g. ``Thu Nov  5 09:03:07 UTC 2026``.
  ``date`` pads days 1-9 with a space (``Nov  5``), but the *unquoted*
  ``$(date)`` of the producer is word-split by the shell and ``echo`` joins the
  words with single spaces, so the file really holds ``Nov 5``.  Both
  spellings are accepted, as is a zero-padded ``Nov 05``.  The zone must be
  ``UTC`` or ``GMT``: any other abbreviation (``CET``, ``IST``, ``CST``...) is
  ambiguous and the line is treated as malformed rather than guessed.
* ISO-8601 as written by a high-resolution producer, e.g.
  ``2026-11-05T09:03:07.123456789+00:00``: 0 to 9 fractional digits (after
  ``.`` or the ``,`` that ``date --iso-8601=ns`` uses) and an offset ``Z``,
  ``+HH:MM`` or ``+HHMM``.  A time without an offset is rejected (ambiguous).

The file keeps growing while it is read, so the text after the last ``"\\n"``
is a line still being written; it is not parsed but handed back in
``df.attrs["incomplete"]`` so a caller can prepend it to the next chunk.

Parsing is vectorised with NumPy on the UTF-8 bytes of the text, because a
notebook re-reads the whole file on every refresh: a million lines take about
half a second on a small machine, where a ``datetime.strptime`` loop takes
several seconds.  The only per-line Python work is ``str.split`` making the
line strings the ``raw`` column holds; hostnames are grouped on their bytes
and made into strings once per distinct name.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import numpy as np
import pandas as pd

from labkit.errors import ParseError

__all__ = ["COLUMNS", "read_lines"]

#: Columns of the DataFrame returned by :func:`read_lines`, in order.
COLUMNS: tuple[str, ...] = ("line_no", "hostname", "written_at", "raw")

_EXPECTED = (
    "expected 'HOSTNAME DATE' as written by `echo $(hostname) $(date)`, "
    "e.g. 'multicontainer-pod Thu Nov  5 09:03:07 UTC 2026' (GNU date in UTC/GMT) "
    "or 'multicontainer-pod 2026-11-05T09:03:07.123456789+00:00' "
    "(ISO-8601 with 0-9 fractional digits and an offset or Z)"
)

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ZONES = ("UTC", "GMT")

# Bytes are padded on both sides so that every fixed-width window we gather
# stays inside the buffer, whatever the line lengths; padding bytes are NUL
# and therefore never validate as a digit, letter or separator.
_PAD = 64
# Width of the GNU date once normalised to the space-padded day: "Thu Nov  5 09:03:07 UTC 2026".
_GNU_WIDTH = 28
# Longest ISO token: 19 fixed + "." + 9 digits + "+HH:MM".
_ISO_MAX = 35
_ISO_MIN = 20  # 19 fixed + "Z"

# datetime64[ns] spans 1677-09-21 .. 2262-04-11; whole years inside it are accepted.
_YEAR_MIN, _YEAR_MAX = 1678, 2261

_NS_PER_S = 1_000_000_000
_NS_PER_DAY = 86_400 * _NS_PER_S


def _code3(word: str) -> int:
    """Pack three ASCII letters into one integer so names compare as numbers."""
    b = word.encode("ascii")
    return (b[0] << 16) | (b[1] << 8) | b[2]


def _lookup(rows: np.ndarray, first: int, table: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Find the 3-letter names at byte rows ``first..first+2`` in ``table``.

    Returns ``(found, position)``, position 1-based and meaningless where not found.
    """
    codes = (
        (rows[first].astype(np.int32) << 16) | (rows[first + 1].astype(np.int32) << 8) | rows[first + 2]
    )
    packed = np.array([_code3(w) for w in table], dtype=np.int32)
    order = np.argsort(packed)
    keys = packed[order]
    idx = np.minimum(np.searchsorted(keys, codes), len(keys) - 1)
    return keys[idx] == codes, order[idx] + 1


def _columns(window: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Bytes ``offsets[i] + k`` as a ``(width, len(offsets))`` array, row k contiguous.

    Gathering whole windows and transposing once is much faster than reading
    each byte position with its own gather or through a strided column.
    """
    return np.ascontiguousarray(window[offsets].T)


def _check(
    rows: np.ndarray, ok: np.ndarray, *, digits: tuple[int, ...] = (), literals: dict[int, str] | None = None
) -> None:
    """AND into ``ok`` that the given byte rows hold digits and the given literal characters."""
    for k in digits:  # loops over byte positions (a few dozen), never over lines
        ok &= (rows[k] - np.uint8(48)) <= 9
    for k, char in (literals or {}).items():
        ok &= rows[k] == ord(char)


def _number(rows: np.ndarray, first: int, count: int) -> np.ndarray:
    """Decimal value of the digit rows ``first..first+count-1`` (validated separately)."""
    value = rows[first].astype(np.int64) - 48
    for k in range(first + 1, first + count):
        value = value * 10 + (rows[k].astype(np.int64) - 48)
    return value


# Days before the first of each month (index 1-12) in a common year, and month lengths.
_DAYS_BEFORE = np.array([0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334], dtype=np.int64)
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _leap_days_before(year: np.ndarray) -> np.ndarray:
    """Number of Gregorian leap years from year 1 up to, not including, ``year``."""
    y = year - 1
    return y // 4 - y // 100 + y // 400


_LEAP_DAYS_BEFORE_1970 = int(_leap_days_before(np.array([1970]))[0])


def _civil_to_ns(
    year: np.ndarray, month: np.ndarray, day: np.ndarray, ns_of_day: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Nanoseconds since the epoch for proleptic-Gregorian UTC dates, and which dates exist.

    Plain integer arithmetic on whole arrays: days of the full years since 1970
    plus their leap days, the days before the month, then the day.  ``month``
    must already be 1-12; a day past the end of its month (Feb 30, Feb 29 of a
    common year, Nov 31) or 0 marks the date as not existing.
    """
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    february = month == 2
    exists = (day >= 1) & (day <= _MONTH_DAYS[month] + (leap & february))
    days = (
        (year - 1970) * 365
        + (_leap_days_before(year) - _LEAP_DAYS_BEFORE_1970)
        + _DAYS_BEFORE[month]
        + (leap & (month > 2))
        + (day - 1)
    )
    return days * _NS_PER_DAY + ns_of_day, exists


def _finish(
    ok: np.ndarray, year: np.ndarray, month: np.ndarray, day: np.ndarray, ns_of_day: np.ndarray
) -> np.ndarray:
    """Convert the rows still ``ok`` to epoch nanoseconds, clearing ``ok`` for dates that do not exist."""
    if ok.all():  # the usual case: no need to select rows
        ns, exists = _civil_to_ns(year, month, day, ns_of_day)
        ok &= exists
        return ns
    ns = np.zeros(len(ok), dtype=np.int64)
    idx = np.flatnonzero(ok)
    if len(idx):
        ns_ok, exists = _civil_to_ns(year[idx], month[idx], day[idx], ns_of_day[idx])
        ok[idx] = exists
        ns[idx] = ns_ok
    return ns


# GNU date once normalised: "Thu Nov  5 09:03:07 UTC 2026"
#                            0123456789012345678901234567
_GNU_DIGITS = (9, 11, 12, 14, 15, 17, 18, 24, 25, 26, 27)
_GNU_LITERALS = {3: " ", 7: " ", 10: " ", 13: ":", 16: ":", 19: " ", 23: " "}
# ISO-8601 fixed head: "2026-11-05T09:03:07"
#                       0123456789012345678
_ISO_DIGITS = (0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18)
_ISO_LITERALS = {4: "-", 7: "-", 10: "T", 13: ":", 16: ":"}


def _parse_gnu(
    buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, first_ws: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert GNU-date lines; returns ``(ok, ns)`` for every line."""
    window = np.lib.stride_tricks.sliding_window_view(buf, _GNU_WIDTH)
    rows = _columns(window, ends - _GNU_WIDTH)  # the last 28 bytes of each line
    # "Nov 5 ..." (27 bytes, as the shell's word splitting leaves it): the byte
    # 20 from the end is the space after the month and the one before it is a
    # letter.  Shift those lines by one and insert the pad space, so every line
    # shares the 28-byte layout.
    short = (rows[8] == 32) & (rows[7] != 32)
    if short.any():
        rows[0:8, short] = rows[1:9, short]
        rows[8, short] = 32
    width = _GNU_WIDTH - short.astype(np.int64)

    # the space before the date is the line's first whitespace, after a non-empty hostname
    sep = ends - width - 1
    ok = (sep == first_ws) & (sep > starts) & (buf[sep] == 32)
    _check(rows, ok, digits=_GNU_DIGITS, literals=_GNU_LITERALS)
    tens = rows[8]
    ok &= (tens == 32) | ((tens - np.uint8(48)) <= 9)
    ok &= _lookup(rows, 0, _WEEKDAYS)[0]
    ok &= _lookup(rows, 20, _ZONES)[0]
    month_found, month = _lookup(rows, 4, _MONTHS)
    ok &= month_found

    day = np.where(tens == 32, 0, tens.astype(np.int64) - 48) * 10 + (rows[9].astype(np.int64) - 48)
    hour, minute, second = _number(rows, 11, 2), _number(rows, 14, 2), _number(rows, 17, 2)
    year = _number(rows, 24, 4)
    ok &= (hour <= 23) & (minute <= 59) & (second <= 59) & (day >= 1) & (day <= 31)
    ok &= (year >= _YEAR_MIN) & (year <= _YEAR_MAX)
    ns_of_day = ((hour * 60 + minute) * 60 + second) * _NS_PER_S
    return ok, _finish(ok, year, month, day, ns_of_day)


def _parse_iso(buf: np.ndarray, sep: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert ISO-8601 tokens lying between ``sep`` and ``ends``.

    Every byte of the token is checked, so what ``pandas.to_datetime`` would
    leniently accept (date only, no offset, a space for ``T``) is rejected here.
    """
    window = np.lib.stride_tricks.sliding_window_view(buf, _ISO_MAX)
    rows = _columns(window, sep + 1)  # the token left-aligned, then bytes of what follows
    length = ends - sep - 1

    ok = np.ones(len(sep), dtype=bool)
    _check(rows, ok, digits=_ISO_DIGITS, literals=_ISO_LITERALS)
    year, month, day = _number(rows, 0, 4), _number(rows, 5, 2), _number(rows, 8, 2)
    hour, minute, second = _number(rows, 11, 2), _number(rows, 14, 2), _number(rows, 17, 2)
    ok &= (month >= 1) & (month <= 12) & (day >= 1) & (day <= 31)
    ok &= (hour <= 23) & (minute <= 59) & (second <= 59)
    ok &= (year >= _YEAR_MIN) & (year <= _YEAR_MAX)

    # offset, read backwards from the end of the line: "Z", "+HH:MM" or "+HHMM"
    zulu = buf[ends - 1] == ord("Z")
    colon = ~zulu & (buf[ends - 3] == ord(":"))
    off_len = np.where(zulu, 1, np.where(colon, 6, 5))
    sign = buf[ends - off_len]
    off = np.stack([buf[ends - off_len + 1], buf[ends - off_len + 2], buf[ends - 2], buf[ends - 1]])
    off_ok = ((off - np.uint8(48)) <= 9).all(axis=0) & ((sign == ord("+")) | (sign == ord("-")))
    off_hh, off_mm = _number(off, 0, 2), _number(off, 2, 2)
    ok &= zulu | (off_ok & (off_hh <= 23) & (off_mm <= 59))
    offset_s = np.where(zulu, 0, np.where(sign == ord("-"), -1, 1) * (off_hh * 3600 + off_mm * 60))

    # fraction: nothing, or "." / "," then 1 to 9 digits
    frac_len = length - 19 - off_len  # separator included
    point = (rows[19] == ord(".")) | (rows[19] == ord(","))
    ok &= (frac_len == 0) | ((frac_len >= 2) & (frac_len <= 10) & point)
    frac_ns = np.zeros(len(sep), dtype=np.int64)
    for k in range(9):  # fractional digit positions, not lines
        used = k < frac_len - 1
        digit = rows[20 + k].astype(np.int64) - 48
        ok &= ~used | ((digit >= 0) & (digit <= 9))
        frac_ns += np.where(used, digit, 0) * 10 ** (8 - k)

    ns_of_day = ((hour * 60 + minute) * 60 + second - offset_s) * _NS_PER_S + frac_ns
    return ok, _finish(ok, year, month, day, ns_of_day)


def _hostnames(
    buf: np.ndarray, starts: np.ndarray, seps: np.ndarray, ends: np.ndarray, raws: np.ndarray
) -> pd.Categorical:
    """The hostnames (``raws[i]`` up to its first space) as a categorical with sorted labels.

    ``starts``/``seps``/``ends`` are the byte positions of each line's start,
    separating space and newline.  Hostnames of up to 64 bytes are grouped on
    their bytes, packed eight at a time into integers, so Python makes one string
    per *distinct* hostname instead of one per line.  Longer ones (not real
    hostnames, but not rejected either) take a slower per-line path.
    """
    if len(raws) == 0:
        return pd.Categorical.from_codes(np.array([], dtype=np.intp), categories=pd.Index([], dtype=object))
    lengths = seps - starts
    # The text after the hostname is ASCII once validated, so its byte length is
    # its length in characters and slicing it off leaves the hostname.
    tails = ends - seps
    width = -(-int(lengths.max(initial=0)) // 8) * 8
    if width > _PAD:
        names = [r[:-t] for r, t in zip(raws.tolist(), tails.tolist())]
        codes, uniques = pd.factorize(np.array(names, dtype=object), sort=True)
        return pd.Categorical.from_codes(codes, categories=pd.Index(uniques, dtype=object))

    window = np.lib.stride_tricks.sliding_window_view(buf, width)
    words = window[starts].view("<u8")  # (lines, width // 8), bytes past the hostname masked below
    # Factorize each 8-byte chunk, then combine the chunk codes as digits of a
    # mixed-radix number (exact; re-factorized early if it could overflow).
    codes: np.ndarray | None = None
    radix = 1
    for k in range(words.shape[1]):  # 8-byte chunks of the hostname, not lines
        kept = np.clip(lengths - 8 * k, 0, 8).astype(np.uint64)
        low_bytes = (np.uint64(1) << (np.uint64(8) * (kept % np.uint64(8)))) - np.uint64(1)
        mask = np.where(kept == 8, np.uint64(0xFFFF_FFFF_FFFF_FFFF), low_bytes)
        chunk, uniques = pd.factorize(words[:, k] & mask)
        if codes is None:
            codes, radix = chunk.astype(np.int64), len(uniques)
            continue
        if radix * len(uniques) >= 2**62:
            codes, seen = pd.factorize(codes)
            radix = len(seen)
        codes = codes * len(uniques) + chunk
        radix *= len(uniques)
    codes, _ = pd.factorize(codes)
    # factorize numbers codes in order of first appearance, so the first line of
    # each code is where the running maximum steps up
    first = np.flatnonzero(np.diff(np.maximum.accumulate(codes), prepend=-1) > 0)
    names = np.array([raws[i][: -int(tails[i])] for i in first], dtype=object)
    order = np.argsort(names, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return pd.Categorical.from_codes(rank[codes], categories=pd.Index(names[order], dtype=object))


def _explain(raw: str) -> str:
    """Say in words why one rejected line is malformed (used only for the error message)."""
    if raw == "":
        return "the line is empty"
    if raw[0].isspace():
        return "there is no hostname before the date"
    host, _, rest = raw.partition(" ")
    if not rest:
        return "there is no date after the hostname"
    if any(c.isspace() for c in host):
        return "the hostname contains whitespace"
    if rest[:1].isdigit():
        if "T" not in rest:
            return "the ISO-8601 time has no 'T' between date and time"
        if not (rest.endswith("Z") or rest[-6:-5] in ("+", "-") or rest[-5:-4] in ("+", "-")):
            return "the ISO-8601 time has no offset or Z, so its time zone is ambiguous"
        return "the ISO-8601 time is malformed or names an impossible date or time"
    parts = rest.split()
    if len(parts) != 6:
        return "the date does not have the six fields of GNU date or the shape of ISO-8601"
    weekday, month, _, _, zone, _ = parts
    if month not in _MONTHS:
        return f"unknown month {month!r}"
    if weekday not in _WEEKDAYS:
        return f"unknown weekday {weekday!r}"
    if zone not in _ZONES:
        return f"time zone {zone!r} is not UTC or GMT; other abbreviations are ambiguous"
    if parts[3].endswith((":60", ":61")):
        return "leap seconds (second 60) cannot be stored in datetime64[ns]"
    try:
        parsed = datetime.strptime(" ".join(parts), "%a %b %d %H:%M:%S %Z %Y")
    except ValueError:
        return "the date or time does not exist (day of month, hour, minute or second out of range)"
    if not _YEAR_MIN <= parsed.year <= _YEAR_MAX:
        return f"year {parsed.year} is outside {_YEAR_MIN}-{_YEAR_MAX}, the range of datetime64[ns]"
    return "the date is not laid out as GNU date prints it"


def _empty_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "line_no": pd.Series([], dtype=np.int64),
            "hostname": pd.Series(pd.Categorical.from_codes([], categories=pd.Index([], dtype=object))),
            "written_at": pd.Series([], dtype="datetime64[ns, UTC]"),
            "raw": pd.Series([], dtype=object),
        }
    )


def read_lines(
    text: str | bytes, *, on_bad_lines: Literal["keep", "error"] = "keep"
) -> pd.DataFrame:
    """Parse the content of the lab's ``index.html`` into one row per written line.

    Parameters
    ----------
    text:
        The file content as fetched.  ``bytes`` (or ``bytearray``) are decoded
        as UTF-8 with invalid sequences replaced, since a served file can be
        cut in the middle of a character.
    on_bad_lines:
        ``"keep"`` (default) sets malformed lines aside so a half-broken file
        still yields its good rows; ``"error"`` raises :class:`ParseError` for
        the first malformed line, naming its number, its text and the expected
        format.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`, always with these dtypes (also when empty):

        ``line_no`` (int64)
            1-based position of the line in the file; malformed lines are
            counted too, so gaps show where they were.
        ``hostname`` (category)
            Name of the pod that wrote the line (few distinct values): any
            non-empty text up to the first space, without whitespace or
            control characters; labels sorted.
        ``written_at`` (datetime64[ns, UTC])
            When the line was written; ISO offsets are converted to UTC.
        ``raw`` (object, holding ``str``)
            The line without its ``"\\n"`` (and one ``"\\r"``).  ``object`` is
            used on pandas 2 and 3 alike, and for the category labels too, so
            the dtype does not depend on the pandas version.

        ``df.attrs`` carries:

        ``"incomplete"`` (str)
            Text after the last ``"\\n"`` — a line still being written; ``""``
            when the text ends with a newline.
        ``"malformed"`` (list of ``(line_no, raw)`` tuples)
            Lines that are not ``HOSTNAME DATE`` in a known format: empty lines,
            missing hostname, unknown date layout, month or weekday, impossible
            dates or times (Feb 30, 25:00:00, leap second 60), zones other than
            UTC/GMT, ISO times without offset, years outside 1678-2261
            (the range of ``datetime64[ns]``).  Plain tuples, so pandas can copy
            ``attrs`` when it propagates them.
        ``"malformed_count"`` (int)
            ``len(attrs["malformed"])``.

    The weekday must be an English abbreviation but is not checked against the
    date (``datetime.strptime`` does not check it either).
    """
    if on_bad_lines not in ("keep", "error"):
        raise ValueError(f"on_bad_lines must be 'keep' or 'error', not {on_bad_lines!r}")
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text).decode("utf-8", errors="replace")
    elif not isinstance(text, str):
        raise TypeError(f"read_lines() needs str or bytes, not {type(text).__name__}")

    cut = text.rfind("\n") + 1
    incomplete = text[cut:]
    body = text[:cut]
    if "\r" in body:
        body = body.replace("\r\n", "\n")
    lines = body.split("\n")
    lines.pop()  # the empty string after the last newline
    n = len(lines)

    if n == 0:
        df = _empty_frame()
        df.attrs.update(incomplete=incomplete, malformed=[], malformed_count=0)
        return df

    data = body.encode("utf-8", errors="surrogatepass")
    buf = np.zeros(len(data) + 2 * _PAD, dtype=np.uint8)
    buf[_PAD : _PAD + len(data)] = np.frombuffer(data, dtype=np.uint8)
    del data

    # Positions (in the padded buffer) of every whitespace or control byte; the
    # newlines among them end the lines, and the first one at or after a line's
    # start is where its hostname ends.
    ws = np.flatnonzero(buf[_PAD:-_PAD] <= 32)
    ws += _PAD
    ends = ws[buf[ws] == 10]
    starts = np.empty_like(ends)
    starts[0] = _PAD
    starts[1:] = ends[:-1] + 1
    first_ws = ws[np.searchsorted(ws, starts)]

    ok, ns = _parse_gnu(buf, starts, ends, first_ws)

    # ISO candidates: not GNU, a space after a non-empty hostname, plausible token length
    token_len = ends - first_ws - 1
    cand = np.flatnonzero(
        ~ok
        & (first_ws > starts)
        & (buf[first_ws] == 32)
        & (token_len >= _ISO_MIN)
        & (token_len <= _ISO_MAX)
    )
    if len(cand):
        ok[cand], ns[cand] = _parse_iso(buf, first_ws[cand], ends[cand])

    good = np.flatnonzero(ok)
    bad = np.flatnonzero(~ok)
    if on_bad_lines == "error" and len(bad):
        i = int(bad[0])
        raw = lines[i]
        raise ParseError(
            f"line {i + 1} of index.html is not in a known format: {raw!r}: "
            f"{_explain(raw)}; {_EXPECTED}",
            line_no=i + 1,
            raw=raw,
        )

    raw_all = np.array(lines, dtype=object)
    del lines
    raw_good = raw_all[good]
    hostname = _hostnames(buf, starts[good], first_ws[good], ends[good], raw_good)

    written = pd.DatetimeIndex(ns[good].view("datetime64[ns]")).tz_localize("UTC")
    df = pd.DataFrame(
        {
            "line_no": pd.Series(good + 1, dtype=np.int64),
            "hostname": pd.Series(hostname),
            "written_at": pd.Series(written.array),
            "raw": pd.Series(raw_good, dtype=object),
        }
    )
    malformed = [(int(i) + 1, s) for i, s in zip(bad.tolist(), raw_all[bad].tolist())]
    df.attrs.update(incomplete=incomplete, malformed=malformed, malformed_count=len(malformed))
    return df
