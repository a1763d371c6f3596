"""Kubernetes' SPDY stream protocols, server side: exec and port-forward as kubectl speaks them (a fake).

kubectl asks with ``Connection: Upgrade``, ``Upgrade: SPDY/3.1`` and one
``X-Stream-Protocol-Version`` header per protocol it knows; the server
answers ``101 Switching Protocols`` naming the one it chose, and from then
on the connection carries SPDY/3.1 (:mod:`spdy`). kubectl 1.31 and later
first try the same SPDY inside a websocket (subprotocol
``SPDY/3.1+portforward.k8s.io``) for port-forward, which the stand-in also
accepts: the websocket's binary messages carry the SPDY bytes.

The client opens every stream (SYN_STREAM, odd ids) with a ``streamType``
header; the server accepts each with a SYN_REPLY.

Streams whose ids are not odd and increasing are refused (RST_STREAM
PROTOCOL_ERROR); data after the client's FIN is refused with
STREAM_ALREADY_CLOSED and dropped; nothing goes out on a stream after its
RST_STREAM or our FIN, nor on the session after GOAWAY.

* exec (``v4.channel.k8s.io``, also v3, v2 and ``channel.k8s.io``): streams
  ``error``, ``stdin``, ``stdout``, ``stderr`` (and ``resize`` for a tty); the
  server waits for the streams the query asked for, relays the command (the
  same :func:`streams.run_exec` as the websocket protocols) and ends with
  the Status as JSON on the error stream (v4; older versions write only a
  failure's message), then closes every stream (FIN) and the session (GOAWAY).
* port-forward (``portforward.k8s.io``): per connection the client opens an
  ``error`` and a ``data`` stream carrying the same ``port`` and
  ``requestID``; the server connects to the pod's port and relays the data
  stream, writes a failure to the error stream, and closes both when the pod
  side ends.

aiohttp has no generic upgrade: :func:`take_over` answers 101 itself and
routes the connection's further bytes (plain TCP or TLS alike) to the
session instead of the HTTP parser.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from aiohttp import WSMsgType, web
from multidict import CIMultiDict

from . import spdy
from .streams import CHUNK, CLOSE, ERROR, STDERR, STDIN, STDOUT, open_pod_connection, run_exec

log = logging.getLogger("k8s_standin")

EXEC_PROTOCOLS = ("v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io")
PORTFORWARD_PROTOCOL = "portforward.k8s.io"
TUNNEL_PREFIX = "SPDY/3.1+"
STREAM_WAIT = 30.0  # how long the server waits for the streams the request announced (the kubelet's timeout)
CLOSE_WAIT = 2.0


def wants_spdy(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == spdy.PROTOCOL.lower()


def choose(request: web.Request, supported: Sequence[str]) -> str:
    """The client's first ``X-Stream-Protocol-Version`` that the server supports.

    Otherwise 403 with a plain-text body, not a Status: what apimachinery's ``httpstream.Handshake``
    answers (the kubelet negotiates, kube-apiserver passes its answer on), listing the server's protocols
    in ``X-Accepted-Stream-Protocol-Versions`` too."""
    offered = [p.strip() for v in request.headers.getall("X-Stream-Protocol-Version", []) for p in v.split(",")]
    for proto in offered:
        if proto in supported:
            return proto
    accepted = CIMultiDict(("X-Accepted-Stream-Protocol-Versions", p) for p in supported)
    raise web.HTTPForbidden(
        headers=accepted,
        text="unable to upgrade: unable to negotiate protocol: "
        f"client supports {_go_list(offered)}, server accepts {_go_list(supported)}\n",
    )


def _go_list(items: Sequence[str]) -> str:
    """A list of strings as Go's ``%v`` prints a ``[]string``."""
    return "[" + " ".join(items) + "]"


def tunnel_protocol(request: web.Request, protocol: str) -> str | None:
    """``SPDY/3.1+<protocol>`` when the client offers SPDY tunnelled in a websocket (kubectl 1.31+), else None."""
    want = TUNNEL_PREFIX + protocol
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
    return want if want in offered else None


# -- the session -----------------------------------------------------------------------------


class Stream:
    """One SPDY stream the client opened: its headers, what it sent, and a way to answer on it."""

    def __init__(self, session: Session, stream_id: int, headers: dict[str, list[str]]) -> None:
        self.session = session
        self.id = stream_id
        self.headers = {k: v[0] if v else "" for k, v in headers.items()}
        self._in: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.finished_remote = False  # the client's FIN (or its RST_STREAM): nothing more comes in
        self.finished_local = False  # our FIN: nothing more goes out
        self.reset = False  # either side's RST_STREAM: the stream is over both ways

    @property
    def type(self) -> str:
        return self.headers.get("streamtype", "")

    def _received(self, data: bytes | None) -> None:
        if data is None:
            if self.finished_remote:
                return
            self.finished_remote = True
        self._in.put_nowait(data)

    async def read(self) -> bytes:
        """The next bytes the client sent; b"" once it half-closed (FIN) or reset the stream."""
        if self.finished_remote and self._in.empty():
            return b""
        data = await self._in.get()
        return data or b""

    async def write(self, data: bytes) -> None:
        """Data frames to the client; ConnectionResetError once the stream was reset or we half-closed it."""
        for i in range(0, len(data), CHUNK):
            if self.reset or self.finished_local:
                raise ConnectionResetError(f"SPDY stream {self.id} is {'reset' if self.reset else 'closed'}")
            await self.session.send(spdy.data_frame(self.id, data[i : i + CHUNK]))

    async def close(self) -> None:
        """Half-close: a FIN data frame, once (none on a reset stream)."""
        if not self.finished_local and not self.reset and not self.session.closed:
            self.finished_local = True
            await self.session.send(spdy.data_frame(self.id, b"", fin=True))

    def _ended(self) -> None:
        """Reset, by the client or by us: nothing more either way."""
        self.reset = True
        self._received(None)


class Session:
    """A server's SPDY/3.1 session over a byte pipe: ``incoming`` yields what arrives (None: the end),
    ``send`` writes bytes out. New streams are accepted (SYN_REPLY) and queued on :attr:`streams`."""

    def __init__(self, incoming: asyncio.Queue[bytes | None], send: Callable[[bytes], Awaitable[None]]) -> None:
        self._incoming = incoming
        self._send = send
        self._lock = asyncio.Lock()
        self._z = spdy.HeaderCompressor()
        self._reader = spdy.FrameReader()
        self._streams: dict[int, Stream] = {}
        self.streams: asyncio.Queue[Stream | None] = asyncio.Queue()
        self.ended = asyncio.Event()  # set once the session is closed, by either side
        self._last_id = 0

    @property
    def closed(self) -> bool:
        return self.ended.is_set()

    async def send(self, frame: bytes | Callable[[], bytes]) -> None:
        """One frame out, whole and in order; a callable is built under the same lock (a frame with a header
        block must be compressed in the order the frames go out). ConnectionResetError once closed."""
        async with self._lock:
            if self.closed:
                raise ConnectionResetError("the SPDY session is closed")
            await self._send(frame() if callable(frame) else frame)

    async def run(self) -> None:
        """Read frames until the client goes away or says GOAWAY."""
        try:
            while (data := await self._incoming.get()) is not None:
                for frame in self._reader.feed(data):
                    if not await self._handle(frame):
                        return
        except spdy.ProtocolError as exc:
            log.warning("stand-in: SPDY protocol error from the client: %s", exc)
            with contextlib.suppress(ConnectionError):
                await self.send(spdy.goaway(self._last_id, spdy.GOAWAY_PROTOCOL_ERROR))
        finally:
            self.ended.set()
            for stream in self._streams.values():
                stream._received(None)
            self.streams.put_nowait(None)

    async def _handle(self, frame: spdy.Frame) -> bool:
        if isinstance(frame, spdy.DataFrame):
            await self._data(frame)
            return True
        if frame.type == spdy.SYN_STREAM:
            await self._syn_stream(frame)
        elif frame.type == spdy.RST_STREAM:
            stream = self._streams.get(frame.stream_id)
            if stream is not None:
                stream._ended()
        elif frame.type == spdy.PING and frame.value % 2 == 1:
            with contextlib.suppress(ConnectionError):
                await self.send(spdy.ping(frame.value))  # the client's ping (odd id): echo it
        elif frame.type == spdy.GOAWAY:
            return False
        return True  # SETTINGS, WINDOW_UPDATE, HEADERS: nothing to do for these protocols

    async def _data(self, frame: spdy.DataFrame) -> None:
        stream = self._streams.get(frame.stream_id)
        if stream is None or stream.reset:
            return  # not a stream of ours, or one already reset: nothing to deliver
        if stream.finished_remote:
            # The client said FIN before: SPDY/3.1 answers STREAM_ALREADY_CLOSED and the data goes nowhere.
            await self._refuse(frame.stream_id, spdy.STREAM_ALREADY_CLOSED)
            stream._ended()
            return
        if frame.data:
            stream._received(frame.data)
        if frame.fin:
            stream._received(None)

    async def _syn_stream(self, frame: spdy.ControlFrame) -> None:
        if self.closed:
            return  # after our GOAWAY new streams are ignored, as SPDY says
        sid = frame.stream_id
        if sid == 0 or sid % 2 == 0 or sid <= self._last_id:
            # A client's streams have odd ids, each above the last: anything else is the client's mistake.
            await self._refuse(sid, spdy.PROTOCOL_ERROR)
            if (known := self._streams.get(sid)) is not None:
                known._ended()
            return
        stream = Stream(self, sid, frame.headers)
        self._streams[sid] = stream
        self._last_id = sid
        with contextlib.suppress(ConnectionError):
            await self.send(lambda: spdy.syn_reply(self._z, sid, {}))
        if frame.fin:
            stream._received(None)
        self.streams.put_nowait(stream)

    async def _refuse(self, stream_id: int, status: int) -> None:
        with contextlib.suppress(ConnectionError):
            await self.send(spdy.rst_stream(stream_id, status))

    async def close(self) -> None:
        """Say GOAWAY (no more streams) and stop sending."""
        if not self.closed:
            with contextlib.suppress(ConnectionError):
                await self.send(spdy.goaway(self._last_id))
            self.ended.set()


# -- carrying the session: a taken-over HTTP connection, or a websocket ---------------------------


class _Feed:
    """Stands where aiohttp's websocket reader would: the connection's bytes after the 101 go to a queue."""

    def __init__(self, queue: asyncio.Queue[bytes | None]) -> None:
        self.queue = queue

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.queue.put_nowait(bytes(data))
        return False, b""

    def feed_eof(self) -> None:
        self.queue.put_nowait(None)


HangUp = Callable[[], Awaitable[None]]


async def take_over(request: web.Request, protocol: str) -> tuple[web.StreamResponse, Session, HangUp]:
    """Answer 101 with ``protocol`` and turn the connection (TCP or TLS) into a SPDY session.

    Also returns how to hang up: close the connection."""
    transport, proto = request.transport, request.protocol
    if transport is None:
        raise ConnectionResetError("the client went away")
    incoming: asyncio.Queue[bytes | None] = asyncio.Queue()
    # Before the 101 goes out: whatever the client sends after it must reach the session, not the HTTP parser.
    proto.set_parser(_Feed(incoming))  # type: ignore[arg-type]
    proto.keep_alive(False)
    resp = web.StreamResponse(
        status=101,
        headers={"Connection": "Upgrade", "Upgrade": spdy.PROTOCOL, "X-Stream-Protocol-Version": protocol},
    )
    await resp.prepare(request)

    async def send(data: bytes) -> None:
        if transport.is_closing():
            raise ConnectionResetError("the client went away")
        transport.write(data)
        if transport.get_write_buffer_size() > 1 << 20:
            await proto._drain_helper()

    async def hang_up() -> None:
        transport.close()

    return resp, Session(incoming, send), hang_up


async def over_websocket(request: web.Request, subprotocol: str) -> tuple[web.WebSocketResponse, Session, HangUp]:
    """Accept the websocket with ``SPDY/3.1+...`` and carry a SPDY session in its binary messages.

    Also returns how to hang up: close the websocket and stop reading it."""
    ws = web.WebSocketResponse(protocols=(subprotocol,), timeout=CLOSE_WAIT)
    await ws.prepare(request)
    incoming: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for msg in ws:
                if msg.type == WSMsgType.BINARY:
                    incoming.put_nowait(msg.data)
        finally:
            incoming.put_nowait(None)

    async def send(data: bytes) -> None:
        await ws.send_bytes(data)

    reading = asyncio.ensure_future(pump())

    async def hang_up() -> None:
        with contextlib.suppress(ConnectionError):
            await ws.close()
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)

    return ws, Session(incoming, send), hang_up


# -- exec ----------------------------------------------------------------------------------


class _SpdyExecPeer:
    """The exec relay's view of the SPDY streams."""

    def __init__(self, session: Session, streams: dict[str, Stream], protocol: str) -> None:
        self.session, self.streams, self.protocol = session, streams, protocol

    @property
    def closed(self) -> bool:
        return self.session.closed

    async def send(self, channel: int, data: bytes) -> None:
        if channel == ERROR:
            status = json.loads(data)
            if self.protocol != EXEC_PROTOCOLS[0]:
                # before v4 the error stream carries only a failure's message
                data = b"" if status.get("status") == "Success" else str(status.get("message", "")).encode()
            if data:
                await self.streams["error"].write(data)
            return
        stream = self.streams.get("stdout" if channel == STDOUT else "stderr" if channel == STDERR else "")
        if stream is not None:
            await stream.write(data)

    async def incoming(self) -> AsyncIterator[tuple[int, bytes]]:
        stdin = self.streams.get("stdin")
        if stdin is None:
            await self.session.ended.wait()
            return
        while data := await stdin.read():
            yield STDIN, data
        yield CLOSE, bytes([STDIN])
        await self.session.ended.wait()

    async def close(self) -> None:
        for stream in self.streams.values():
            with contextlib.suppress(ConnectionError):
                await stream.close()
        await self.session.close()


async def _wait_streams(session: Session, wanted: set[str]) -> dict[str, Stream] | None:
    """The streams of the types in ``wanted``, as the client opens them; None if it leaves or is too slow."""
    got: dict[str, Stream] = {}

    async def collect() -> None:
        while not wanted <= got.keys():
            stream = await session.streams.get()
            if stream is None:
                return
            got[stream.type] = stream

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(collect(), STREAM_WAIT)
    return got if wanted <= got.keys() else None


async def serve_exec(
    request: web.Request,
    command: Sequence[str],
    argv: Sequence[str],
    want: dict[str, bool],
) -> web.StreamResponse:
    """exec over SPDY: the streams the query asked for, then :func:`streams.run_exec`."""
    protocol = choose(request, EXEC_PROTOCOLS)
    resp, session, hang_up = await take_over(request, protocol)
    reader = asyncio.ensure_future(session.run())
    try:
        wanted = {"error"} | {k for k in ("stdin", "stdout", "stderr") if want[k]}
        streams = await _wait_streams(session, wanted)
        if streams is not None:
            await run_exec(_SpdyExecPeer(session, streams, protocol), command, argv, want)
            await asyncio.wait({reader}, timeout=CLOSE_WAIT)  # the client's goodbye
    finally:
        await _finish(session, reader, hang_up)
    return resp


async def _finish(session: Session, reader: asyncio.Future[None], hang_up: HangUp) -> None:
    """GOAWAY, stop reading frames, then hang up the connection that carried the session."""
    await session.close()
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    await hang_up()


# -- port-forward --------------------------------------------------------------------------


async def serve_portforward(
    request: web.Request,
    connect: Callable[[int], Awaitable[socket.socket]],
    failure_text: Callable[[int, BaseException], Awaitable[str]],
) -> web.StreamResponse:
    """port-forward over SPDY (a plain upgrade, or tunnelled in a websocket): each request id's pair of streams."""
    tunnel = tunnel_protocol(request, PORTFORWARD_PROTOCOL)
    resp: web.StreamResponse
    if tunnel is not None:
        resp, session, hang_up = await over_websocket(request, tunnel)
    else:
        choose(request, (PORTFORWARD_PROTOCOL,))
        resp, session, hang_up = await take_over(request, PORTFORWARD_PROTOCOL)
    reader = asyncio.ensure_future(session.run())
    pairs: dict[str, dict[str, Stream]] = {}
    forwards: set[asyncio.Task[None]] = set()
    try:
        while (stream := await session.streams.get()) is not None:
            request_id = stream.headers.get("requestid", "")
            pair = pairs.setdefault(request_id, {})
            pair[stream.type] = stream
            if {"error", "data"} <= pair.keys():
                del pairs[request_id]
                task = asyncio.ensure_future(_forward(pair["data"], pair["error"], connect, failure_text))
                forwards.add(task)
                task.add_done_callback(forwards.discard)
    finally:
        for task in list(forwards):
            task.cancel()
        await asyncio.gather(*forwards, return_exceptions=True)
        await _finish(session, reader, hang_up)
    return resp


async def _forward(
    data: Stream,
    error: Stream,
    connect: Callable[[int], Awaitable[socket.socket]],
    failure_text: Callable[[int, BaseException], Awaitable[str]],
) -> None:
    """One forwarded connection: the pod's port relayed to the data stream, a failure told on the error stream."""
    try:
        port = int(data.headers.get("port", ""))
    except ValueError:
        await error.write(f'invalid port: "{data.headers.get("port", "")}"'.encode())
        await error.close()
        await data.close()
        return
    writer: asyncio.StreamWriter | None = None
    try:
        try:
            reader, writer = await open_pod_connection(connect, port)
        except Exception as exc:
            await error.write((await failure_text(port, exc)).encode())
            return

        async def client_to_pod() -> None:
            assert writer is not None
            while chunk := await data.read():
                writer.write(chunk)
                await writer.drain()
            with contextlib.suppress(OSError):
                writer.write_eof()

        upstream = asyncio.ensure_future(client_to_pod())
        try:
            while chunk := await reader.read(CHUNK):
                await data.write(chunk)
        finally:
            upstream.cancel()
            await asyncio.gather(upstream, return_exceptions=True)
    except ConnectionError:
        pass
    finally:
        if writer is not None:
            writer.close()
        for stream in (data, error):
            with contextlib.suppress(ConnectionError):
                await stream.close()
