"""The OpenAPI documents ``kubectl apply`` downloads before it sends anything (a fake for tests).

``kubectl apply`` validates by default. kubectl 1.26 and later read the
OpenAPI v3 document of the object's group version (``/openapi/v3``, then
``/openapi/v3/api/v1``) and, when its PATCH operation takes the
``fieldValidation`` query parameter, leave validation to the server (they
send ``fieldValidation=Strict``). The stand-in's v3 documents list only the
PATCH operations of the kinds it stores, with that parameter; with
``Strict`` it refuses unknown fields of a Pod as kube-apiserver does
(:func:`unknown_pod_fields`).

Older kubectl (1.20) reads ``/openapi/v2`` as protobuf (gnostic's
``openapi.v2.Document``) and validates against the definitions in it. The
stand-in's v2 document is a valid, nearly empty one: no definitions, so that
kubectl finds nothing to check and sends the object on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from .kinds import RBAC_GROUP, STORED

TITLE = "Kubernetes"
VERSION = "v1.34.0"
PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"

_FIELD_VALIDATION = {
    "name": "fieldValidation",
    "in": "query",
    "description": "fieldValidation instructs the server on how to handle objects in the request "
    "containing unknown or duplicate fields. Valid values are: Ignore, Warn, Strict.",
    "schema": {"type": "string", "uniqueItems": True},
}


def _kinds(group: str) -> list[tuple[str, str, bool]]:
    """(resource, kind, namespaced) of the kinds served in ``group`` ("" is core)."""
    kinds = [(k.resource, k.kind, True) for k in STORED if k.group == group]
    if not group:
        kinds += [("pods", "Pod", True), ("namespaces", "Namespace", False)]
    return kinds


def _document(group: str) -> dict[str, Any]:
    base = f"/apis/{group}/v1" if group else "/api/v1"
    paths: dict[str, Any] = {}
    for resource, kind, namespaced in _kinds(group):
        path = f"{base}/namespaces/{{namespace}}/{resource}/{{name}}" if namespaced else f"{base}/{resource}/{{name}}"
        paths[path] = {
            "patch": {
                "description": f"partially update the specified {kind}",
                "operationId": f"patch{'Namespaced' if namespaced else ''}{kind}",
                "parameters": [_FIELD_VALIDATION],
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": {"group": group, "version": "v1", "kind": kind},
            }
        }
    return {"openapi": "3.0.0", "info": {"title": TITLE, "version": VERSION}, "paths": paths, "components": {}}


GROUP_DOCUMENTS: dict[str, bytes] = {
    "api/v1": json.dumps(_document("")).encode(),
    f"apis/{RBAC_GROUP}/v1": json.dumps(_document(RBAC_GROUP)).encode(),
}


def v3_index() -> dict[str, Any]:
    """``/openapi/v3``: each group version's document, addressed with its hash as kube-apiserver does."""
    paths = {}
    for gv, doc in GROUP_DOCUMENTS.items():
        digest = hashlib.sha512(doc).hexdigest()[:128].upper()
        paths[gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash={digest}"}
    return {"paths": paths}


# -- v2, protobuf ----------------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, value: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2): strings and embedded messages."""
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _message(fields: Iterable[tuple[int, bytes]]) -> bytes:
    return b"".join(_field(n, v) for n, v in fields)


def v2_protobuf() -> bytes:
    """gnostic's ``openapi.v2.Document``: swagger (1) "2.0", info (2) {title (1), version (2)}, no paths."""
    info = _message([(1, TITLE.encode()), (2, VERSION.encode())])
    return _message([(1, b"2.0"), (2, info)])


def v2_json() -> dict[str, Any]:
    return {"swagger": "2.0", "info": {"title": TITLE, "version": VERSION}, "paths": {}, "definitions": {}}


# -- fieldValidation=Strict --------------------------------------------------------------

_OBJECT = {"apiVersion", "kind", "metadata", "spec", "status"}
_META = {
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation", "creationTimestamp",
    "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences", "finalizers",
    "managedFields",
}  # fmt: skip
_POD_SPEC = {
    "volumes", "initContainers", "containers", "ephemeralContainers", "restartPolicy",
    "terminationGracePeriodSeconds", "activeDeadlineSeconds", "dnsPolicy", "nodeSelector", "serviceAccountName",
    "serviceAccount", "automountServiceAccountToken", "nodeName", "hostNetwork", "hostPID", "hostIPC",
    "shareProcessNamespace", "securityContext", "imagePullSecrets", "hostname", "subdomain", "affinity",
    "schedulerName", "tolerations", "hostAliases", "priorityClassName", "priority", "dnsConfig", "readinessGates",
    "runtimeClassName", "enableServiceLinks", "preemptionPolicy", "overhead", "topologySpreadConstraints",
    "setHostnameAsFQDN", "os", "hostUsers", "schedulingGates", "resourceClaims", "resources",
}  # fmt: skip
_CONTAINER = {
    "name", "image", "command", "args", "workingDir", "ports", "envFrom", "env", "resources", "resizePolicy",
    "restartPolicy", "volumeMounts", "volumeDevices", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle",
    "terminationMessagePath", "terminationMessagePolicy", "imagePullPolicy", "securityContext", "stdin", "stdinOnce",
    "tty",
}  # fmt: skip


def unknown_pod_fields(doc: Any) -> list[str]:
    """The paths of fields a Pod does not have, as kube-apiserver's strict decoding names them.

    Checked: the object, its metadata, its spec and each (init) container; deeper fields are not.
    """
    if not isinstance(doc, dict):
        return []
    found = [k for k in doc if k not in _OBJECT]
    meta, spec = doc.get("metadata"), doc.get("spec")
    if isinstance(meta, dict):
        found += [f"metadata.{k}" for k in meta if k not in _META]
    if isinstance(spec, dict):
        found += [f"spec.{k}" for k in spec if k not in _POD_SPEC]
        for key in ("initContainers", "containers"):
            for i, c in enumerate(spec.get(key) or []):
                if isinstance(c, dict):
                    found += [f"spec.{key}[{i}].{k}" for k in c if k not in _CONTAINER]
    return found
