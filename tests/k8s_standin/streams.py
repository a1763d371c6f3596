"""The websocket channel protocols of ``exec`` and ``portforward``, server side (a fake for tests).

Both speak Kubernetes' ``channel.k8s.io`` framing: every binary frame starts
with one byte naming its channel.

* exec (``v5.channel.k8s.io`` preferred, else ``v4.channel.k8s.io``): 0 stdin,
  1 stdout, 2 stderr, 3 the final Status as JSON, 4 resize; v5 adds 255
  "close channel". The command runs with ``podman exec`` (an argument list,
  never a host shell) and its output is relayed as it comes, bytes intact.
* port-forward (``v4.channel.k8s.io``): port i has data channel 2i and error
  channel 2i+1; the first frame on each carries the port as 2 bytes
  little-endian; data frames are relayed to a TCP connection to the pod.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol

from aiohttp import WSMsgType, web

from .status import bad_request

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
EXEC_PROTOCOLS = (V5, V4)
PORTFORWARD_PROTOCOLS = (V4,)

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
CHUNK = 64 * 1024
# Podman's own complaints on stderr start like this; the command's output is held back while it might be one.
_PODMAN_PREFIXES = (b"Error: ", b"failed to connect to syslog")
HOLD_SECONDS = 0.5
CLOSE_TIMEOUT = 2.0


def choose_protocol(offered: str | None, supported: Sequence[str]) -> str:
    """The first of ``supported`` the client offered; 400 otherwise (as the apiserver's handshake does)."""
    asked = [p.strip() for p in (offered or "").split(",") if p.strip()]
    for proto in supported:
        if proto in asked:
            return proto
    raise bad_request(f"requested protocol(s) are not supported: [{' '.join(asked)}]; supports [{' '.join(supported)}]")


# -- exec ------------------------------------------------------------------------------------


def success_status() -> dict[str, Any]:
    return {"metadata": {}, "status": "Success"}


def exit_status(argv: Sequence[str], code: int) -> dict[str, Any]:
    """The kubelet's Status for a command that exited non-zero."""
    return {
        "metadata": {},
        "status": "Failure",
        "message": (
            f"command terminated with non-zero exit code: error executing command [{' '.join(argv)}], exit code {code}"
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def runtime_failure_status(argv: Sequence[str], podman_error: str) -> dict[str, Any]:
    """The Status for a command the runtime could not start, worded like containerd's.

    There is no ExitCode cause: the command never ran, as with a real cluster.
    """
    text = podman_error.strip().splitlines()[-1] if podman_error.strip() else "unknown error"
    text = text.removeprefix("Error: ")
    if "container state improper" in text or "no such container" in text:
        core = "failed to exec in container: container is in CONTAINER_EXITED state"
    else:
        # "labkit-runc: exec failed: ...: OCI runtime attempted to ..." -> the runtime's own words.
        text = re.sub(r"^[\w.-]*(runc|crun)[\w.-]*: ", "", text)
        text = re.sub(r": OCI (runtime attempted to invoke a command that was not found|permission denied)$", "", text)
        exec_id = secrets.token_hex(32)
        core = (
            f'failed to exec in container: failed to start exec "{exec_id}": OCI runtime exec failed: {text}: unknown'
        )
    message = f"error executing command in container: {core}"
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"Internal error occurred: {message}",
        "reason": "InternalError",
        "details": {"causes": [{"message": message}]},
        "code": 500,
    }


def _might_be_podman(held: bytes) -> bool:
    return any(held[: len(p)] == p[: len(held)] for p in _PODMAN_PREFIXES)


def _drop_syslog_noise(held: bytes) -> bytes:
    while held.startswith(b"failed to connect to syslog") and b"\n" in held:
        held = held.split(b"\n", 1)[1]
    return held


def _is_podman_failure(code: int, held: bytes) -> bool:
    markers = (b"OCI runtime", b"exec failed", b"container state improper", b"no such container", b"OCI permission")
    return code in (125, 126, 127) and held.startswith(b"Error: ") and any(m in held for m in markers)


class ExecPeer(Protocol):
    """The client end of an exec, whatever carries it (a websocket here, SPDY streams in :mod:`kube_spdy`)."""

    @property
    def closed(self) -> bool: ...

    async def send(self, channel: int, data: bytes) -> None:
        """Output on STDOUT or STDERR, or the final Status on ERROR."""

    def incoming(self) -> AsyncIterator[tuple[int, bytes]]:
        """What the client sends: (STDIN, data), and (CLOSE, bytes([STDIN])) when its stdin ends."""
        ...

    async def close(self) -> None: ...


class _WebSocketPeer:
    def __init__(self, ws: web.WebSocketResponse, protocol: str) -> None:
        self.ws, self.protocol = ws, protocol

    @property
    def closed(self) -> bool:
        return self.ws.closed

    async def send(self, channel: int, data: bytes) -> None:
        await self.ws.send_bytes(bytes([channel]) + data)

    async def incoming(self) -> AsyncIterator[tuple[int, bytes]]:
        async for msg in self.ws:
            if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                continue
            data = msg.data if isinstance(msg.data, bytes) else msg.data.encode("utf-8")
            if data and (data[0] != CLOSE or self.protocol == V5):
                yield data[0], data[1:]

    async def close(self) -> None:
        await self.ws.close()


async def serve_exec(
    request: web.Request,
    protocol: str,
    command: Sequence[str],
    argv: Sequence[str],
    want: dict[str, bool],
    track: set[web.WebSocketResponse],
) -> web.WebSocketResponse:
    """Run ``command`` (``podman exec ... argv``) and relay it over the websocket."""
    ws = web.WebSocketResponse(protocols=(protocol,), timeout=CLOSE_TIMEOUT)
    await ws.prepare(request)
    track.add(ws)
    try:
        await run_exec(_WebSocketPeer(ws, protocol), command, argv, want)
    finally:
        track.discard(ws)
    return ws


async def run_exec(
    peer: ExecPeer,
    command: Sequence[str],
    argv: Sequence[str],
    want: dict[str, bool],
) -> None:
    """Run ``command`` (``podman exec ... argv``) and relay it to and from ``peer``.

    ``want`` says which of stdin/stdout/stderr the client asked for. If the
    client goes away first, the command keeps running in the container, as
    it does on a cluster: a kubelet does not end an exec'd process when the
    stream closes (kubernetes/kubernetes issue 89031, "Process remained in
    container after Kubectl exec being killed"; opencontainers/runc issue
    3359). Only the local ``podman exec`` client is ended, with SIGKILL,
    which Podman cannot act on: its exec session, run by conmon, goes on
    (``tests/test_k8s_standin.py`` checks that the command outlives it).
    """
    proc = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.PIPE if want["stdin"] else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await _relay_exec(peer, proc, argv, want)
    except ConnectionResetError:
        pass  # the client went away while we wrote to it
    finally:
        if proc.returncode is None:
            # The client left mid-command (or the stand-in stops): let go of the command, not end it.
            proc.kill()
            await proc.wait()


async def _relay_exec(
    peer: ExecPeer,
    proc: asyncio.subprocess.Process,
    argv: Sequence[str],
    want: dict[str, bool],
) -> None:
    assert proc.stdout is not None and proc.stderr is not None
    stdout, stderr = proc.stdout, proc.stderr

    async def pump_stdout() -> None:
        while chunk := await stdout.read(CHUNK):
            if want["stdout"]:
                await peer.send(STDOUT, chunk)

    async def pump_stderr() -> bytes:
        """Relay stderr, holding back a start that may be Podman's own error; return what is still held."""
        held, holding = b"", True
        while True:
            try:
                chunk: bytes | None = await (
                    asyncio.wait_for(stderr.read(CHUNK), HOLD_SECONDS) if holding else stderr.read(CHUNK)
                )
            except TimeoutError:
                chunk = None  # held long enough: it is the command talking, not Podman failing to start it
            if chunk == b"":
                return held
            if holding:
                held = _drop_syslog_noise(held + (chunk or b""))
                if chunk is not None and _might_be_podman(held):
                    continue
                holding, chunk, held = False, held, b""
            if chunk and want["stderr"]:
                await peer.send(STDERR, chunk)

    async def read_client() -> None:
        async for channel, data in peer.incoming():
            if channel == STDIN and proc.stdin is not None and not proc.stdin.is_closing():
                proc.stdin.write(data)
                await proc.stdin.drain()
            elif channel == CLOSE and data[:1] == bytes([STDIN]) and proc.stdin is not None:
                proc.stdin.close()

    outputs: asyncio.Future[Any] = asyncio.ensure_future(asyncio.gather(pump_stdout(), pump_stderr()))
    client: asyncio.Future[Any] = asyncio.ensure_future(read_client())
    try:
        await asyncio.wait({outputs, client}, return_when=asyncio.FIRST_COMPLETED)
        if not outputs.done() or outputs.exception() is not None or peer.closed:
            return  # the client left first; the caller stops the command
        code = await proc.wait()
        held = outputs.result()[1]
        if _is_podman_failure(code, held):
            status = runtime_failure_status(argv, held.decode("utf-8", "replace"))
        else:
            if held and want["stderr"]:
                await peer.send(STDERR, held)
            status = success_status() if code == 0 else exit_status(argv, code)
        await peer.send(ERROR, json.dumps(status).encode())
        await peer.close()
        await asyncio.wait({client}, timeout=CLOSE_TIMEOUT)
    finally:
        for task in (outputs, client):
            task.cancel()
        await asyncio.gather(outputs, client, return_exceptions=True)


# -- port-forward -----------------------------------------------------------------------------


async def open_pod_connection(
    connect: Callable[[int], Awaitable[socket.socket]], port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A stream pair on a connection to the pod's ``port`` (``connect`` gives the socket)."""
    sock = await connect(port)
    sock.setblocking(False)
    return await asyncio.open_connection(sock=sock)


async def serve_portforward(
    request: web.Request,
    protocol: str,
    ports: Sequence[int],
    connect: Callable[[int], Awaitable[socket.socket]],
    failure_text: Callable[[int, BaseException], Awaitable[str]],
    track: set[web.WebSocketResponse],
) -> web.WebSocketResponse:
    """Relay each requested port of the pod over its pair of channels."""
    ws = web.WebSocketResponse(protocols=(protocol,), timeout=CLOSE_TIMEOUT)
    await ws.prepare(request)
    track.add(ws)
    writers: dict[int, asyncio.StreamWriter] = {}
    pumps: list[asyncio.Task[None]] = []
    try:
        for i, port in enumerate(ports):
            prefix = port.to_bytes(2, "little")
            await ws.send_bytes(bytes([2 * i]) + prefix)
            await ws.send_bytes(bytes([2 * i + 1]) + prefix)
        for i, port in enumerate(ports):
            try:
                reader, writer = await open_pod_connection(connect, port)
            except Exception as exc:
                await ws.send_bytes(bytes([2 * i + 1]) + (await failure_text(port, exc)).encode())
                continue
            writers[i] = writer
            pumps.append(asyncio.ensure_future(_pod_to_client(ws, 2 * i, reader)))
        if not writers:
            await ws.close()
            return ws

        async def client_to_pod() -> None:
            async for msg in ws:
                if msg.type != WSMsgType.BINARY or not msg.data:
                    continue
                channel, payload = msg.data[0], msg.data[1:]
                writer = writers.get(channel // 2) if channel % 2 == 0 else None
                if writer is not None and payload:
                    writer.write(payload)
                    await writer.drain()

        client: asyncio.Future[Any] = asyncio.ensure_future(client_to_pod())
        all_pumps: asyncio.Future[Any] = asyncio.ensure_future(asyncio.gather(*pumps, return_exceptions=True))
        await asyncio.wait({client, all_pumps}, return_when=asyncio.FIRST_COMPLETED)
        if all_pumps.done() and not ws.closed:
            await ws.close()  # every pod connection ended: so does the stream
        client.cancel()
        all_pumps.cancel()
        await asyncio.gather(client, all_pumps, return_exceptions=True)
        return ws
    except ConnectionResetError:
        return ws
    finally:
        for w in writers.values():
            w.close()
        for p in pumps:
            p.cancel()
        track.discard(ws)


async def _pod_to_client(ws: web.WebSocketResponse, channel: int, reader: asyncio.StreamReader) -> None:
    while chunk := await reader.read(CHUNK):
        await ws.send_bytes(bytes([channel]) + chunk)
