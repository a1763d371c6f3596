"""Core ``v1`` Events, recorded and counted the way the kubelet's recorder does (a fake).

A repeat of the same event (same object, reason, message, source) bumps
``count`` and ``lastTimestamp`` instead of adding a row, as the event
correlator does.
"""

from __future__ import annotations

import copy
import secrets
import uuid
from collections.abc import Callable
from typing import Any

from .kubelet import EventSpec
from .objects import now_rfc3339


class EventLog:
    """All events of the stand-in, per namespace; ``next_rv`` hands out resource versions."""

    def __init__(self, node: str, next_rv: Callable[[], int]) -> None:
        self._node = node
        self._next_rv = next_rv
        self._events: dict[tuple[str, ...], dict[str, Any]] = {}

    def record(self, pod: dict[str, Any], spec: EventSpec) -> None:
        meta = pod["metadata"]
        key = (meta["namespace"], meta["name"], meta["uid"], spec.reason, spec.message, spec.field_path, spec.component)
        stamp = now_rfc3339()
        existing = self._events.get(key)
        if existing:
            existing["count"] += 1
            existing["lastTimestamp"] = stamp
            existing["metadata"]["resourceVersion"] = str(self._next_rv())
            return
        involved: dict[str, Any] = {
            "kind": "Pod",
            "namespace": meta["namespace"],
            "name": meta["name"],
            "uid": meta["uid"],
            "apiVersion": "v1",
            "resourceVersion": meta.get("resourceVersion", ""),
        }
        if spec.field_path:
            involved["fieldPath"] = spec.field_path
        source: dict[str, Any] = {"component": spec.component}
        if spec.component == "kubelet":
            source["host"] = self._node
        self._events[key] = {
            "kind": "Event",
            "apiVersion": "v1",
            "metadata": {
                "name": f"{meta['name']}.{secrets.token_hex(8)}",
                "namespace": meta["namespace"],
                "uid": str(uuid.uuid4()),
                "resourceVersion": str(self._next_rv()),
                "creationTimestamp": stamp,
            },
            "involvedObject": involved,
            "reason": spec.reason,
            "message": spec.message,
            "source": source,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "type": spec.type,
            "eventTime": None,
            "reportingComponent": spec.component,
            "reportingInstance": self._node if spec.component == "kubelet" else "",
        }

    def in_namespace(self, namespace: str | None) -> list[dict[str, Any]]:
        """Copies of the events of ``namespace`` (all namespaces for None), oldest first."""
        return [
            copy.deepcopy(e)
            for e in self._events.values()
            if namespace is None or e["metadata"]["namespace"] == namespace
        ]

    def forget(self, namespace: str) -> None:
        """Drop the events of a deleted namespace, as deleting the namespace deletes them."""
        self._events = {k: e for k, e in self._events.items() if e["metadata"]["namespace"] != namespace}
