"""Namespaced objects that are only data: service accounts, roles, role bindings, config maps (a fake for tests).

Nothing runs behind these objects, so one store keeps them all, by kind,
namespace and name, and answers create, get, list, replace (PUT) and merge
patch the way kube-apiserver's generic registry does: creation is guarded by
the namespace's lifecycle, then validated (:mod:`kinds`), then refused when
the name is taken; an update naming a stale ``resourceVersion`` is a 409
Conflict; an update that changes nothing keeps the object's version. Runs on
the stand-in's event loop.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from typing import Any

from .kinds import Kind, check_name, list_item, read_body, validate
from .namespaces import Namespaces
from .objects import now_rfc3339
from .selectors import Match
from .status import STALE, already_exists, bad_request, conflict, not_found
from .versions import ResourceVersions


class ObjectStore:
    """Objects of the :data:`kinds.STORED` kinds by (resource, namespace, name)."""

    def __init__(self, namespaces: Namespaces, versions: ResourceVersions) -> None:
        self.namespaces = namespaces
        self._versions = versions
        self._objects: dict[tuple[str, str, str], dict[str, Any]] = {}

    # -- reading ------------------------------------------------------------------------

    def find(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        """The stored object itself (not a copy), or None."""
        return self._objects.get((kind.resource, namespace, name))

    def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any]:
        obj = self.find(kind, namespace, name)
        if obj is None:
            raise not_found(kind.resource, name, kind.group)
        return copy.deepcopy(obj)

    def in_namespace(self, kind: Kind, namespace: str) -> list[dict[str, Any]]:
        """The stored objects themselves (not copies), by name."""
        return [
            obj
            for (resource, ns, _), obj in sorted(self._objects.items())
            if resource == kind.resource and ns == namespace
        ]

    def list(self, kind: Kind, namespace: str, match: Match) -> tuple[list[dict[str, Any]], str]:
        """List items (without kind and apiVersion) and the list's resourceVersion; a missing namespace lists none."""
        items = [list_item(obj) for obj in self.in_namespace(kind, namespace) if match(obj)]
        return items, str(self._versions)

    # -- writing ------------------------------------------------------------------------

    def create(self, kind: Kind, namespace: str, doc: Any) -> dict[str, Any]:
        """POST: 400 for a body that does not fit, 404/403 from the namespace, 422 invalid, 409 taken."""
        doc = read_body(doc, kind, namespace)
        self.namespaces.admit_create(namespace, kind.resource, str(doc["metadata"].get("name") or ""), kind.group)
        name = check_name(kind, doc)
        validate(kind, doc)
        if (kind.resource, namespace, name) in self._objects:
            raise already_exists(kind.resource, name, group=kind.group)
        return copy.deepcopy(self._keep(kind, namespace, name, doc, None))

    def replace(
        self, kind: Kind, namespace: str, name: str, doc: Any, may_create: Callable[[], None]
    ) -> tuple[dict[str, Any], bool]:
        """PUT: (the object, created). Creates only for kinds that allow it, after ``may_create`` authorized it."""
        if not isinstance(doc, dict):
            raise bad_request(f"the object provided is unrecognized (must be of type {kind.kind})")
        _same_place(doc.get("metadata"), namespace, name)
        current = self.find(kind, namespace, name)
        if current is None:
            if not kind.create_on_update:
                raise not_found(kind.resource, name, kind.group)
            may_create()
            return self.create(kind, namespace, doc), True
        return self._update(kind, current, read_body(doc, kind, namespace)), False

    def patch(self, kind: Kind, namespace: str, name: str, patch: Any) -> dict[str, Any]:
        """PATCH with a JSON merge patch (RFC 7386); a strategic merge patch of these kinds merges the same way."""
        current = self.find(kind, namespace, name)
        if current is None:
            raise not_found(kind.resource, name, kind.group)
        if not isinstance(patch, dict):
            raise bad_request("json: cannot unmarshal array into Go value of type map[string]interface {}")
        merged = merge_patch(current, patch)
        if not isinstance(merged.get("metadata"), dict):
            raise bad_request(f"the object provided is unrecognized (must be of type {kind.kind}): metadata")
        _same_place(merged["metadata"], namespace, name)
        if "resourceVersion" not in (patch.get("metadata") or {}):
            merged["metadata"].pop("resourceVersion", None)  # a patch without one applies to the latest version
        return self._update(kind, current, read_body(merged, kind, namespace))

    def delete(self, kind: Kind, namespace: str, name: str) -> dict[str, Any]:
        """DELETE: the object as it was."""
        obj = self._objects.pop((kind.resource, namespace, name), None)
        if obj is None:
            raise not_found(kind.resource, name, kind.group)
        return obj

    def drop_namespace(self, namespace: str) -> None:
        """Everything in ``namespace`` goes, as the namespace controller deletes it."""
        for key in [k for k in self._objects if k[1] == namespace]:
            del self._objects[key]

    def _update(self, kind: Kind, current: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
        meta = current["metadata"]
        asked = doc["metadata"].get("resourceVersion")
        if asked and str(asked) != meta["resourceVersion"]:
            raise conflict(kind.resource, meta["name"], STALE, kind.group)
        doc["metadata"]["name"] = meta["name"]
        validate(kind, doc, current)
        updated = _shape(kind, meta["namespace"], meta["name"], doc, meta)
        if _canonical(updated) == _canonical(current):
            return copy.deepcopy(current)  # etcd is not written, so the version stays
        return copy.deepcopy(self._keep(kind, meta["namespace"], meta["name"], doc, meta))

    def _keep(
        self, kind: Kind, namespace: str, name: str, doc: dict[str, Any], old: dict[str, Any] | None
    ) -> dict[str, Any]:
        obj = _shape(kind, namespace, name, doc, old)
        obj["metadata"]["resourceVersion"] = str(self._versions.next())
        self._objects[(kind.resource, namespace, name)] = obj
        return obj


def _shape(kind: Kind, namespace: str, name: str, doc: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
    """The object as stored: server-set metadata (``old``'s on update), labels, annotations, the kind's fields."""
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": old["uid"] if old else str(uuid.uuid4()),
        "resourceVersion": old["resourceVersion"] if old else "",
        "creationTimestamp": old["creationTimestamp"] if old else now_rfc3339(),
    }
    for key in ("labels", "annotations"):
        given = doc["metadata"].get(key)
        if given:
            meta[key] = {str(k): str(v) for k, v in given.items()}
    obj: dict[str, Any] = {"kind": kind.kind, "apiVersion": kind.api_version, "metadata": meta}
    for field in kind.fields:
        value = doc.get(field)
        if field in kind.always or value not in (None, {}, []):
            obj[field] = copy.deepcopy(value)
    return obj


def _same_place(meta: Any, namespace: str, name: str) -> None:
    """An update must name the object of its URL: kube-apiserver's ``checkName``."""
    meta = meta if isinstance(meta, dict) else {}
    given = str(meta.get("name") or "")
    if given != name:
        raise bad_request(f"the name of the object ({given}) does not match the name on the URL ({name})")
    if meta.get("namespace") and meta["namespace"] != namespace:
        given_ns = meta["namespace"]
        raise bad_request(
            f"the namespace of the object ({given_ns}) does not match the namespace on the request ({namespace})"
        )


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, ``null`` removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _canonical(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True)
