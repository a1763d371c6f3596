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
notebook re-reads the whole file on every refresh and the file grows for as
long as the lab runs: a ``datetime.strptime`` loop, or ``pandas.to_datetime``
on the split strings, would make those refreshes slow
(``benchmarks/bench_parse.py`` compares the three).  The only per-line Python
work is ``str.split`` making the line strings the ``raw`` column holds;
hostnames are grouped on their bytes and made into strings once per distinct
name.  Lines are parsed in blocks that keep NumPy's temporary arrays in the
CPU's cache, on two threads where there are two cores (NumPy releases the GIL
while it computes).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import pandas as pd

__all__ = ["COLUMNS", "read_lines"]

_T = TypeVar("_T")

#: Columns of the DataFrame returned by :func:`read_lines`, in order.
COLUMNS: tuple[str, ...] = ("line_no", "hostname", "written_at", "raw")

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

# Hostnames up to this many bytes are checked and grouped as packed 8-byte words (a
# real hostname has at most 63); longer ones take slower paths.
_HOST_MAX = 64
# Lines parsed together, and bytes searched together for newlines: small enough
# for the temporary arrays to stay in the CPU's cache.
_BLOCK_LINES = 1 << 16
_BLOCK_BYTES = 1 << 20
_THREADS = min(2, os.cpu_count() or 1)
_ALL_BYTES = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
_BYTES_33 = np.uint64(0x2121_2121_2121_2121)
_HIGH_BITS = np.uint64(0x8080_8080_8080_8080)

# datetime64[ns] spans 1677-09-21 .. 2262-04-11; whole years inside it are accepted.
_YEAR_MIN, _YEAR_MAX = 1678, 2261


def _pair_tables(table: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Lookup tables for 3-letter names whose last two letters differ between names.

    ``pair[(b1 << 8) | b2]`` is the 1-based position of the name ending in
    ``b1 b2`` (0 for none) and ``first[position]`` its first letter, so a name
    is found with one table read and one comparison per line.
    """
    pair = np.zeros(1 << 16, dtype=np.uint8)
    first = np.zeros(len(table) + 1, dtype=np.uint8)
    for position, word in enumerate(table, 1):
        b = word.encode("ascii")
        assert pair[(b[1] << 8) | b[2]] == 0, f"{word!r}: last two letters not unique in its table"
        pair[(b[1] << 8) | b[2]] = position
        first[position] = b[0]
    return pair, first


_TABLES: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = {
    table: _pair_tables(table) for table in (_WEEKDAYS, _MONTHS, _ZONES)
}


def _lookup(rows: _Rows | Sequence[np.ndarray], first: int, table: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Find the 3-letter names at byte rows ``first..first+2`` in ``table``.

    Returns ``(found, position)``, position 1-based (uint8) and meaningless where not found.
    """
    pair, letters = _TABLES[table]
    position = pair[(rows[first + 1].astype(np.uint16) << 8) | rows[first + 2]]
    return (position != 0) & (rows[first] == letters[position]), position


def _words(buf: np.ndarray, offsets: np.ndarray, width: int) -> np.ndarray:
    """The ``width`` bytes from each offset (``width`` a multiple of 8), as 8-byte little-endian words.

    Returns a ``(len(offsets), width // 8)`` array of its own. Viewing the
    buffer as overlapping ``width``-byte items and gathering those is faster
    than gathering rows of a sliding window view.
    """
    items = np.ndarray((len(buf) - width + 1,), dtype=f"V{width}", buffer=buf, strides=(1,))
    return np.asarray(items[offsets]).view("<u8").reshape(len(offsets), width // 8)


class _Rows:
    """Bytes ``offsets[i] + k`` for ``k < width``, one row per ``k``: ``rows[k]`` is an array over lines.

    Gathering whole windows and transposing once is much faster than reading
    each byte position with its own gather. The transpose moves 8-byte words,
    which is faster than moving single bytes, so ``rows[k]`` is a view with a
    stride of 8 bytes into the transposed words, which NumPy reads about as
    fast as a contiguous row. ``width`` is rounded up to whole
    words: the buffer's padding covers the bytes read past it.
    """

    def __init__(self, buf: np.ndarray, offsets: np.ndarray, width: int) -> None:
        words = -(-width // 8)
        transposed = np.ascontiguousarray(_words(buf, offsets, 8 * words).T)  # (words, lines)
        self._bytes = transposed.view(np.uint8).reshape(words, len(offsets), 8)

    def __getitem__(self, k: int) -> np.ndarray:
        return self._bytes[k >> 3, :, k & 7]


def _check(
    rows: _Rows | Sequence[np.ndarray],
    ok: np.ndarray,
    *,
    digits: tuple[int, ...] = (),
    literals: dict[int, str] | None = None,
) -> None:
    """AND into ``ok`` that the given byte rows hold digits and the given literal characters."""
    for k in digits:  # loops over byte positions (a few dozen), never over lines
        ok &= (rows[k] - np.uint8(48)) <= 9
    for k, char in (literals or {}).items():
        ok &= rows[k] == ord(char)


def _number(
    rows: _Rows | Sequence[np.ndarray] | np.ndarray, first: int, count: int, dtype: type = np.int64
) -> np.ndarray:
    """Decimal value of the digit rows ``first..first+count-1`` (validated separately).

    ``dtype`` must hold ``10**count``; small types (int16 for up to four
    digits) keep the arithmetic on many lines cheap.
    """
    value: np.ndarray = rows[first].astype(dtype) - 48
    for k in range(first + 1, first + count):
        value = value * 10 + (rows[k].astype(dtype) - 48)
    return value


# The first day of every month of the accepted years and of the month after them, and each
# month's length: NumPy's calendar, worked out once so that a line costs one table lookup.
_MONTH_STARTS = np.arange(f"{_YEAR_MIN}-01", f"{_YEAR_MAX + 1}-02", dtype="datetime64[M]").astype("datetime64[D]")
_MONTH_LENGTHS = np.diff(_MONTH_STARTS)


def _to_datetime64(
    year: np.ndarray, month: np.ndarray, day: np.ndarray, time_of_day: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The instants of proleptic-Gregorian UTC dates plus a time of day, and which dates exist.

    ``year`` must already be within ``_YEAR_MIN.._YEAR_MAX`` and ``month``
    1-12; ``time_of_day`` is a ``timedelta64`` array. A day of 0 or past the
    end of its month (Feb 30, Feb 29 of a common year, Nov 31) marks the date
    as not existing. Returns ``datetime64[ns]``.
    """
    i = (year.astype(np.intp) - _YEAR_MIN) * 12 + (month.astype(np.intp) - 1)
    days = (day.astype(np.int64) - 1).astype("timedelta64[D]")
    exists = (days >= np.timedelta64(0, "D")) & (days < _MONTH_LENGTHS[i])
    return (_MONTH_STARTS[i] + days).astype("datetime64[ns]") + time_of_day, exists


def _finish(
    ok: np.ndarray, year: np.ndarray, month: np.ndarray, day: np.ndarray, time_of_day: np.ndarray
) -> np.ndarray:
    """The instants (``datetime64[ns]``) of the rows still ``ok``, clearing ``ok`` for dates that do not exist."""
    if ok.all():  # the usual case: no need to select rows
        at, exists = _to_datetime64(year, month, day, time_of_day)
        ok &= exists
        return at
    at = np.zeros(len(ok), dtype="datetime64[ns]")
    idx = np.flatnonzero(ok)
    if len(idx):
        at_ok, exists = _to_datetime64(year[idx], month[idx], day[idx], time_of_day[idx])
        ok[idx] = exists
        at[idx] = at_ok
    return at


# GNU date once normalised: "Thu Nov  5 09:03:07 UTC 2026"
#                            0123456789012345678901234567
_GNU_DIGITS = (9, 11, 12, 14, 15, 17, 18, 24, 25, 26, 27)
_GNU_LITERALS = {3: " ", 7: " ", 10: " ", 13: ":", 16: ":", 19: " ", 23: " "}
# ISO-8601 fixed head: "2026-11-05T09:03:07"
#                       0123456789012345678
_ISO_DIGITS = (0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18)
_ISO_LITERALS = {4: "-", 7: "-", 10: "T", 13: ":", 16: ":"}


def _parse_gnu(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate and convert a GNU date at the end of every line; returns ``(ok, at, sep)``.

    ``sep`` is where the space before the date is; ``ok`` says that the date
    and that space are valid and that a non-empty hostname comes before it.
    Whether the hostname holds whitespace is for the caller to check.
    """
    rows = _Rows(buf, ends - _GNU_WIDTH, _GNU_WIDTH)  # the last 28 bytes of each line
    # "Nov 5 ..." (27 bytes, as the shell's word splitting leaves it): byte 8
    # is the space after the month and byte 7 a letter.  Such lines have their
    # weekday and month one byte later; reading those from there (byte 8 then
    # serves as the pad space) gives every line the 28-byte layout.
    short = (rows[8] == 32) & (rows[7] != 32)
    if short.all():
        r = [rows[k + 1] for k in range(8)]
    elif short.any():
        r = [np.where(short, rows[k + 1], rows[k]) for k in range(8)]
    else:
        r = [rows[k] for k in range(8)]
    r += [rows[k] for k in range(8, _GNU_WIDTH)]

    sep = ends - (_GNU_WIDTH + 1) + short
    ok = (sep > starts) & (buf[sep] == 32)
    _check(r, ok, digits=_GNU_DIGITS, literals=_GNU_LITERALS)
    tens = r[8]
    ok &= (tens == 32) | ((tens - np.uint8(48)) <= 9)
    ok &= _lookup(r, 0, _WEEKDAYS)[0]
    ok &= _lookup(r, 20, _ZONES)[0]
    month_found, month = _lookup(r, 4, _MONTHS)
    ok &= month_found

    # Two-digit fields fit int16 (four-digit years too); seconds of the day need int32.
    day = np.where(tens == 32, 0, tens.astype(np.int16) - 48) * 10 + (r[9].astype(np.int16) - 48)
    hour, minute, second = (_number(r, k, 2, np.int16) for k in (11, 14, 17))
    year = _number(r, 24, 4, np.int16)
    ok &= (hour <= 23) & (minute <= 59) & (second <= 59) & (day >= 1) & (day <= 31)
    ok &= (year >= _YEAR_MIN) & (year <= _YEAR_MAX)
    seconds = (hour.astype(np.int32) * 60 + minute) * 60 + second
    return ok, _finish(ok, year, month, day, seconds.astype("timedelta64[s]")), sep


def _parse_iso(buf: np.ndarray, sep: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert ISO-8601 tokens lying between ``sep`` and ``ends``.

    Every byte of the token is checked, so what ``pandas.to_datetime`` would
    leniently accept (date only, no offset, a space for ``T``) is rejected here.
    """
    rows = _Rows(buf, sep + 1, _ISO_MAX)  # the token left-aligned, then bytes of what follows
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

    seconds = (hour * 60 + minute) * 60 + second - offset_s
    time_of_day = seconds.astype("timedelta64[s]") + frac_ns.astype("timedelta64[ns]")
    return ok, _finish(ok, year, month, day, time_of_day)


def _host_words(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``lengths[i]`` bytes from ``starts[i]`` packed into ``width // 8`` words, and
    whether any of them is whitespace or a control character (a byte below 33).

    The words come as a ``(width // 8, lines)`` array, bytes past each length
    zeroed, so equal hostnames give equal columns.  The whitespace test looks
    at eight bytes at once: a word has a byte below 33 exactly when
    ``(w - 0x21..21) & ~w & 0x80..80`` is not zero (the "has less" trick of
    *Bit Twiddling Hacks*), with the bytes past the length set to 0xFF for it.
    """
    words = np.ascontiguousarray(_words(buf, starts, width).T)
    same_length = len(lengths) > 0 and lengths.min() == lengths.max()
    low = np.zeros(len(starts), dtype=np.uint64)  # bit 7 of a byte set: that byte may be below 33
    filled = np.empty_like(low)
    below = np.empty_like(low)
    for k, chunk in enumerate(words):  # 8-byte chunks of the hostname, not lines
        if same_length:  # the usual case: one mask for every line
            kept = min(max(int(lengths[0]) - 8 * k, 0), 8)
            mask: np.ndarray | np.uint64 = np.uint64((1 << (8 * kept)) - 1)
        else:
            kept_bytes = np.clip(lengths - 8 * k, 0, 8).astype(np.uint64)
            shift = (np.uint64(8) * kept_bytes) % np.uint64(64)
            mask = np.where(kept_bytes == 8, _ALL_BYTES, (np.uint64(1) << shift) - np.uint64(1))
        np.bitwise_or(chunk, ~mask, out=filled)
        np.subtract(filled, _BYTES_33, out=below)
        np.bitwise_and(below, np.invert(filled, out=filled), out=below)
        low |= below
        chunk &= mask
    return words, (low & _HIGH_BITS) != 0


def _word_width(longest: int) -> int:
    """Bytes to gather for hostnames of up to ``longest`` bytes: whole 8-byte words, at least one."""
    return max(8, -(-longest // 8) * 8)


def _hostnames(words: np.ndarray | None, buf: np.ndarray, starts: np.ndarray, seps: np.ndarray) -> pd.Categorical:
    """The hostnames (the bytes ``buf[starts[i]:seps[i]]``) as a categorical with sorted labels.

    ``words`` holds each hostname's bytes as :func:`_host_words` packs them
    (one column per line); lines are grouped on those, so Python makes one
    string per *distinct* hostname instead of one per line.  ``None`` (a
    hostname longer than ``_HOST_MAX`` bytes: not a real hostname, but not
    rejected either) takes a slower per-line path.
    """
    if len(starts) == 0:
        return pd.Categorical.from_codes(np.array([], dtype=np.intp), categories=pd.Index([], dtype=object))

    def name(i: int) -> str:
        return buf[starts[i] : seps[i]].tobytes().decode("utf-8", "surrogatepass")

    if words is None:
        every = np.array([name(i) for i in range(len(starts))], dtype=object)
        each, uniques = pd.factorize(every, sort=True)
        return pd.Categorical.from_codes(each, categories=pd.Index(uniques, dtype=object))

    same = np.ones(len(starts), dtype=bool)
    for chunk in words:
        same &= chunk == chunk[0]
    if same.all():  # the usual case: one pod wrote every line
        return pd.Categorical.from_codes(
            np.zeros(len(starts), dtype=np.int8), categories=pd.Index([name(0)], dtype=object)
        )

    # Factorize each 8-byte chunk, then combine the chunk codes as digits of a
    # mixed-radix number (exact; re-factorized early if it could overflow).
    codes, uniques = pd.factorize(words[0])
    codes, radix = codes.astype(np.int64), len(uniques)
    for k in range(1, len(words)):  # 8-byte chunks of the hostname, not lines
        chunk, uniques = pd.factorize(words[k])
        if radix * len(uniques) >= 2**62:
            codes, seen = pd.factorize(codes)
            radix = len(seen)
        codes = codes * len(uniques) + chunk
        radix *= len(uniques)
    codes, _ = pd.factorize(codes)
    # factorize numbers codes in order of first appearance, so the first line of
    # each code is where the running maximum steps up
    first = np.flatnonzero(np.diff(np.maximum.accumulate(codes), prepend=-1) > 0)
    names = np.array([name(int(i)) for i in first], dtype=object)
    order = np.argsort(names, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return pd.Categorical.from_codes(rank[codes], categories=pd.Index(names[order], dtype=object))


def _padded_bytes(body: str) -> np.ndarray:
    """The UTF-8 bytes of ``body`` with ``_PAD`` NUL bytes on either side.

    ASCII text (the usual case) is encoded a megabyte at a time straight into
    the buffer: faster than encoding it whole and copying it, as the pieces
    stay in the CPU's cache and no second buffer the size of the text is made.
    """
    if not body.isascii():
        data = body.encode("utf-8", errors="surrogatepass")
        buf = np.zeros(len(data) + 2 * _PAD, dtype=np.uint8)
        buf[_PAD : _PAD + len(data)] = np.frombuffer(data, dtype=np.uint8)
        return buf
    buf = np.empty(len(body) + 2 * _PAD, dtype=np.uint8)
    buf[:_PAD] = 0
    buf[-_PAD:] = 0
    for first in range(0, len(body), _BLOCK_BYTES):
        piece = body[first : first + _BLOCK_BYTES].encode("ascii")
        buf[_PAD + first : _PAD + first + len(piece)] = np.frombuffer(piece, dtype=np.uint8)
    return buf


def _newlines(buf: np.ndarray) -> np.ndarray:
    """Positions of the newlines in ``buf``, looked for a megabyte at a time (the comparison stays in cache)."""
    found = []
    for first in range(_PAD, len(buf) - _PAD, _BLOCK_BYTES):
        part = buf[first : min(first + _BLOCK_BYTES, len(buf) - _PAD)]
        found.append(np.flatnonzero(part == 10) + first)
    return np.concatenate(found)


def _in_parallel(work: Callable[[int], _T], items: Sequence[int]) -> list[_T]:
    """``[work(i) for i in items]``, in ``_THREADS`` threads when there is more than one item.

    The work must be NumPy operations on large arrays: they release the GIL,
    so two threads use two cores.
    """
    if len(items) < 2 or _THREADS < 2:
        return [work(i) for i in items]
    with ThreadPoolExecutor(_THREADS, thread_name_prefix="labkit-lines") as pool:
        return list(pool.map(work, items))


def _parse_gnu_lines(
    buf: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Parse every line as ``HOSTNAME GNU-DATE``, a block of lines at a time.

    Returns arrays over all lines:

    ``date_ok``
        the line ends in a valid GNU date with a space and a non-empty text before it;
    ``fits``
        ... and that text is short enough (``_HOST_MAX`` bytes) to be checked here;
    ``ok``
        ... and it holds no whitespace or control byte: the line is good;
    ``at``, ``sep``
        the date as ``datetime64[ns]``, and the position of the space before it;
    ``words``
        the hostnames packed as :func:`_host_words` packs them.

    Blocks of ``_BLOCK_LINES`` lines keep every temporary array in the CPU's
    cache, which makes the same NumPy operations faster than on whole columns.
    """
    n = len(ends)
    # the longest hostname before a GNU date, which takes at least 28 bytes with its space
    longest = int((ends - starts).max()) - _GNU_WIDTH
    width = _word_width(min(longest, _HOST_MAX))
    date_ok, fits, ok = np.empty(n, dtype=bool), np.empty(n, dtype=bool), np.empty(n, dtype=bool)
    at, sep = np.empty(n, dtype="datetime64[ns]"), np.empty(n, dtype=np.int64)
    words = np.empty((width // 8, n), dtype=np.uint64)

    def parse(lo: int) -> None:
        block = slice(lo, min(lo + _BLOCK_LINES, n))
        s = starts[block]
        date_ok[block], at[block], sep[block] = _parse_gnu(buf, s, ends[block])
        length = sep[block] - s
        fits[block] = date_ok[block] & (length <= width)
        words[:, block], spaced = _host_words(buf, s, np.where(fits[block], length, 0), width)
        ok[block] = fits[block] & ~spaced

    _in_parallel(parse, range(0, n, _BLOCK_LINES))
    return date_ok, fits, ok, at, sep, words


def _empty_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "line_no": pd.Series([], dtype=np.int64),
            "hostname": pd.Series(pd.Categorical.from_codes([], categories=pd.Index([], dtype=object))),
            "written_at": pd.Series([], dtype="datetime64[ns, UTC]"),
            "raw": pd.Series([], dtype=object),
        }
    )


def read_lines(text: str | bytes | bytearray) -> pd.DataFrame:
    """Parse the content of the lab's ``index.html`` into one row per written line.

    A malformed line never stops the parse: it is set aside in
    ``df.attrs["malformed"]``, so a half-broken file still yields its good rows.

    Parameters
    ----------
    text:
        The file content as fetched.  ``bytes`` (or ``bytearray``) are decoded
        as UTF-8 with invalid sequences replaced, since a served file can be
        cut in the middle of a character.

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
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text).decode("utf-8", errors="replace")
    elif not isinstance(text, str):
        raise TypeError(f"read_lines() needs str or bytes, not {type(text).__name__}")

    cut = text.rfind("\n") + 1
    incomplete = text[cut:]
    body = text[:cut]
    if "\r" in body:
        body = body.replace("\r\n", "\n")

    if not body:
        df = _empty_frame()
        df.attrs.update(incomplete=incomplete, malformed=[], malformed_count=0)
        return df

    # Every newline ends a line; the date is read backwards from the line's end.
    buf = _padded_bytes(body)
    ends = _newlines(buf)
    n = len(ends)
    starts = np.empty_like(ends)
    starts[0] = _PAD
    np.add(ends[:-1], 1, out=starts[1:])

    date_ok, fits, ok, at, sep, words = _parse_gnu_lines(buf, starts, ends)

    # Every other line goes the general way: the first whitespace or control
    # byte after its start ends its hostname.  That decides GNU lines with a
    # longer hostname, and where an ISO-8601 token would start.
    rest = np.flatnonzero(~fits)
    accepted_rest = False
    if len(rest):
        ws = np.flatnonzero(buf[_PAD:-_PAD] <= 32)
        ws += _PAD
        first_ws = ws[np.searchsorted(ws, starts[rest])]
        gnu = date_ok[rest]
        ok[rest[gnu]] = first_ws[gnu] == sep[rest[gnu]]
        # ISO candidates: not GNU, a space after a non-empty hostname, plausible token length
        token_len = ends[rest] - first_ws - 1
        cand = np.flatnonzero(
            ~gnu & (first_ws > starts[rest]) & (buf[first_ws] == 32) & (token_len >= _ISO_MIN) & (token_len <= _ISO_MAX)
        )
        if len(cand):
            lines_c = rest[cand]
            ok[lines_c], at[lines_c] = _parse_iso(buf, first_ws[cand], ends[lines_c])
            sep[lines_c] = first_ws[cand]
        accepted_rest = bool(ok[rest].any())

    if ok.all():  # the usual case: rows are selected with a slice, which copies nothing
        good, bad = np.arange(n), np.arange(0)
        select: slice | np.ndarray = slice(None)
    else:
        good, bad = np.flatnonzero(ok), np.flatnonzero(~ok)
        select = good
    malformed = [(int(i) + 1, buf[starts[i] : ends[i]].tobytes().decode("utf-8", "surrogatepass")) for i in bad]

    if not accepted_rest:  # every good line's hostname is in ``words`` already
        good_words = words[:, select]
    else:
        lengths = sep[good] - starts[good]
        good_words = None  # hostnames too long to pack
        if len(good) and lengths.max() <= _HOST_MAX:
            good_words = _host_words(buf, starts[good], lengths, _word_width(int(lengths.max())))[0]

    lines = body.split("\n")
    lines.pop()  # the empty string after the last newline
    raw = np.fromiter(lines, dtype=object, count=n)
    del lines

    # The arrays are this function's own, so the frame may hold them without copying.
    df = pd.DataFrame(
        {
            "line_no": pd.Series((good + 1).astype(np.int64, copy=False), copy=False),
            "hostname": pd.Series(_hostnames(good_words, buf, starts[select], sep[select]), copy=False),
            "written_at": pd.Series(at[select], copy=False).dt.tz_localize("UTC"),
            "raw": pd.Series(raw[select], dtype=object, copy=False),
        },
        copy=False,
    )
    df.attrs.update(incomplete=incomplete, malformed=malformed, malformed_count=len(malformed))
    return df
