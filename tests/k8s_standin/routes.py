"""HTTP routes for namespaces, service accounts and their tokens, roles, role bindings and config maps (a fake).

Each handler authorizes the request the way kube-apiserver's RBAC sees it
(verb from the method, resource, API group, the URL's namespace or the
cluster scope) and hands the body to :class:`~accounts.Accounts` or its
stores. These kinds cannot be watched here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from .accounts import Accounts
from .kinds import STORED, Kind
from .rbac import Identity
from .selectors import NAMESPACE_FIELDS, OBJECT_FIELDS, field_selector, label_selector, named_in
from .status import bad_request, deleted, unsupported_media_type
from .wire import decode, flag, reply

# Both patch kinds merge the same way for these kinds: none has a list merged by key.
MERGE_PATCHES = ("application/merge-patch+json", "application/strategic-merge-patch+json")

KindHandler = Callable[[Kind, web.Request], Awaitable[web.StreamResponse]]


class Allow(Protocol):
    def __call__(
        self, request: web.Request, verbs: list[str], resource: str, sub: str = "", name: str = "", group: str = ""
    ) -> Identity: ...


class AccountRoutes:
    """The handlers; ``allow`` is the server's authorization of one request."""

    def __init__(self, accounts: Accounts, allow: Allow) -> None:
        self.accounts = accounts
        self.allow = allow

    def add_to(self, r: web.UrlDispatcher) -> None:
        r.add_get("/api/v1/namespaces", self.list_namespaces)
        r.add_post("/api/v1/namespaces", self.create_namespace)
        r.add_get("/api/v1/namespaces/{namespace}", self.get_namespace)
        r.add_delete("/api/v1/namespaces/{namespace}", self.delete_namespace)
        for kind in STORED:
            base = f"/apis/{kind.group}/v1" if kind.group else "/api/v1"
            many = f"{base}/namespaces/{{namespace}}/{kind.resource}"
            one = many + "/{name}"
            r.add_get(many, self._for(kind, self.list_objects))
            r.add_post(many, self._for(kind, self.create_object))
            r.add_get(one, self._for(kind, self.get_object))
            r.add_put(one, self._for(kind, self.replace_object))
            r.add_patch(one, self._for(kind, self.patch_object))
            r.add_delete(one, self._for(kind, self.delete_object))
        r.add_post("/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", self.request_token)

    @staticmethod
    def _for(kind: Kind, handler: KindHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await handler(kind, request)

        return handle

    # -- namespaces (cluster-scoped; one namespace is authorized in itself, as kube-apiserver does) ----

    async def list_namespaces(self, request: web.Request) -> web.Response:
        q = request.query
        self.allow(
            request, ["watch" if flag(q.get("watch")) else "list"], "namespaces", name=named_in(q.get("fieldSelector"))
        )
        _no_watch(request)
        labels = label_selector(q.get("labelSelector"))
        fields = field_selector(q.get("fieldSelector"), NAMESPACE_FIELDS)
        items, rv = self.accounts.namespaces.list(lambda obj: labels(obj) and fields(obj))
        return reply({"kind": "NamespaceList", "apiVersion": "v1", "metadata": {"resourceVersion": rv}, "items": items})

    async def create_namespace(self, request: web.Request) -> web.Response:
        self.allow(request, ["create"], "namespaces")
        return reply(self.accounts.create_namespace(decode(await request.text())), 201)

    async def get_namespace(self, request: web.Request) -> web.Response:
        name = request.match_info["namespace"]
        self.allow(request, ["get"], "namespaces", name=name)
        return reply(self.accounts.namespaces.get(name))

    async def delete_namespace(self, request: web.Request) -> web.Response:
        name = request.match_info["namespace"]
        self.allow(request, ["delete"], "namespaces", name=name)
        return reply(self.accounts.delete_namespace(name))

    # -- namespaced objects -----------------------------------------------------------------

    async def list_objects(self, kind: Kind, request: web.Request) -> web.Response:
        q = request.query
        verb = "watch" if flag(q.get("watch")) else "list"
        self.allow(request, [verb], kind.resource, name=named_in(q.get("fieldSelector")), group=kind.group)
        _no_watch(request)
        labels = label_selector(q.get("labelSelector"))
        fields = field_selector(q.get("fieldSelector"), OBJECT_FIELDS)
        items, rv = self.accounts.objects.list(
            kind, request.match_info["namespace"], lambda obj: labels(obj) and fields(obj)
        )
        return reply(
            {
                "kind": f"{kind.kind}List",
                "apiVersion": kind.api_version,
                "metadata": {"resourceVersion": rv},
                "items": items,
            }
        )

    async def create_object(self, kind: Kind, request: web.Request) -> web.Response:
        self.allow(request, ["create"], kind.resource, group=kind.group)
        body = decode(await request.text())
        return reply(self.accounts.objects.create(kind, request.match_info["namespace"], body), 201)

    async def get_object(self, kind: Kind, request: web.Request) -> web.Response:
        ns, name = request.match_info["namespace"], request.match_info["name"]
        self.allow(request, ["get"], kind.resource, name=name, group=kind.group)
        return reply(self.accounts.objects.get(kind, ns, name))

    async def replace_object(self, kind: Kind, request: web.Request) -> web.Response:
        ns, name = request.match_info["namespace"], request.match_info["name"]
        self.allow(request, ["update"], kind.resource, name=name, group=kind.group)
        body = decode(await request.text())

        def may_create() -> None:
            self.allow(request, ["create"], kind.resource, name=name, group=kind.group)

        obj, created = self.accounts.objects.replace(kind, ns, name, body, may_create)
        return reply(obj, 201 if created else 200)

    async def patch_object(self, kind: Kind, request: web.Request) -> web.Response:
        ns, name = request.match_info["namespace"], request.match_info["name"]
        self.allow(request, ["patch"], kind.resource, name=name, group=kind.group)
        if request.content_type not in MERGE_PATCHES:
            raise unsupported_media_type(request.content_type, MERGE_PATCHES)
        return reply(self.accounts.objects.patch(kind, ns, name, decode(await request.text())))

    async def delete_object(self, kind: Kind, request: web.Request) -> web.Response:
        ns, name = request.match_info["namespace"], request.match_info["name"]
        self.allow(request, ["delete"], kind.resource, name=name, group=kind.group)
        gone = self.accounts.objects.delete(kind, ns, name)
        if kind.returns_deleted:
            return reply(gone)
        return reply(deleted(kind.resource, name, gone["metadata"]["uid"], kind.group))

    # -- tokens -------------------------------------------------------------------------------

    async def request_token(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["namespace"], request.match_info["name"]
        self.allow(request, ["create"], "serviceaccounts", "token", name=name)
        text = await request.text()
        body: Any = decode(text) if text.strip() else None
        return reply(self.accounts.request_token(ns, name, body), 201)


def _no_watch(request: web.Request) -> None:
    if flag(request.query.get("watch")):
        raise bad_request("watching this resource is not served by this test stand-in")
