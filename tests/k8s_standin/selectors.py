"""Label and field selectors, as list and watch requests send them (a fake's subset).

Label selectors support ``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``,
``k in (a,b)`` and ``k notin (a,b)``, comma-separated (all must hold).
Field selectors support ``=``, ``==`` and ``!=`` on the fields each resource
declares; other fields are refused with kube-apiserver's message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .status import bad_request

Match = Callable[[dict[str, Any]], bool]

_SET_EXPR = re.compile(r"^\s*(!?)\s*([A-Za-z0-9._/-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQ_EXPR = re.compile(r"^\s*([A-Za-z0-9._/-]+)\s*(==|!=|=)\s*([A-Za-z0-9._-]*)\s*$")


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside ``( ... )``."""
    parts: list[str] = []
    depth = 0
    cur: list[str] = []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p for p in parts if p.strip()]


LabelTest = Callable[[Mapping[str, str]], bool]


def _label_equals(key: str, value: str, negate: bool) -> LabelTest:
    return lambda labels: (labels.get(key) == value) != negate


def _label_in(key: str, values: set[str], negate: bool) -> LabelTest:
    return lambda labels: (labels.get(key) in values) != negate


def _label_exists(key: str, negate: bool) -> LabelTest:
    return lambda labels: (key in labels) != negate


def label_selector(text: str | None) -> Match:
    """A predicate on an object's ``metadata.labels``; 400 for a selector it cannot parse."""
    if not text:
        return lambda obj: True
    tests: list[LabelTest] = []
    for part in _split_top_level(text):
        eq = _EQ_EXPR.match(part)
        if eq:
            key, op, value = eq.groups()
            tests.append(_label_equals(key, value, negate=op == "!="))
            continue
        st = _SET_EXPR.match(part)
        if not st or (st.group(1) and st.group(3)):
            raise bad_request(f"unable to parse requirement: {part.strip()!r}")
        neg, key, op, values = st.groups()
        if op:
            allowed = {v.strip() for v in values.split(",") if v.strip()}
            tests.append(_label_in(key, allowed, negate=op == "notin"))
        else:
            tests.append(_label_exists(key, negate=bool(neg)))

    def match(obj: dict[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(t(labels) for t in tests)

    return match


def _field_equals(get: Callable[[dict[str, Any]], Any], value: str, negate: bool) -> Match:
    return lambda obj: (str(get(obj) or "") == value) != negate


def field_selector(text: str | None, fields: Mapping[str, Callable[[dict[str, Any]], Any]]) -> Match:
    """A predicate on the fields a resource supports; 400 ``field label not supported`` otherwise."""
    if not text:
        return lambda obj: True
    tests: list[Match] = []
    for part in _split_top_level(text):
        m = re.match(r"^\s*([A-Za-z0-9._-]+)\s*(==|!=|=)\s*(.*?)\s*$", part)
        if not m:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part.strip()}'")
        key, op, value = m.groups()
        if key not in fields:
            raise bad_request(f"field label not supported: {key}")
        tests.append(_field_equals(fields[key], value, negate=op == "!="))
    return lambda obj: all(t(obj) for t in tests)


def _path(*keys: str) -> Callable[[dict[str, Any]], Any]:
    def get(obj: dict[str, Any]) -> Any:
        cur: Any = obj
        for k in keys:
            cur = (cur or {}).get(k)
        return cur

    return get


POD_FIELDS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "metadata.name": _path("metadata", "name"),
    "metadata.namespace": _path("metadata", "namespace"),
    "spec.nodeName": _path("spec", "nodeName"),
    "spec.restartPolicy": _path("spec", "restartPolicy"),
    "spec.serviceAccountName": _path("spec", "serviceAccountName"),
    "status.phase": _path("status", "phase"),
}

EVENT_FIELDS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "metadata.name": _path("metadata", "name"),
    "metadata.namespace": _path("metadata", "namespace"),
    "involvedObject.kind": _path("involvedObject", "kind"),
    "involvedObject.namespace": _path("involvedObject", "namespace"),
    "involvedObject.name": _path("involvedObject", "name"),
    "involvedObject.uid": _path("involvedObject", "uid"),
    "involvedObject.apiVersion": _path("involvedObject", "apiVersion"),
    "involvedObject.resourceVersion": _path("involvedObject", "resourceVersion"),
    "involvedObject.fieldPath": _path("involvedObject", "fieldPath"),
    "reason": _path("reason"),
    "reportingComponent": _path("reportingComponent"),
    "source": _path("source", "component"),
    "type": _path("type"),
}

# Every kind supports these two; namespaces add their phase.
OBJECT_FIELDS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "metadata.name": _path("metadata", "name"),
    "metadata.namespace": _path("metadata", "namespace"),
}

NAMESPACE_FIELDS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "metadata.name": _path("metadata", "name"),
    "status.phase": _path("status", "phase"),
}


def named_in(selector: str | None) -> str:
    """The name a list/watch narrows to with ``metadata.name=X``, which RBAC treats as a named request."""
    for part in (selector or "").split(","):
        key, _, value = part.partition("=")
        if key.strip() == "metadata.name" and not value.startswith("="):
            return value.strip()
        if key.strip() == "metadata.name" and value.startswith("="):
            return value[1:].strip()
    return ""
