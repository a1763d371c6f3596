"""Server-side printing: ``meta.k8s.io/v1`` Tables, which ``kubectl get`` asks for (a fake for tests).

kubectl sends ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...``
and prints the columns the server chose. Pods and namespaces get
kube-apiserver's columns (``NAME READY STATUS RESTARTS AGE`` and more at
priority 1 for ``-o wide``; ``NAME STATUS AGE``); every other kind the
default ``Name``, ``Created At``. Each row carries the object as
``PartialObjectMetadata`` unless ``includeObject`` says ``Object`` or ``None``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

TABLE_VERSIONS = ("v1", "v1beta1")

_NAME = {"name": "Name", "type": "string", "format": "name", "priority": 0}
_NAME["description"] = "Name must be unique within a namespace."
_AGE = {"name": "Age", "type": "string", "format": "", "priority": 0}
_AGE["description"] = "CreationTimestamp is a timestamp representing the server time when this object was created."

POD_COLUMNS: list[dict[str, Any]] = [
    _NAME,
    {"name": "Ready", "type": "string", "format": "", "priority": 0, "description": "The aggregate readiness state"},
    {"name": "Status", "type": "string", "format": "", "priority": 0, "description": "The aggregate status"},
    {"name": "Restarts", "type": "string", "format": "", "priority": 0, "description": "The number of times"},
    _AGE,
    {"name": "IP", "type": "string", "format": "", "priority": 1, "description": "IP address allocated to the pod."},
    {"name": "Node", "type": "string", "format": "", "priority": 1, "description": "Name of the node"},
    {"name": "Nominated Node", "type": "string", "format": "", "priority": 1, "description": "Nominated node"},
    {"name": "Readiness Gates", "type": "string", "format": "", "priority": 1, "description": "Readiness gates"},
]
NAMESPACE_COLUMNS: list[dict[str, Any]] = [
    _NAME,
    {"name": "Status", "type": "string", "format": "", "priority": 0, "description": "The status of the namespace"},
    _AGE,
]
DEFAULT_COLUMNS: list[dict[str, Any]] = [
    _NAME,
    {
        "name": "Created At",
        "type": "date",
        "format": "",
        "priority": 0,
        "description": "CreationTimestamp is a timestamp representing the server time when this object was created.",
    },
]


def table_version(request: web.Request) -> str | None:
    """The Table version the client accepts (``v1`` preferred), or None when it wants plain objects."""
    accepted: list[str] = []
    for clause in request.headers.get("Accept", "").split(","):
        params = dict(p.strip().partition("=")[::2] for p in clause.split(";")[1:])
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io":
            accepted.append(params.get("v", ""))
    for version in TABLE_VERSIONS:
        if version in accepted:
            return version
    return None


def as_table(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """``response`` (a JSON object or list) as the Table the request asked for; anything else unchanged."""
    if not isinstance(response, web.Response) or response.status != 200 or response.content_type != "application/json":
        return response
    version = table_version(request)
    if version is None or response.text is None:
        return response
    body = json.loads(response.text)
    kind = str(body.get("kind", ""))
    if kind.endswith("List"):
        items, meta, kind = body.get("items") or [], dict(body.get("metadata") or {}), kind[: -len("List")]
    elif body.get("apiVersion") and body.get("metadata", {}).get("name"):
        items, meta = [body], {"resourceVersion": body["metadata"].get("resourceVersion", "")}
    else:
        return response
    columns, cells = {"Pod": (POD_COLUMNS, pod_cells), "Namespace": (NAMESPACE_COLUMNS, namespace_cells)}.get(
        kind, (DEFAULT_COLUMNS, default_cells)
    )
    include = request.query.get("includeObject", "Metadata")
    rows = []
    for item in items:
        row: dict[str, Any] = {"cells": cells(item)}
        if include == "Object":
            row["object"] = item
        elif include != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": f"meta.k8s.io/{version}",
                "metadata": item.get("metadata", {}),
            }
        rows.append(row)
    table = {
        "kind": "Table",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": {k: v for k, v in meta.items() if k in ("resourceVersion", "continue")},
        "columnDefinitions": columns,
        "rows": rows,
    }
    return web.Response(text=json.dumps(table), status=200, content_type="application/json")


def human_duration(seconds: float) -> str:
    """Kubernetes' ``duration.HumanDuration``: 5s, 3m20s, 45m, 2h10m, 20h, 3d4h, 40d, 2y100d."""
    s = int(seconds)
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes, hours = s // 60, s // 3600
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = hours // 24
        return f"{days // 365}y{days % 365}d" if days % 365 else f"{days // 365}y"
    return f"{hours // 24 // 365}y"


def _age(obj: dict[str, Any]) -> str:
    stamp = (obj.get("metadata") or {}).get("creationTimestamp")
    if not stamp:
        return "<unknown>"
    created = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return human_duration((datetime.now(UTC) - created).total_seconds())


def pod_cells(pod: dict[str, Any]) -> list[Any]:
    """The kubelet-facing columns as kube-apiserver's pod printer fills them."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    reason = status.get("reason") or status.get("phase") or ""
    ready = restarts = 0
    last_restart = ""
    for cs in statuses:
        restarts += int(cs.get("restartCount") or 0)
        state = cs.get("state") or {}
        finished = ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
        if finished and finished > last_restart:
            last_restart = finished
        if (state.get("waiting") or {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif (state.get("terminated") or {}).get("reason"):
            reason = state["terminated"]["reason"]
        elif state.get("terminated"):
            code = state["terminated"].get("exitCode", 0)
            reason = (
                f"Signal:{state['terminated']['signal']}" if state["terminated"].get("signal") else f"ExitCode:{code}"
            )
        elif cs.get("ready") and state.get("running"):
            ready += 1
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        reason = "Terminating"
    restart_text = str(restarts)
    if restarts and last_restart:
        when = datetime.strptime(last_restart, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        restart_text += f" ({human_duration((datetime.now(UTC) - when).total_seconds())} ago)"
    containers = spec.get("containers") or []
    return [
        pod["metadata"]["name"],
        f"{ready}/{len(containers)}",
        reason,
        restart_text,
        _age(pod),
        status.get("podIP") or "<none>",
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        "<none>",
    ]


def namespace_cells(ns: dict[str, Any]) -> list[Any]:
    return [ns["metadata"]["name"], (ns.get("status") or {}).get("phase", ""), _age(ns)]


def default_cells(obj: dict[str, Any]) -> list[Any]:
    return [obj["metadata"]["name"], (obj.get("metadata") or {}).get("creationTimestamp")]
