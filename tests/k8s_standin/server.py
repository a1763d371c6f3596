"""The stand-in's HTTP server: the slice of the Kubernetes API that labkit uses (a fake for tests).

Every request is authenticated (a verified client certificate, else a bearer
token) and authorized by the user's rules (and the RoleBindings stored in the stand-in) before anything else,
counted in :attr:`StandInServer.served`, and answered with the JSON shapes
and ``Status`` errors of kube-apiserver. This module serves discovery and
pods, which live in :class:`~pods.PodStore`; the websocket protocols live in
:mod:`streams`; namespaces, service accounts, tokens, RBAC objects and config
maps are served by :mod:`routes`. Nothing here logs requests, so tokens never
reach a log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from . import kube_spdy, openapi, spdy
from .accounts import Accounts
from .kinds import RBAC_GROUP, STORED
from .objects import field_manager_of
from .pods import PodStore, require_container
from .rbac import Authorizer, Identity
from .routes import AccountRoutes
from .selectors import EVENT_FIELDS, POD_FIELDS, Match, field_selector, label_selector, named_in
from .status import ApiError, bad_request, internal, method_not_allowed, no_such_path, unsupported_media_type
from .streams import EXEC_PROTOCOLS, PORTFORWARD_PROTOCOLS, choose_protocol, serve_exec, serve_portforward
from .tables import as_table
from .tls import certificate_subject
from .tokens import GROUP as AUTHENTICATION_GROUP
from .wire import decode, flag, reply

log = logging.getLogger("k8s_standin")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

VERSION = {
    "major": "1",
    "minor": "34",
    "gitVersion": "v1.34.0-labkit.standin",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.24.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}
# Typed request keys exist from aiohttp 3.12 on; a plain string does the same job before that.
IDENTITY: Any = web.RequestKey("identity", Identity) if hasattr(web, "RequestKey") else "identity"
WATCH_IDLE_CHECK = 1.0  # how often an idle watch checks that its client is still there


class StandInServer:
    """Routes plus the per-request bookkeeping: who is asking, what was served."""

    def __init__(self, store: PodStore, auth: Authorizer, accounts: Accounts) -> None:
        self.store = store
        self.auth = auth
        self.accounts = accounts
        self.served: Counter[tuple[str, str]] = Counter()
        self.served_lock = threading.Lock()
        self.sockets: set[Any] = set()  # open streams: websockets and SPDY connections, each with close()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=8 * 1024 * 1024)
        r = app.router
        for slash in ("", "/"):  # the generated client asks for "/version/" and "/api/"
            r.add_get("/version" + slash, self.version)
            r.add_get("/api" + slash, self.api_versions)
            r.add_get("/apis" + slash, self.api_groups)
            r.add_get("/api/v1" + slash, self.api_resources)
            r.add_get(f"/apis/{RBAC_GROUP}" + slash, self.rbac_group)
            r.add_get(f"/apis/{RBAC_GROUP}/v1" + slash, self.rbac_resources)
        r.add_get("/openapi/v2", self.openapi_v2)
        r.add_get("/openapi/v3", self.openapi_v3)
        r.add_get("/openapi/v3/{gv:.+}", self.openapi_v3_group)
        AccountRoutes(self.accounts, self.allow).add_to(r)
        r.add_get("/api/v1/namespaces/{namespace}/pods", self.list_pods)
        r.add_post("/api/v1/namespaces/{namespace}/pods", self.create_pod)
        r.add_get("/api/v1/namespaces/{namespace}/pods/{name}", self.get_pod)
        r.add_patch("/api/v1/namespaces/{namespace}/pods/{name}", self.apply_pod)
        r.add_delete("/api/v1/namespaces/{namespace}/pods/{name}", self.delete_pod)
        r.add_get("/api/v1/namespaces/{namespace}/pods/{name}/log", self.pod_log)
        for method in ("GET", "POST"):
            r.add_route(method, "/api/v1/namespaces/{namespace}/pods/{name}/exec", self.pod_exec)
            r.add_route(method, "/api/v1/namespaces/{namespace}/pods/{name}/portforward", self.pod_portforward)
        r.add_get("/api/v1/namespaces/{namespace}/events", self.list_events)
        return app

    # -- every request ------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        pattern = resource.canonical if resource is not None else f"(not served) {request.path}"
        if flag(request.query.get("watch")):
            pattern += "?watch=true"
        with self.served_lock:
            self.served[(request.method, pattern)] += 1
        try:
            certificate = certificate_subject(
                request.transport.get_extra_info("peercert") if request.transport else None
            )
            request[IDENTITY] = self.auth.authenticate(request.headers.get("Authorization"), certificate)
            problem = request.match_info.http_exception
            if isinstance(problem, web.HTTPMethodNotAllowed):
                raise method_not_allowed()
            if problem is not None:
                raise no_such_path()
            return as_table(request, await handler(request))
        except ApiError as exc:
            return reply(exc.status(), exc.code)
        except (web.HTTPException, ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as exc:
            log.exception("stand-in: %s %s failed", request.method, pattern)
            error = internal(f"{type(exc).__name__}: {exc}")
            return reply(error.status(), error.code)

    def allow(
        self, request: web.Request, verbs: list[str], resource: str, sub: str = "", name: str = "", group: str = ""
    ) -> Identity:
        """Authorize the request's user for each of ``verbs`` in the URL's namespace (none: cluster scope), or 403."""
        identity: Identity = request[IDENTITY]
        namespace = request.match_info.get("namespace", "")
        self.auth.authorize(identity, verbs, resource, sub, namespace, name, group)
        return identity

    # -- discovery ----------------------------------------------------------------------

    async def version(self, request: web.Request) -> web.Response:
        return reply(VERSION)

    async def api_versions(self, request: web.Request) -> web.Response:
        host = request.host
        return reply(
            {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
            }
        )

    async def api_groups(self, request: web.Request) -> web.Response:
        return reply({"kind": "APIGroupList", "apiVersion": "v1", "groups": [_rbac_group()]})

    async def rbac_group(self, request: web.Request) -> web.Response:
        return reply({"kind": "APIGroup", "apiVersion": "v1", **_rbac_group()})

    async def api_resources(self, request: web.Request) -> web.Response:
        stored = [_resource(k.resource, k.kind, _STORED_VERBS) for k in STORED if not k.group]
        return reply(
            {
                "kind": "APIResourceList",
                "groupVersion": "v1",
                "resources": sorted(
                    [
                        *stored,
                        _resource("events", "Event", ["list"]),
                        _resource("namespaces", "Namespace", ["create", "delete", "get", "list"], namespaced=False),
                        _resource("pods", "Pod", ["create", "delete", "get", "list", "patch", "watch"]),
                        _resource("pods/exec", "PodExecOptions", ["create", "get"]),
                        _resource("pods/log", "Pod", ["get"]),
                        _resource("pods/portforward", "PodPortForwardOptions", ["create", "get"]),
                        _resource("serviceaccounts/token", "TokenRequest", ["create"], group=AUTHENTICATION_GROUP),
                    ],
                    key=lambda r: str(r["name"]),
                ),
            }
        )

    async def rbac_resources(self, request: web.Request) -> web.Response:
        return reply(
            {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": f"{RBAC_GROUP}/v1",
                "resources": [_resource(k.resource, k.kind, _STORED_VERBS) for k in STORED if k.group == RBAC_GROUP],
            }
        )

    async def openapi_v2(self, request: web.Request) -> web.Response:
        if openapi.PROTOBUF in request.headers.get("Accept", ""):
            # kube-apiserver labels it so: Go cannot parse the media type asked for (it has an "@")
            return web.Response(body=openapi.v2_protobuf(), content_type="application/octet-stream")
        return reply(openapi.v2_json())

    async def openapi_v3(self, request: web.Request) -> web.Response:
        return reply(openapi.v3_index())

    async def openapi_v3_group(self, request: web.Request) -> web.Response:
        doc = openapi.GROUP_DOCUMENTS.get(request.match_info["gv"])
        if doc is None:
            raise no_such_path()
        return web.Response(body=doc, content_type="application/json")

    # -- pods ---------------------------------------------------------------------------

    async def list_pods(self, request: web.Request) -> web.StreamResponse:
        ns = request.match_info["namespace"]
        q = request.query
        watch = flag(q.get("watch"))
        self.allow(request, ["watch" if watch else "list"], "pods", name=named_in(q.get("fieldSelector")))
        labels = label_selector(q.get("labelSelector"))
        fields = field_selector(q.get("fieldSelector"), POD_FIELDS)

        def match(obj: dict[str, Any]) -> bool:
            return labels(obj) and fields(obj)

        if watch:
            return await self._watch(request, ns, match)
        items, rv = await self.store.list_pods(ns, match)
        return reply({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": rv}, "items": items})

    async def _watch(self, request: web.Request, ns: str, match: Match) -> web.StreamResponse:
        q = request.query
        try:
            timeout = float(q["timeoutSeconds"]) if "timeoutSeconds" in q else None
        except ValueError:
            raise bad_request(f"invalid timeoutSeconds: {q['timeoutSeconds']}") from None
        stream = self.store.watch(ns, match, q.get("resourceVersion"))
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout is not None else None
        pending: asyncio.Future[tuple[str, dict[str, Any]]] | None = None
        try:
            while True:
                if deadline is not None and loop.time() >= deadline:
                    break
                if request.transport is None or request.transport.is_closing():
                    break
                if pending is None:
                    pending = asyncio.ensure_future(stream.__anext__())
                left = WATCH_IDLE_CHECK if deadline is None else min(WATCH_IDLE_CHECK, deadline - loop.time())
                done, _ = await asyncio.wait({pending}, timeout=max(left, 0))
                if not done:
                    continue
                try:
                    kind, obj = pending.result()
                except StopAsyncIteration:
                    break
                pending = None
                await resp.write(json.dumps({"type": kind, "object": obj}).encode() + b"\n")
                if kind == "ERROR":
                    break
        except ConnectionResetError:
            return resp
        finally:
            if pending is not None:
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)
            await stream.aclose()
        with contextlib.suppress(ConnectionResetError):
            await resp.write_eof()
        return resp

    async def get_pod(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["namespace"], request.match_info["name"]
        self.allow(request, ["get"], "pods", name=name)
        return reply(await self.store.get(ns, name))

    async def apply_pod(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["namespace"], request.match_info["name"]
        identity = self.allow(request, ["patch"], "pods", name=name)
        if request.content_type != "application/apply-patch+yaml":
            raise unsupported_media_type(request.content_type)
        manager = field_manager_of(dict(request.query), request.headers.get("User-Agent", ""), apply=True)
        body = decode(await request.text())
        _strict(request, body)

        def may_create() -> None:
            self.auth.authorize(identity, ["create"], "pods", "", ns, name)

        obj, created = await self.store.apply(ns, name, body, manager, flag(request.query.get("force")), may_create)
        return reply(obj, 201 if created else 200)

    async def create_pod(self, request: web.Request) -> web.Response:
        ns = request.match_info["namespace"]
        self.allow(request, ["create"], "pods")
        manager = field_manager_of(dict(request.query), request.headers.get("User-Agent", ""), apply=False)
        body = decode(await request.text())
        _strict(request, body)
        obj = await self.store.create(ns, body, manager)
        return reply(obj, 201)

    async def delete_pod(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["namespace"], request.match_info["name"]
        self.allow(request, ["delete"], "pods", name=name)
        grace: int | None = None
        text = await request.text()
        options = decode(text) if text.strip() else {}
        if isinstance(options, dict) and options.get("gracePeriodSeconds") is not None:
            grace = int(options["gracePeriodSeconds"])
        if "gracePeriodSeconds" in request.query:
            grace = int(request.query["gracePeriodSeconds"])
        return reply(await self.store.delete(ns, name, grace))

    # -- subresources -------------------------------------------------------------------

    async def pod_log(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["namespace"], request.match_info["name"]
        self.allow(request, ["get"], "pods", "log", name=name)
        q = request.query
        rec = self.store.record(ns, name)
        container = require_container(rec, q.get("container"))
        await self.store.fresh()
        cs = rec.container_status(container)
        waiting = cs["state"].get("waiting")
        if waiting and not cs.get("containerID"):
            why = waiting["reason"]
            if why in ("ErrImagePull", "ImagePullBackOff"):
                why = "trying and failing to pull image"
            raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: {why}')
        if flag(q.get("previous")) and not cs.get("restartCount"):
            raise bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
        tail = int(q["tailLines"]) if q.get("tailLines") else None
        args = ["logs"] + (["--timestamps"] if flag(q.get("timestamps")) else [])
        args += (["--tail", str(tail)] if tail is not None else []) + [f"{rec.podman.name}-{container}"]
        proc = await asyncio.to_thread(self.store.engine._run, args, timeout=30, merge=True)
        text = proc.stdout.decode("utf-8", "replace")
        text = "".join(ln for ln in text.splitlines(keepends=True) if not ln.startswith("failed to connect to syslog"))
        return web.Response(text=text, content_type="text/plain")

    def _stream_checks(self, request: web.Request, sub: str) -> tuple[str, str, Any]:
        ns, name = request.match_info["namespace"], request.match_info["name"]
        verbs = ["create"] if request.method == "POST" else ["get", "create"]
        self.allow(request, verbs, "pods", sub, name=name)
        rec = self.store.record(ns, name)
        phase = rec.obj["status"].get("phase")
        if phase in ("Succeeded", "Failed"):
            action = "exec into" if sub == "exec" else "port forward to"
            raise bad_request(f"cannot {action} a container in a completed pod; current phase is {phase}")
        if request.headers.get("Upgrade", "").lower() not in ("websocket", spdy.PROTOCOL.lower()):
            raise bad_request("Upgrade request required")
        return ns, name, rec

    async def pod_exec(self, request: web.Request) -> web.StreamResponse:
        _ns, _name, rec = self._stream_checks(request, "exec")
        q = request.query
        container = require_container(rec, q.get("container"))
        want = {k: flag(q.get(k)) for k in ("stdin", "stdout", "stderr")}
        if not any(want.values()):
            raise bad_request("you must specify at least 1 of stdin, stdout, stderr")
        if flag(q.get("tty")):
            raise bad_request("tty is not supported by this test stand-in")
        argv = q.getall("command", [])
        if not argv:
            raise bad_request("you must specify at least one command for the container")
        if not rec.container_status(container).get("containerID"):
            raise ApiError(404, "NotFound", f'container not found ("{container}")')
        spdy_wanted = kube_spdy.wants_spdy(request)  # kubectl before 1.30
        protocol = "" if spdy_wanted else choose_protocol(request.headers.get("Sec-WebSocket-Protocol"), EXEC_PROTOCOLS)
        engine = self.store.engine
        ctr = f"{rec.podman.name}-{container}"
        command = [engine.podman, "exec", *(["-i"] if want["stdin"] else []), ctr, *argv]

        if spdy_wanted:
            return await self._tracked(kube_spdy.serve_exec(request, command, argv, want), request)
        return await serve_exec(request, protocol, command, argv, want, self.sockets)

    async def pod_portforward(self, request: web.Request) -> web.StreamResponse:
        ns, name, rec = self._stream_checks(request, "portforward")
        ports: list[int] = []
        for value in request.query.getall("ports", []):
            for part in value.split(","):
                try:
                    port = int(part)
                except ValueError:
                    raise bad_request(f'unable to parse "{part}" as a port: invalid syntax') from None
                if not 0 < port < 65536:
                    raise bad_request(f"port {port} must be > 0 and < 65536")
                ports.append(port)
        spdy_wanted = kube_spdy.wants_spdy(request) or kube_spdy.tunnel_protocol(
            request, kube_spdy.PORTFORWARD_PROTOCOL
        )
        if not ports and not spdy_wanted:  # over SPDY each stream names its port
            raise bad_request("at least one port must be specified")
        if not rec.runtime.sandbox:
            raise ApiError(404, "NotFound", f'pod not found ("{name}_{ns}")')
        protocol = (
            "" if spdy_wanted else choose_protocol(request.headers.get("Sec-WebSocket-Protocol"), PORTFORWARD_PROTOCOLS)
        )
        engine = self.store.engine

        async def connect(port: int) -> Any:
            return await asyncio.to_thread(engine.connect, rec.podman, port, 5.0)

        async def failure_text(port: int, exc: BaseException) -> str:
            proc = await asyncio.to_thread(
                engine._run, ["pod", "inspect", "--format", "{{.Id}}", rec.podman.name], timeout=30
            )
            sandbox = proc.stdout.decode().strip() or rec.runtime.uid
            return (
                f"error forwarding port {port} to pod {sandbox}, uid : failed to connect to localhost:{port} "
                f'inside namespace "{sandbox}", IPv4: dial tcp4 127.0.0.1:{port}: connect: connection refused '
            )

        if spdy_wanted:
            return await self._tracked(kube_spdy.serve_portforward(request, connect, failure_text), request)
        return await serve_portforward(request, protocol, ports, connect, failure_text, self.sockets)

    async def _tracked(self, serving: Awaitable[web.StreamResponse], request: web.Request) -> web.StreamResponse:
        """Serve a SPDY session, closed with the stand-in (its connection is closed, which ends the session)."""
        handle = _OpenConnection(request)
        self.sockets.add(handle)
        try:
            return await serving
        finally:
            self.sockets.discard(handle)

    # -- events -------------------------------------------------------------------------

    async def list_events(self, request: web.Request) -> web.Response:
        ns = request.match_info["namespace"]
        q = request.query
        self.allow(request, ["watch" if flag(q.get("watch")) else "list"], "events")
        if flag(q.get("watch")):
            raise bad_request("watching events is not served by this test stand-in")
        fields = field_selector(q.get("fieldSelector"), EVENT_FIELDS)
        labels = label_selector(q.get("labelSelector"))
        await self.store.fresh()
        items = [e for e in self.store.events.in_namespace(ns) if fields(e) and labels(e)]
        return reply(
            {
                "kind": "EventList",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": self.store.resource_version},
                "items": items,
            }
        )


class _OpenConnection:
    """A SPDY connection among the server's open streams: closing it ends the session."""

    def __init__(self, request: web.Request) -> None:
        self.transport = request.transport

    async def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _strict(request: web.Request, body: Any) -> None:
    """``fieldValidation=Strict`` (what kubectl sends when validating): unknown Pod fields are a 400."""
    if request.query.get("fieldValidation") != "Strict":
        return
    unknown = openapi.unknown_pod_fields(body)
    if unknown:
        fields = ", ".join(f'unknown field "{f}"' for f in unknown)
        raise bad_request(f'Pod in version "v1" cannot be handled as a Pod: strict decoding error: {fields}')


_STORED_VERBS = ["create", "delete", "get", "list", "patch", "update"]


# kube-apiserver's short names and categories, which kubectl resolves ("kubectl get ns", "kubectl get all").
_SHORT_NAMES = {"pods": ["po"], "namespaces": ["ns"], "events": ["ev"], "serviceaccounts": ["sa"], "configmaps": ["cm"]}
_CATEGORIES = {"pods": ["all"]}


def _resource(name: str, kind: str, verbs: list[str], namespaced: bool = True, group: str = "") -> dict[str, Any]:
    """One APIResource of a discovery list; ``group`` for a subresource of another group's kind (TokenRequest)."""
    other: dict[str, Any] = {"group": group, "version": "v1"} if group else {}
    if name in _SHORT_NAMES:
        other["shortNames"] = _SHORT_NAMES[name]
    if name in _CATEGORIES:
        other["categories"] = _CATEGORIES[name]
    singular = "" if "/" in name else kind.lower()
    return {"name": name, "singularName": singular, "namespaced": namespaced, **other, "kind": kind, "verbs": verbs}


def _rbac_group() -> dict[str, Any]:
    version = {"groupVersion": f"{RBAC_GROUP}/v1", "version": "v1"}
    return {"name": RBAC_GROUP, "versions": [version], "preferredVersion": version}
