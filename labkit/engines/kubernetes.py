"""The cluster engine: runs the lab's Pod on any Kubernetes cluster through the official client.

The official ``kubernetes`` client can do everything the lab needs, but
each step has a trap (exit codes dropped, streams merged, no local port for
a port-forward, watches and websocket handshakes without a client-side
timeout, a stream that borrows the shared API client). This engine
translates the lab's primitives (:class:`~labkit.engines.base.Engine`) into
API calls and wraps each trap once; what the pod's states mean is decided
in :mod:`labkit.lifecycle`:

* create is server-side apply with field manager ``labkit``;
* waiting for a change is a watch bounded on both the server and the
  client side;
* exec keeps stdout and stderr apart as bytes, reads the exit code from the
  status channel and raises on timeout; each stream gets its own API client;
* a port-forward is one websocket per connection, relayed by the kit's
  local listener (:mod:`labkit.forward`), and reports why it closed;
* every websocket handshake (exec, port-forward) is bounded by the
  engine's request timeout, so a proxy that swallows upgrades is an error.

Credentials are never put into a message.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import kubernetes
import kubernetes.stream.ws_client
import urllib3.exceptions
import websocket
import yaml

from labkit import classroom
from labkit.engines.base import CommandTimedOut, ContainerState, ExecResult, PodState, Tunnel
from labkit.errors import AuthenticationError, EngineError, EngineUnavailable, ManifestError, PortError
from labkit.manifest import MANAGED_BY_LABEL, MANAGED_BY_VALUE, Pod
from labkit.tls import certificate_message, warn_unverified

FIELD_MANAGER = "labkit"
# What a request to the API server raises when the connection fails or times out (urllib3 wraps most of it).
_CONNECTION_ERRORS = (urllib3.exceptions.HTTPError, OSError)
# What websocket-client raises when a stream breaks.
_STREAM_ERRORS = (websocket.WebSocketException, OSError)
IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

# What each API call the kit makes needs, for messages about a 403.
_RBAC = {
    "apply": ("pods", "get, create, patch"),
    "read": ("pods", "get"),
    "watch": ("pods", "list, watch"),
    "delete": ("pods", "delete"),
    "exec": ("pods/exec", "create, get"),
    "portforward": ("pods/portforward", "create, get"),
    "logs": ("pods/log", "get"),
}


def _client() -> Any:
    """The official client, with its websocket handshakes bounded for the kit's own calls."""
    _install_handshake_bound(kubernetes)
    return kubernetes


class KubernetesEngine:
    """Run pods on the cluster of a kubeconfig context (or in-cluster), in one namespace."""

    name = "kubernetes"
    shares_host_clock = False  # the node's clock, not this machine's: measured by exec
    restart_backoff = (
        True  # a kubelet restarts a first crash at once, later ones after 10 s, doubling (CrashLoopBackOff)
    )
    container_cgroups = True  # the kubelet gives every container its own

    def __init__(
        self,
        *,
        kubeconfig: str | os.PathLike[str] | None = None,
        context: str | None = None,
        namespace: str | None = None,
        request_timeout: float = 10.0,
    ) -> None:
        k8s = _client()
        self._k8s = k8s
        self.request_timeout = request_timeout
        cfg = k8s.client.Configuration()
        self.context, ctx_namespace = self._load_config(cfg, kubeconfig, context)
        cfg.retries = 1  # fail within seconds when the server is away, never hang
        self._cfg = cfg
        self.server = cfg.host
        if not cfg.verify_ssl:
            warn_unverified(self.server, self.context)
        self.namespace = namespace or os.environ.get("LABKIT_NAMESPACE") or ctx_namespace or "default"
        self.api = k8s.client.CoreV1Api(k8s.client.ApiClient(cfg))
        self.version = self._probe()

    def describe(self) -> str:
        where = f"context {self.context}" if self.context else "in-cluster configuration"
        return f"kubernetes {self.version} at {self.server} ({where}, namespace {self.namespace})"

    # -- configuration ---------------------------------------------------------------

    def _load_config(self, cfg: Any, kubeconfig: Any, context: str | None) -> tuple[str | None, str | None]:
        config = self._k8s.config
        # The client reads $KUBECONFIG once, when it is imported; a notebook may set it later.
        path = str(kubeconfig) if kubeconfig else os.environ.get("KUBECONFIG") or None
        # The file the token came from (the first of a list that exists), to say when a class token expired.
        candidates = path.split(os.pathsep) if path else [os.path.expanduser(config.KUBE_CONFIG_DEFAULT_LOCATION)]
        self._kubeconfig_path = next((c for c in candidates if c and os.path.isfile(c)), None)
        self.records: dict[str, dict[str, str]] = {}  # what the lab recorded, where no class reads it
        try:
            config.load_kube_config(config_file=path, context=context, client_configuration=cfg)
            contexts, active = config.list_kube_config_contexts(config_file=path)
            chosen = next((c for c in contexts if c["name"] == context), active) if context else active
            return chosen["name"], (chosen.get("context") or {}).get("namespace")
        except config.ConfigException as exc:
            kube_error = str(exc)
        except (OSError, TypeError, KeyError) as exc:
            kube_error = f"{exc.__class__.__name__}: {exc}"
        if kubeconfig is None and context is None:
            try:
                config.load_incluster_config(client_configuration=cfg)
                ns = IN_CLUSTER_NAMESPACE.read_text().strip() if IN_CLUSTER_NAMESPACE.exists() else None
                return None, ns
            except config.ConfigException:
                pass
        where = path or os.environ.get("KUBECONFIG") or "~/.kube/config"
        raise EngineUnavailable(
            f"no usable Kubernetes configuration ({where}: {kube_error}); set KUBECONFIG to the kubeconfig "
            "your instructor gave you, or use the local Podman engine (LABKIT_ENGINE=podman)"
        )

    def _probe(self) -> str:
        try:
            info = self._k8s.client.VersionApi(self.api.api_client).get_code(_request_timeout=(3, 5))
            return str(info.git_version)
        except self._k8s.client.ApiException as exc:
            if exc.status == 401:
                raise self._unauthenticated(status_message(exc)) from None
            if exc.status == 403:
                raise EngineUnavailable(
                    f"the Kubernetes API server at {self.server} refused the credentials of "
                    f"{self.context or 'this configuration'} (HTTP {exc.status}); ask for a fresh kubeconfig"
                ) from None
            if exc.status == 404:
                return "?"
            raise EngineUnavailable(f"the Kubernetes API server at {self.server} answered HTTP {exc.status}") from None
        except _CONNECTION_ERRORS as exc:
            untrusted = certificate_message(self.server, exc)
            if untrusted is not None:
                raise EngineUnavailable(untrusted) from None
            raise EngineUnavailable(
                f"cannot reach the Kubernetes API server at {self.server}, named by {self._source()} "
                f"({_short(exc)}); check that the cluster runs and KUBECONFIG points at it, or use the local "
                "Podman engine (LABKIT_ENGINE=podman)"
            ) from None

    def _source(self) -> str:
        """Where the server's address came from, for messages: the kubeconfig file and context, or in-cluster."""
        if self.context is None:
            return "the in-cluster configuration"
        return f"kubeconfig {self._kubeconfig_path or '(not found)'} (context {self.context})"

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def where(self) -> str:
        return f"in namespace {self.namespace!r}"

    def remove_command(self, pod: Pod) -> str:
        return f"kubectl delete pod {pod.name} -n {self.namespace}"

    def changes(self, pod: Pod) -> list[str]:
        return []  # a cluster runs the manifest as it is

    def labels(self, pod: Pod) -> dict[str, str] | None:
        obj = self._read(pod)
        return None if obj is None else dict(obj.metadata.labels or {})

    def create(self, pod: Pod) -> None:
        body = json.loads(json.dumps(pod.doc))
        body.setdefault("metadata", {})["namespace"] = self.namespace
        try:
            self.api.patch_namespaced_pod(
                pod.name,
                self.namespace,
                body,
                field_manager=FIELD_MANAGER,
                force=True,
                _content_type="application/apply-patch+yaml",
                _request_timeout=self.request_timeout,
            )
        except self._k8s.client.ApiException as exc:
            raise self._error(exc, "apply", pod) from None
        except _CONNECTION_ERRORS as exc:
            raise self._unreachable(exc) from None

    def remove(self, pod: Pod) -> None:
        self.delete_with_grace(pod, 1)

    def delete_with_grace(self, pod: Pod, grace_period_seconds: int | None = None) -> int | None:
        """Ask the cluster to delete the pod, giving its containers ``grace_period_seconds`` after SIGTERM.

        ``None`` sends no grace period, so the pod's own
        ``terminationGracePeriodSeconds`` applies (30 s unless the manifest
        says otherwise), as with ``kubectl delete pod``; :meth:`remove` asks
        for 1 s. Returns the grace period the API server recorded on the
        pod (``metadata.deletionGracePeriodSeconds``), or None when it gave
        none or the pod was already gone. The pod may exist for a while
        after; :meth:`state` says when it has gone.
        """
        try:
            deleted = self.api.delete_namespaced_pod(
                pod.name,
                self.namespace,
                **({} if grace_period_seconds is None else {"grace_period_seconds": grace_period_seconds}),
                _request_timeout=self.request_timeout,
            )
        except self._k8s.client.ApiException as exc:
            if exc.status != 404:
                raise self._error(exc, "delete", pod) from None
            return None
        except _CONNECTION_ERRORS as exc:
            raise self._unreachable(exc) from None
        meta = getattr(deleted, "metadata", None)
        granted = getattr(meta, "deletion_grace_period_seconds", None)
        return int(granted) if granted is not None else None

    def create_namespace(self, name: str) -> bool:
        """Create namespace ``name``, labelled as the kit's; False when the credentials may not (HTTP 403).

        Any other refusal, or a server that cannot be reached, raises
        :class:`~labkit.errors.EngineError`. The engine keeps working in its
        own namespace; an engine for the new one is
        ``get_engine("kubernetes", namespace=name)``.
        """
        body = {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": name, "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE}}}  # fmt: skip
        try:
            self.api.create_namespace(body, _request_timeout=self.request_timeout)
        except self._k8s.client.ApiException as exc:
            if exc.status == 403:
                return False
            raise EngineError(
                f"could not create namespace {name} on {self.server} (HTTP {exc.status}: {status_message(exc)})"
            ) from None
        except _CONNECTION_ERRORS as exc:
            raise self._unreachable(exc) from None
        # Pods can be made there once the cluster has given it its default service account.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.api.read_namespaced_service_account("default", name, _request_timeout=self.request_timeout)
                break
            except self._k8s.client.ApiException as exc:
                if exc.status != 404:
                    break  # not allowed to look: go on, a pod's apply says what is wrong
            except _CONNECTION_ERRORS as exc:
                raise self._unreachable(exc) from None
            time.sleep(0.5)
        return True

    def delete_namespace(self, name: str) -> None:
        """Ask the cluster to delete namespace ``name`` and everything in it; it may take a while to go."""
        try:
            self.api.delete_namespace(name, propagation_policy="Background", _request_timeout=self.request_timeout)
        except self._k8s.client.ApiException as exc:
            if exc.status != 404:
                raise EngineError(
                    f"could not delete namespace {name} on {self.server} (HTTP {exc.status}: "
                    f"{status_message(exc)}); delete it with kubectl delete namespace {name}"
                ) from None
        except _CONNECTION_ERRORS as exc:
            raise self._unreachable(exc) from None

    def state(self, pod: Pod) -> PodState | None:
        obj = self._read(pod)
        return None if obj is None else _pod_state(obj)

    def wait_for_change(self, pod: Pod, seen: PodState, seconds: float) -> None:
        """Watch the pod from ``seen`` until its next change, bounded on both the server and the client side."""
        w = self._k8s.watch.Watch()
        window = max(1, min(int(seconds) + 1, 30))
        try:
            for event in w.stream(
                self.api.list_namespaced_pod,
                self.namespace,
                field_selector=f"metadata.name={pod.name}",
                resource_version=seen.version or None,
                timeout_seconds=window,
                # The server ends the watch in whole seconds; the read timeout keeps the caller's bound.
                _request_timeout=(5, max(0.05, min(seconds, window + 5))),
            ):
                if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                    return
        except self._k8s.client.ApiException as exc:
            if exc.status == 410:  # the watch's resourceVersion expired: read again
                return
            raise self._error(exc, "watch", pod) from None
        except _CONNECTION_ERRORS:
            return  # a read timeout or a dropped watch: the caller reads the pod again
        finally:
            w.stop()

    # -- working with a running pod ------------------------------------------------------

    def exec(self, pod: Pod, container: str, argv: Sequence[str], timeout: float | None) -> ExecResult:
        started = time.monotonic()
        ws = self._open_exec(pod, container, argv)
        out, err = bytearray(), bytearray()
        try:
            while ws.is_open():
                remaining = None if timeout is None else timeout - (time.monotonic() - started)
                if remaining is not None and remaining <= 0:
                    raise CommandTimedOut(bytes(out), bytes(err))
                try:
                    ws.update(timeout=min(remaining, 1.0) if remaining is not None else 1.0)
                except _STREAM_ERRORS as exc:
                    raise EngineError(f"the exec stream to container {container!r} broke: {_short(exc)}") from None
                out += ws.read_channel(1)
                err += ws.read_channel(2)
            out += ws.read_channel(1)
            err += ws.read_channel(2)
            status = ws.read_channel(3)
        finally:
            _close_stream(ws)
        code, err_bytes = _exit_code(status, bytes(err), argv, container)
        return ExecResult(
            args=list(argv),
            returncode=code,
            stdout_bytes=bytes(out),
            stderr_bytes=err_bytes,
            container=container,
            duration=time.monotonic() - started,
        )

    def _open_exec(self, pod: Pod, container: str, argv: Sequence[str]) -> Any:
        k8s = self._k8s
        api = k8s.client.CoreV1Api(k8s.client.ApiClient(self._cfg))  # a stream borrows its client
        try:
            with _bounded_handshake(self.request_timeout):
                return k8s.stream.stream(
                    api.connect_get_namespaced_pod_exec,
                    pod.name,
                    self.namespace,
                    command=list(argv),
                    container=container,
                    stdout=True,
                    stderr=True,
                    stdin=False,
                    tty=False,
                    binary=True,
                    _preload_content=False,
                )
        except k8s.client.ApiException as exc:
            if isinstance(exc.__context__, KeyboardInterrupt):
                raise KeyboardInterrupt from None  # the client wraps Ctrl-C in an ApiException
            raise self._error(exc, "exec", pod) from None

    def connect(self, pod: Pod, port: int, timeout: float) -> Tunnel:
        k8s = self._k8s
        api = k8s.client.CoreV1Api(k8s.client.ApiClient(self._cfg))
        try:
            with _bounded_handshake(self.request_timeout):
                forward = k8s.stream.portforward(
                    api.connect_get_namespaced_pod_portforward, pod.name, self.namespace, ports=str(port)
                )
        except k8s.client.ApiException as exc:
            if isinstance(exc.__context__, KeyboardInterrupt):
                raise KeyboardInterrupt from None
            raise self._error(exc, "portforward", pod) from None
        except (*_CONNECTION_ERRORS, *_STREAM_ERRORS) as exc:
            raise PortError(f"cannot open a port-forward to port {port} of pod {pod.name!r}: {_short(exc)}") from None
        return _TunnelSocket(forward, port)

    def logs(self, pod: Pod, container: str, tail: int | None = None, previous: bool = False) -> str:
        try:
            text = self.api.read_namespaced_pod_log(
                pod.name,
                self.namespace,
                container=container,
                tail_lines=tail,
                previous=previous,
                _request_timeout=self.request_timeout,
            )
        except self._k8s.client.ApiException as exc:
            raise self._error(exc, "logs", pod) from None
        except _CONNECTION_ERRORS as exc:
            raise self._unreachable(exc) from None
        return text if isinstance(text, str) else str(text)

    def events(self, pod: Pod) -> list[str]:
        try:
            items = self.api.list_namespaced_event(
                self.namespace, field_selector=f"involvedObject.name={pod.name}", _request_timeout=5
            ).items
        except self._k8s.client.ApiException:
            return []  # events are a courtesy: a student's Role may not allow listing them
        except _CONNECTION_ERRORS:
            return []
        items = sorted(items, key=lambda e: str(e.last_timestamp or e.event_time or ""))
        return [f"{e.reason}: {e.message}" for e in items]

    def read_record(self, name: str) -> dict[str, str] | None:
        if self._class_token_expiry() is None:
            return self.records.get(name)
        try:
            found = self.api.read_namespaced_config_map(name, self.namespace, _request_timeout=self.request_timeout)
        except self._k8s.client.ApiException as exc:
            if exc.status == 404:
                return None
            raise EngineError(
                f"could not read the record {name!r} in namespace {self.namespace} "
                f"(HTTP {exc.status}: {status_message(exc)})"
            ) from None
        except _CONNECTION_ERRORS as exc:
            raise self._unreachable(exc) from None
        return dict(found.data or {})

    def record(self, name: str, data: Mapping[str, str]) -> None:
        if self._class_token_expiry() is None:
            # Not a student of a class: nobody reads the record, so nothing is left in the namespace.
            self.records[name] = dict(data)
            return
        body = {"metadata": {"name": name, "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE}}, "data": dict(data)}
        api, ns, timeout = self.api, self.namespace, self.request_timeout
        try:
            try:
                api.patch_namespaced_config_map(name, ns, body, _request_timeout=timeout)
            except self._k8s.client.ApiException as exc:
                if exc.status != 404:
                    raise
                api.create_namespaced_config_map(
                    ns, {"apiVersion": "v1", "kind": "ConfigMap", **body}, _request_timeout=timeout
                )
        except self._k8s.client.ApiException as exc:
            raise EngineError(
                f"could not keep the record {name!r} in namespace {ns} (HTTP {exc.status}: {status_message(exc)})"
            ) from None
        except _CONNECTION_ERRORS as exc:
            raise self._unreachable(exc) from None

    # -- helpers -------------------------------------------------------------------------

    def _read(self, pod: Pod) -> Any:
        try:
            return self.api.read_namespaced_pod(pod.name, self.namespace, _request_timeout=self.request_timeout)
        except self._k8s.client.ApiException as exc:
            if exc.status == 404 and _reason(exc) != "namespace":
                return None
            raise self._error(exc, "read", pod) from None
        except _CONNECTION_ERRORS as exc:
            raise self._unreachable(exc) from None

    def _unreachable(self, exc: Exception) -> EngineError:
        untrusted = certificate_message(self.server, exc)
        if untrusted is not None:
            return EngineError(untrusted)
        return EngineError(
            f"cannot reach the Kubernetes API server at {self.server} ({_short(exc)}); check the cluster "
            "and your network, then try again"
        )

    def _unauthenticated(self, message: str) -> AuthenticationError:
        expired = self._token_expired_at()
        if expired is not None:
            return AuthenticationError(
                f"the Kubernetes API server at {self.server} did not accept your token (HTTP 401: {message}): "
                f"the token in {self._kubeconfig_path} expired at {classroom.format_time(expired)}; ask your "
                "instructor for a new kubeconfig ('labkit class create' issues fresh tokens) and point KUBECONFIG at it"
            )
        return AuthenticationError(
            f"the Kubernetes API server at {self.server} did not accept the credentials of "
            f"{self.context or 'this configuration'} (HTTP 401: {message}): the token has expired or is wrong; "
            "get a fresh one (a new kubeconfig from your instructor, or 'kubectl create token ACCOUNT' by whoever "
            "administers the cluster) and point KUBECONFIG at it"
        )

    def _token_expired_at(self) -> datetime | None:
        """When the token of a kubeconfig written by 'labkit class' expired, if it has."""
        expires = self._class_token_expiry()
        return expires if expires is not None and expires <= datetime.now(UTC) else None

    def _class_token_expiry(self) -> datetime | None:
        """The token expiry a kubeconfig written by 'labkit class' carries; None for any other kubeconfig."""
        if not self._kubeconfig_path:
            return None
        try:
            doc = yaml.safe_load(Path(self._kubeconfig_path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            return None
        return classroom.token_expiry(doc) if isinstance(doc, dict) else None

    def _error(self, exc: Any, action: str, pod: Pod) -> Exception:
        """Turn an ApiException into a kit error that says what to do (without credentials)."""
        if exc.status == 0:
            # A refused websocket handshake arrives as status 0 with the HTTP status in its reason.
            exc = _handshake_failure(exc)
        message = status_message(exc)
        if exc.status == 401:
            return self._unauthenticated(message)
        if exc.status == 403:
            resource, verbs = _RBAC.get(action, ("pods", action))
            return EngineError(
                f"the cluster refused to {action} pod {pod.name!r} in namespace {self.namespace!r}: {message}; "
                f'a Role rule that allows it: apiGroups [""], resources ["{resource}"], verbs [{verbs}] '
                f"in namespace {self.namespace} (see manifests/classroom-rbac.yaml); ask your instructor"
            )
        if exc.status == 404 and _reason(exc) == "namespace":
            return EngineError(
                f"namespace {self.namespace!r} does not exist on {self.server}; choose your own namespace "
                "(LABKIT_NAMESPACE or the kubeconfig context) or ask your instructor to create it"
            )
        if exc.status == 404:
            return EngineError(f"there is no pod {pod.name!r} in namespace {self.namespace!r}")
        if exc.status in (400, 422) and action == "apply":
            return ManifestError(f"the cluster rejected the pod {pod.name!r}: {message}")
        if exc.status == 0 and isinstance(exc.__context__, (TimeoutError, websocket.WebSocketTimeoutException)):
            command = {"portforward": "port-forward"}.get(action, action)
            return EngineError(
                f"the API server at {self.server} did not complete the connection and websocket handshake of "
                f"the {action} request for pod {pod.name!r} within {self.request_timeout:g} s; a proxy that does "
                "not pass websocket upgrades does this, as does an overloaded server: try "
                f"kubectl {command} with the same kubeconfig, or reach the server without the proxy"
            )
        if exc.status == 0:
            return EngineError(f"the stream to pod {pod.name!r} failed: {message}")
        return EngineError(f"Kubernetes API error on {action} of pod {pod.name!r}: HTTP {exc.status} {message}")


_HANDSHAKE = threading.local()


@contextmanager
def _bounded_handshake(seconds: float) -> Iterator[None]:
    """Bound the websocket handshakes this thread starts inside the block to ``seconds``.

    The official client opens exec and port-forward streams with
    websocket-client and gives the handshake no timeout, so a server or proxy
    that accepts the connection but never answers the upgrade would hang the
    lab. :func:`_install_handshake_bound` makes the client's websockets read
    the bound set here.
    """
    _HANDSHAKE.seconds = seconds
    try:
        yield
    finally:
        _HANDSHAKE.seconds = None


def _install_handshake_bound(k8s: Any) -> None:
    """Give the official client's websockets a handshake timeout (see :func:`_bounded_handshake`).

    The client builds its streams with the ``WebSocket`` class it imported
    and calls ``connect`` without a timeout; a subclass that adds the bound of
    the calling thread, then lets the open stream wait without limit again
    (the kit bounds its reads itself), takes its place in that module.
    """
    ws_client = k8s.stream.ws_client
    base = ws_client.WebSocket
    if getattr(base, "labkit_bounded", False):
        return

    # The client's WebSocket class is untyped and found at run time, so mypy cannot check a subclass of it.
    class BoundedHandshakeWebSocket(base):  # type: ignore[misc, valid-type]
        labkit_bounded = True

        def connect(self, url: str, **options: Any) -> None:
            seconds = getattr(_HANDSHAKE, "seconds", None)
            if seconds is not None:
                options.setdefault("timeout", seconds)
            super().connect(url, **options)
            if seconds is not None:
                self.settimeout(None)

    ws_client.WebSocket = BoundedHandshakeWebSocket


def _close_stream(ws: Any) -> None:
    """Close an exec websocket and its socket (after the server's close frame, close() alone leaves it open)."""
    ws.close()
    sock = getattr(ws, "sock", None)
    if sock is not None:
        with contextlib.suppress(*_STREAM_ERRORS):  # already closed
            sock.shutdown()


class _TunnelSocket(Tunnel):
    """The local end of one port-forward websocket, which can say why the tunnel closed."""

    def __init__(self, forward: Any, port: int) -> None:
        inner = forward.socket(port)
        super().__init__(inner.family, inner.type, inner.proto, fileno=inner.detach())
        self._forward = forward
        self._port = port

    def close_reason(self) -> str | None:
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            error = self._forward.error(self._port)
            if error:
                return str(error).strip()
            time.sleep(0.05)
        return None


def _pod_state(obj: Any) -> PodState:
    """A pod object of the API as the lab's :class:`PodState`."""
    containers: dict[str, ContainerState] = {}
    for cs in obj.status.container_statuses or []:
        now, last = cs.state, (cs.last_state.terminated if cs.last_state else None)
        state: Literal["waiting", "running", "terminated"]
        message = ""
        if now and now.running:
            state, reason, code, started = "running", "", None, now.running.started_at
        elif now and now.terminated:
            t = now.terminated
            state, reason, code, started = "terminated", t.reason or "", t.exit_code, t.started_at
        else:
            waiting = now.waiting if now else None
            state, reason, code, started = "waiting", (waiting.reason if waiting else "") or "", None, None
            message = (waiting.message if waiting else "") or ""
        containers[cs.name] = ContainerState(
            name=cs.name,
            state=state,
            reason=reason,
            exit_code=code,
            restarts=int(cs.restart_count or 0),
            started_at=started,
            last_exit_code=last.exit_code if last else None,
            last_reason=(last.reason or "") if last else "",
            last_finished_at=last.finished_at if last else None,
            message=message,
        )
    reason, message = obj.status.reason or "", obj.status.message or ""
    for cond in obj.status.conditions or []:
        if cond.type == "PodScheduled" and cond.status == "False" and cond.reason == "Unschedulable":
            reason, message = "Unschedulable", cond.message or ""
    return PodState(
        containers,
        phase=obj.status.phase or "",
        reason=reason,
        message=message,
        deleting_since=obj.metadata.deletion_timestamp,
        version=obj.metadata.resource_version or "",
    )


def _exit_code(status: bytes | str, err: bytes, argv: Sequence[str], container: str) -> tuple[int, bytes]:
    text = status.decode("utf-8", "replace") if isinstance(status, bytes) else status
    if not text.strip():
        return 0, err
    try:
        st = json.loads(text)
    except ValueError:
        return 1, err + text.encode()
    if st.get("status") == "Success":
        return 0, err
    for cause in (st.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            return int(cause.get("message", 1)), err
    message = st.get("message", "")
    low = message.lower()
    if "not found" in low or "no such file" in low:
        return 127, err + f"{argv[0]}: command not found in container {container!r}\n".encode()
    if "permission denied" in low:
        return 126, err + f"{argv[0]}: permission denied\n".encode()
    raise EngineError(f"exec of {list(argv)!r} in container {container!r} failed: {message}")


def _handshake_failure(exc: Any) -> Any:
    text = str(exc.reason or "")
    match = re.search(r"Handshake status (\d+)", text)
    if not match:
        return exc
    body = re.search(r"(\{.*\})", text, re.S)
    exc.status = int(match.group(1))
    exc.body = body.group(1).encode().decode("unicode_escape") if body else None
    return exc


def status_message(exc: Any) -> str:
    """The API server's own words in an ``ApiException`` (its Status message), else the HTTP reason."""
    try:
        body = json.loads(exc.body or "{}")
    except (ValueError, TypeError):
        return _short(exc.reason or exc)
    message = body.get("message") if isinstance(body, dict) else None
    return str(message or exc.reason)


def _reason(exc: Any) -> str:
    try:
        body = json.loads(exc.body or "{}")
    except (ValueError, TypeError):
        return ""
    kind = ((body.get("details") or {}).get("kind")) or ""
    return "namespace" if kind == "namespaces" else kind


def _short(exc: Any) -> str:
    text = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    return text[:300]
