"""The port-forward relay, against real sockets on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from labkit.engines.base import Tunnel
from labkit.errors import PortError
from labkit.forward import PortForward


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"hello {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def upstream():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _connector(port: int):
    return lambda: socket.create_connection(("127.0.0.1", port), timeout=5)


def test_relays_http_and_closes(upstream):
    fwd = PortForward(_connector(upstream), local_port=None, target="test")
    with fwd as url:
        assert url.startswith("http://127.0.0.1:")
        assert urllib.request.urlopen(url + "/x", timeout=5).read() == b"hello /x"
    assert fwd.closed
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", fwd.local_port), timeout=1)


def test_many_connections_at_once(upstream):
    with PortForward(_connector(upstream), local_port=None, target="test") as url:
        results: list[bytes] = []

        def get(i: int) -> None:
            results.append(urllib.request.urlopen(f"{url}/{i}", timeout=5).read())

        threads = [threading.Thread(target=get, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(results) == sorted(f"hello /{i}".encode() for i in range(20))


def test_port_in_use_is_a_clear_error(upstream):
    with PortForward(_connector(upstream), local_port=None, target="test") as url:
        taken = int(url.rsplit(":", 1)[1])
        with pytest.raises(PortError, match=f"local port {taken} is already in use.*local_port=None"):
            PortForward(_connector(upstream), local_port=taken, target="test")


def test_listens_on_loopback_only(upstream):
    with PortForward(_connector(upstream), local_port=None, target="test") as fwd_url:
        port = int(fwd_url.rsplit(":", 1)[1])
        listening = [ln.split() for ln in Path("/proc/net/tcp").read_text().splitlines()[1:]]
        local = [cols[1] for cols in listening if cols[3] == "0A" and int(cols[1].split(":")[1], 16) == port]
        assert local == [f"0100007F:{port:04X}"]


def test_unreachable_upstream_is_recorded():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    fwd = PortForward(_connector(dead), local_port=None, target="port 80 of pod x")
    with fwd as url, pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=5).read()
    assert "cannot reach port 80 of pod x" in (fwd.last_error or "")


class _SaysWhy(Tunnel):
    def close_reason(self) -> str | None:
        return "the pod went away"


def test_a_tunnel_says_why_it_closed(upstream):
    def connect() -> Tunnel:
        plain = socket.create_connection(("127.0.0.1", upstream), timeout=5)
        return _SaysWhy(plain.family, plain.type, plain.proto, fileno=plain.detach())

    fwd = PortForward(connect, local_port=None, target="the test's tunnel")
    with fwd as url:
        assert urllib.request.urlopen(url + "/y", timeout=5).read() == b"hello /y"
        # The relay records the reason once both ends have closed, a moment after the response.
        deadline = time.monotonic() + 5
        while fwd.last_error is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert fwd.last_error == "the test's tunnel: the pod went away"


def test_a_plain_socket_gives_no_reason(upstream):
    fwd = PortForward(_connector(upstream), local_port=None, target="test")
    with fwd as url:
        assert urllib.request.urlopen(url + "/z", timeout=5).read() == b"hello /z"
        time.sleep(0.3)
        assert fwd.last_error is None
