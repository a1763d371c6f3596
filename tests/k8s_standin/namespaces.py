"""The stand-in's namespaces (a fake for tests): created, read, listed, terminated, and the rule guarding them.

A namespace is Active until it is deleted, then Terminating while what it
holds is removed (its pods take longest), then gone. Nothing new may be
created in a namespace that is Terminating or missing: that is
kube-apiserver's NamespaceLifecycle admission, and
:meth:`Namespaces.admit_create` words its refusals the same way. Everything
here runs on the stand-in's event loop.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable
from typing import Any

from .kinds import NAMESPACE, check_name, list_item, read_body
from .objects import now_rfc3339
from .selectors import Match
from .status import already_exists, conflict, namespace_terminating, not_found, refused
from .versions import ResourceVersions

NAME_LABEL = "kubernetes.io/metadata.name"  # set on every namespace by kube-apiserver
IMMORTAL = ("default", "kube-system", "kube-public")
PURGING = (
    "The system is ensuring all content is removed from this namespace.  "
    "Upon completion, this namespace will automatically be purged by the system."
)


class Namespaces:
    """Namespace objects by name; the names given at the start exist from the start."""

    def __init__(self, versions: ResourceVersions, names: Iterable[str] = ()) -> None:
        self._versions = versions
        self._items: dict[str, dict[str, Any]] = {}
        for name in names:
            self._add(name, {})

    @property
    def names(self) -> list[str]:
        return sorted(self._items)

    def create(self, doc: Any) -> dict[str, Any]:
        """POST: a new Active namespace; 409 when the name is taken (also by one still terminating)."""
        doc = read_body(doc, NAMESPACE, "")
        name = check_name(NAMESPACE, doc)
        if name in self._items:
            raise already_exists("namespaces", name, terminating=self.terminating(name))
        return copy.deepcopy(self._add(name, doc["metadata"]))

    def _add(self, name: str, meta: dict[str, Any]) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "name": name,
            "uid": str(uuid.uuid4()),
            "resourceVersion": str(self._versions.next()),
            "creationTimestamp": now_rfc3339(),
            "labels": {**{str(k): str(v) for k, v in (meta.get("labels") or {}).items()}, NAME_LABEL: name},
        }
        if meta.get("annotations"):
            metadata["annotations"] = {str(k): str(v) for k, v in meta["annotations"].items()}
        obj = {
            "kind": "Namespace",
            "apiVersion": "v1",
            "metadata": metadata,
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }
        self._items[name] = obj
        return obj

    def get(self, name: str) -> dict[str, Any]:
        if name not in self._items:
            raise not_found("namespaces", name)
        return copy.deepcopy(self._items[name])

    def list(self, match: Match) -> tuple[list[dict[str, Any]], str]:
        """The namespaces ``match`` accepts, as list items (without kind and apiVersion), and the list's version."""
        items = [list_item(obj) for _, obj in sorted(self._items.items()) if match(obj)]
        return items, str(self._versions)

    def terminating(self, name: str) -> bool:
        return name in self._items and self._items[name]["status"]["phase"] == "Terminating"

    def begin_termination(self, name: str) -> dict[str, Any]:
        """DELETE: mark the namespace Terminating (a second DELETE is 409 until it is gone)."""
        if name in IMMORTAL:
            raise refused("namespaces", name, "this namespace may not be deleted")
        if name not in self._items:
            raise not_found("namespaces", name)
        if self.terminating(name):
            raise conflict("namespaces", name, PURGING)
        obj = self._items[name]
        obj["metadata"]["deletionTimestamp"] = now_rfc3339()
        obj["metadata"]["resourceVersion"] = str(self._versions.next())
        obj["status"]["phase"] = "Terminating"
        return copy.deepcopy(obj)

    def remove(self, name: str) -> None:
        """The namespace's content is gone, and with its finalizer done, so is the namespace."""
        self._items.pop(name, None)

    def admit_create(self, namespace: str, resource: str, name: str, group: str = "") -> None:
        """NamespaceLifecycle: 404 for a missing namespace, 403 for one being terminated."""
        if namespace not in self._items:
            raise not_found("namespaces", namespace)
        if self.terminating(namespace):
            raise namespace_terminating(resource, name, namespace, group)
