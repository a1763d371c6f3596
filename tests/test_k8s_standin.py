"""Tests of the Kubernetes API stand-in (``tests/k8s_standin``), driven by the official client.

The stand-in is a fake API server that runs pods for real on Podman; these
tests check that the official ``kubernetes`` client, talking HTTP through a
kubeconfig, sees what it would see from a cluster: server-side apply, a
watch that reaches Ready, exec and port-forward over websockets (and over
SPDY/3.1, as kubectl speaks them, with a minimal client of the tests' own),
logs, events, and the API's errors. One seed pod (``sit-seed``) is shared by the
read-only tests; every pod here is named ``sit-*`` so it never meets the
engine contract suite's pods in Podman.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
import socket
import ssl
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

kubernetes = pytest.importorskip("kubernetes")
pytest.importorskip("aiohttp")

from kubernetes import client, config, watch  # noqa: E402
from kubernetes.client.exceptions import ApiException  # noqa: E402
from kubernetes.stream import portforward, stream  # noqa: E402

from labkit.lifecycle import kill_command  # noqa: E402
from tests.k8s_standin import KubernetesStandIn, Rule, spdy  # noqa: E402

pytestmark = pytest.mark.podman

ROOT = Path(__file__).resolve().parent.parent
NAMESPACES = ("default", "student-1", "student-2")
SEED = "sit-seed"
READY_TIMEOUT = 90


# -- helpers -----------------------------------------------------------------------------


def manifest(path: Path, name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    doc["metadata"]["name"] = name
    return doc


_clients: list[Any] = []


def core(kubeconfig: str) -> client.CoreV1Api:
    """A CoreV1Api from a kubeconfig file, without touching the client's global default."""
    api_client = config.new_client_from_config(config_file=kubeconfig)
    _clients.append(api_client)
    return client.CoreV1Api(api_client)


def apply(v1: client.CoreV1Api, doc: dict[str, Any], namespace: str = "default", **kw: Any) -> tuple[Any, int]:
    """Server-side apply as labkit's engine does it; (the Pod, the HTTP status)."""
    kw.setdefault("field_manager", "labkit")
    kw.setdefault("force", True)
    pod, code, _ = v1.patch_namespaced_pod_with_http_info(
        doc["metadata"]["name"], namespace, doc, _content_type="application/apply-patch+yaml", **kw
    )
    return pod, code


def status_of(exc: ApiException) -> dict[str, Any]:
    assert exc.body is not None, exc
    status: dict[str, Any] = json.loads(exc.body)
    return status


def meta(pod: client.V1Pod) -> client.V1ObjectMeta:
    """The pod's metadata, which the client types as optional; the API server always sends it."""
    assert pod.metadata is not None, pod
    return pod.metadata


def watch_events(
    v1: client.CoreV1Api,
    name: str,
    stop: Callable[[str, Any], bool],
    namespace: str = "default",
    timeout: float = READY_TIMEOUT,
    resource_version: str | None = None,
) -> list[tuple[str, Any]]:
    """Watch one pod until ``stop(type, pod)``; every event seen, in order."""
    seen: list[tuple[str, Any]] = []
    w = watch.Watch()
    kw = {"resource_version": resource_version} if resource_version else {}
    for ev in w.stream(
        v1.list_namespaced_pod, namespace, field_selector=f"metadata.name={name}", timeout_seconds=int(timeout), **kw
    ):
        seen.append((ev["type"], ev["object"]))
        if stop(ev["type"], ev["object"]):
            w.stop()
            return seen
    states = [(t, p.status.phase if p.status else None) for t, p in seen]
    raise AssertionError(f"pod {name} never got there within {timeout:g} s; events seen: {states}")


def watch_until(v1: client.CoreV1Api, name: str, done: Callable[[Any], bool], **kw: Any) -> list[tuple[str, Any]]:
    """Watch one pod until ``done(pod)``."""
    return watch_events(v1, name, lambda kind, pod: kind != "DELETED" and done(pod), **kw)


def is_ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


def container(pod: Any, name: str) -> Any:
    return next(cs for cs in pod.status.container_statuses or [] if cs.name == name)


def open_exec(
    v1: client.CoreV1Api,
    command: list[str],
    container: str | None,
    *,
    name: str = SEED,
    namespace: str = "default",
    binary: bool = False,
    stdin: bool = False,
) -> Any:
    """Open an exec websocket (stdout and stderr, no tty) and return the client's stream."""
    kw = {"container": container} if container else {}
    return stream(
        v1.connect_get_namespaced_pod_exec,
        name,
        namespace,
        command=command,
        stdout=True,
        stderr=True,
        stdin=stdin,
        tty=False,
        _preload_content=False,
        binary=binary,
        **kw,
    )


def run(
    v1: client.CoreV1Api,
    command: list[str],
    container: str | None,
    *,
    name: str = SEED,
    namespace: str = "default",
    binary: bool = False,
) -> tuple[Any, Any, dict[str, Any]]:
    """Exec through the websocket; (stdout, stderr, the Status sent on channel 3)."""
    ws = open_exec(v1, command, container, name=name, namespace=namespace, binary=binary)
    try:
        ws.run_forever(timeout=60)
        return ws.read_stdout(), ws.read_stderr(), json.loads(ws.read_channel(3))
    finally:
        release(ws)


def release(ws: Any) -> None:
    """Close an exec stream for good: after the server's close frame, WSClient.close() leaves the socket open."""
    ws.close()
    ws.sock.shutdown()


def close_forward(pf: Any, sock: Any) -> None:
    """Close a port-forward's local socket, let its proxy thread finish, and release the websocket."""
    sock.close()
    deadline = time.monotonic() + 10
    while pf.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    pf.websocket.shutdown()


def http_get(sock: Any, path: str) -> bytes:
    sock.settimeout(20)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {SEED}\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def podman_pods() -> list[str]:
    out = subprocess.run(["podman", "pod", "ps", "--format", "{{.Name}}"], capture_output=True, text=True)
    return out.stdout.split()


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubernetesStandIn]:
    with KubernetesStandIn(namespaces=NAMESPACES, tmp_dir=tmp_path_factory.mktemp("standin")) as stand_in:
        yield stand_in
        while _clients:
            _clients.pop().close()
    left = [p for p in podman_pods() if p.startswith("k8s-") and "-sit-" in p]
    assert not left, f"the stand-in left pods behind: {left}"


@pytest.fixture(scope="module")
def v1(api: KubernetesStandIn) -> client.CoreV1Api:
    return core(api.kubeconfig)


@pytest.fixture(scope="module")
def seed(api: KubernetesStandIn, v1: client.CoreV1Api) -> dict[str, Any]:
    """The tutorial's pod as ``sit-seed``: applied twice, watched until Ready."""
    doc = manifest(ROOT / "manifests" / "multicontainer-pod.yaml", SEED)
    doc["metadata"]["labels"] = {"app.kubernetes.io/managed-by": "labkit"}
    started = time.monotonic()
    first = apply(v1, doc)
    second = apply(v1, doc)
    events = watch_until(v1, SEED, is_ready)
    ready_after = time.monotonic() - started
    deadline = time.monotonic() + 30  # Ready means the containers run; the first line comes a moment later
    while run(v1, ["test", "-s", "/var/log/index.html"], "producer")[2]["status"] != "Success":
        assert time.monotonic() < deadline, "the producer wrote nothing in 30 s"
        time.sleep(0.2)
    return {"doc": doc, "first": first, "second": second, "events": events, "ready_after": ready_after}


# -- starting, discovery, cleanup ------------------------------------------------------------


def test_starts_and_leaves_no_pod_behind(tmp_path: Path) -> None:
    with KubernetesStandIn(namespaces=("default",), tmp_dir=tmp_path) as api:
        assert api.url.startswith("https://127.0.0.1:")
        kubeconfig = yaml.safe_load(Path(api.kubeconfig).read_text())
        assert kubeconfig["clusters"][0]["cluster"]["server"] == api.url
        assert kubeconfig["contexts"][0]["context"]["namespace"] == "default"
        v1 = core(api.kubeconfig)
        doc = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "sit-short"},
            "spec": {
                "containers": [
                    {"name": "main", "image": "docker.io/library/ubuntu:latest", "command": ["sleep", "600"]}
                ]
            },
        }
        assert apply(v1, doc)[1] == 201
        watch_until(v1, "sit-short", lambda p: p.status.phase == "Running")
        assert api.podman_name("default", "sit-short") in podman_pods()
        _clients.pop().close()
    assert "k8s-default-sit-short" not in podman_pods()


def test_discovery_answers(api: KubernetesStandIn) -> None:
    with config.new_client_from_config(config_file=api.kubeconfig) as api_client:
        assert client.VersionApi(api_client).get_code().git_version.startswith("v1.")
        assert client.CoreApi(api_client).get_api_versions().versions == ["v1"]
    before = client.Configuration.get_default_copy()
    try:
        config.load_kube_config(config_file=api.kubeconfig)  # the global way works too
        assert client.CoreV1Api().list_namespaced_pod("student-2").items == []
    finally:
        client.Configuration.set_default(before)


def test_podman_names_fit() -> None:
    assert KubernetesStandIn.podman_name("student-1", "sit-x") == "k8s-student-1-sit-x"
    long = KubernetesStandIn.podman_name("n" * 63, "p" * 63)
    assert len(long) <= 63 and long != KubernetesStandIn.podman_name("n" * 63, "p" * 62 + "q")


# -- apply, watch, status ----------------------------------------------------------------


def test_apply_creates_then_is_idempotent(seed: dict[str, Any]) -> None:
    (first, created), (second, again) = seed["first"], seed["second"]
    assert (created, again) == (201, 200)
    assert first.metadata.uid == second.metadata.uid
    assert [(m.manager, m.operation) for m in second.metadata.managed_fields] == [("labkit", "Apply")]
    assert second.metadata.labels == {"app.kubernetes.io/managed-by": "labkit"}
    assert second.spec.containers[0].image_pull_policy == "Always"  # defaulted, as the API server does


def test_watch_sees_the_pod_become_ready(seed: dict[str, Any]) -> None:
    events = seed["events"]
    assert events[0][0] == "ADDED" and all(t == "MODIFIED" for t, _ in events[1:])
    phases = [p.status.phase for _, p in events]
    assert phases[-1] == "Running"
    rvs = [int(p.metadata.resource_version) for _, p in events]
    assert rvs == sorted(rvs) and len(set(rvs)) == len(rvs)
    pod = events[-1][1]
    assert pod.spec.node_name == "labkit-standin"
    assert {c.type: c.status for c in pod.status.conditions} == {
        "PodReadyToStartContainers": "True",
        "Initialized": "True",
        "Ready": "True",
        "ContainersReady": "True",
        "PodScheduled": "True",
    }
    for name, image in (
        ("producer", "docker.io/library/ubuntu:latest"),
        ("consumer", "docker.io/library/nginx:latest"),
    ):
        cs = container(pod, name)
        assert (cs.ready, cs.started, cs.restart_count, cs.image) == (True, True, 0, image)
        assert cs.state.running.started_at is not None
    # Before Ready, the kubelet said the containers were being created.
    waiting = [
        container(p, "producer").state.waiting.reason
        for _, p in events
        if p.status.container_statuses and container(p, "producer").state.waiting
    ]
    assert set(waiting) <= {"ContainerCreating"}
    assert seed["ready_after"] < 30


def test_get_and_list_with_selectors(v1: client.CoreV1Api, seed: dict[str, Any]) -> None:
    pod = v1.read_namespaced_pod(SEED, "default")
    assert meta(pod).namespace == "default" and meta(pod).creation_timestamp is not None
    listed = v1.list_namespaced_pod("default", label_selector="app.kubernetes.io/managed-by=labkit")
    assert listed.metadata is not None
    assert SEED in [meta(p).name for p in listed.items] and listed.metadata.resource_version
    assert v1.list_namespaced_pod("default", label_selector="app.kubernetes.io/managed-by!=labkit,x").items == []
    assert [meta(p).name for p in v1.list_namespaced_pod("default", field_selector=f"metadata.name={SEED}").items] == [
        SEED
    ]
    assert v1.list_namespaced_pod("student-1").items == []
    with pytest.raises(ApiException) as info:
        v1.list_namespaced_pod("default", field_selector="spec.nope=1")
    assert status_of(info.value)["message"] == "field label not supported: spec.nope"


# -- exec ----------------------------------------------------------------------------------


def test_hostname_in_every_container_is_the_pod_name(v1: client.CoreV1Api, seed: dict[str, Any]) -> None:
    for name in ("producer", "consumer"):
        out, _err, status = run(v1, ["hostname"], name)
        assert (out, status) == (f"{SEED}\n", {"metadata": {}, "status": "Success"})


def test_exec_keeps_streams_and_exit_codes_apart(v1: client.CoreV1Api, seed: dict[str, Any]) -> None:
    out, err, status = run(v1, ["sh", "-c", "echo out; echo err >&2; exit 3"], "producer")
    assert (out, err) == ("out\n", "err\n")
    assert status == {
        "metadata": {},
        "status": "Failure",
        "message": "command terminated with non-zero exit code: "
        "error executing command [sh -c echo out; echo err >&2; exit 3], exit code 3",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
    }
    ws = open_exec(v1, ["sh", "-c", "exit 4"], "producer")
    ws.run_forever(timeout=30)
    assert ws.returncode == 4
    release(ws)


def test_exec_passes_bytes_through_intact(v1: client.CoreV1Api, seed: dict[str, Any]) -> None:
    out, _, status = run(v1, ["printf", "\\377\\376\\000ok\\n"], "consumer", binary=True)
    assert out == b"\xff\xfe\x00ok\n" and status["status"] == "Success"


def test_exec_streams_output_as_it_comes(v1: client.CoreV1Api, seed: dict[str, Any]) -> None:
    ws = open_exec(v1, ["sh", "-c", "echo first; sleep 2; echo second"], "producer")
    started = time.monotonic()
    assert ws.readline_stdout(timeout=1.5) == "first"
    assert time.monotonic() - started < 1.5
    ws.run_forever(timeout=30)
    assert ws.read_stdout() == "second\n" and ws.returncode == 0
    release(ws)


def test_exec_relays_stdin_until_the_client_closes_it(v1: client.CoreV1Api, seed: dict[str, Any]) -> None:
    ws = open_exec(v1, ["cat"], "producer", stdin=True)
    assert ws.subprotocol == "v5.channel.k8s.io"
    ws.write_stdin("hello\n")
    ws.write_stdin(b"\xff bytes\n")
    ws.close_channel(0)  # v5: end of stdin, so cat ends
    ws.run_forever(timeout=20)
    assert ws.read_stdout() == "hello\n\ufffd bytes\n" and ws.returncode == 0
    release(ws)


def test_channel_protocol_negotiation(api: KubernetesStandIn, seed: dict[str, Any]) -> None:
    import websocket

    base = api.url.replace("https://", "wss://") + f"/api/v1/namespaces/default/pods/{SEED}"
    auth = [f"Authorization: Bearer {api.token}"]
    tls = {"ca_certs": api.ca_file}
    ws = websocket.create_connection(
        base + "/exec?command=true&container=producer&stdout=true",
        header=auth,
        subprotocols=["v4.channel.k8s.io"],
        sslopt=tls,
    )
    assert ws.subprotocol == "v4.channel.k8s.io"
    frames = []
    while True:
        opcode, data = ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            break
        frames.append(data)
    ws.shutdown()
    assert frames == [b"\x03" + json.dumps({"metadata": {}, "status": "Success"}).encode()]
    for path, offered in (
        ("/exec?command=true&container=producer&stdout=true", "channel.k8s.io"),
        ("/portforward?ports=80", "v5.channel.k8s.io"),
    ):
        with pytest.raises(websocket.WebSocketBadStatusException) as info:
            websocket.create_connection(base + path, header=auth, subprotocols=[offered], sslopt=tls)
        assert info.value.status_code == 400 and info.value.resp_body is not None
        assert b"requested protocol(s) are not supported" in info.value.resp_body
    pf = websocket.create_connection(
        base + "/portforward?ports=80",
        header=auth,
        subprotocols=["v5.channel.k8s.io", "v4.channel.k8s.io"],
        sslopt=tls,
    )
    assert pf.subprotocol == "v4.channel.k8s.io"
    assert [pf.recv(), pf.recv()] == [b"\x00\x50\x00", b"\x01\x50\x00"]  # port 80, little-endian
    pf.close()
    pf.shutdown()


def test_exec_of_a_missing_command_is_a_runtime_failure(v1: client.CoreV1Api, seed: dict[str, Any]) -> None:
    out, err, status = run(v1, ["no-such-command", "x"], "producer")
    assert (out, err, status["status"], status["reason"], status["code"]) == ("", "", "Failure", "InternalError", 500)
    assert 'exec: "no-such-command": executable file not found in $PATH' in status["message"]
    assert status["message"].startswith("Internal error occurred: error executing command in container: ")
    assert not any(c.get("reason") == "ExitCode" for c in status["details"]["causes"])


def test_exec_names_the_container_rules(v1: client.CoreV1Api, seed: dict[str, Any]) -> None:
    with pytest.raises(ApiException) as info:
        run(v1, ["true"], None)
    assert f"a container name must be specified for pod {SEED}, choose one of: [producer consumer]" in str(info.value)
    with pytest.raises(ApiException) as info:
        run(v1, ["true"], "sidecar")
    assert f"container sidecar is not valid for pod {SEED}" in str(info.value)


def test_exec_outlives_the_client_that_leaves(v1: client.CoreV1Api, seed: dict[str, Any]) -> None:
    """A kubelet leaves an exec'd process running when its client goes away (kubernetes/kubernetes issue
    89031; opencontainers/runc issue 3359): a client that wants it gone must end it itself."""
    loop = "while true; do date >> /tmp/alive; sleep 0.2; done"
    ws = open_exec(v1, ["sh", "-c", loop], "producer")
    try:
        ws.update(timeout=1)

        def lines() -> int:
            out, _, status = run(v1, ["sh", "-c", "wc -l < /tmp/alive"], "producer")
            assert status["status"] == "Success", status
            return int(out.strip())

        deadline = time.monotonic() + 15
        while lines() == 0:
            assert time.monotonic() < deadline, "the exec'd loop never wrote"
            time.sleep(0.2)
        ws.close()  # the client goes away mid-command
        ws.sock.shutdown()
        time.sleep(1)  # the stand-in has let go of the stream by now
        before = lines()
        time.sleep(1)
        assert lines() > before, "the exec'd command stopped when its client left"
        listing = ["sh", "-c", "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done"]
        assert f"sh -c {loop} " in run(v1, listing, "producer")[0].splitlines()
    finally:
        run(v1, kill_command(["sh", "-c", loop]), "producer")
        run(v1, ["rm", "-f", "/tmp/alive"], "producer")


# -- port-forward --------------------------------------------------------------------------


def test_port_forward_serves_the_shared_file(v1: client.CoreV1Api, seed: dict[str, Any]) -> None:
    pf = portforward(v1.connect_get_namespaced_pod_portforward, SEED, "default", ports="80")
    sock = pf.socket(80)
    try:
        reply = http_get(sock, "/index.html")
    finally:
        close_forward(pf, sock)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert body.decode().splitlines()[0].split()[0] == SEED
    assert pf.error(80) is None


def test_port_forward_to_a_deaf_port_reports_the_error(v1: client.CoreV1Api, seed: dict[str, Any]) -> None:
    pf = portforward(v1.connect_get_namespaced_pod_portforward, SEED, "default", ports="8081")
    sock = pf.socket(8081)
    sock.settimeout(20)
    assert sock.recv(1024) == b""
    close_forward(pf, sock)
    assert pf.error(8081).startswith("error forwarding port 8081 to pod ")
    assert "connection refused" in pf.error(8081)


# -- SPDY/3.1 (kubectl's exec before 1.30, and port-forward), with a minimal client of our own --------


class SpdyClient:
    """Just enough of a SPDY/3.1 client (the framing of ``tests/k8s_standin/spdy.py``) to drive the stand-in."""

    def __init__(self, api: KubernetesStandIn, path: str, protocols: list[str]) -> None:
        cfg = yaml.safe_load(Path(api.kubeconfig).read_text())
        cluster, user = cfg["clusters"][0]["cluster"], cfg["users"][0]["user"]
        url = urllib.parse.urlsplit(cluster["server"])
        raw = socket.create_connection((url.hostname, url.port), timeout=20)
        if url.scheme == "https":
            ctx = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
            raw = ctx.wrap_socket(raw, server_hostname=url.hostname)
        self.sock = raw
        versions = "".join(f"X-Stream-Protocol-Version: {p}\r\n" for p in protocols)
        self.sock.sendall(
            (
                f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {user['token']}\r\n"
                f"Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n{versions}Content-Length: 0\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            assert chunk, head
            head += chunk
        self._begin(head.decode())

    def _begin(self, head: str) -> None:
        """A new session on the connection: the server's answer, fresh header compression, stream ids from 1."""
        self.head = head
        self.out = spdy.HeaderCompressor()
        self.reader = spdy.FrameReader()
        self.next_id = 1

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self) -> bytes:
        return self.sock.recv(65536)

    def open(self, **headers: str) -> int:
        sid, self.next_id = self.next_id, self.next_id + 2
        self.send(spdy.syn_stream(self.out, sid, headers))
        return sid

    def frames(self, until: Callable[[list[Any]], bool]) -> list[Any]:
        got: list[Any] = []
        while not until(got):
            data = self.recv()
            if not data:
                break
            got += self.reader.feed(data)
        return got

    def close(self) -> None:
        self.sock.close()


class TunnelledSpdyClient(SpdyClient):
    """The same client with its SPDY bytes in websocket binary messages (``SPDY/3.1+<protocol>``), as kubectl
    1.31 and later port-forward: kept so the tunnel is tested on machines whose kubectl is older."""

    def __init__(self, api: KubernetesStandIn, path: str, protocol: str) -> None:
        import websocket

        self.ws = websocket.create_connection(
            api.url.replace("https://", "wss://") + path,
            header=[f"Authorization: Bearer {api.token}"],
            subprotocols=[f"SPDY/3.1+{protocol}"],
            sslopt={"ca_certs": api.ca_file},
            timeout=20,
        )
        self._begin("")

    def send(self, data: bytes) -> None:
        self.ws.send_bytes(data)

    def recv(self) -> bytes:
        import websocket

        while True:
            try:
                opcode, data = self.ws.recv_data()
            except websocket.WebSocketConnectionClosedException:
                return b""
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return b""
            if opcode == websocket.ABNF.OPCODE_BINARY:
                return bytes(data)

    def close(self) -> None:
        self.ws.close()


def _data(frames: list[Any], sid: int) -> bytes:
    return b"".join(f.data for f in frames if isinstance(f, spdy.DataFrame) and f.stream_id == sid)


def _finished(frames: list[Any], *sids: int) -> bool:
    done = {f.stream_id for f in frames if isinstance(f, spdy.DataFrame) and f.fin}
    return set(sids) <= done


def test_exec_over_spdy(api: KubernetesStandIn, seed: dict[str, Any]) -> None:
    query = "command=sh&command=-c&command=cat%3B+echo+oops+%3E%262%3B+exit+3&container=producer"
    path = f"/api/v1/namespaces/default/pods/{SEED}/exec?{query}&stdin=true&stdout=true&stderr=true"
    c = SpdyClient(api, path, ["v4.channel.k8s.io", "v3.channel.k8s.io", "channel.k8s.io"])
    try:
        assert c.head.startswith("HTTP/1.1 101"), c.head
        assert "X-Stream-Protocol-Version: v4.channel.k8s.io" in c.head and "Upgrade: SPDY/3.1" in c.head
        error = c.open(streamType="error")
        stdin = c.open(streamType="stdin")
        stdout, stderr = c.open(streamType="stdout"), c.open(streamType="stderr")
        c.send(spdy.data_frame(stdin, b"fed through stdin\n") + spdy.data_frame(stdin, fin=True))
        frames = c.frames(lambda got: _finished(got, error, stdout, stderr))
    finally:
        c.close()
    replies = [f.stream_id for f in frames if isinstance(f, spdy.ControlFrame) and f.type == spdy.SYN_REPLY]
    assert replies == [error, stdin, stdout, stderr]
    assert _data(frames, stdout) == b"fed through stdin\n"
    assert _data(frames, stderr) == b"oops\n"
    status = json.loads(_data(frames, error))
    assert status["reason"] == "NonZeroExitCode" and status["details"]["causes"] == [
        {"reason": "ExitCode", "message": "3"}
    ]


def test_port_forward_over_spdy(api: KubernetesStandIn, seed: dict[str, Any]) -> None:
    c = SpdyClient(api, f"/api/v1/namespaces/default/pods/{SEED}/portforward", ["portforward.k8s.io"])
    try:
        assert c.head.startswith("HTTP/1.1 101") and "X-Stream-Protocol-Version: portforward.k8s.io" in c.head
        error = c.open(streamType="error", port="80", requestID="0")
        data = c.open(streamType="data", port="80", requestID="0")
        deaf_error = c.open(streamType="error", port="8081", requestID="1")
        deaf_data = c.open(streamType="data", port="8081", requestID="1")
        c.send(spdy.data_frame(data, b"GET /index.html HTTP/1.0\r\n\r\n"))
        frames = c.frames(lambda got: _finished(got, error, data, deaf_error, deaf_data))
    finally:
        c.close()
    head, _, body = _data(frames, data).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert body.decode().splitlines()[0].split()[0] == SEED
    assert _data(frames, error) == b""
    refused = _data(frames, deaf_error).decode()
    assert refused.startswith("error forwarding port 8081 to pod ") and "connection refused" in refused


def test_port_forward_over_spdy_in_a_websocket(api: KubernetesStandIn, seed: dict[str, Any]) -> None:
    """kubectl 1.31+'s port-forward (SPDY inside websocket binary messages), real bytes from the pod's nginx."""
    c = TunnelledSpdyClient(api, f"/api/v1/namespaces/default/pods/{SEED}/portforward", "portforward.k8s.io")
    try:
        assert c.ws.subprotocol == "spdy/3.1+portforward.k8s.io"  # websocket-client lower-cases it
        error = c.open(streamType="error", port="80", requestID="0")
        data = c.open(streamType="data", port="80", requestID="0")
        c.send(spdy.data_frame(data, b"GET /index.html HTTP/1.0\r\n\r\n"))
        frames = c.frames(lambda got: _finished(got, error, data))
    finally:
        c.close()
    replies = [f.stream_id for f in frames if isinstance(f, spdy.ControlFrame) and f.type == spdy.SYN_REPLY]
    assert replies == [error, data]
    head, _, body = _data(frames, data).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK"), head
    lines = body.decode().splitlines()
    assert lines and all(re.fullmatch(rf"{SEED} \w{{3}} \w{{3}} +\d+ \d\d:\d\d:\d\d \w+ \d{{4}}", x) for x in lines), (
        lines
    )
    assert _data(frames, error) == b""


def test_spdy_needs_a_protocol_both_sides_speak(api: KubernetesStandIn, seed: dict[str, Any]) -> None:
    c = SpdyClient(api, f"/api/v1/namespaces/default/pods/{SEED}/portforward", ["v9.channel.k8s.io"])
    try:
        assert c.head.startswith("HTTP/1.1 403"), c.head
        assert "X-Accepted-Stream-Protocol-Versions: portforward.k8s.io" in c.head, c.head
        assert "Content-Type: text/plain" in c.head, c.head
        body = c.sock.recv(65536).decode()
        assert body == (
            "unable to upgrade: unable to negotiate protocol: "
            "client supports [v9.channel.k8s.io], server accepts [portforward.k8s.io]\n"
        ), body
    finally:
        c.close()


# -- logs, events ----------------------------------------------------------------------------


def test_log_rules(v1: client.CoreV1Api, seed: dict[str, Any]) -> None:
    assert isinstance(v1.read_namespaced_pod_log(SEED, "default", container="consumer"), str)
    with pytest.raises(ApiException) as info:
        v1.read_namespaced_pod_log(SEED, "default")
    assert status_of(info.value)["message"] == (
        f"a container name must be specified for pod {SEED}, choose one of: [producer consumer]"
    )
    with pytest.raises(ApiException) as info:
        v1.read_namespaced_pod_log(SEED, "default", container="sidecar")
    assert (info.value.status, status_of(info.value)["message"]) == (
        400,
        f"container sidecar is not valid for pod {SEED}",
    )


def test_events_tell_the_pods_story(v1: client.CoreV1Api, seed: dict[str, Any]) -> None:
    events = v1.list_namespaced_event("default", field_selector=f"involvedObject.name={SEED}").items
    story = [(e.reason, e.involved_object.field_path) for e in events]
    assert story[0] == ("Scheduled", None)
    for name in ("producer", "consumer"):
        where = f"spec.containers{{{name}}}"
        for reason in ("Pulling", "Pulled", "Created", "Started"):
            assert (reason, where) in story
    assert {e.type for e in events} == {"Normal"}
    assert all(e.count is not None and e.count >= 1 and e.last_timestamp for e in events)


# -- errors ------------------------------------------------------------------------------------


def test_unauthorized_without_a_valid_token(
    api: KubernetesStandIn, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "not-a-token-of-this-stand-in"
    bad = tmp_path / "bad.yaml"
    doc = yaml.safe_load(Path(api.kubeconfig).read_text())
    doc["users"][0]["user"]["token"] = secret
    bad.write_text(yaml.safe_dump(doc))
    with pytest.raises(ApiException) as info:
        core(str(bad)).list_namespaced_pod("default")
    assert info.value.status == 401
    assert status_of(info.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }
    del doc["users"][0]["user"]["token"]
    bad.write_text(yaml.safe_dump(doc))
    with pytest.raises(ApiException) as info:
        core(str(bad)).read_namespaced_pod(SEED, "default")
    assert info.value.status == 401
    assert secret not in caplog.text and api.token not in caplog.text


def test_forbidden_outside_the_students_namespace(api: KubernetesStandIn, seed: dict[str, Any]) -> None:
    student = core(api.kubeconfig_for(namespace="student-1"))
    assert student.list_namespaced_pod("student-1").items == []
    user = "system:serviceaccount:student-1:student"
    doc = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "sit-x"},
        "spec": {"containers": [{"name": "c", "image": "ubuntu"}]},
    }

    def refused(who: str, verb: str, resource: str, namespace: str) -> str:
        return (
            f'{who} is forbidden: User "{user}" cannot {verb} resource "{resource}" in API group "" '
            f'in the namespace "{namespace}"'
        )

    cases = [
        (
            lambda: student.create_namespaced_pod("student-2", client.V1Pod.model_validate(doc)),
            refused("pods", "create", "pods", "student-2"),
        ),
        (lambda: apply(student, doc, "student-2"), refused('pods "sit-x"', "patch", "pods", "student-2")),
        (lambda: student.read_namespaced_pod(SEED, "default"), refused(f'pods "{SEED}"', "get", "pods", "default")),
        (
            lambda: student.read_namespaced_pod_log(SEED, "default", container="producer"),
            refused(f'pods "{SEED}"', "get", "pods/log", "default"),
        ),
        (
            lambda: student.delete_namespaced_pod(SEED, "default"),
            refused(f'pods "{SEED}"', "delete", "pods", "default"),
        ),
    ]
    for call, message in cases:
        with pytest.raises(ApiException) as info:
            call()
        assert (info.value.status, status_of(info.value)["reason"], status_of(info.value)["message"]) == (
            403,
            "Forbidden",
            message,
        )
    with pytest.raises(ApiException) as info:
        run(student, ["true"], "producer")
    text = str(info.value).replace("\\", "")
    assert f'pods "{SEED}" is forbidden: User "{user}" cannot get resource "pods/exec" in API group ""' in text


def test_apply_that_would_create_needs_create(api: KubernetesStandIn) -> None:
    patch_only = core(
        api.kubeconfig_for(namespace="student-2", rules=[{"verbs": ["get", "patch"], "resources": ["pods"]}])
    )
    doc = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "sit-y"},
        "spec": {"containers": [{"name": "c", "image": "ubuntu"}]},
    }
    with pytest.raises(ApiException) as info:
        apply(patch_only, doc, "student-2")
    assert status_of(info.value)["message"] == (
        'pods "sit-y" is forbidden: User "system:serviceaccount:student-2:student" cannot create resource "pods" '
        'in API group "" in the namespace "student-2"'
    )
    lister = core(api.kubeconfig_for(namespace="student-2", rules=[Rule(verbs=("list",), resources=("pods",))]))
    assert lister.list_namespaced_pod("default").items  # a Rule without namespaces grants everywhere


def test_not_found(v1: client.CoreV1Api, seed: dict[str, Any]) -> None:
    with pytest.raises(ApiException) as info:
        v1.read_namespaced_pod("sit-nope", "default")
    assert (info.value.status, status_of(info.value)["message"], status_of(info.value)["reason"]) == (
        404,
        'pods "sit-nope" not found',
        "NotFound",
    )
    with pytest.raises(ApiException) as info:
        apply(v1, seed["doc"], "nope")
    assert (info.value.status, status_of(info.value)["message"]) == (404, 'namespaces "nope" not found')
    with pytest.raises(ApiException) as info:
        v1.delete_namespaced_pod("sit-nope", "default")
    assert info.value.status == 404


def test_apply_refuses_what_kubernetes_refuses(v1: client.CoreV1Api, seed: dict[str, Any]) -> None:
    changed = json.loads(json.dumps(seed["doc"]))
    changed["spec"]["containers"][0]["args"] = ["-c", "sleep 1000"]
    with pytest.raises(ApiException) as info:
        apply(v1, changed)
    assert info.value.status == 422
    assert status_of(info.value)["message"].startswith(
        f'Pod "{SEED}" is invalid: spec: Forbidden: pod updates may not change fields other than '
    )
    with pytest.raises(ApiException) as info:
        apply(v1, seed["doc"], field_manager=None)
    assert (info.value.status, status_of(info.value)["message"]) == (
        422,
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
    )
    with pytest.raises(ApiException) as info:
        v1.create_namespaced_pod("default", seed["doc"])
    assert (info.value.status, status_of(info.value)["reason"], status_of(info.value)["message"]) == (
        409,
        "AlreadyExists",
        f'pods "{SEED}" already exists',
    )


# -- pods with a story: not made by labkit, missing image, crash loop --------------------------------


def test_a_pod_made_by_someone_else(v1: client.CoreV1Api) -> None:
    doc = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "sit-other"},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": "docker.io/library/ubuntu:latest",
                    "command": ["sh", "-c", "echo one; sleep 0.1; echo two >&2; sleep 0.1; echo three; sleep 1000"],
                }
            ]
        },
    }
    made = v1.create_namespaced_pod("default", client.V1Pod.model_validate(doc))  # as the client does with a dict
    fields = meta(made).managed_fields
    assert fields is not None
    assert [(m.manager, m.operation) for m in fields] == [("OpenAPI-Generator", "Update")]
    assert meta(made).labels is None
    watch_until(v1, "sit-other", is_ready)
    assert v1.read_namespaced_pod_log("sit-other", "default") == "one\ntwo\nthree\n"  # one container: no name needed
    assert v1.read_namespaced_pod_log("sit-other", "default", tail_lines=1) == "three\n"
    stamped = v1.read_namespaced_pod_log("sit-other", "default", timestamps=True).splitlines()
    assert stamped[0].endswith(" one") and stamped[0][:4].isdigit() and "Z " in stamped[0]
    # Applying the same spec takes a share of it and adds labkit's label, as server-side apply does.
    labelled = json.loads(json.dumps(doc))
    labelled["metadata"]["labels"] = {"app.kubernetes.io/managed-by": "labkit"}
    pod, code = apply(v1, labelled, force=False)
    assert (code, pod.metadata.labels) == (200, {"app.kubernetes.io/managed-by": "labkit"})
    assert [m.manager for m in pod.metadata.managed_fields] == ["OpenAPI-Generator", "labkit"]
    other = json.loads(json.dumps(doc))
    other["spec"]["containers"][0]["command"] = ["sleep", "5"]
    with pytest.raises(ApiException) as info:
        apply(v1, other, force=False)
    assert (info.value.status, status_of(info.value)["reason"]) == (409, "Conflict")
    assert 'conflict with "OpenAPI-Generator"' in status_of(info.value)["message"]
    with pytest.raises(ApiException) as info:
        apply(v1, other)
    assert info.value.status == 422

    listed = v1.list_namespaced_pod("default")
    assert listed.metadata is not None
    before = listed.metadata.resource_version
    gone = v1.delete_namespaced_pod("sit-other", "default", grace_period_seconds=0)
    assert meta(gone).deletion_timestamp is not None
    events = watch_events(v1, "sit-other", lambda kind, pod: kind == "DELETED", resource_version=before, timeout=60)
    assert events[0][0] == "MODIFIED" and events[0][1].metadata.deletion_timestamp is not None
    with pytest.raises(ApiException) as info:
        v1.read_namespaced_pod("sit-other", "default")
    assert info.value.status == 404
    # Grace period 0 removes the object at once; the kubelet still kills the containers, with 1 s.
    deadline = time.monotonic() + 15
    while KubernetesStandIn.podman_name("default", "sit-other") in podman_pods():
        assert time.monotonic() < deadline, "the force-deleted pod's containers were never killed"
        time.sleep(0.2)


def test_missing_image_is_reported_and_never_started(v1: client.CoreV1Api) -> None:
    doc = manifest(ROOT / "tests" / "manifests" / "missing-image-pod.yaml", "sit-missing")
    apply(v1, doc)
    try:

        def backoff(pod: Any) -> bool:
            cs = pod.status.container_statuses
            return (
                bool(cs)
                and container(pod, "producer").state.waiting is not None
                and container(pod, "producer").state.waiting.reason == "ImagePullBackOff"
            )

        events = watch_until(v1, "sit-missing", backoff, timeout=30)
        reasons = [container(p, "producer").state.waiting.reason for _, p in events if p.status.container_statuses]
        assert reasons[0] == "ErrImagePull"
        pod = events[-1][1]
        assert pod.status.phase == "Pending"
        assert (
            container(pod, "producer").state.waiting.message
            == 'Back-off pulling image "localhost/labkit-no-such-image:1.0"'
        )
        assert KubernetesStandIn.podman_name("default", "sit-missing") not in podman_pods()
        story = [
            (e.type, e.reason, e.message)
            for e in v1.list_namespaced_event("default", field_selector="involvedObject.name=sit-missing").items
        ]
        assert ("Warning", "Failed", "Error: ErrImagePull") in story
        assert ("Normal", "BackOff", 'Back-off pulling image "localhost/labkit-no-such-image:1.0"') in story
        with pytest.raises(ApiException) as info:
            v1.read_namespaced_pod_log("sit-missing", "default", container="producer")
        assert status_of(info.value)["message"] == (
            'container "producer" in pod "sit-missing" is waiting to start: trying and failing to pull image'
        )
    finally:
        v1.delete_namespaced_pod("sit-missing", "default")


def test_crash_loop_is_reported_with_the_exit_code(v1: client.CoreV1Api) -> None:
    doc = manifest(ROOT / "tests" / "manifests" / "crashing-pod.yaml", "sit-crash")
    apply(v1, doc)
    try:

        def crashing(pod: Any) -> bool:
            cs = pod.status.container_statuses
            if not cs:
                return False
            producer = container(pod, "producer")
            return (
                producer.restart_count > 0
                and producer.last_state.terminated is not None
                and producer.state.waiting is not None
            )

        events = watch_until(v1, "sit-crash", crashing, timeout=60)
        pod = events[-1][1]
        producer = container(pod, "producer")
        assert producer.state.waiting.reason == "CrashLoopBackOff"
        assert producer.state.waiting.message.startswith("back-off ")
        assert "restarting failed container=producer pod=sit-crash_default(" in producer.state.waiting.message
        assert (producer.last_state.terminated.exit_code, producer.last_state.terminated.reason) == (3, "Error")
        assert (pod.status.phase, producer.ready) == ("Running", False)
        assert "starting" in v1.read_namespaced_pod_log("sit-crash", "default", container="producer")
        story = [
            (e.type, e.reason)
            for e in v1.list_namespaced_event("default", field_selector="involvedObject.name=sit-crash").items
        ]
        assert ("Warning", "BackOff") in story
    finally:
        v1.delete_namespaced_pod("sit-crash", "default")


def test_restarts_follow_the_kubelets_back_off(v1: client.CoreV1Api) -> None:
    """First restart at once, the second after 10 s in CrashLoopBackOff (docs/facts.md, "Restarts after a crash").

    The container exits 2 s after each start. The waits are read from the
    API's own timestamps (a run's ``finishedAt`` and the next run's
    ``startedAt``, whole seconds), so the bounds allow a second either side
    and the relist period.
    """
    doc = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "sit-backoff"},
        "spec": {
            "containers": [
                {"name": "main", "image": "docker.io/library/ubuntu:latest", "command": ["sh", "-c", "sleep 2; exit 3"]}
            ]
        },
    }
    apply(v1, doc)
    try:
        seen: list[Any] = []

        def twice(pod: Any) -> bool:
            cs = pod.status.container_statuses
            if cs:
                seen.append(container(pod, "main"))
            return bool(cs) and seen[-1].restart_count == 2 and seen[-1].state.running is not None

        watch_until(v1, "sit-backoff", twice, timeout=60)
        # Each restarted run, by restart count: when it started, and when the run before it ended.
        runs = {s.restart_count: s for s in seen if s.state.running and s.restart_count}
        first_wait, second_wait = (
            (runs[n].state.running.started_at - runs[n].last_state.terminated.finished_at).total_seconds()
            for n in (1, 2)
        )
        assert 0 <= first_wait <= 3, first_wait  # at once, on the next relist
        assert 9 <= second_wait <= 13, second_wait  # the kubelet's 10 s back-off
        held = [s for s in seen if s.state.waiting and s.state.waiting.reason == "CrashLoopBackOff"]
        assert held and {s.restart_count for s in held} == {1}, held  # only between the second crash and restart
        assert held[0].state.waiting.message.startswith("back-off 10s restarting failed container=main pod=")
        assert all(s.last_state.terminated.exit_code == 3 for s in held)
    finally:
        v1.delete_namespaced_pod("sit-backoff", "default", grace_period_seconds=1)


def test_a_pod_that_ends_with_restart_policy_never_fails(v1: client.CoreV1Api) -> None:
    doc = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "sit-once"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "main",
                    "image": "docker.io/library/ubuntu:latest",
                    "command": ["sh", "-c", "echo bye; exit 2"],
                }
            ],
        },
    }
    apply(v1, doc)
    try:
        pod = watch_until(v1, "sit-once", lambda p: p.status.phase == "Failed", timeout=60)[-1][1]
        main = container(pod, "main")
        assert (main.state.terminated.exit_code, main.state.terminated.reason, main.ready) == (2, "Error", False)
        assert v1.read_namespaced_pod_log("sit-once", "default") == "bye\n"
        with pytest.raises(ApiException) as info:
            run(v1, ["true"], "main", name="sit-once")
        assert "cannot exec into a container in a completed pod; current phase is Failed" in str(info.value)
    finally:
        v1.delete_namespaced_pod("sit-once", "default")


# -- deleting a pod: the grace period ----------------------------------------------------------------
# A kubelet stops each running container (the image's STOPSIGNAL, SIGTERM unless it names another), waits
# up to the grace period (default 30 s), then SIGKILLs; the object goes once the containers have stopped.
# Sources: tests/k8s_standin/termination.py.


def _tutorial_pod(v1: client.CoreV1Api, name: str, producer_script: str | None = None) -> None:
    """The tutorial's pod as ``name`` (optionally with another producer script), applied and Ready."""
    doc = manifest(ROOT / "manifests" / "multicontainer-pod.yaml", name)
    if producer_script is not None:
        doc["spec"]["containers"][0]["args"] = ["-c", producer_script]
    apply(v1, doc)
    watch_until(v1, name, is_ready)


def _time_until_deleted(v1: client.CoreV1Api, name: str, grace: int | None) -> tuple[float, list[tuple[str, Any]]]:
    """Delete ``name`` (``grace`` None: the pod's own); seconds until DELETED, and the events since."""
    since = meta(v1.read_namespaced_pod(name, "default")).resource_version
    started = time.monotonic()
    marked = v1.delete_namespaced_pod(name, "default", grace_period_seconds=grace)
    assert meta(marked).deletion_timestamp is not None
    assert meta(marked).deletion_grace_period_seconds == (30 if grace is None else grace)
    events = watch_events(v1, name, lambda kind, _: kind == "DELETED", resource_version=since, timeout=90)
    return time.monotonic() - started, events


def test_delete_waits_the_grace_period_for_a_pid_1_that_ignores_sigterm(v1: client.CoreV1Api) -> None:
    """The tutorial's producer is bash as PID 1 with no SIGTERM handler, so the signal does nothing
    (pid_namespaces(7)) and ``kubectl delete pod`` takes the whole 30 s; nginx stops at once. The only
    test in the suite that waits a full default grace period."""
    _tutorial_pod(v1, "sit-grace")
    try:

        def halfway(pod: Any) -> bool:
            # nginx has exited (0) on its stop signal while the producer still runs. A kubelet never restarts
            # a container of a terminating pod, so it shows as state.terminated.
            stopped = container(pod, "consumer").state.terminated
            return (
                meta(pod).deletion_timestamp is not None
                and stopped is not None
                and stopped.exit_code == 0
                and container(pod, "producer").state.running is not None
            )

        took, events = _time_until_deleted(v1, "sit-grace", None)
        assert 25 < took < 45, f"the delete took {took:.1f} s, not about the 30 s grace period"
        assert any(kind == "MODIFIED" and halfway(pod) for kind, pod in events), "consumer never stopped first"
        last = events[-2][1]  # the kubelet's last word before the object goes
        assert container(last, "producer").state.terminated.exit_code == 137  # SIGKILL at the end of the grace
        assert last.status.phase == "Failed"
        story = [
            (e.reason, e.message)
            for e in v1.list_namespaced_event("default", field_selector="involvedObject.name=sit-grace").items
        ]
        assert ("Killing", "Stopping container producer") in story
        assert ("Killing", "Stopping container consumer") in story
    finally:
        with contextlib.suppress(ApiException):
            v1.delete_namespaced_pod("sit-grace", "default", grace_period_seconds=1)


def test_delete_with_a_short_grace_period_kills_soon(v1: client.CoreV1Api) -> None:
    """labkit's own delete asks for 1 s: the producer that ignores SIGTERM is SIGKILLed after it."""
    _tutorial_pod(v1, "sit-short")
    took, events = _time_until_deleted(v1, "sit-short", 1)
    assert took < 10, f"a 1 s grace period took {took:.1f} s"
    assert container(events[-2][1], "producer").state.terminated.exit_code == 137
    assert KubernetesStandIn.podman_name("default", "sit-short") not in podman_pods()


def test_delete_of_a_pod_that_stops_on_sigterm_ends_early(v1: client.CoreV1Api) -> None:
    """Containers that exit on their stop signal are done before the grace period: the pod goes early."""
    script = "trap 'exit 0' TERM; while true; do date >> /var/log/index.html; sleep 1 & wait $!; done"
    _tutorial_pod(v1, "sit-polite", script)
    took, events = _time_until_deleted(v1, "sit-polite", None)
    assert took < 15, f"containers that exit on SIGTERM still took {took:.1f} s of the 30 s grace period"
    last = events[-2][1]  # the kubelet's last word before the object goes
    codes = {c.name: c.state.terminated.exit_code for c in last.status.container_statuses}
    assert codes == {"producer": 0, "consumer": 0} and last.status.phase == "Succeeded", (codes, last.status.phase)


# -- what was served -------------------------------------------------------------------------------


def test_served_counts_every_endpoint_used(api: KubernetesStandIn, seed: dict[str, Any]) -> None:
    served = api.served
    pod = "/api/v1/namespaces/{namespace}/pods/{name}"
    for key in [
        ("PATCH", pod),
        ("GET", pod),
        ("GET", "/api/v1/namespaces/{namespace}/pods"),
        ("GET", "/api/v1/namespaces/{namespace}/pods?watch=true"),
        ("GET", pod + "/exec"),
        ("GET", pod + "/portforward"),
        ("GET", pod + "/log"),
        ("GET", "/api/v1/namespaces/{namespace}/events"),
    ]:
        assert served.get(key, 0) > 0, key
