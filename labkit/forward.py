"""A local port-forward: a TCP listener on 127.0.0.1 relayed to a pod's port.

Like ``kubectl port-forward``, the listener exists only while the forward
is open, accepts several connections at once, and binds loopback only. How
a connection reaches the pod is the engine's business: the forward asks it
for one upstream socket per accepted client.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

from labkit.engines.base import Tunnel
from labkit.errors import LabkitError, PortError

Connector = Callable[[], socket.socket]


@dataclass(frozen=True)
class HttpResponse:
    """One HTTP answer from the pod, whatever its status (``curl -i``): what :meth:`labkit.Lab.request` returns."""

    path: str
    port: int | None
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        """The body as text (UTF-8, undecodable bytes replaced)."""
        return self.body.decode("utf-8", "replace")


_CHUNK = 64 * 1024


class PortForward:
    """Relay connections from ``127.0.0.1:local_port`` to a pod's port.

    ``local_port=None`` (or 0) picks a free port. Use it as a context manager,
    which yields the forward's URL, or call :meth:`close` yourself.
    """

    def __init__(
        self, connect: Connector, *, local_port: int | None, target: str, remote_port: int | None = None
    ) -> None:
        self._connect = connect
        self.target = target
        self.remote_port = remote_port
        self.errors: list[str] = []
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._listener = _listen(local_port, target)
        self._listener.settimeout(0.2)
        self.local_port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, name=f"labkit-forward-{self.local_port}", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.local_port}"

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    @property
    def last_error(self) -> str | None:
        return self.errors[-1] if self.errors else None

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<PortForward {self.url} -> {self.target} ({state})>"

    def __enter__(self) -> str:
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop listening and drop every relayed connection."""
        if self._closed.is_set():
            return
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for s in conns:
            _close(s)
        self._thread.join(timeout=2)

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                if not self._closed.is_set():
                    self.errors.append(f"stopped accepting connections: {exc}")
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = self._connect()
        except (OSError, LabkitError) as exc:
            self.errors.append(f"cannot reach {self.target}: {exc}")
            _close(client)
            return
        for s in (client, upstream):
            # Relay each chunk at once: with Nagle's algorithm a response split in two
            # segments waits for the client's delayed ACK (tens of milliseconds). A Kubernetes
            # tunnel is a local socket pair, not TCP, and refuses the option.
            with contextlib.suppress(OSError):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            if self._closed.is_set():
                _close(client)
                _close(upstream)
                return
            self._conns.update((client, upstream))
        try:
            _relay(client, upstream, self._closed)
        except OSError as exc:
            if exc.errno not in (errno.EBADF, errno.ECONNRESET, errno.EPIPE):
                self.errors.append(f"relay to {self.target} failed: {exc}")
        finally:
            with self._lock:
                self._conns.discard(client)
                self._conns.discard(upstream)
            _close(client)
            _close(upstream)
            message = upstream.close_reason() if isinstance(upstream, Tunnel) else None
            if message:
                self.errors.append(f"{self.target}: {message}")


def _listen(local_port: int | None, target: str) -> socket.socket:
    port = local_port or 0
    if not 0 <= port < 65536:
        raise PortError(f"local port {local_port} is out of range; use 1-65535, or None for a free port")
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        s.listen(64)
    except OSError as exc:
        s.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortError(
                f"local port {port} is already in use, so {target} cannot be forwarded there; "
                "choose another port, or pass local_port=None to let the kit pick a free one"
            ) from exc
        if exc.errno == errno.EACCES:
            raise PortError(
                f"not allowed to listen on local port {port} (ports below 1024 need privileges); "
                "choose a port of 1024 or above, such as 8080"
            ) from exc
        raise PortError(f"cannot listen on 127.0.0.1:{port}: {exc}") from exc
    return s


def _relay(a: socket.socket, b: socket.socket, closed: threading.Event) -> None:
    """Copy bytes both ways until both directions have ended or the forward closes."""
    peer = {a: b, b: a}
    open_reads = {a, b}
    sel = selectors.DefaultSelector()
    try:
        for s in open_reads:
            sel.register(s, selectors.EVENT_READ)
        while open_reads and not closed.is_set():
            for key, _ in sel.select(timeout=0.5):
                src: socket.socket = key.fileobj  # type: ignore[assignment]
                data = src.recv(_CHUNK)
                dst = peer[src]
                if data:
                    dst.sendall(data)
                    continue
                # One side finished sending: pass the half-close on, keep reading the other.
                sel.unregister(src)
                open_reads.discard(src)
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    open_reads.clear()
    finally:
        sel.close()


def _close(s: socket.socket) -> None:
    """Shut down (waking a thread blocked on the socket), then close."""
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        s.close()
