"""The contract every engine must pass: where a student could tell the
difference, the engine behaves like Kubernetes.

Each test runs once per engine in ``ENGINES``: Podman, the Kubernetes
engine against the API stand-in, and (with ``-m cluster``) the Kubernetes
engine against the real cluster of ``$KUBECONFIG``.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
import urllib.request

import pytest

import labkit
from labkit import lifecycle
from labkit.errors import (
    ContainerCrashed,
    ContainerNotFound,
    ExecError,
    ExecTimeout,
    ImageNotFound,
    PodGone,
    PortError,
    ProbeUnavailable,
    Stopped,
)
from tests.engine_params import ENGINES

pytestmark = pytest.mark.parametrize("engine", ENGINES)


@pytest.fixture(scope="module")
def running(request, make_engine):
    """One seed lab per engine for the read-only checks, removed at the end."""
    labs: dict[str, labkit.Lab] = {}

    def get(engine: str) -> labkit.Lab:
        if engine not in labs:
            lab = labkit.Lab(
                request.config.rootpath / "manifests" / "multicontainer-pod.yaml",
                engine=make_engine(engine),
                name=f"contract-{engine}",
                progress=False,
            )
            lab.apply().wait_ready(timeout=120)
            lab.wait_serving()  # the read-only checks look at the producer's file
            labs[engine] = lab
        return labs[engine]

    yield get
    for lab in labs.values():
        lab.delete()


def test_emptydir_starts_empty_and_is_shared(engine, running):
    lab = running(engine)
    assert lab.exec(["ls", "-A", "/var/log"], check=True).stdout.split() == ["index.html"]
    assert lab.exec(["ls", "-A", "/usr/share/nginx/html"], "consumer", check=True).stdout.split() == ["index.html"]
    written = lab.exec(["cat", "/var/log/index.html"], check=True).stdout
    seen = lab.exec(["cat", "/usr/share/nginx/html/index.html"], "consumer", check=True).stdout
    assert written and seen.startswith(written.splitlines()[0])


def test_container_states_show_running_containers_without_restarts(engine, running):
    lab = running(engine)
    states = lifecycle.container_states(lab.engine, lab.pod)
    assert set(states) == {"producer", "consumer"}
    for st in states.values():
        assert st.state == "running" and st.restarts == 0 and st.last_exit_code is None
        assert st.started_at is not None and st.started_at.tzinfo is not None


def test_hostname_is_the_pod_name(engine, running):
    lab = running(engine)
    for c in lab.pod.container_names:
        assert lab.exec(["hostname"], c, check=True).stdout.strip() == lab.name
    df = labkit.read_lines(lab.fetch())
    assert set(df["hostname"]) == {lab.name}


def test_exec_defaults_to_the_first_container(engine, running):
    lab = running(engine)
    # Only the nginx image has /usr/share/nginx; the default container (producer) must not.
    assert lab.exec(["test", "-d", "/usr/share/nginx"]).returncode == 1
    assert lab.exec(["test", "-d", "/usr/share/nginx"], container="consumer").returncode == 0


def test_unknown_container_lists_the_containers(engine, running):
    with pytest.raises(ContainerNotFound, match="producer, consumer"):
        running(engine).exec(["true"], container="sidecar")


def test_exec_keeps_streams_and_exit_code_apart(engine, running):
    lab = running(engine)
    r = lab.exec("echo out; echo err >&2; exit 3", shell=True)
    assert (r.stdout, r.stderr, r.returncode) == ("out\n", "err\n", 3)
    with pytest.raises(ExecError) as info:
        lab.exec(["sh", "-c", "exit 4"], check=True)
    assert info.value.returncode == 4


def test_missing_command_is_exit_code_127_not_a_crash(engine, running):
    r = running(engine).exec(["no-such-command", "--flag"])
    assert r.returncode == 127
    assert "no-such-command" in r.stderr


def test_exec_keeps_bytes_that_are_not_utf8(engine, running):
    r = running(engine).exec(["printf", "\\377\\376ok"])
    assert r.stdout_bytes == b"\xff\xfeok"


def test_user_strings_are_never_run_by_a_host_shell(engine, running):
    r = running(engine).exec(["echo", "$(hostname); `id`"])
    assert r.stdout == "$(hostname); `id`\n"


def test_exec_timeout_raises_and_stops_the_command(engine, running):
    lab = running(engine)
    with pytest.raises(ExecTimeout, match="did not finish within 1 s"):
        lab.exec(["sleep", "77"], timeout=1)
    procs = lab.exec("cat /proc/[0-9]*/cmdline | tr '\\0' ' '", shell=True).stdout
    assert "sleep 77" not in procs


def test_exec_timeout_also_stops_what_a_shell_started(engine, running):
    lab = running(engine)
    with pytest.raises(ExecTimeout):
        lab.exec("sleep 78 | cat; echo never", shell=True, timeout=1)
    procs = lab.exec("cat /proc/[0-9]*/cmdline | tr '\\0' ' '", shell=True).stdout
    assert "sleep 78" not in procs and "never" not in procs


def test_ctrl_c_during_exec_raises_stopped_and_stops_the_command(engine, running):
    lab = running(engine)
    # A real SIGINT, as Ctrl-C sends: it breaks the wait for the engine's answer, wherever it blocks.
    timer = threading.Timer(1.5, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(Stopped, match=r"the command \['sleep', '79'\] in container 'producer' after"):
            lab.exec(["sleep", "79"], timeout=60)
    finally:
        timer.cancel()
    procs = lab.exec("cat /proc/[0-9]*/cmdline | tr '\\0' ' '", shell=True).stdout
    assert "sleep 79" not in procs


def test_port_forward_serves_the_shared_file_on_loopback(engine, running):
    lab = running(engine)
    with lab.port_forward(None, 80) as url:
        assert url.startswith("http://127.0.0.1:")
        body = urllib.request.urlopen(url + "/index.html", timeout=10).read().decode()
    assert body.startswith(lab.name + " ")


def test_port_forward_uses_the_local_port_asked_for(engine, running):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        wanted = s.getsockname()[1]
    lab = running(engine)
    with lab.port_forward(wanted, 80) as url:
        assert url == f"http://127.0.0.1:{wanted}"
        assert urllib.request.urlopen(url + "/index.html", timeout=10).status == 200
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", wanted), timeout=1)


def test_logs_show_the_servers_requests(engine, running):
    lab = running(engine)
    lab.fetch("/index.html")
    deadline = time.monotonic() + 10
    while "GET /index.html" not in lab.logs("consumer") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "GET /index.html" in lab.logs("consumer", tail=20)


def test_two_labs_side_by_side(engine, seed, make_engine):
    with (
        labkit.Lab(seed, engine=make_engine(engine), name="side-a", progress=False) as a,
        labkit.Lab(seed, engine=make_engine(engine), name="side-b", progress=False) as b,
    ):
        a.apply()
        b.apply()
        a.wait_ready()
        b.wait_ready()
        with a.port_forward(None) as url_a, b.port_forward(None) as url_b:
            assert url_a != url_b
            assert urllib.request.urlopen(url_a + "/index.html", timeout=10).read().decode().startswith("side-a ")
            assert urllib.request.urlopen(url_b + "/index.html", timeout=10).read().decode().startswith("side-b ")


def test_delete_removes_pod_and_volume(engine, seed, make_engine):
    lab = labkit.Lab(seed, engine=make_engine(engine), name="contract-delete", progress=False)
    lab.apply().wait_ready()
    lab.exec("echo marker >> /var/log/index.html", shell=True, check=True)
    lab.delete()
    assert not lifecycle.exists(lab.engine, lab.pod)
    with pytest.raises(PodGone, match="no longer exists"):
        lifecycle.container_states(lab.engine, lab.pod)
    lab.apply().wait_ready()
    try:
        content = lab.exec(["cat", "/var/log/index.html"], check=True).stdout
        assert "marker" not in content  # a new pod gets a new, empty volume
    finally:
        lab.delete()
    assert not lifecycle.exists(lab.engine, lab.pod)


def test_leaving_the_with_block_on_error_leaves_nothing(engine, seed, make_engine):
    lab = labkit.Lab(seed, engine=make_engine(engine), name="contract-error", progress=False)
    with pytest.raises(KeyboardInterrupt), lab:
        lab.apply()
        fwd = lab.port_forward(None)
        raise KeyboardInterrupt
    assert not lifecycle.exists(lab.engine, lab.pod)
    assert fwd.closed


def test_port_nothing_listens_on(engine, test_manifest, make_engine):
    with labkit.Lab(test_manifest("deaf-port-pod.yaml"), engine=make_engine(engine), progress=False) as lab:
        lab.apply().wait_ready()
        # Rootless Podman's port relay accepts the connection, then closes it when nothing answers inside the pod.
        relayed = getattr(lab.engine, "rootless", False)
        expected = r"no answer from port 8081 .*listens on that port" if relayed else r"(?i)8081.*refused"
        with pytest.raises(PortError, match=expected):
            lab.fetch()


def test_missing_image_names_the_container(engine, test_manifest, make_engine):
    lab = labkit.Lab(test_manifest("missing-image-pod.yaml"), engine=make_engine(engine), progress=False)
    with pytest.raises(ImageNotFound, match="labkit-no-such-image") as info:
        lab.apply()
        lab.wait_ready(timeout=60)
    assert info.value.container == "producer"
    assert not lifecycle.exists(lab.engine, lab.pod)


def test_command_that_exits_at_once_is_reported(engine, test_manifest, make_engine):
    lab = labkit.Lab(test_manifest("crashing-pod.yaml"), engine=make_engine(engine), progress=False)
    lab.apply()
    with pytest.raises(ContainerCrashed, match="exit code 3") as info:
        lab.wait_ready(timeout=60)
        # Ready for a moment, perhaps: the look a moment later finds the crash and the next step raises it.
        time.sleep(lifecycle.SETTLE_SECONDS + 1)
        lab.exec("true")
    assert info.value.container == "producer"
    assert "starting" in str(info.value)
    assert not lifecycle.exists(lab.engine, lab.pod)


def test_in_pod_probe_measures_on_the_pods_own_clock(engine, request, make_engine):
    hires = request.config.rootpath / "manifests" / "multicontainer-pod-hires.yaml"
    with labkit.Lab(
        hires, engine=make_engine(engine), name=f"probe-{engine}", progress=False, env={"producer": {"INTERVAL": "0.1"}}
    ) as lab:
        lab.apply().wait_ready()
        report = lab.measure(lines=5, poll_interval=0.02, via="in-pod")
        assert not lab.exec(["sh", "-c", "ls /tmp/labkit-probe-* 2>/dev/null"], "consumer").stdout  # cleaned up
    assert report.passed, report
    assert report.clock.uncertainty == 0 and "in-pod probe" in report.clock.describe()
    seen = report.lines[report.lines["observed"]]
    assert len(seen) == 5
    assert (seen["latency_low"] <= seen["latency"]).all() and (seen["latency"] <= seen["latency_high"]).all()
    # both sides on the pod's clock: nothing is served before it is written
    assert not report.lines["future"].any()


def test_in_pod_probe_needs_curl_in_the_serving_image(engine, test_manifest, make_engine):
    with labkit.Lab(test_manifest("curl-less-server-pod.yaml"), engine=make_engine(engine), progress=False) as lab:
        lab.apply().wait_ready()
        with pytest.raises(ProbeUnavailable, match=r"no curl.*port-forward"):
            lab.measure(duration=1, via="in-pod")
