"""The kinds the stand-in stores besides pods, and kube-apiserver's checks of each (a fake for tests).

Namespaces, ServiceAccounts, Roles, RoleBindings and ConfigMaps are only
data here, so each is described once: its resource and API group, which
fields an object keeps, how its name is checked, and the validation and
defaulting kube-apiserver applies, with the same field paths and wording
(``k8s.io/apimachinery`` name checks, ``pkg/apis/rbac/validation``,
``ValidateConfigMap``). A client that handles these errors against a real
cluster handles them here too.
"""

from __future__ import annotations

import copy
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .status import ApiError, bad_request, invalid

RBAC_GROUP = "rbac.authorization.k8s.io"

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SUBDOMAIN_HELP = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation "
    "is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_HELP = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_CONFIG_KEY_HELP = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
    "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)
_GENERATED = "bcdfghjklmnpqrstvwxz2456789"  # the letters kube-apiserver draws generated name suffixes from

Cause = tuple[str, str, str]  # (field, cause type, text after the field), as status.invalid takes them


def dns_label_problems(name: str) -> list[str]:
    """``IsDNS1123Label``: what is wrong with a namespace name (empty: nothing)."""
    out = ["must be no more than 63 characters"] if len(name) > 63 else []
    return out + ([] if DNS_LABEL.match(name) else [LABEL_HELP])


def dns_subdomain_problems(name: str) -> list[str]:
    """``IsDNS1123Subdomain``: what is wrong with a service account or config map name."""
    out = ["must be no more than 253 characters"] if len(name) > 253 else []
    return out + ([] if DNS_SUBDOMAIN.match(name) else [SUBDOMAIN_HELP])


def path_segment_problems(name: str) -> list[str]:
    """``IsValidPathSegmentName``: RBAC names only have to fit in a URL path (``system:x`` is fine)."""
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]


def _invalid_value(value: str, why: str) -> str:
    return f'Invalid value: "{value}": {why}'


def _unsupported(value: str, supported: tuple[str, ...]) -> str:
    return f'Unsupported value: "{value}": supported values: ' + ", ".join(f'"{s}"' for s in supported)


def _no_causes(obj: dict[str, Any]) -> list[Cause]:
    return []


def _no_update_causes(old: dict[str, Any], new: dict[str, Any]) -> list[Cause]:
    return []


def _keep(obj: dict[str, Any]) -> None:
    """Kinds kube-apiserver stores as submitted."""


@dataclass(frozen=True)
class Kind:
    """One stored kind: names, fields, and the checks kube-apiserver makes before storing it."""

    kind: str
    resource: str
    group: str
    name_problems: Callable[[str], list[str]]
    fields: tuple[str, ...]  # top-level fields an object keeps besides kind, apiVersion and metadata
    check: Callable[[dict[str, Any]], list[Cause]] = _no_causes
    check_update: Callable[[dict[str, Any], dict[str, Any]], list[Cause]] = _no_update_causes
    default: Callable[[dict[str, Any]], None] = _keep
    returns_deleted: bool = False  # DELETE answers the object, not a Success Status
    create_on_update: bool = False  # PUT of a missing object creates it
    always: tuple[str, ...] = field(default=())  # fields present even when empty (no omitempty in Go)

    @property
    def api_version(self) -> str:
        return f"{self.group}/v1" if self.group else "v1"


# -- Roles and RoleBindings --------------------------------------------------------------------


def _check_rules(role: dict[str, Any]) -> list[Cause]:
    """``validatePolicyRule`` for a namespaced Role."""
    causes: list[Cause] = []
    for i, rule in enumerate(role.get("rules") or []):
        at = f"rules[{i}]"
        if not isinstance(rule, dict):
            raise bad_request(f"the object provided is unrecognized: rules[{i}] is not a PolicyRule")
        if not rule.get("verbs"):
            causes.append(
                (f"{at}.verbs", "FieldValueRequired", "Required value: verbs must contain at least one value")
            )
        if rule.get("nonResourceURLs"):
            urls = "[]string{" + ", ".join(f'"{u}"' for u in rule["nonResourceURLs"]) + "}"
            causes.append(
                (
                    f"{at}.nonResourceURLs",
                    "FieldValueInvalid",
                    f"Invalid value: {urls}: namespaced rules cannot apply to non-resource URLs",
                )
            )
            if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
                causes.append(
                    (
                        f"{at}.nonResourceURLs",
                        "FieldValueInvalid",
                        f"Invalid value: {urls}: rules cannot apply to both regular resources and non-resource URLs",
                    )
                )
            continue
        if not rule.get("apiGroups"):
            causes.append(
                (
                    f"{at}.apiGroups",
                    "FieldValueRequired",
                    "Required value: resource rules must supply at least one api group",
                )
            )
        if not rule.get("resources"):
            causes.append(
                (
                    f"{at}.resources",
                    "FieldValueRequired",
                    "Required value: resource rules must supply at least one resource",
                )
            )
        if rule.get("resourceNames") and len(rule.get("resources") or []) > 1:
            causes.append(
                (
                    f"{at}.resourceNames",
                    "FieldValueRequired",
                    "Required value: resource names cannot apply to multiple resources",
                )
            )
    return causes


def _default_binding(binding: dict[str, Any]) -> None:
    """rbac/v1 defaulting: roleRef.apiGroup and User/Group subjects' apiGroup are the RBAC group when unset."""
    ref = binding.get("roleRef")
    if isinstance(ref, dict) and not ref.get("apiGroup"):
        ref["apiGroup"] = RBAC_GROUP
    for subject in binding.get("subjects") or []:
        if isinstance(subject, dict) and subject.get("kind") in ("User", "Group") and not subject.get("apiGroup"):
            subject["apiGroup"] = RBAC_GROUP


def _check_binding(binding: dict[str, Any]) -> list[Cause]:
    """``ValidateRoleBinding``: the roleRef and each subject."""
    causes: list[Cause] = []
    given = binding.get("roleRef")
    ref: dict[str, Any] = given if isinstance(given, dict) else {}
    group, kind, name = str(ref.get("apiGroup") or ""), str(ref.get("kind") or ""), str(ref.get("name") or "")
    if group != RBAC_GROUP:
        causes.append(("roleRef.apiGroup", "FieldValueNotSupported", _unsupported(group, (RBAC_GROUP,))))
    if kind not in ("Role", "ClusterRole"):
        causes.append(("roleRef.kind", "FieldValueNotSupported", _unsupported(kind, ("Role", "ClusterRole"))))
    if not name:
        causes.append(("roleRef.name", "FieldValueRequired", "Required value"))
    causes += [("roleRef.name", "FieldValueInvalid", _invalid_value(name, p)) for p in path_segment_problems(name)]
    for i, subject in enumerate(binding.get("subjects") or []):
        causes += _check_subject(subject if isinstance(subject, dict) else {}, f"subjects[{i}]")
    return causes


def _check_subject(subject: Mapping[str, Any], at: str) -> list[Cause]:
    causes: list[Cause] = []
    kind, name, group = str(subject.get("kind") or ""), str(subject.get("name") or ""), subject.get("apiGroup") or ""
    if not name:
        causes.append((f"{at}.name", "FieldValueRequired", "Required value"))
    if kind == "ServiceAccount":
        if name:
            problems = dns_subdomain_problems(name)
            causes += [(f"{at}.name", "FieldValueInvalid", _invalid_value(name, p)) for p in problems]
        if group:
            causes.append((f"{at}.apiGroup", "FieldValueNotSupported", _unsupported(group, ("",))))
    elif kind in ("User", "Group"):
        if not name:
            what = "user" if kind == "User" else "group"
            causes.append((f"{at}.name", "FieldValueInvalid", _invalid_value(name, f"{what} name cannot be empty")))
        if group != RBAC_GROUP:
            causes.append((f"{at}.apiGroup", "FieldValueNotSupported", _unsupported(group, (RBAC_GROUP,))))
    else:
        supported = ("ServiceAccount", "User", "Group")
        causes.append((f"{at}.kind", "FieldValueNotSupported", _unsupported(kind, supported)))
    return causes


_ROLE_REF_FIELDS = (("APIGroup", "apiGroup"), ("Kind", "kind"), ("Name", "name"))


def _check_binding_update(old: dict[str, Any], new: dict[str, Any]) -> list[Cause]:
    if old.get("roleRef") == new.get("roleRef"):
        return []
    ref = new.get("roleRef") or {}
    # The value is printed as Go prints the internal struct (%#v).
    shown = "rbac.RoleRef{" + ", ".join(f'{go}:"{ref.get(key) or ""}"' for go, key in _ROLE_REF_FIELDS) + "}"
    return [("roleRef", "FieldValueInvalid", f"Invalid value: {shown}: cannot change roleRef")]


# -- ConfigMaps ----------------------------------------------------------------------------------


def _config_key_problems(key: str) -> list[str]:
    out = ["must be no more than 253 characters"] if len(key) > 253 else []
    if not _CONFIG_KEY.match(key):
        out.append(_CONFIG_KEY_HELP)
    if key in (".", ".."):
        out.append(f"must not be '{key}'")
    elif key.startswith(".."):
        out.append("must not start with '..'")
    return out


def _check_config_map(cm: dict[str, Any]) -> list[Cause]:
    """``ValidateConfigMap``: every key of ``data`` and ``binaryData``, and no key in both."""
    causes: list[Cause] = []
    data, binary = cm.get("data") or {}, cm.get("binaryData") or {}
    for bag, keys in (("data", data), ("binaryData", binary)):
        if not isinstance(keys, dict):
            raise bad_request(f"json: cannot unmarshal {type(keys).__name__} into Go struct field ConfigMap.{bag}")
        for key in sorted(keys):
            value = keys[key]
            if not isinstance(value, str):
                raise bad_request(
                    f"json: cannot unmarshal {type(value).__name__} into Go struct field ConfigMap.{bag} of type "
                    + ("string" if bag == "data" else "[]uint8")
                )
            causes += [
                (f"{bag}[{key}]", "FieldValueInvalid", _invalid_value(key, p)) for p in _config_key_problems(key)
            ]
            if bag == "data" and key in binary:
                causes.append(
                    (f"data[{key}]", "FieldValueInvalid", _invalid_value(key, "duplicate of key present in binaryData"))
                )
    return causes


def _check_config_map_update(old: dict[str, Any], new: dict[str, Any]) -> list[Cause]:
    """``ValidateConfigMapUpdate``: an immutable config map keeps its data and stays immutable."""
    if not old.get("immutable"):
        return []
    frozen = "Forbidden: field is immutable when `immutable` is set"
    causes: list[Cause] = []
    if not new.get("immutable"):
        causes.append(("immutable", "FieldValueForbidden", frozen))
    for bag in ("data", "binaryData"):
        if (old.get(bag) or None) != (new.get(bag) or None):
            causes.append((bag, "FieldValueForbidden", frozen))
    return causes


NAMESPACE = Kind("Namespace", "namespaces", "", dns_label_problems, ("spec", "status"), returns_deleted=True)
SERVICE_ACCOUNT = Kind(
    "ServiceAccount",
    "serviceaccounts",
    "",
    dns_subdomain_problems,
    ("secrets", "imagePullSecrets", "automountServiceAccountToken"),
    returns_deleted=True,
)
ROLE = Kind(
    "Role",
    "roles",
    RBAC_GROUP,
    path_segment_problems,
    ("rules",),
    check=_check_rules,
    create_on_update=True,
    always=("rules",),
)
ROLE_BINDING = Kind(
    "RoleBinding",
    "rolebindings",
    RBAC_GROUP,
    path_segment_problems,
    ("subjects", "roleRef"),
    check=_check_binding,
    check_update=_check_binding_update,
    default=_default_binding,
    create_on_update=True,
)
CONFIG_MAP = Kind(
    "ConfigMap",
    "configmaps",
    "",
    dns_subdomain_problems,
    ("immutable", "data", "binaryData"),
    check=_check_config_map,
    check_update=_check_config_map_update,
)
STORED = (SERVICE_ACCOUNT, ROLE, ROLE_BINDING, CONFIG_MAP)


# -- what every submitted object goes through ----------------------------------------------------


def read_body(submitted: Any, kind: Kind, namespace: str) -> dict[str, Any]:
    """A copy of a submitted object of ``kind`` for ``namespace`` ("" for a cluster-scoped kind), or 400.

    ``kind`` and ``apiVersion`` may be left out (the URL says them); when
    given they must match. A namespace in the body must be the URL's.
    """
    if not isinstance(submitted, dict):
        raise bad_request(f"the object provided is unrecognized (must be of type {kind.kind})")
    doc: dict[str, Any] = {str(k): copy.deepcopy(v) for k, v in submitted.items()}
    if doc.get("kind") not in (None, "", kind.kind):
        raise bad_request(f"the object provided is unrecognized (must be of type {kind.kind}): kind {doc['kind']!r}")
    if doc.get("apiVersion") not in (None, "", kind.api_version):
        raise bad_request(
            f"the API version in the data ({doc['apiVersion']}) does not match the expected API version "
            f"({kind.api_version})"
        )
    meta = doc.get("metadata")
    if meta is None:
        meta = doc["metadata"] = {}
    if not isinstance(meta, dict):
        raise bad_request(f"the object provided is unrecognized (must be of type {kind.kind}): metadata")
    if namespace:
        if meta.get("namespace") and meta["namespace"] != namespace:
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    kind.default(doc)
    return doc


def generated_name(base: str) -> str:
    """``metadata.generateName`` made into a name: the base (cut to 58 characters) and 5 random characters."""
    return base[:58] + "".join(secrets.choice(_GENERATED) for _ in range(5))


def check_name(kind: Kind, doc: dict[str, Any]) -> str:
    """The object's name, generated from ``generateName`` when it has none; 422 when it is missing or invalid."""
    meta = doc["metadata"]
    name = str(meta.get("name") or "")
    if not name and meta.get("generateName"):
        name = meta["name"] = generated_name(str(meta["generateName"]))
    if not name:
        raise invalid_object(
            kind, "", [("metadata.name", "FieldValueRequired", "Required value: name or generateName is required")]
        )
    problems = kind.name_problems(name)
    if problems:
        raise invalid_object(
            kind, name, [("metadata.name", "FieldValueInvalid", _invalid_value(name, p)) for p in problems]
        )
    return name


def invalid_object(kind: Kind, name: str, causes: list[Cause]) -> ApiError:
    return invalid(kind.kind, name, causes, kind.group)


def validate(kind: Kind, doc: dict[str, Any], old: dict[str, Any] | None = None) -> None:
    """422 with every cause kube-apiserver finds in ``doc`` (and in changing ``old`` into it)."""
    causes = kind.check(doc) + (kind.check_update(old, doc) if old is not None else [])
    if causes:
        raise invalid_object(kind, doc["metadata"]["name"], causes)


def list_item(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy of an object as a list carries it: kube-apiserver leaves kind and apiVersion to the list."""
    return {k: copy.deepcopy(v) for k, v in obj.items() if k not in ("kind", "apiVersion")}
