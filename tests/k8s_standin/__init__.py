"""A Kubernetes API stand-in for tests: a FAKE API server that runs each pod for real on Podman.

No Kubernetes cluster can run where labkit's tests run, so the kit's
Kubernetes engine is tested against this: an HTTPS server on 127.0.0.1 that
serves the endpoints the engine and ``labkit class`` use (pods: server-side
apply, create, get, list, watch, delete, log, exec and port-forward
websockets; events; namespaces; service accounts and TokenRequest; roles and
role bindings; config maps; discovery) with kube-apiserver's JSON shapes,
Status errors, client-certificate and bearer-token authentication, RBAC refusals, including the
grants of the Roles and RoleBindings stored in it. The official
``kubernetes`` Python client talks to it through an ordinary kubeconfig
that trusts the stand-in's own certificate authority (``tls=False``: plain HTTP).

Behind the API, each pod ``ns/name`` is played on local Podman as
``k8s-{ns}-{name}`` through labkit's own ``PodmanEngine``, with the pod's
name as hostname; its status is read back from Podman and shaped the way a
kubelet reports it. It is not Kubernetes: ``README.md`` beside this file
lists what it serves and where it differs from kube-apiserver.

Usage::

    with KubernetesStandIn(namespaces=("default", "student-1"), tmp_dir=tmp_path) as api:
        config.load_kube_config(config_file=api.kubeconfig)
        ...
        student = api.kubeconfig_for(namespace="student-1")

Tokens from the TokenRequest API expire by the stand-in's clock, which
``api.advance_clock(timedelta(hours=2))`` (or a number of seconds) moves forward.

Leaving the block deletes every pod the stand-in created and stops it.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import shutil
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from labkit.engines.podman import PodmanEngine

from .accounts import NO_CA, Accounts
from .namespaces import Namespaces
from .objects import podman_pod_name
from .pods import VOLUME_STATS_PERIOD, PodStore
from .rbac import ADMIN_RULES, MASTERS, Authorizer, Identity, Rule, student_rules
from .server import StandInServer
from .store import ObjectStore
from .tls import Certificates
from .tokens import Clock, TokenIssuer
from .versions import ResourceVersions

__all__ = ["KubernetesStandIn", "Rule"]

ADMIN_USER = "kubernetes-admin"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 180.0
IO_THREADS = 16


class KubernetesStandIn:
    """The stand-in's handle for tests: start it, hand out kubeconfigs, stop it and clean up.

    The aiohttp app runs in a background thread with its own event loop.
    """

    def __init__(
        self,
        namespaces: Sequence[str] = ("default",),
        tmp_dir: str | Path | None = None,
        *,
        node: str = "labkit-standin",
        poll_interval: float = 0.2,
        tls: bool = True,
        volume_stats_period: float = VOLUME_STATS_PERIOD,
    ) -> None:
        self.namespaces = tuple(namespaces)
        self.node = node
        self.poll_interval = poll_interval
        self.volume_stats_period = volume_stats_period
        self._own_tmp = tmp_dir is None
        self._tmp = Path(tmp_dir) if tmp_dir is not None else Path(tempfile.mkdtemp(prefix="k8s-standin-"))
        self._auth = Authorizer()
        self._clock = Clock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._server: StandInServer | None = None
        self._store: PodStore | None = None
        self._accounts: Accounts | None = None
        self._configs = 0
        self.certificates = Certificates() if tls else None
        self.ca_file = ""  # the CA's certificate as a PEM file, for clients that take a path (HTTPS only)
        self.url = ""
        self.kubeconfig = ""  # a str: the client's loader cannot take a Path
        self.token = ""

    # -- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> KubernetesStandIn:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._tmp.mkdir(parents=True, exist_ok=True)
        engine = PodmanEngine(state_dir=self._tmp / "state")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="k8s-standin", daemon=True)
        self._thread.start()
        try:
            port = asyncio.run_coroutine_threadsafe(self._serve(engine), self._loop).result(START_TIMEOUT)
        except BaseException:
            self.stop()
            raise
        self.url = f"{'https' if self.certificates else 'http'}://127.0.0.1:{port}"
        if self.certificates is not None:
            ca = self._tmp / "ca.crt"
            ca.write_bytes(self.certificates.ca_pem)
            self.ca_file = str(ca)
        self.token = secrets.token_urlsafe(24)
        self._auth.add(self.token, Identity(ADMIN_USER, ADMIN_RULES))
        self.kubeconfig = self._write_kubeconfig("admin", {"token": self.token}, "default")

    async def _serve(self, engine: PodmanEngine) -> int:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(IO_THREADS, thread_name_prefix="k8s-standin-io"))
        versions = ResourceVersions()
        namespaces = Namespaces(versions, self.namespaces)
        self._store = PodStore(
            engine, namespaces, self.node, self.poll_interval, versions, volume_stats_period=self.volume_stats_period
        )
        objects = ObjectStore(namespaces, versions)
        ca = self.certificates.ca_pem.decode("ascii") if self.certificates else NO_CA
        self._accounts = Accounts(self._store, namespaces, objects, TokenIssuer(self._clock), ca)
        self._auth.consult(self._accounts)
        self._store.start()
        self._server = StandInServer(self._store, self._auth, self._accounts)
        self._runner = web.AppRunner(self._server.app(), access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await self._runner.setup()
        ssl_context = self.certificates.server_context() if self.certificates else None
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        return int(self._runner.addresses[0][1])

    def stop(self) -> None:
        """Delete every pod the stand-in created, close every stream, stop the server."""
        if self._loop is None or self._thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(STOP_TIMEOUT)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()
            self._loop = self._thread = None
            if self._own_tmp:
                shutil.rmtree(self._tmp, ignore_errors=True)

    async def _shutdown(self) -> None:
        if self._server is not None:
            # Closing a stream ends its command or connection; each waits for its client's goodbye.
            await asyncio.gather(*(ws.close() for ws in list(self._server.sockets)), return_exceptions=True)
        if self._accounts is not None:
            await self._accounts.close()
        if self._store is not None:
            await self._store.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- what tests use -----------------------------------------------------------------

    def kubeconfig_for(
        self,
        namespace: str = "default",
        token: str | None = None,
        rules: Iterable[Rule | Mapping[str, Any]] | None = None,
    ) -> str:
        """A kubeconfig for another user, ``system:serviceaccount:{namespace}:student``.

        By default its token may do everything the lab needs on pods (and
        exec, port-forward, log) and events, in ``namespace`` only. ``rules``
        replaces that: :class:`Rule` objects, or RBAC PolicyRule mappings
        (``{"verbs": [...], "resources": [...]}``) granted in ``namespace``.
        """
        token = token or secrets.token_urlsafe(24)
        if rules is None:
            granted = student_rules(namespace)
        else:
            granted = tuple(r if isinstance(r, Rule) else Rule.from_policy_rule(r, namespace) for r in rules)
        self._auth.add(token, Identity(f"system:serviceaccount:{namespace}:student", granted))
        return self._write_kubeconfig(f"student-{namespace}", {"token": token}, namespace)

    def kubeconfig_with_certificate(
        self, user: str = ADMIN_USER, groups: Sequence[str] = (MASTERS,), namespace: str = "default"
    ) -> str:
        """A kubeconfig whose user authenticates by client certificate, as kind and minikube write them.

        The certificate names ``user`` (CN) in ``groups`` (O); the default is an administrator
        (``system:masters``). Another user may do what RoleBindings grant it.
        """
        if self.certificates is None:
            raise RuntimeError("client certificates need the stand-in's HTTPS (tls=True)")
        cert, key = self.certificates.client(user, groups)
        credentials = {"client-certificate-data": _b64(cert), "client-key-data": _b64(key)}
        return self._write_kubeconfig(f"cert-{user}", credentials, namespace)

    def kubeconfig_trusting(self, ca_data: bytes | None = None, *, insecure: bool = False) -> str:
        """The administrator's kubeconfig, trusting another CA (PEM) instead, or none (``insecure-skip-tls-verify``)."""
        return self._write_kubeconfig("admin", {"token": self.token}, "default", ca_data=ca_data, insecure=insecure)

    def advance_clock(self, by: timedelta | float) -> None:
        """Move the clock TokenRequest tokens expire by forward (a timedelta, or seconds), instead of waiting."""
        self._clock.advance(by if isinstance(by, timedelta) else timedelta(seconds=by))

    @property
    def served(self) -> dict[tuple[str, str], int]:
        """Requests so far per (method, endpoint pattern); watches end in ``?watch=true``."""
        if self._server is None:
            return {}
        with self._server.served_lock:
            return dict(self._server.served)

    @staticmethod
    def podman_name(namespace: str, name: str) -> str:
        """The Podman pod that stands in for Kubernetes pod ``namespace/name``."""
        return podman_pod_name(namespace, name)

    def _write_kubeconfig(
        self,
        user: str,
        credentials: Mapping[str, str],
        namespace: str,
        *,
        ca_data: bytes | None = None,
        insecure: bool = False,
    ) -> str:
        self._configs += 1
        path = self._tmp / f"kubeconfig-{self._configs}-{user}.yaml"
        cluster: dict[str, Any] = {"server": self.url}
        if insecure:
            cluster["insecure-skip-tls-verify"] = True
        elif self.certificates is not None:
            cluster["certificate-authority-data"] = _b64(ca_data or self.certificates.ca_pem)
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "k8s-standin", "cluster": cluster}],
            "users": [{"name": user, "user": dict(credentials)}],
            "contexts": [
                {
                    "name": f"{user}@k8s-standin",
                    "context": {"cluster": "k8s-standin", "user": user, "namespace": namespace},
                }
            ],
            "current-context": f"{user}@k8s-standin",
        }
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        path.chmod(0o600)
        return str(path)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
