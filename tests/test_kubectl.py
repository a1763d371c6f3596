"""The tutorial's commands, typed by real ``kubectl`` binaries against the Kubernetes API stand-in.

Each kubectl named in ``LABKIT_KUBECTL`` (paths separated by ``os.pathsep``;
by default the ``kubectl`` on PATH) walks through ``sidecar-pattern.md``
against a fresh stand-in, with the stand-in's own kubeconfig: apply the
sidecar pod (with kubectl's validation), see it ``2/2 Running`` in the
server's Table, exec into each container and the default one, port-forward
and fetch the page, read nginx's log of that request, and delete the pod
until Podman has let it go. Newer kubectl execs over websockets and
port-forwards over SPDY tunnelled in a websocket; older ones (Debian 12's
``kubernetes-client``) do both over plain SPDY/3.1 upgrades, so running both
kinds covers each way kubectl reaches a pod.

kubectl sends its bearer token only over HTTPS, so these tests need the
stand-in's HTTPS kubeconfig (``certificate-authority-data``); they are
skipped while the stand-in serves plain HTTP.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import yaml

pytest.importorskip("aiohttp")

from tests.conftest import SEED, free_port
from tests.k8s_standin import KubernetesStandIn

pytestmark = pytest.mark.podman

MANIFEST = SEED
POD = "multicontainer-pod"
NAMESPACE = "kubectl-tutorial"  # its own namespace: the Podman pod is k8s-kubectl-tutorial-multicontainer-pod
STUDENT_NS = "kubectl-student"
READY_TIMEOUT = 90.0
COMMAND_TIMEOUT = 60.0
LISTEN_TIMEOUT = 30.0  # for kubectl port-forward's "Forwarding from" line
# What the producer writes: "$(hostname) $(date)", the hostname being the pod's name.
LINE = re.compile(rf"^{POD} \w{{3}} \w{{3}} +\d+ \d\d:\d\d:\d\d \w+ \d{{4}}$", re.MULTILINE)


def _kubectls() -> list[str]:
    listed = os.environ.get("LABKIT_KUBECTL")
    if listed is not None:
        return [p for p in listed.split(os.pathsep) if p]
    found = shutil.which("kubectl")
    return [found] if found else []


def _version(kubectl: str) -> tuple[int, int]:
    """The client's (major, minor), from ``kubectl version --client -o json``."""
    proc = subprocess.run([kubectl, "version", "--client", "-o", "json"], capture_output=True, timeout=30)
    info = json.loads(proc.stdout)["clientVersion"]
    return int(info["major"]), int(re.sub(r"\D.*", "", info["minor"]))


def _params() -> list[Any]:
    """One parameter per kubectl: its path, and what is wrong with it (a listed binary that does not run fails)."""
    paths = _kubectls()
    if not paths:
        reason = "no kubectl: put one on PATH, or list kubectl binaries in LABKIT_KUBECTL (separated by os.pathsep)"
        return [pytest.param((None, None), marks=pytest.mark.skip(reason=reason), id="no-kubectl")]
    params = []
    for path in paths:
        try:
            major, minor = _version(path)
        except (OSError, subprocess.SubprocessError, ValueError, KeyError) as exc:
            problem = f"{path} (from LABKIT_KUBECTL or PATH) does not run as kubectl: {type(exc).__name__}: {exc}"
            params.append(pytest.param((path, problem), id=path))
            continue
        params.append(pytest.param((path, None), id=f"kubectl-{major}.{minor}"))
    return params


class Kubectl:
    """One kubectl binary with one kubeconfig, run as a student would type it."""

    def __init__(self, binary: str, kubeconfig: str, home: Path) -> None:
        self.binary = binary
        self.version = _version(binary)
        home.mkdir(parents=True, exist_ok=True)
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),  # its discovery cache goes here, not into the user's ~/.kube
            "KUBECONFIG": kubeconfig,
            "NO_PROXY": "127.0.0.1",
            "LANG": "C.UTF-8",
        }

    def argv(self, *args: str) -> list[str]:
        return [self.binary, *args]

    def run(
        self, *args: str, ok: bool = True, input: str | None = None, timeout: float = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        stdin = None if input is not None else subprocess.DEVNULL
        proc = subprocess.run(
            self.argv(*args), env=self.env, input=input, stdin=stdin, capture_output=True, text=True, timeout=timeout
        )
        if ok:
            assert proc.returncode == 0, f"kubectl {' '.join(args)}: exit {proc.returncode}\n{proc.stderr}"
        return proc


@pytest.fixture(params=_params())
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[KubernetesStandIn, str]]:
    binary, problem = request.param
    if problem:
        pytest.fail(problem)
    with KubernetesStandIn(namespaces=("default", NAMESPACE, STUDENT_NS, "other"), tmp_dir=tmp_path / "api") as standin:
        if not standin.url.startswith("https://"):
            pytest.skip("the stand-in serves plain HTTP, where kubectl sends no bearer token; kubectl needs its HTTPS")
        yield standin, binary


@pytest.fixture
def kubectl(api: tuple[KubernetesStandIn, str], tmp_path: Path) -> Kubectl:
    standin, binary = api
    return Kubectl(binary, standin.kubeconfig, tmp_path / "home")


def _table(text: str) -> tuple[list[str], list[list[str]]]:
    """kubectl's printed table: the header's column names and each row's cells."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert lines, "kubectl printed no table"
    return lines[0].split(), [ln.split() for ln in lines[1:]]


def _podman_pod_exists(name: str) -> bool:
    return (
        subprocess.run(["podman", "pod", "exists", name], capture_output=True, timeout=COMMAND_TIMEOUT).returncode == 0
    )


def _running(kubectl: Kubectl) -> list[str]:
    """``kubectl get pods`` until the pod is 2/2 Running; the row."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        out = kubectl.run("get", "pods", "-n", NAMESPACE).stdout
        header, rows = _table(out)
        assert header == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"], out
        row = next((r for r in rows if r[0] == POD), None)
        if row is not None and row[1:3] == ["2/2", "Running"]:
            return row
        assert time.monotonic() < deadline, f"{POD} never showed 2/2 Running:\n{out}"
        time.sleep(1)


def _first_line(stream: IO[bytes], deadline: float) -> str:
    """A pipe's output up to its first newline (with whatever came in the same read), never waiting past
    ``deadline``: what a process printed first, or less if it printed nothing in time."""
    got = b""
    fd = stream.fileno()
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while b"\n" not in got:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                break
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            got += chunk
    return got.decode(errors="replace")


def _port_forward(kubectl: Kubectl) -> tuple[str, int]:
    """``kubectl port-forward pod/NAME PORT:80`` in the background, one real GET through it; (body, port).

    Never waits on kubectl without a deadline: its first line is awaited for :data:`LISTEN_TIMEOUT`, and its
    stderr is collected only after it was stopped, for the failure's message."""
    port = free_port()
    proc = subprocess.Popen(
        kubectl.argv("port-forward", "-n", NAMESPACE, f"pod/{POD}", f"{port}:80", "--address", "127.0.0.1"),
        env=kubectl.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    first, body, problem = "", "", ""
    try:
        assert proc.stdout is not None
        first = _first_line(proc.stdout, time.monotonic() + LISTEN_TIMEOUT)
        if not first.startswith(f"Forwarding from 127.0.0.1:{port} -> 80"):
            problem = f"kubectl port-forward did not say it listens within {LISTEN_TIMEOUT:.0f}s"
        else:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=20) as resp:
                if resp.status != 200:
                    problem = f"GET through the forward answered {resp.status}"
                body = resp.read().decode()
    except OSError as exc:
        problem = f"GET through the forward failed: {type(exc).__name__}: {exc}"
    finally:
        proc.terminate()
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate(timeout=10)
    assert not problem, (
        f"{problem}\nstdout: {first + out.decode(errors='replace')}\nstderr: {err.decode(errors='replace')}"
    )
    return body, port


def test_tutorial_walkthrough(kubectl: Kubectl, api: tuple[KubernetesStandIn, str]) -> None:
    standin, _ = api
    podman_pod = standin.podman_name(NAMESPACE, POD)

    # 2. Apply the configuration (validated: kubectl reads the OpenAPI documents first).
    out = kubectl.run("apply", "-n", NAMESPACE, "-f", str(MANIFEST)).stdout
    assert out.strip() == f"pod/{POD} created", out
    assert standin.served.get(("GET", "/openapi/v3" if kubectl.version >= (1, 26) else "/openapi/v2"))
    applied = json.loads(kubectl.run("get", "pod", POD, "-n", NAMESPACE, "-o", "json").stdout)
    last = applied["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    assert json.loads(last)["spec"]["containers"][0]["name"] == "producer"  # kept on the API object

    row = _running(kubectl)
    assert row[3] == "0" and re.fullmatch(r"\d+s", row[4]), row
    assert _podman_pod_exists(podman_pod)
    out = kubectl.run("wait", "--for=condition=Ready", f"pod/{POD}", "-n", NAMESPACE, "--timeout=60s").stdout
    assert out.strip() == f"pod/{POD} condition met", out

    header, rows = _table(kubectl.run("get", "ns").stdout)
    assert header == ["NAME", "STATUS", "AGE"]
    assert [NAMESPACE, "Active"] in [r[:2] for r in rows] and ["default", "Active"] in [r[:2] for r in rows]

    # 3. and 4. The shared volume, seen from each container.
    deadline = time.monotonic() + 30  # Ready means the containers run; the first line comes a moment later
    while kubectl.run("exec", POD, "-n", NAMESPACE, "--", "test", "-s", "/var/log/index.html", ok=False).returncode:
        assert time.monotonic() < deadline, "the producer wrote nothing in 30 s"
        time.sleep(0.2)
    listing = kubectl.run("exec", POD, "-n", NAMESPACE, "-c", "producer", "--", "ls", "-la", "/var/log").stdout
    assert re.search(r"^-rw-r--r-- +1 root root +\d+ .* index\.html$", listing, re.MULTILINE), listing
    served = kubectl.run(
        "exec", POD, "-n", NAMESPACE, "-c", "consumer", "--", "tail", "/usr/share/nginx/html/index.html"
    ).stdout
    assert LINE.search(served), served
    # The tutorial's own "kubectl exec -it POD -- /bin/sh", typed into: without a terminal kubectl goes on
    # without a tty (it says so), in the default container (it says which), with stdin relayed to the end.
    shell = kubectl.run(
        "exec", "-it", POD, "-n", NAMESPACE, "--", "/bin/sh", input="ls -la /var/log\ntail /var/log/index.html\nexit\n"
    )
    assert "index.html" in shell.stdout and LINE.search(shell.stdout), shell.stdout
    assert "Unable to use a TTY" in shell.stderr and "producer" in shell.stderr, shell.stderr
    shell = kubectl.run(
        "exec", "-it", POD, "-n", NAMESPACE, "--container", "consumer", "--", "/bin/sh",
        input="ls -la /usr/share/nginx/html\ntail /usr/share/nginx/html/index.html\n",
    )  # fmt: skip
    assert "index.html" in shell.stdout and LINE.search(shell.stdout), shell.stdout
    failed = kubectl.run(
        "exec", POD, "-n", NAMESPACE, "-c", "consumer", "--", "sh", "-c", "echo oops >&2; exit 3", ok=False
    )
    assert failed.returncode == 3 and "oops" in failed.stderr, failed

    # 5. Port forwarding: the producer's lines, served by nginx, through kubectl.
    body, _port = _port_forward(kubectl)
    assert LINE.search(body), body
    assert body.splitlines()[0] == served.splitlines()[0], (body, served)
    logged = re.compile(r'"GET / HTTP/1\.1" 200 \d+ "-" "Python-urllib/')
    deadline = time.monotonic() + 10  # the runtime writes the container's log a moment after nginx does
    while not logged.search(log := kubectl.run("logs", POD, "-n", NAMESPACE, "-c", "consumer").stdout):
        assert time.monotonic() < deadline, log
        time.sleep(0.5)

    # 6. Cleanup: the pod leaves the API and Podman. With the default grace period this takes the full 30 s,
    # as on a cluster (the producer's bash, PID 1, ignores SIGTERM); tests/test_k8s_standin.py times that once,
    # so each kubectl here asks for 1 s and still waits until the pod is gone.
    out = kubectl.run("delete", "pod", POD, "-n", NAMESPACE, "--grace-period=1").stdout
    assert out.strip() == f'pod "{POD}" deleted', out
    assert not _podman_pod_exists(podman_pod)
    gone = kubectl.run("get", "pods", "-n", NAMESPACE)
    assert gone.stdout == "" and f"No resources found in {NAMESPACE} namespace." in gone.stderr, gone


def test_validation_refuses_an_unknown_field(kubectl: Kubectl, tmp_path: Path) -> None:
    """kubectl 1.26+ leaves validation to the server (``fieldValidation=Strict``), which names the field;
    older kubectl validates against the OpenAPI v2 schemas itself."""
    doc = yaml.safe_load(MANIFEST.read_text())
    doc["metadata"]["name"] = "typo-pod"
    doc["spec"]["containers"][0]["imagePullPolicyy"] = "Never"
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(doc))
    proc = kubectl.run("apply", "-n", NAMESPACE, "-f", str(path), ok=False)
    assert proc.returncode == 1
    if kubectl.version >= (1, 26):
        assert 'strict decoding error: unknown field "spec.containers[0].imagePullPolicyy"' in proc.stderr, proc.stderr
    else:
        assert (
            'ValidationError(Pod.spec.containers[0]): unknown field "imagePullPolicyy" in io.k8s.api.core.v1.Container'
        ) in proc.stderr, proc.stderr
    assert "NotFound" in kubectl.run("get", "pod", "typo-pod", "-n", NAMESPACE, ok=False).stderr


def test_student_is_refused_elsewhere(api: tuple[KubernetesStandIn, str], tmp_path: Path) -> None:
    standin, binary = api
    student = Kubectl(binary, standin.kubeconfig_for(namespace=STUDENT_NS), tmp_path / "home")
    proc = student.run("get", "pods", "-n", "other", ok=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f'Error from server (Forbidden): pods is forbidden: User "system:serviceaccount:{STUDENT_NS}:student" '
        'cannot list resource "pods" in API group "" in the namespace "other"'
    ), proc.stderr
    own = student.run("get", "pods")  # the kubeconfig's own namespace is allowed
    assert f"No resources found in {STUDENT_NS} namespace." in own.stderr
