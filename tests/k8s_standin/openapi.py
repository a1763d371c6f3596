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
stand-in's v2 document has no paths and defines a Pod down to its
containers' fields (the same field lists as the strict check), so kubectl
names an unknown field there itself.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

import yaml

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


def _named(name: str, value: bytes) -> bytes:
    return _message([(1, name.encode()), (2, value)])


def _schema(schema: dict[str, Any]) -> bytes:
    """gnostic's ``openapi.v2.Schema`` for the few keywords :func:`v2_definitions` uses."""
    fields: list[tuple[int, bytes]] = []
    if "$ref" in schema:
        fields.append((1, schema["$ref"].encode()))
    if "description" in schema:
        fields.append((4, schema["description"].encode()))
    fields += [(19, name.encode()) for name in schema.get("required", [])]
    if "additionalProperties" in schema:
        fields.append((21, _message([(1, _schema(schema["additionalProperties"]))])))
    if "type" in schema:
        fields.append((22, _message([(1, schema["type"].encode())])))
    if "items" in schema:
        fields.append((23, _message([(1, _schema(schema["items"]))])))
    if "properties" in schema:
        props = [(1, _named(k, _schema(v))) for k, v in schema["properties"].items()]
        fields.append((25, _message(props)))
    for key, value in schema.items():
        if key.startswith("x-"):  # a vendor extension: NamedAny {name, Any {yaml (2)}}
            fields.append((31, _named(key, _message([(2, yaml.safe_dump(value).encode())]))))
    return _message(fields)


def v2_protobuf() -> bytes:
    """gnostic's ``openapi.v2.Document``: swagger (1), info (2) {title (1), version (2)}, definitions (9)."""
    info = _message([(1, TITLE.encode()), (2, VERSION.encode())])
    definitions = _message([(1, _named(name, _schema(schema))) for name, schema in v2_definitions().items()])
    return _message([(1, b"2.0"), (2, info), (9, definitions)])


def v2_json() -> dict[str, Any]:
    return {
        "swagger": "2.0",
        "info": {"title": TITLE, "version": VERSION},
        "paths": {},
        "definitions": v2_definitions(),
    }


def v2_definitions() -> dict[str, Any]:
    """Schemas for a Pod down to its containers' fields: enough for kubectl 1.20 to name an unknown field.

    Fields below that level are left open (any value), as are most fields' types.
    """
    core = "io.k8s.api.core.v1."
    meta = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    string, strings = {"type": "string"}, {"type": "array", "items": {"type": "string"}}
    labels = {"type": "object", "additionalProperties": {"type": "string"}}

    def kind(fields: set[str], typed: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
        schema = {"type": "object", "properties": {f: typed.get(f, {}) for f in sorted(fields)}}
        return {**schema, "required": list(required)} if required else schema

    def ref(name: str) -> dict[str, Any]:
        return {"$ref": f"#/definitions/{name}"}

    containers = {"type": "array", "items": ref(f"{core}Container")}
    pod = kind(_OBJECT, {"apiVersion": string, "kind": string, "metadata": ref(meta), "spec": ref(f"{core}PodSpec")})
    return {
        f"{core}Pod": {**pod, "x-kubernetes-group-version-kind": [{"group": "", "kind": "Pod", "version": "v1"}]},
        meta: kind(_META, {"name": string, "namespace": string, "labels": labels, "annotations": labels}),
        f"{core}PodSpec": kind(_POD_SPEC, {"containers": containers, "initContainers": containers}, ("containers",)),
        f"{core}Container": kind(
            _CONTAINER, {"name": string, "image": string, "command": strings, "args": strings}, ("name",)
        ),
    }


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
