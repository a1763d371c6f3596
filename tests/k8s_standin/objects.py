"""Pod documents as the API server stores them: checked, defaulted, owned (a fake's subset).

This module knows nothing about Podman. It turns a submitted Pod into the
object kube-apiserver would keep (defaults filled in, ``managedFields``
recorded), decides whether a re-applied Pod changes its spec (which a real
cluster refuses for almost every field), and names the Podman pod that
stands in for a Kubernetes pod.
"""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from .kinds import DNS_LABEL, DNS_SUBDOMAIN, LABEL_HELP, SUBDOMAIN_HELP
from .status import ApiError, bad_request, invalid

IMMUTABLE_SPEC = (
    "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
    "(allow it to be set to 1 if it was previously negative)"
)

PODMAN_NAME_MAX = 63


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def podman_pod_name(namespace: str, name: str) -> str:
    """The Podman pod standing in for ``namespace/name``: ``k8s-{ns}-{name}``, at most 63 characters.

    Longer combinations keep a readable prefix and end in a hash of both,
    so two Kubernetes pods never share a Podman pod.
    """
    plain = f"k8s-{namespace}-{name}"
    if len(plain) <= PODMAN_NAME_MAX:
        return plain
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()[:10]
    head = plain[: PODMAN_NAME_MAX - len(digest) - 1].rstrip("-.")
    return f"{head}-{digest}"


def check_submitted(doc: Any, namespace: str, url_name: str | None) -> dict[str, Any]:
    """Refuse a body that is not a Pod for this place, as kube-apiserver would."""
    if not isinstance(doc, dict):
        raise bad_request("the object provided is unrecognized (must be of type Pod)")
    if doc.get("kind") != "Pod" or doc.get("apiVersion") != "v1":
        raise bad_request(
            f"the API version in the data ({doc.get('apiVersion')}) does not match the expected API version (v1)"
            if doc.get("kind") == "Pod"
            else f"the object provided is unrecognized (must be of type Pod): kind {doc.get('kind')!r}"
        )
    meta = doc.get("metadata")
    if not isinstance(meta, dict):
        meta = doc["metadata"] = {}
    name = meta.get("name") or ""
    if url_name is not None and name and name != url_name:
        raise bad_request(f"the name of the object ({name}) does not match the name on the URL ({url_name})")
    if url_name is not None and not name:
        meta["name"] = name = url_name
    if meta.get("namespace") and meta["namespace"] != namespace:
        raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
    if not name:
        raise invalid(
            "Pod", "", [("metadata.name", "FieldValueRequired", "Required value: name or generateName is required")]
        )
    if len(name) > 253 or not DNS_SUBDOMAIN.match(name):
        raise invalid(
            "Pod", name, [("metadata.name", "FieldValueInvalid", f'Invalid value: "{name}": {SUBDOMAIN_HELP}')]
        )
    spec = doc.get("spec")
    containers = spec.get("containers") if isinstance(spec, dict) else None
    if not containers or not isinstance(containers, list):
        raise invalid("Pod", name, [("spec.containers", "FieldValueRequired", "Required value")])
    causes: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for i, c in enumerate(containers):
        cname = c.get("name") if isinstance(c, dict) else None
        where = f"spec.containers[{i}]"
        if not cname:
            causes.append((f"{where}.name", "FieldValueRequired", "Required value"))
        elif not DNS_LABEL.match(cname) or len(cname) > 63:
            causes.append((f"{where}.name", "FieldValueInvalid", f'Invalid value: "{cname}": {LABEL_HELP}'))
        elif cname in seen:
            causes.append((f"{where}.name", "FieldValueDuplicate", f'Duplicate value: "{cname}"'))
        else:
            seen.add(cname)
        if isinstance(c, dict) and not c.get("image"):
            causes.append((f"{where}.image", "FieldValueRequired", "Required value"))
    if causes:
        raise invalid("Pod", name, causes)
    return doc


def defaulted_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec with the defaults kube-apiserver fills in, so equal intents compare equal."""
    out = copy.deepcopy(spec)
    out.setdefault("restartPolicy", "Always")
    out.setdefault("terminationGracePeriodSeconds", 30)
    out.setdefault("dnsPolicy", "ClusterFirst")
    out.setdefault("securityContext", {})
    out.setdefault("schedulerName", "default-scheduler")
    out.setdefault("serviceAccountName", "default")
    out.setdefault("enableServiceLinks", True)
    out.setdefault("preemptionPolicy", "PreemptLowerPriority")
    out.setdefault("priority", 0)
    for c in out.get("containers") or []:
        image = str(c.get("image", ""))
        tagless = ":" not in image.rsplit("/", 1)[-1] and "@" not in image
        c.setdefault("imagePullPolicy", "Always" if tagless or image.endswith(":latest") else "IfNotPresent")
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault("resources", {})
        for p in c.get("ports") or []:
            p.setdefault("protocol", "TCP")
    for v in out.get("volumes") or []:
        if "emptyDir" in v and v["emptyDir"] is None:
            v["emptyDir"] = {}
    return out


def spec_changes(stored: dict[str, Any], submitted: dict[str, Any]) -> bool:
    """Whether applying ``submitted`` would change the stored spec (server-set fields aside)."""
    mine = {k: v for k, v in stored.items() if k not in ("nodeName",)}
    return _canonical(mine) != _canonical(defaulted_spec(submitted))


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def fields_v1(value: Any) -> dict[str, Any]:
    """An approximation of the ``fieldsV1`` set a manager owns after sending ``value``.

    Lists of named entries become ``k:{"name":...}`` keys as in Kubernetes;
    other lists count as one atomic field.
    """
    if not isinstance(value, dict):
        return {}
    out: dict[str, Any] = {}
    for key, sub in value.items():
        if isinstance(sub, dict):
            out[f"f:{key}"] = fields_v1(sub)
        elif isinstance(sub, list) and sub and all(isinstance(i, dict) for i in sub):
            entries: dict[str, Any] = {}
            for item in sub:
                ident = _list_key(key, item)
                entries[f"k:{json.dumps(ident, separators=(',', ':'))}"] = {".": {}, **fields_v1(item)}
            out[f"f:{key}"] = entries
        else:
            out[f"f:{key}"] = {}
    return out


def _list_key(field: str, item: dict[str, Any]) -> dict[str, Any]:
    if field == "ports" and "containerPort" in item:
        return {"containerPort": item["containerPort"], "protocol": item.get("protocol", "TCP")}
    if field == "volumeMounts" and "mountPath" in item:
        return {"mountPath": item["mountPath"]}
    if "name" in item:
        return {"name": item["name"]}
    return {k: item[k] for k in sorted(item)[:1]}


def managed_entry(manager: str, operation: str, doc: dict[str, Any], when: str) -> dict[str, Any]:
    owned = {k: v for k, v in doc.items() if k in ("metadata", "spec")}
    meta = {k: v for k, v in (owned.get("metadata") or {}).items() if k in ("labels", "annotations")}
    owned["metadata"] = meta
    return {
        "manager": manager,
        "operation": operation,
        "apiVersion": "v1",
        "time": when,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields_v1(owned),
    }


def manager_from_user_agent(user_agent: str) -> str:
    """Kubernetes names a non-apply manager after the client's user agent, up to its first '/'."""
    return (user_agent or "unknown").split("/", 1)[0] or "unknown"


def field_manager_of(query: dict[str, str], user_agent: str, apply: bool) -> str:
    manager = query.get("fieldManager", "")
    if apply and not manager:
        raise ApiError(
            422,
            "Invalid",
            'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
            {
                "group": "meta.k8s.io",
                "kind": "PatchOptions",
                "causes": [
                    {
                        "reason": "FieldValueRequired",
                        "message": "Required value: is required for apply patch",
                        "field": "fieldManager",
                    }
                ],
            },
        )
    return manager or manager_from_user_agent(user_agent)
