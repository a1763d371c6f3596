"""The port-forward poller, against a real HTTP server on 127.0.0.1 serving a real file."""

from __future__ import annotations

import functools
import io
import os
import threading
import time
from datetime import UTC, datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from labkit.errors import EngineError, PodGone
from labkit.poller import Poller, read_copy


class _Quiet(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as nginx does

    def log_message(self, *args: object) -> None:
        pass


def _serve(root, handler_class):
    """Serve ``root`` on 127.0.0.1 with ``handler_class`` until the test ends: yields (root, port)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler_class, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def site(tmp_path):
    yield from _serve(tmp_path, _Quiet)


def _stamp(t: float | None = None, host: str = "pod") -> str:
    now = datetime.fromtimestamp(time.time() if t is None else t, tz=UTC)
    return f"{host} {now.isoformat(timespec='microseconds')}\n"


def test_observer_stamps_each_new_line_once(site):
    root, port = site
    f = root / "index.html"
    f.write_text(_stamp())
    poller = Poller(port, "/index.html", poll_interval=0.02).start()
    time.sleep(0.15)
    with f.open("a") as out:
        out.write(_stamp())
        out.write("pod half-writ")  # not a line yet
    time.sleep(0.15)
    with f.open("a") as out:
        out.write("ten\n")
    time.sleep(0.15)
    result = poller.stop()
    assert len(result.lines) == 3
    assert result.lines[2] == "pod half-written"
    assert result.preexisting == 1
    assert result.served_ns == sorted(result.served_ns)
    assert result.failed_polls == 0 and result.polls >= 5


def _replace(path: Path, text: str) -> None:
    """Swap in a new file at once (as a log rotation does), so no request sees it half-written."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_observer_waits_for_the_file_and_restarts_when_it_shrinks(site):
    root, port = site
    f = root / "index.html"
    poller = Poller(port, "/index.html", poll_interval=0.02).start()
    time.sleep(0.1)  # 404 while nothing is written: not an error
    _replace(f, "a 1\nb 2\n")
    time.sleep(0.1)
    _replace(f, "c 3\n")  # replaced by a shorter file
    time.sleep(0.1)
    result = poller.stop()
    assert result.failed_polls == 0
    assert result.lines == ["a 1", "b 2", "c 3"]
    assert any("shrank or was replaced" in n for n in result.notes)


def test_observer_counts_failed_polls_and_goes_on(site):
    root, port = site
    f = root / "index.html"
    f.write_text("x 1\n")
    poller = Poller(port, "/index.html", poll_interval=0.02).start()
    time.sleep(0.1)
    f.unlink()  # a file that was there and vanished answers 404: that is an error, not "nothing yet"
    time.sleep(0.1)
    result = poller.stop()
    assert result.lines == ["x 1"]
    assert result.failed_polls >= 2
    assert "HTTP 404" in result.notes[0] and "the run goes on" in result.notes[0]


class _Ranged(_Quiet):
    """Serves byte ranges (``Range: bytes=N-``) as nginx does: 206, or 416 past the end."""

    def send_head(self):
        wanted = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if not wanted or not path.is_file():
            return super().send_head()
        data = path.read_bytes()
        first = int(wanted.removeprefix("bytes=").rstrip("-"))
        if first >= len(data):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return io.BytesIO(b"")
        part = data[first:]
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {first}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(part)))
        self.end_headers()
        return io.BytesIO(part)


@pytest.fixture
def ranged_site(tmp_path):
    yield from _serve(tmp_path, _Ranged)


def test_incremental_polls_fetch_only_new_bytes(ranged_site):
    root, port = ranged_site
    f = root / "index.html"
    f.write_text("".join(f"pod {i:06d}\n" for i in range(10_000)))  # 110 kB already there
    poller = Poller(port, "/index.html", poll_interval=0.01).start()
    time.sleep(0.2)
    with f.open("a") as out:
        out.write("pod new-line\n")
    time.sleep(0.2)
    result = poller.stop()
    assert len(result.lines) == 10_001 and result.lines[-1] == "pod new-line"
    assert result.preexisting == 10_000
    later_polls = result.bytes_received - 110_000
    assert later_polls < 100 * result.polls  # each later poll re-reads only the overlap and what is new
    assert result.failed_polls == 0 and not result.notes


def test_incremental_polls_notice_a_replaced_or_shrunk_file(ranged_site):
    root, port = ranged_site
    f = root / "index.html"
    f.write_text("a 1\nb 2\n")
    poller = Poller(port, "/index.html", poll_interval=0.01).start()
    time.sleep(0.1)
    _replace(f, "X 9\nY 8\nc 3\n")  # longer, but not an append of what was there
    time.sleep(0.1)
    _replace(f, "".join(f"line {i:03d}\n" for i in range(20)))  # 180 bytes
    time.sleep(0.1)
    _replace(f, "d\n")  # shorter than the range asked for: 416
    time.sleep(0.1)
    result = poller.stop()
    assert result.lines[:5] == ["a 1", "b 2", "X 9", "Y 8", "c 3"]
    assert result.lines[-1] == "d" and len(result.lines) == 26
    assert [n.split(" after")[0] for n in result.notes] == [
        "the served file was replaced",
        "the served file was replaced",
        "the served file shrank or was replaced",
    ]


def test_the_copy_read_ends_cleanly_when_the_pod_goes_or_the_user_stops():
    notes: list[str] = []
    assert read_copy(lambda: "x\n", "done", notes) == ("done", "x\n")

    def gone() -> str:
        raise PodGone("pod 'p' no longer exists")

    def stopped() -> str:
        raise KeyboardInterrupt

    def broken() -> str:
        raise EngineError("exec failed")

    assert read_copy(gone, "done", notes) == ("pod gone", None)
    assert read_copy(stopped, "time limit", notes) == ("interrupted", None)
    assert read_copy(broken, "interrupted", notes) == ("interrupted", None)
    assert read_copy(gone, "pod gone", notes) == ("pod gone", None)
    with pytest.raises(EngineError):
        read_copy(broken, "done", notes)
    assert len(notes) == 2
