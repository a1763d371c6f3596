"""The fake engine: real HTTP on loopback, scripted containers, and every fault it can play.

These run in seconds without Podman; each test asserts what would break if
the fake stopped behaving like the real engines where the kit can tell.
"""

from __future__ import annotations

import http.client
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC
from typing import Any

import pytest

import labkit
from labkit import lifecycle, ownership
from labkit.engines import Engine, get_engine
from labkit.engines.fake import FakeEngine, Script
from labkit.errors import (
    ContainerCrashed,
    EngineError,
    ExecTimeout,
    ImageNotFound,
    PodExists,
    PodGone,
    PortError,
    ProbeUnavailable,
    ReadyTimeout,
)
from labkit.manifest import MANAGED_BY_LABEL, MANAGED_BY_VALUE, Pod, load_pod
from labkit.probe import PROBE_SCRIPT

FAST = 0.05  # seconds between the producer's lines in most tests
FILE = "/var/log/index.html"


def _fake_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("labkit-fake-")}


def _until(condition: Callable[[], object], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition did not become true in time"
        time.sleep(0.01)


def _http(engine: FakeEngine, pod: Pod) -> http.client.HTTPConnection:
    """An HTTP connection over one socket from ``engine.connect`` (never reopened by itself)."""
    conn = http.client.HTTPConnection("127.0.0.1", 80, timeout=5)
    conn.sock = engine.connect(pod, 80, 5)
    conn.auto_open = 0
    return conn


def _get(conn: http.client.HTTPConnection, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    conn.request("GET", "/index.html", headers=headers or {})
    resp = conn.getresponse()
    return resp.status, resp.read(), dict(resp.getheaders())


def _lines(engine: FakeEngine, pod: Pod) -> list[str]:
    return engine.exec(pod, "producer", ["cat", FILE], 5).stdout.splitlines()


@pytest.fixture
def pod(seed) -> Pod:
    """The seed pod with this test's own session labels, as a Lab would apply it."""
    return ownership.stamp(load_pod(seed), ownership.new_session())


@pytest.fixture
def make() -> Iterator[Callable[..., FakeEngine]]:
    """Fake engines that are closed after the test, and a check that none left a thread running."""
    engines: list[FakeEngine] = []

    def make(script: Script | None = None, **options: Any) -> FakeEngine:
        chosen = script if script is not None else Script(interval=FAST)
        engine = FakeEngine(chosen, **options)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()
    assert not _fake_threads()


def _ready(engine: FakeEngine, pod: Pod) -> FakeEngine:
    lifecycle.apply(engine, pod)
    lifecycle.wait_ready(engine, pod, 2)
    return engine


# -- the engine as the kit sees it ------------------------------------------------------


def test_it_is_an_engine_registered_as_fake_and_says_it_is_a_fake():
    engine = get_engine("fake", restart_backoff=True)
    assert isinstance(engine, FakeEngine) and isinstance(engine, Engine)
    assert engine.name == "fake" and engine.shares_host_clock and engine.restart_backoff
    assert "fake engine" in engine.describe() and "for tests" in engine.describe()
    assert FakeEngine().restart_backoff is False


def test_wrong_arguments_are_python_errors(make, pod):
    with pytest.raises(ValueError, match="interval"):
        Script(interval=0)
    with pytest.raises(ValueError, match="restart_delay"):
        Script(restart_delay=-1)
    with pytest.raises(TypeError, match="Script"):
        FakeEngine(script=42)  # type: ignore[arg-type]
    engine = make()
    with pytest.raises(ValueError, match="no pod named 'nothing'"):
        engine.crash("nothing")
    _ready(engine, pod)
    with pytest.raises(ValueError, match="no container 'sidecar'"):
        engine.crash(pod.name, "sidecar")
    with pytest.raises(ValueError, match="seconds"):
        engine.server_down(pod.name, 0)


def test_wait_ready_reports_each_change_of_state(make, pod):
    engine = make(Script(interval=FAST, start_delay=0.1))
    seen: list[dict[str, str]] = []
    lifecycle.apply(engine, pod)
    lifecycle.wait_ready(engine, pod, 2, seen.append)
    assert seen == [{"producer": "creating", "consumer": "creating"}, {"producer": "running", "consumer": "running"}]
    states = lifecycle.container_states(engine, pod)
    assert {s.state for s in states.values()} == {"running"}
    assert all(s.started_at is not None and s.started_at.tzinfo == UTC for s in states.values())


# -- the HTTP server -------------------------------------------------------------------


def test_server_answers_404_until_the_file_exists(make, pod):
    engine = _ready(make(Script(interval=FAST, silence_after=0)), pod)
    time.sleep(2 * FAST)
    conn = _http(engine, pod)
    status, body, headers = _get(conn)
    conn.close()
    assert status == 404 and headers["Content-Length"] == str(len(body))
    assert engine.exec(pod, "producer", ["test", "-e", FILE], 5).returncode == 1


def test_server_serves_whole_file_ranges_and_416_on_one_kept_alive_connection(make, pod):
    engine = _ready(make(), pod)
    _until(lambda: len(_lines(engine, pod)) >= 2)
    conn = _http(engine, pod)
    sock = conn.sock
    status, whole, headers = _get(conn)
    assert status == 200 and headers["Content-Length"] == str(len(whole))
    assert whole.decode().startswith(f"{pod.name} ")
    written = engine.exec(pod, "producer", ["cat", FILE], 5).stdout_bytes
    assert written.startswith(whole)  # the same bytes the producer wrote, maybe fewer

    status, part, headers = _get(conn, {"Range": "bytes=10-"})
    size = int(headers["Content-Range"].rsplit("/", 1)[1])
    assert status == 206 and headers["Content-Range"] == f"bytes 10-{size - 1}/{size}"
    assert headers["Content-Length"] == str(len(part)) == str(size - 10)

    status, body, headers = _get(conn, {"Range": "bytes=1000000-"})
    assert status == 416 and headers["Content-Range"].startswith("bytes */")
    assert headers["Content-Length"] == str(len(body))
    assert conn.sock is sock  # every answer came on the first connection: keep-alive
    conn.close()


def test_lines_are_the_pod_name_and_utc_time_with_nanoseconds(make, pod):
    started = time.time()
    engine = _ready(make(), pod)
    _until(lambda: len(_lines(engine, pod)) >= 4)
    df = labkit.read_lines("\n".join(_lines(engine, pod)) + "\n")
    assert set(df["hostname"]) == {pod.name}
    assert all(r.split()[1].endswith("+00:00") and len(r.split()[1]) == 35 for r in df["raw"])
    ns = df["written_at"].astype("int64")
    assert (ns % 1000 != 0).any()  # nanoseconds kept, not microseconds
    assert abs(df["written_at"].iloc[0].timestamp() - started) < 0.5  # the first line is written at once
    gaps = df["written_at"].diff().dt.total_seconds().iloc[1:]
    assert FAST * 0.8 < gaps.median() < FAST * 1.5  # on schedule; a late tick shortens the next gap


# -- exec ------------------------------------------------------------------------------


def test_exec_runs_the_kits_commands_over_the_shared_volume(make, pod):
    engine = _ready(make(), pod)
    _until(lambda: len(_lines(engine, pod)) >= 2)

    def run(container: str, *argv: str):
        return engine.exec(pod, container, list(argv), 5)

    assert run("producer", "ls", "-A", "/var/log").stdout == "index.html\n"
    assert run("consumer", "ls", "-A", "/usr/share/nginx/html").stdout == "index.html\n"
    assert "index.html" in run("producer", "ls", "-la", "/var/log").stdout.splitlines()[-1]
    served = run("consumer", "cat", "/usr/share/nginx/html/index.html").stdout
    assert served.startswith(run("producer", "cat", FILE).stdout.splitlines()[0])
    assert run("producer", "tail", "-n", "1", FILE).stdout.count("\n") == 1
    assert run("producer", "test", "-d", "/usr/share/nginx").returncode == 1  # only the server mounts it
    assert run("consumer", "test", "-d", "/usr/share/nginx").returncode == 0
    assert run("consumer", "test", "-e", "/tmp/stop").returncode == 1
    assert run("consumer", "touch", "/tmp/stop").returncode == 0
    assert run("consumer", "test", "-e", "/tmp/stop").returncode == 0
    assert run("producer", "test", "-e", "/tmp/stop").returncode == 1  # /tmp is each container's own
    assert run("producer", "touch", "/var/log/marker").ok  # the emptyDir is shared
    assert run("consumer", "ls", "-A", "/usr/share/nginx/html").stdout.split() == ["index.html", "marker"]
    assert abs(float(run("producer", "date", "+%s.%N").stdout) - time.time()) < 1
    assert run("consumer", "hostname").stdout == f"{pod.name}\n"
    assert run("producer", "true").returncode == 0
    assert run("producer", "sh", "-c", "exit 4").returncode == 4
    assert run("producer", "/bin/sh", "-c", "exit 0").returncode == 0
    missing = run("producer", "top-secret-tool", "--help")
    assert missing.returncode == 127 and "top-secret-tool: command not found" in missing.stderr
    assert "cat" in missing.stderr  # says what it does run
    cat_missing = run("producer", "cat", "/var/log/nope")
    assert cat_missing.returncode == 1 and "No such file" in cat_missing.stderr


def test_exec_timeout_stops_a_hanging_command(make, pod):
    engine = _ready(make(Script(interval=FAST, hang_commands=frozenset({"cat"}))), pod)
    started = time.monotonic()
    with pytest.raises(ExecTimeout, match=r"did not finish within 0\.2 s"):
        lifecycle.run(engine, pod, "producer", ["cat", FILE], 0.2)
    with pytest.raises(ExecTimeout):
        lifecycle.run(engine, pod, "producer", ["sleep", "77"], 0.1)
    assert time.monotonic() - started < 1.5
    assert engine.exec(pod, "producer", ["sleep", "0.01"], 1).returncode == 0


def test_in_pod_probe_is_unavailable_cleanly(make, seed):
    with labkit.Lab(seed, engine=make(), progress=False, interval=FAST) as lab:
        lab.apply().wait_ready(timeout=2)
        with pytest.raises(ProbeUnavailable, match="no curl"):
            lab.measure(duration=1, via="in-pod")
        probe = lab.exec(
            ["sh", "-c", PROBE_SCRIPT, "labkit-probe", "80", "/index.html", "0.1", "1000", "0", "/tmp/s"], "consumer"
        )
        assert probe.returncode == 69 and "curl not found" in probe.stderr


# -- logs and states ---------------------------------------------------------------------


def test_logs_show_starts_and_the_servers_requests(make, pod):
    engine = _ready(make(), pod)
    _until(lambda: _lines(engine, pod))
    conn = _http(engine, pod)
    _get(conn, {"Range": "bytes=5-"})
    conn.close()
    assert engine.logs(pod, "producer") == "starting\n"
    access = engine.logs(pod, "consumer", tail=1)
    assert access.count("\n") == 1 and '"GET /index.html HTTP/1.1" 206 ' in access
    assert access.startswith("127.0.0.1 - - [")
    assert engine.logs(pod, "consumer", tail=0) == ""


# -- scripted faults ---------------------------------------------------------------------


def test_a_crashed_producer_is_restarted_keeps_the_file_and_writes_again(make, pod):
    engine = _ready(make(), pod)
    _until(lambda: len(_lines(engine, pod)) >= 2)
    before = _lines(engine, pod)
    engine.crash(pod.name, "producer", exit_code=3)
    state = lifecycle.container_states(engine, pod)["producer"]
    assert (state.state, state.restarts, state.last_exit_code, state.last_reason) == ("running", 1, 3, "Error")
    assert state.last_finished_at is not None and state.last_finished_at.tzinfo == UTC
    _until(lambda: len(_lines(engine, pod)) > len(before) + 1)
    assert _lines(engine, pod)[: len(before)] == before
    assert engine.logs(pod, "producer") == "starting\nstarting\n"
    engine.crash(pod.name, exit_code=0)
    assert lifecycle.container_states(engine, pod)["producer"].last_reason == "Completed"
    assert lifecycle.container_states(engine, pod)["producer"].restarts == 2


def test_a_crashed_container_waits_out_its_restart_delay(make, pod):
    engine = make(
        Script(interval=FAST, crash_at=0.05, crash_container="consumer", crash_exit_code=2, restart_delay=0.3)
    )
    lifecycle.apply(engine, pod)
    lifecycle.wait_ready(engine, pod, 2)
    _until(lambda: lifecycle.container_states(engine, pod)["consumer"].restarts == 1)
    state = lifecycle.container_states(engine, pod)["consumer"]
    assert (state.state, state.reason, state.last_exit_code) == ("waiting", "CrashLoopBackOff", 2)
    with pytest.raises(EngineError, match=r"container 'consumer' of pod .* is not running"):
        engine.exec(pod, "consumer", ["true"], 5)
    with pytest.raises(PortError, match="refused"):
        engine.connect(pod, 80, 1)
    _until(lambda: lifecycle.container_states(engine, pod)["consumer"].state == "running")
    conn = _http(engine, pod)
    assert _get(conn)[0] == 200
    conn.close()


def test_crash_every_keeps_crashing(make, pod):
    engine = make(Script(interval=FAST, crash_at=0.05, crash_every=0.05, crash_exit_code=5))
    lifecycle.apply(engine, pod)
    _until(lambda: lifecycle.container_states(engine, pod)["producer"].restarts >= 3)
    assert lifecycle.container_states(engine, pod)["producer"].last_exit_code == 5


def test_silence_stops_the_writes_but_not_the_producer(make, pod):
    engine = _ready(make(Script(interval=FAST, silence_after=3)), pod)
    _until(lambda: len(_lines(engine, pod)) == 3)
    time.sleep(4 * FAST)
    assert len(_lines(engine, pod)) == 3
    assert lifecycle.container_states(engine, pod)["producer"].state == "running"

    other = ownership.stamp(pod.renamed("silenced-later"), ownership.new_session())
    _ready(engine, other)
    _until(lambda: len(_lines(engine, other)) >= 2)
    engine.silence(other.name)
    count = len(_lines(engine, other))
    time.sleep(4 * FAST)
    assert len(_lines(engine, other)) == count


def test_a_vanished_pod_is_gone_everywhere(make, pod):
    engine = _ready(make(), pod)
    conn = _http(engine, pod)
    assert _get(conn)[0] in (200, 404)
    engine.vanish(pod.name)
    assert not lifecycle.exists(engine, pod)
    with pytest.raises(PodGone, match="no longer exists"):
        lifecycle.container_states(engine, pod)
    with pytest.raises(EngineError, match="there is no pod"):
        engine.exec(pod, "producer", ["true"], 5)
    with pytest.raises(PortError):
        engine.connect(pod, 80, 1)
    with pytest.raises((http.client.HTTPException, OSError)):
        _get(conn)  # the open connection was closed
    conn.close()
    lifecycle.delete(engine, pod, 5)  # nothing there: quietly


def test_a_scripted_vanish_happens_by_itself(make, pod):
    engine = _ready(make(Script(interval=FAST, vanish_at=0.1)), pod)
    _until(lambda: not lifecycle.exists(engine, pod))
    with pytest.raises(PodGone):
        lifecycle.container_states(engine, pod)


def test_server_down_refuses_then_answers_again(make, pod):
    engine = _ready(make(), pod)
    conn = _http(engine, pod)
    _get(conn)
    engine.server_down(pod.name, 0.3)
    with pytest.raises(PortError, match="refused"):
        engine.connect(pod, 80, 1)
    with pytest.raises((http.client.HTTPException, OSError)):
        _get(conn)
    conn.close()
    _until(lambda: _try_get(engine, pod) == 200)


def _try_get(engine: FakeEngine, pod: Pod) -> int | None:
    try:
        conn = _http(engine, pod)
    except PortError:
        return None
    try:
        return _get(conn)[0]
    finally:
        conn.close()


def test_a_hanging_server_answers_only_when_it_is_back(make, pod):
    engine = _ready(make(Script(interval=FAST, server_down_at=0.0, server_down_for=0.4, server_hang=True)), pod)
    conn = _http(engine, pod)  # accepted while it hangs
    started = time.monotonic()
    status = _get(conn)[0]
    conn.close()
    assert status == 200 and time.monotonic() - started > 0.25


def test_dropped_responses_are_cut_short(make, pod):
    engine = _ready(make(), pod)
    _until(lambda: _lines(engine, pod))
    engine.drop_connections(pod.name, 1)
    conn = _http(engine, pod)
    with pytest.raises(http.client.IncompleteRead):
        _get(conn)
    conn.close()
    conn = _http(engine, pod)
    assert _get(conn)[0] == 200  # only the next response was dropped
    conn.close()
    assert _try_get(engine, pod) == 200


def test_never_ready_times_out_naming_what_it_waits_for(make, pod):
    engine = make(Script(never_ready=True))
    lifecycle.apply(engine, pod)
    seen: list[dict[str, str]] = []
    with pytest.raises(
        ReadyTimeout,
        match=r"not ready within 0.2 s; still waiting for: producer \(creating\), "
        r"consumer \(creating\); look at lab.logs",
    ):
        lifecycle.wait_ready(engine, pod, 0.2, seen.append)
    assert seen == [{"producer": "creating", "consumer": "creating"}]
    with pytest.raises(EngineError, match="not running"):
        engine.exec(pod, "producer", ["true"], 5)


def test_a_container_that_exits_at_once_is_reported_with_code_and_output(make, pod):
    engine = make(Script(crash_at_start={"producer": 3}))
    lifecycle.apply(engine, pod)
    with pytest.raises(ContainerCrashed, match=r"exit code 3.*its last output: starting") as info:
        lifecycle.wait_ready(engine, pod, 2)
    assert info.value.container == "producer"
    _until(lambda: lifecycle.container_states(engine, pod)["producer"].restarts >= 2)  # restarted forever


def test_a_failed_apply_is_cleaned_up_by_the_lab(make, seed):
    engine = make(Script(apply_error=RuntimeError("half made")))
    lab = labkit.Lab(seed, engine=engine, progress=False)
    with pytest.raises(RuntimeError, match="half made"):
        lab.apply()
    assert not lifecycle.exists(engine, lab.pod)
    assert not _fake_threads()


def test_a_missing_image_is_not_found(make, pod):
    engine = make(missing_images={"nginx"})
    with pytest.raises(ImageNotFound, match="'nginx' of container 'consumer'") as info:
        lifecycle.apply(engine, pod)
    assert info.value.container == "consumer" and not lifecycle.exists(engine, pod)


# -- ownership ---------------------------------------------------------------------------


def test_a_pod_the_kit_did_not_create_is_left_alone_unless_replaced(make, pod):
    engine = make(existing={pod.name: {"app": "theirs"}})
    assert lifecycle.exists(engine, pod)
    with pytest.raises(PodExists, match="not created by labkit"):
        lifecycle.apply(engine, pod)
    with pytest.raises(PodExists, match=r"is not this lab's .*it was left alone"):
        lifecycle.delete(engine, pod, 5)
    assert lifecycle.exists(engine, pod)
    lifecycle.apply(engine, pod, replace=True)
    lifecycle.wait_ready(engine, pod, 2)
    assert lifecycle.container_states(engine, pod)["producer"].state == "running"


def test_another_live_sessions_pod_is_refused_and_a_dead_ones_replaced(make, pod):
    host = ownership.owner().rpartition(".")[0]
    live = {
        MANAGED_BY_LABEL: MANAGED_BY_VALUE,
        ownership.SESSION_LABEL: "other",
        ownership.OWNER_LABEL: f"{host}.{os.getppid()}",  # a process that runs: the one that started this one
    }
    engine = make(existing={pod.name: live})
    with pytest.raises(PodExists, match="in use by another labkit session"):
        lifecycle.apply(engine, pod)
    dead = {**live, ownership.OWNER_LABEL: f"{host}.999999999"}
    engine = make(existing={pod.name: dead})
    _ready(engine, pod)
    assert lifecycle.container_states(engine, pod)["producer"].state == "running"


def test_applying_again_keeps_the_pod_and_its_file(make, pod):
    engine = _ready(make(), pod)
    _until(lambda: len(_lines(engine, pod)) >= 3)
    before = _lines(engine, pod)
    lifecycle.apply(engine, pod)  # same session, same spec: nothing changes
    assert _lines(engine, pod)[: len(before)] == before
    stranger = ownership.stamp(pod, ownership.new_session())
    with pytest.raises(PodExists):
        lifecycle.delete(engine, stranger, 5)  # a pod of the same name from another session is not its to delete
    assert lifecycle.exists(engine, pod)


# -- deleting ------------------------------------------------------------------------------


def test_delete_stops_every_thread_and_closes_every_connection(pod):
    before = set(threading.enumerate())
    engine = FakeEngine(Script(interval=FAST))
    _ready(engine, pod)
    conns = [_http(engine, pod) for _ in range(3)]
    for c in conns:
        _get(c)
    hung: list[BaseException] = []
    sleeper = threading.Thread(target=lambda: _catch(hung, lambda: engine.exec(pod, "producer", ["sleep", "60"], None)))
    sleeper.start()
    assert len(_fake_threads()) >= 5  # clockwork, HTTP server, three connections
    lifecycle.delete(engine, pod, 5)
    sleeper.join(2)
    assert not lifecycle.exists(engine, pod)
    assert set(threading.enumerate()) <= before
    assert hung and isinstance(hung[0], EngineError)
    for c in conns:
        with pytest.raises((http.client.HTTPException, OSError)):
            _get(c)
        c.close()
    lifecycle.delete(engine, pod, 5)  # already gone: quietly


def _catch(into: list[BaseException], call: Callable[[], object]) -> None:
    try:
        call()
    except BaseException as exc:  # handed to the test
        into.append(exc)


# -- the Lab on the fake -------------------------------------------------------------------


def test_a_lab_runs_the_seed_on_the_fake_engine(seed):
    before = set(threading.enumerate())
    engine = FakeEngine(Script(interval=0.1))
    lab = labkit.Lab(seed, engine=engine, progress=False, interval=0.1)
    lab.apply().wait_ready(timeout=5)
    assert lab.exec(["ls", "-A", "/var/log"], check=True).stdout == "index.html\n"
    df = labkit.read_lines(lab.fetch())
    assert len(df) >= 1 and set(df["hostname"]) == {lab.name}
    report = lab.measure(lines=3, poll_interval=0.03)
    assert report.passed, report
    lab.delete()
    assert not lifecycle.exists(engine, lab.pod)
    _until(lambda: set(threading.enumerate()) <= before)
