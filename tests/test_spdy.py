"""The stand-in's SPDY/3.1 framing (``tests/k8s_standin/spdy.py``) on plain bytes, and its server session
(``kube_spdy.Session``) on a fake transport: no server, no Podman."""

from __future__ import annotations

import asyncio
import struct
import zlib

import pytest

pytest.importorskip("aiohttp")

from tests.k8s_standin import kube_spdy, spdy


def test_the_dictionary_is_spdy3s() -> None:
    # zlib names a preset dictionary by its Adler-32; a peer with another dictionary cannot read our headers.
    assert len(spdy.DICTIONARY) == 1423
    assert zlib.adler32(spdy.DICTIONARY) == 0xE3C6A7C2
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert spdy.DICTIONARY.endswith(b"charset=iso-8859-1,utf-,*,enq=0.")


def test_header_blocks_round_trip_through_one_zlib_stream_per_direction() -> None:
    out, back = spdy.HeaderCompressor(), spdy.HeaderDecompressor()
    first = {"streamType": "data", "port": "80", "requestID": "0"}
    second = {"streamtype": "error", "x-multi": ["a", "b"]}
    blocks = [out.compress(first), out.compress(second)]
    assert back.decompress(blocks[0]) == {"streamtype": ["data"], "port": ["80"], "requestid": ["0"]}
    assert back.decompress(blocks[1]) == {"streamtype": ["error"], "x-multi": ["a", "b"]}
    # The second block leans on the first's history: alone it does not decompress.
    with pytest.raises(spdy.ProtocolError):
        spdy.HeaderDecompressor().decompress(blocks[1])


def test_a_header_block_is_counted_pairs_of_lengths_and_bytes() -> None:
    block = spdy.pack_headers({"Port": "8080"})
    assert block == struct.pack(">I", 1) + struct.pack(">I", 4) + b"port" + struct.pack(">I", 4) + b"8080"
    assert spdy.unpack_headers(block) == {"port": ["8080"]}
    with pytest.raises(spdy.ProtocolError, match="truncated"):
        spdy.unpack_headers(block[:-1])


def test_every_frame_type_round_trips() -> None:
    z = spdy.HeaderCompressor()
    wire = b"".join(
        [
            spdy.syn_stream(z, 1, {"streamtype": "error"}, priority=3),
            spdy.syn_reply(z, 1, {}),
            spdy.headers_frame(z, 1, {"a": "b"}),
            spdy.data_frame(1, b"hello"),
            spdy.data_frame(1, b"", fin=True),
            spdy.rst_stream(3, spdy.CANCEL),
            spdy.settings([(0, 7, 65536)]),
            spdy.ping(5),
            spdy.window_update(1, 1000),
            spdy.goaway(3, spdy.GOAWAY_OK),
        ]
    )
    frames = spdy.FrameReader().feed(wire)
    syn, reply, headers, data, fin, rst, settings, ping, window, goaway = frames
    assert isinstance(syn, spdy.ControlFrame) and syn.type == spdy.SYN_STREAM
    assert (syn.stream_id, syn.priority, syn.headers) == (1, 3, {"streamtype": ["error"]})
    assert isinstance(reply, spdy.ControlFrame) and (reply.type, reply.stream_id, reply.headers) == (2, 1, {})
    assert isinstance(headers, spdy.ControlFrame) and headers.headers == {"a": ["b"]}
    assert data == spdy.DataFrame(1, b"hello", 0) and not data.fin
    assert isinstance(fin, spdy.DataFrame) and fin.fin and fin.data == b""
    assert isinstance(rst, spdy.ControlFrame) and (rst.type, rst.stream_id, rst.status) == (3, 3, spdy.CANCEL)
    assert isinstance(settings, spdy.ControlFrame) and settings.settings == [(0, 7, 65536)]
    assert isinstance(ping, spdy.ControlFrame) and (ping.type, ping.value) == (spdy.PING, 5)
    assert isinstance(window, spdy.ControlFrame) and (window.stream_id, window.value) == (1, 1000)
    assert isinstance(goaway, spdy.ControlFrame) and (goaway.type, goaway.stream_id) == (spdy.GOAWAY, 3)


def test_control_frames_carry_version_3_and_data_frames_a_31_bit_stream_id() -> None:
    assert spdy.ping(1)[:8] == bytes([0x80, 0x03, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04])
    assert spdy.data_frame(5, b"ab", fin=True) == bytes([0, 0, 0, 5, 0x01, 0, 0, 2]) + b"ab"


def test_a_truncated_frame_waits_for_the_rest() -> None:
    reader = spdy.FrameReader()
    wire = spdy.data_frame(3, b"0123456789") + spdy.ping(7)
    assert reader.feed(wire[:5]) == []
    assert reader.feed(wire[5:12]) == []
    assert reader.pending == 12
    frames = reader.feed(wire[12:])
    assert frames[0] == spdy.DataFrame(3, b"0123456789", 0)
    assert isinstance(frames[1], spdy.ControlFrame) and frames[1].value == 7
    assert reader.pending == 0


def test_malformed_frames_are_protocol_errors() -> None:
    spdy2 = struct.pack(">HHI", 0x8002, spdy.PING, 4) + b"\0\0\0\1"
    with pytest.raises(spdy.ProtocolError, match="version 2"):
        spdy.FrameReader().feed(spdy2)
    short = struct.pack(">HHI", 0x8003, spdy.RST_STREAM, 4) + b"\0\0\0\1"
    with pytest.raises(spdy.ProtocolError, match="too short"):
        spdy.FrameReader().feed(short)
    garbage = struct.pack(">HHI", 0x8003, spdy.SYN_REPLY, 8) + b"\0\0\0\1" + b"nope"
    with pytest.raises(spdy.ProtocolError, match="does not decompress"):
        spdy.FrameReader().feed(garbage)


# -- the stand-in's server session (kube_spdy.Session) on a fake transport ------------------------------


class FakeClient:
    """A SPDY client's side of a :class:`kube_spdy.Session`: frames in through a queue, frames out collected."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.wire = bytearray()
        self.session = kube_spdy.Session(self.incoming, self._send)
        self.out = spdy.HeaderCompressor()

    async def _send(self, data: bytes) -> None:
        self.wire += data

    def syn(self, stream_id: int, fin: bool = False) -> None:
        self.incoming.put_nowait(spdy.syn_stream(self.out, stream_id, {"streamType": "data"}, fin=fin))

    def put(self, data: bytes | None) -> None:
        """Bytes from the client; None: it went away."""
        self.incoming.put_nowait(data)

    def received(self) -> list[spdy.Frame]:
        return spdy.FrameReader().feed(bytes(self.wire))


def _rsts(frames: list[spdy.Frame]) -> list[tuple[int, int]]:
    return [(f.stream_id, f.status) for f in frames if isinstance(f, spdy.ControlFrame) and f.type == spdy.RST_STREAM]


def _replies(frames: list[spdy.Frame]) -> list[int]:
    return [f.stream_id for f in frames if isinstance(f, spdy.ControlFrame) and f.type == spdy.SYN_REPLY]


async def _run_until_idle(client: FakeClient) -> asyncio.Task[None]:
    reader = asyncio.ensure_future(client.session.run())
    while not client.incoming.empty():
        await asyncio.sleep(0)
    await asyncio.sleep(0)
    return reader


def _streams(client: FakeClient) -> list[kube_spdy.Stream]:
    """The streams the session accepted so far (not the None that ends its queue)."""
    out = []
    while not client.session.streams.empty():
        if (stream := client.session.streams.get_nowait()) is not None:
            out.append(stream)
    return out


def test_stream_ids_must_be_odd_and_increasing() -> None:
    async def scenario() -> FakeClient:
        client = FakeClient()
        for sid in (0, 2, 3, 3, 1, 5):  # zero, even, good, repeated, going back, good
            client.syn(sid)
        client.put(None)
        await client.session.run()
        return client

    client = asyncio.run(scenario())
    frames = client.received()
    assert _replies(frames) == [3, 5]
    assert _rsts(frames) == [(sid, spdy.PROTOCOL_ERROR) for sid in (0, 2, 3, 1)]
    accepted = _streams(client)
    assert [s.id for s in accepted] == [3, 5]
    assert accepted[0].reset and not accepted[1].reset  # the repeated id ended the stream it named


def test_data_after_the_clients_fin_is_refused_and_dropped() -> None:
    async def scenario() -> tuple[FakeClient, list[bytes]]:
        client = FakeClient()
        client.syn(1)
        client.put(spdy.data_frame(1, b"first") + spdy.data_frame(1, fin=True) + spdy.data_frame(1, b"late"))
        reader = await _run_until_idle(client)
        (stream,) = _streams(client)
        got = [await stream.read(), await stream.read(), await stream.read()]
        client.put(None)
        await reader
        return client, got

    client, got = asyncio.run(scenario())
    assert got == [b"first", b"", b""]
    assert _rsts(client.received()) == [(1, spdy.STREAM_ALREADY_CLOSED)]


def test_nothing_is_written_after_the_clients_reset_or_our_fin() -> None:
    async def scenario() -> FakeClient:
        client = FakeClient()
        client.syn(1)
        client.syn(3)
        client.put(spdy.rst_stream(1, spdy.CANCEL))
        reader = await _run_until_idle(client)
        reset, other = _streams(client)
        with pytest.raises(ConnectionResetError, match="reset"):
            await reset.write(b"after the reset")
        await reset.close()  # no FIN on a reset stream
        await other.write(b"before the fin")
        await other.close()
        with pytest.raises(ConnectionResetError, match="closed"):
            await other.write(b"after the fin")
        client.put(None)
        await reader
        return client

    frames = asyncio.run(scenario()).received()
    data = [(f.stream_id, f.data, f.fin) for f in frames if isinstance(f, spdy.DataFrame)]
    assert data == [(3, b"before the fin", False), (3, b"", True)]


def test_after_goaway_new_streams_get_no_reply() -> None:
    async def scenario() -> FakeClient:
        client = FakeClient()
        client.syn(1)
        reader = await _run_until_idle(client)
        await client.session.close()
        client.syn(3)
        client.put(spdy.ping(7))
        await _run_until_idle(client)
        client.put(None)
        await reader
        return client

    frames = asyncio.run(scenario()).received()
    assert _replies(frames) == [1]
    kinds = [f.type for f in frames if isinstance(f, spdy.ControlFrame)]
    assert kinds == [spdy.SYN_REPLY, spdy.GOAWAY]  # nothing after GOAWAY: no SYN_REPLY, no PING echo
