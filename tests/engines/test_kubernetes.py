"""The Kubernetes engine's own promises, checked through the official client against the
API stand-in (``tests/k8s_standin``), which runs the pods for real on Podman."""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

import labkit
from labkit import classroom, lifecycle
from labkit.engines.kubernetes import KubernetesEngine
from labkit.errors import AuthenticationError, EngineError, EngineUnavailable, ImageNotFound, PodExists
from tests.conftest import free_port

pytestmark = pytest.mark.podman

ROOT = Path(__file__).resolve().parents[2]


def _classroom_rules(namespace: str):
    """The Role 'labkit class create' gives each student, as stand-in rules."""
    from tests.k8s_standin.rbac import Rule

    role = next(d for d in classroom.class_objects(namespace.removeprefix("lab-")) if d["kind"] == "Role")
    assert role["metadata"]["namespace"] == namespace
    return tuple(Rule.from_policy_rule(r, namespace) for r in role["rules"])


def test_no_kubeconfig_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(EngineUnavailable, match=r"KUBECONFIG.*LABKIT_ENGINE=podman"):
        KubernetesEngine()


def test_unreachable_server_fails_within_seconds_and_names_it(kube, tmp_path):
    dead = f"https://127.0.0.1:{free_port()}"
    config = yaml.safe_load(Path(kube.kubeconfig).read_text())
    config["clusters"][0]["cluster"]["server"] = dead
    path = tmp_path / "dead.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    started = time.monotonic()
    with pytest.raises(EngineUnavailable, match=f"cannot reach the Kubernetes API server at {dead}"):
        KubernetesEngine(kubeconfig=path)
    assert time.monotonic() - started < 10


def test_bad_token_is_refused_without_showing_it(kube, tmp_path):
    config = yaml.safe_load(Path(kube.kubeconfig).read_text())
    secret = "not-a-valid-token-0123456789"
    config["users"][0]["user"]["token"] = secret
    path = tmp_path / "bad.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(AuthenticationError, match=r"401.*get a fresh one") as info:
        KubernetesEngine(kubeconfig=path)
    assert secret not in str(info.value)


def test_classroom_role_is_enough_for_the_whole_lab(kube, seed):
    kubeconfig = kube.kubeconfig_for(namespace="lab-student-01", rules=_classroom_rules("lab-student-01"))
    engine = KubernetesEngine(kubeconfig=kubeconfig)
    assert engine.namespace == "lab-student-01"
    with labkit.Lab(seed, engine=engine, progress=False) as lab:
        lab.apply().wait_ready()
        assert lab.exec(["hostname"], check=True).stdout.strip() == "multicontainer-pod"
        assert lab.wait_serving().fetch().startswith("multicontainer-pod ")
        deadline = time.monotonic() + 10
        while "GET /index.html" not in lab.logs("consumer") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "GET /index.html" in lab.logs("consumer", tail=20)
    assert not lifecycle.exists(engine, lab.pod)


def test_students_never_touch_each_others_pods(kube, seed):
    config_one = kube.kubeconfig_for(namespace="lab-student-01", rules=_classroom_rules("lab-student-01"))
    config_two = kube.kubeconfig_for(namespace="lab-student-02", rules=_classroom_rules("lab-student-02"))
    token_one = yaml.safe_load(Path(config_one).read_text())["users"][0]["user"]["token"]
    one, two = KubernetesEngine(kubeconfig=config_one), KubernetesEngine(kubeconfig=config_two)
    with labkit.Lab(seed, engine=one, progress=False) as a, labkit.Lab(seed, engine=two, progress=False) as b:
        a.apply()
        b.apply()
        a.wait_ready()
        b.wait_ready()
        a.exec("echo from-student-one >> /var/log/index.html", shell=True, check=True)
        assert "from-student-one" not in b.exec(["cat", "/var/log/index.html"], check=True).stdout
        # Student one pointed at student two's namespace is refused, and told which rule is missing.
        intruder = KubernetesEngine(kubeconfig=config_one, namespace="lab-student-02")
        with pytest.raises(EngineError, match=r'forbidden.*lab-student-02.*resources \["pods') as info:
            lifecycle.apply(intruder, b.pod)
        assert token_one not in str(info.value)
        a.delete()
        assert b.exists()


def test_a_pod_the_kit_did_not_create_is_never_replaced(kube, seed):
    from kubernetes import client, config

    api = client.CoreV1Api(config.new_client_from_config(config_file=str(kube.kubeconfig)))
    doc = yaml.safe_load(seed.read_text())
    doc["metadata"]["name"] = "not-ours"
    api.create_namespaced_pod("default", doc)
    try:
        engine = KubernetesEngine(kubeconfig=kube.kubeconfig)
        lab = labkit.Lab(seed, engine=engine, name="not-ours", progress=False)
        with pytest.raises(PodExists, match="not created by labkit"):
            lab.apply()
        assert lifecycle.exists(engine, lab.pod)
        with pytest.raises(PodExists):
            lifecycle.delete(engine, lab.pod, timeout=10)
    finally:
        api.delete_namespaced_pod("not-ours", "default")


def test_apply_is_idempotent_server_side_apply(kube, seed):
    engine = KubernetesEngine(kubeconfig=kube.kubeconfig)
    with labkit.Lab(seed, engine=engine, name="apply-twice", progress=False) as lab:
        lab.apply().wait_ready()
        uid = engine.api.read_namespaced_pod("apply-twice", "default").metadata.uid
        lifecycle.apply(engine, lab.pod)
        again = engine.api.read_namespaced_pod("apply-twice", "default")
        assert again.metadata.uid == uid
        assert again.metadata.labels["app.kubernetes.io/managed-by"] == "labkit"
        assert any(f.manager == "labkit" for f in again.metadata.managed_fields or [])


def test_waiting_for_a_change_keeps_a_bound_shorter_than_a_second(kube, seed):
    # The server ends a watch in whole seconds; a running pod that does not change must not hold the
    # caller past its own bound (wait_ready's timeout depends on it).
    engine = KubernetesEngine(kubeconfig=kube.kubeconfig)
    with labkit.Lab(seed, engine=engine, name="watch-bound", progress=False) as lab:
        lab.apply().wait_ready()
        state = engine.state(lab.pod)
        assert state is not None
        started = time.monotonic()
        engine.wait_for_change(lab.pod, state, 0.2)
        assert time.monotonic() - started < 0.9


def test_missing_namespace_is_explained(kube, seed):
    engine = KubernetesEngine(kubeconfig=kube.kubeconfig, namespace="no-such-namespace")
    with pytest.raises(EngineError, match="namespace 'no-such-namespace' does not exist"):
        labkit.Lab(seed, engine=engine, progress=False).apply()


def test_image_pull_failure_quotes_events(kube, test_manifest):
    engine = KubernetesEngine(kubeconfig=kube.kubeconfig)
    lab = labkit.Lab(test_manifest("missing-image-pod.yaml"), engine=engine, progress=False)
    lab.apply()
    with pytest.raises(ImageNotFound, match=r"ErrImagePull|ImagePullBackOff") as info:
        lab.wait_ready(timeout=60)
    assert info.value.container == "producer"
    assert "recent events:" in str(info.value) and "labkit-no-such-image" in str(info.value)
    assert not lifecycle.exists(engine, lab.pod)


def test_describe_names_server_context_and_namespace(kube):
    text = KubernetesEngine(kubeconfig=kube.kubeconfig).describe()
    assert kube.url in text and "namespace default" in text


class UpgradeSwallowingProxy:
    """A fake HTTPS proxy on 127.0.0.1 that relays requests to the stand-in but never answers a websocket upgrade.

    Proxies that do not pass upgrades behave like this; the kit must fail, not hang. It ends TLS
    with a certificate from the stand-in's CA, so the kubeconfig's CA still verifies it.
    """

    def __init__(self, standin: Any) -> None:
        host, port = standin.url.removeprefix("https://").split(":")
        self.upstream = (host, int(port))
        self.server_tls = standin.certificates.server_context()
        self.client_tls = ssl.create_default_context(cafile=standin.ca_file)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"https://127.0.0.1:{self.listener.getsockname()[1]}"
        self.held: list[socket.socket] = []
        self.upgrades = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, plain: socket.socket) -> None:
        try:
            client = self.server_tls.wrap_socket(plain, server_side=True)
        except OSError:
            plain.close()
            return
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(65536)
            if not chunk:
                client.close()
                return
            head += chunk
        if b"upgrade: websocket" in head.lower():
            self.upgrades += 1
            self.held.append(client)  # read, never answered
            return
        upstream = self.client_tls.wrap_socket(
            socket.create_connection(self.upstream), server_hostname=self.upstream[0]
        )
        upstream.sendall(head)
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.listener.close()
        for s in self.held:
            s.close()


def test_a_websocket_handshake_that_never_completes_fails_within_seconds(kube, seed, tmp_path):
    proxy = UpgradeSwallowingProxy(kube)
    config = yaml.safe_load(Path(kube.kubeconfig).read_text())
    config["clusters"][0]["cluster"]["server"] = proxy.url
    path = tmp_path / "proxied.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    try:
        engine = KubernetesEngine(kubeconfig=path, request_timeout=2)
        with labkit.Lab(seed, engine=engine, name="hung-handshake", progress=False) as lab:
            lab.apply().wait_ready(timeout=120)  # plain HTTP passes through the proxy
            attempts = [
                (lambda: lab.exec(["true"]), "kubectl exec"),
                (lambda: engine.connect(lab.pod, 80, 10), "kubectl port-forward"),
            ]
            for attempt, command in attempts:
                outcome: list[BaseException] = []

                def run(attempt=attempt, outcome=outcome) -> None:
                    try:
                        attempt()
                    except BaseException as exc:
                        outcome.append(exc)

                started = time.monotonic()
                worker = threading.Thread(target=run, daemon=True)
                worker.start()
                worker.join(15)  # without the bound the handshake waits forever: fail, do not hang
                assert not worker.is_alive(), "the websocket handshake was not bounded"
                assert time.monotonic() - started < 8
                assert len(outcome) == 1 and isinstance(outcome[0], EngineError), outcome
                assert re.search(
                    f"{re.escape(proxy.url)}.*websocket handshake of the .* within 2 s.*proxy", str(outcome[0])
                )
                assert command in str(outcome[0])
        assert proxy.upgrades == 2
        assert not lifecycle.exists(engine, lab.pod)
    finally:
        proxy.close()
