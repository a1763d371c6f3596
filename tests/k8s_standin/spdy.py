"""SPDY/3.1 framing, server side, as far as Kubernetes' streams use it (a fake for tests).

kubectl speaks SPDY/3.1 for ``port-forward`` (every version: after a plain
``Upgrade: SPDY/3.1``, or inside a websocket) and for ``exec`` before
websockets. There is no maintained SPDY library for Python; this module is
the protocol's framing (draft 3.1), nothing more:

* a control frame: a set high bit, the version, the frame type, flags, the
  payload's length, then the payload; the types (the constants below) open,
  accept and reset streams, and keep the session: settings, ping, goaway,
  more headers, flow-control windows;
* a data frame: a clear high bit, the stream id, flags (FIN ends the
  sender's half of the stream), the length, then the bytes;
* a name/value header block: a count, then per pair the length and the
  (lower-case) name, the length and the value (several values joined by
  NUL); zlib-compressed with the SPDY/3 dictionary as ONE stream per
  direction of the connection, each block ending on a sync flush, so every
  block depends on the ones before it in the same direction.

The field widths and type numbers are the constants and ``struct`` formats
in the code below.

:class:`FrameReader` cuts frames out of bytes as they arrive (a partial
frame waits for the rest); :class:`HeaderCompressor` and
:class:`HeaderDecompressor` keep one direction's zlib stream each.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

VERSION = 3
PROTOCOL = "SPDY/3.1"

SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02
MAX_LENGTH = (1 << 24) - 1
STREAM_ID_MASK = 0x7FFFFFFF

# RST_STREAM status codes and GOAWAY status codes.
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, UNSUPPORTED_VERSION, CANCEL, INTERNAL_ERROR = 1, 2, 3, 4, 5, 6
FLOW_CONTROL_ERROR, STREAM_IN_USE, STREAM_ALREADY_CLOSED = 7, 8, 9
GOAWAY_OK, GOAWAY_PROTOCOL_ERROR, GOAWAY_INTERNAL_ERROR = 0, 1, 2


def _dictionary() -> bytes:
    """The SPDY/3 header compression dictionary (draft 3, section 2.6.10.1), a protocol constant.

    Common header names and values, each length-prefixed, then a run of status
    codes, status lines, dates and media types. It must match the peer's byte
    for byte (zlib names a preset dictionary by its checksum), hence the
    length check below and the checksum in the tests.
    """
    words = (
        "options head post put delete trace accept accept-charset accept-encoding accept-language accept-ranges "
        "age allow authorization cache-control connection content-base content-encoding content-language "
        "content-length content-location content-md5 content-range content-type date etag expect expires from "
        "host if-match if-modified-since if-none-match if-range if-unmodified-since last-modified location "
        "max-forwards pragma proxy-authenticate proxy-authorization range referer retry-after server te trailer "
        "transfer-encoding upgrade user-agent vary via warning www-authenticate method get status |200 OK| "
        "version HTTP/1.1 url public set-cookie keep-alive origin"
    )
    prefixed = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _split_words(words))
    tail = (
        "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
        "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
        "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
        "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
        "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
        "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
    )
    return prefixed + tail.encode()


def _split_words(text: str) -> list[str]:
    """Space-separated words; ``|a b|`` is one word with a space in it."""
    out: list[str] = []
    for i, part in enumerate(text.split("|")):
        out += [part] if i % 2 else part.split()
    return out


DICTIONARY = _dictionary()
assert len(DICTIONARY) == 1423, len(DICTIONARY)


class ProtocolError(Exception):
    """Bytes that are not SPDY/3 (wrong version, a malformed frame or header block)."""


@dataclass
class DataFrame:
    stream_id: int
    data: bytes = b""
    flags: int = 0

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


@dataclass
class ControlFrame:
    """A control frame. ``stream_id`` for the per-stream types; ``headers`` for SYN_STREAM, SYN_REPLY, HEADERS;
    ``status`` for RST_STREAM and GOAWAY (``stream_id`` is GOAWAY's last good stream); ``value`` for PING's
    id and WINDOW_UPDATE's delta; ``settings`` as (flags, id, value)."""

    type: int
    flags: int = 0
    stream_id: int = 0
    associated_id: int = 0
    priority: int = 0
    headers: dict[str, list[str]] = field(default_factory=dict)
    status: int = 0
    value: int = 0
    settings: list[tuple[int, int, int]] = field(default_factory=list)

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


Frame = DataFrame | ControlFrame


# -- header blocks ---------------------------------------------------------------------


def pack_headers(headers: Mapping[str, str | Sequence[str]]) -> bytes:
    """An uncompressed name/value block; names are lower-cased, several values joined by NUL."""
    out = [struct.pack(">I", len(headers))]
    for name, value in headers.items():
        values = [value] if isinstance(value, str) else list(value)
        n, v = name.lower().encode(), b"\x00".join(x.encode() for x in values)
        out += [struct.pack(">I", len(n)), n, struct.pack(">I", len(v)), v]
    return b"".join(out)


def unpack_headers(block: bytes) -> dict[str, list[str]]:
    """An uncompressed name/value block back into {name: [values]}."""

    def take(pos: int, size: int) -> tuple[bytes, int]:
        if pos + size > len(block):
            raise ProtocolError("header block is truncated")
        return block[pos : pos + size], pos + size

    raw, pos = take(0, 4)
    headers: dict[str, list[str]] = {}
    for _ in range(struct.unpack(">I", raw)[0]):
        raw, pos = take(pos, 4)
        name, pos = take(pos, struct.unpack(">I", raw)[0])
        raw, pos = take(pos, 4)
        value, pos = take(pos, struct.unpack(">I", raw)[0])
        if not name:
            raise ProtocolError("header name is empty")
        headers.setdefault(name.decode("latin-1"), []).extend(value.decode("latin-1").split("\x00"))
    return headers


class HeaderCompressor:
    """One direction's header compression: a single zlib stream, a sync flush after each block."""

    def __init__(self) -> None:
        self._z = zlib.compressobj(
            zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, DICTIONARY
        )

    def compress(self, headers: Mapping[str, str | Sequence[str]]) -> bytes:
        return self._z.compress(pack_headers(headers)) + self._z.flush(zlib.Z_SYNC_FLUSH)


class HeaderDecompressor:
    """The other direction's: the peer's blocks, in order, from its single zlib stream."""

    def __init__(self) -> None:
        self._z = zlib.decompressobj(15, DICTIONARY)

    def decompress(self, data: bytes) -> dict[str, list[str]]:
        try:
            return unpack_headers(self._z.decompress(data))
        except zlib.error as exc:
            raise ProtocolError(f"header block does not decompress: {exc}") from None


# -- frames ----------------------------------------------------------------------------


def _control(kind: int, flags: int, payload: bytes) -> bytes:
    if len(payload) > MAX_LENGTH:
        raise ValueError("control frame too long")
    return struct.pack(">HHI", 0x8000 | VERSION, kind, flags << 24 | len(payload)) + payload


def data_frame(stream_id: int, data: bytes = b"", fin: bool = False) -> bytes:
    """One data frame (callers cut data to at most :data:`MAX_LENGTH`)."""
    if len(data) > MAX_LENGTH:
        raise ValueError("data frame too long")
    return struct.pack(">II", stream_id & STREAM_ID_MASK, (FLAG_FIN if fin else 0) << 24 | len(data)) + data


def syn_stream(
    z: HeaderCompressor,
    stream_id: int,
    headers: Mapping[str, str | Sequence[str]],
    fin: bool = False,
    associated_id: int = 0,
    priority: int = 0,
) -> bytes:
    head = struct.pack(">IIBB", stream_id & STREAM_ID_MASK, associated_id & STREAM_ID_MASK, (priority & 7) << 5, 0)
    return _control(SYN_STREAM, FLAG_FIN if fin else 0, head + z.compress(headers))


def syn_reply(
    z: HeaderCompressor, stream_id: int, headers: Mapping[str, str | Sequence[str]], fin: bool = False
) -> bytes:
    return _control(SYN_REPLY, FLAG_FIN if fin else 0, struct.pack(">I", stream_id) + z.compress(headers))


def headers_frame(z: HeaderCompressor, stream_id: int, headers: Mapping[str, str | Sequence[str]]) -> bytes:
    return _control(HEADERS, 0, struct.pack(">I", stream_id) + z.compress(headers))


def rst_stream(stream_id: int, status: int) -> bytes:
    return _control(RST_STREAM, 0, struct.pack(">II", stream_id, status))


def settings(entries: Sequence[tuple[int, int, int]] = ()) -> bytes:
    body = b"".join(struct.pack(">I", flags << 24 | sid) + struct.pack(">I", value) for flags, sid, value in entries)
    return _control(SETTINGS, 0, struct.pack(">I", len(entries)) + body)


def ping(ping_id: int) -> bytes:
    return _control(PING, 0, struct.pack(">I", ping_id))


def goaway(last_good_stream: int, status: int = GOAWAY_OK) -> bytes:
    return _control(GOAWAY, 0, struct.pack(">II", last_good_stream, status))


def window_update(stream_id: int, delta: int) -> bytes:
    return _control(WINDOW_UPDATE, 0, struct.pack(">II", stream_id, delta))


class FrameReader:
    """Frames out of a byte stream: :meth:`feed` bytes as they come, get every complete frame back."""

    def __init__(self, decompressor: HeaderDecompressor | None = None) -> None:
        self._buf = bytearray()
        self._z = decompressor or HeaderDecompressor()

    @property
    def pending(self) -> int:
        """Bytes of a frame not complete yet."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        return list(self._frames())

    def _frames(self) -> Iterator[Frame]:
        while len(self._buf) >= 8:
            first, word = struct.unpack_from(">II", self._buf)
            flags, length = word >> 24, word & 0xFFFFFF
            if len(self._buf) < 8 + length:
                return
            payload = bytes(self._buf[8 : 8 + length])
            del self._buf[: 8 + length]
            if first & 0x80000000:
                yield self._control(first, flags, payload)
            else:
                yield DataFrame(first & STREAM_ID_MASK, payload, flags)

    def _control(self, first: int, flags: int, p: bytes) -> ControlFrame:
        version, kind = (first >> 16) & 0x7FFF, first & 0xFFFF
        if version != VERSION:
            raise ProtocolError(f"unsupported SPDY version {version}")
        need = {SYN_STREAM: 10, SYN_REPLY: 4, RST_STREAM: 8, SETTINGS: 4, PING: 4, GOAWAY: 8, HEADERS: 4}
        if len(p) < need.get(kind, 8 if kind == WINDOW_UPDATE else 0):
            raise ProtocolError(f"control frame of type {kind} is too short ({len(p)} bytes)")
        f = ControlFrame(kind, flags)
        if kind == SYN_STREAM:
            sid, assoc, pri, _slot = struct.unpack_from(">IIBB", p)
            f.stream_id, f.associated_id, f.priority = sid & STREAM_ID_MASK, assoc & STREAM_ID_MASK, pri >> 5
            f.headers = self._z.decompress(p[10:])
        elif kind in (SYN_REPLY, HEADERS):
            f.stream_id = struct.unpack_from(">I", p)[0] & STREAM_ID_MASK
            f.headers = self._z.decompress(p[4:])
        elif kind == RST_STREAM:
            sid, f.status = struct.unpack_from(">II", p)
            f.stream_id = sid & STREAM_ID_MASK
        elif kind == SETTINGS:
            count = struct.unpack_from(">I", p)[0]
            if len(p) < 4 + 8 * count:
                raise ProtocolError("SETTINGS frame is truncated")
            for i in range(count):
                word, value = struct.unpack_from(">II", p, 4 + 8 * i)
                f.settings.append((word >> 24, word & 0xFFFFFF, value))
        elif kind == PING:
            f.value = struct.unpack_from(">I", p)[0]
        elif kind == GOAWAY:
            sid, f.status = struct.unpack_from(">II", p)
            f.stream_id = sid & STREAM_ID_MASK
        elif kind == WINDOW_UPDATE:
            sid, delta = struct.unpack_from(">II", p)
            f.stream_id, f.value = sid & STREAM_ID_MASK, delta & STREAM_ID_MASK
        return f  # other types (CREDENTIAL, unknown): ignored by the caller, as the draft says
