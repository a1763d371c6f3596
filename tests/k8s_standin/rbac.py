"""Bearer tokens and RBAC-like grants for the stand-in (a fake for tests).

Each token names a user and the rules granted to it. A rule grants verbs on
resources (``pods``, ``pods/exec``, ``events``, ``*``) in some namespaces,
like a Role bound in a namespace (or a ClusterRole when ``namespaces`` is
None). Refusals carry kube-apiserver's exact wording, because the engine
under test shows them to students.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .status import forbidden, unauthorized

ALL = "*"

STUDENT_RESOURCES = ("pods", "pods/exec", "pods/portforward", "pods/log", "events")
STUDENT_VERBS = ("get", "list", "watch", "create", "patch", "delete")


@dataclass(frozen=True)
class Rule:
    """Grant ``verbs`` on ``resources`` (``"pods/exec"`` for a subresource) in ``namespaces``.

    ``namespaces=None`` grants everywhere; ``resource_names`` limits the
    grant to named objects, as RBAC's ``resourceNames`` does.
    """

    verbs: tuple[str, ...]
    resources: tuple[str, ...]
    namespaces: tuple[str, ...] | None = None
    resource_names: tuple[str, ...] = ()

    @classmethod
    def from_policy_rule(cls, rule: Mapping[str, Any], namespace: str | None) -> Rule:
        """Read an RBAC PolicyRule mapping (``verbs``, ``resources``, ``resourceNames``, ``apiGroups``)."""
        groups = tuple(rule.get("apiGroups", [""]))
        if "" not in groups and ALL not in groups:
            # Only the core group exists here: a rule for another group grants nothing.
            return cls(verbs=(), resources=())
        return cls(
            verbs=tuple(rule.get("verbs", ())),
            resources=tuple(rule.get("resources", ())),
            namespaces=None if namespace is None else (namespace,),
            resource_names=tuple(rule.get("resourceNames", ())),
        )

    def allows(self, verb: str, resource: str, namespace: str, name: str) -> bool:
        if ALL not in self.verbs and verb not in self.verbs:
            return False
        if ALL not in self.resources and resource not in self.resources:
            base = resource.split("/", 1)[0]
            if f"{base}/{ALL}" not in self.resources:
                return False
        if self.namespaces is not None and namespace not in self.namespaces:
            return False
        return not self.resource_names or name in self.resource_names


def student_rules(namespace: str) -> tuple[Rule, ...]:
    """What a student gets by default: everything the lab needs, in their namespace only."""
    return (Rule(verbs=STUDENT_VERBS, resources=STUDENT_RESOURCES, namespaces=(namespace,)),)


ADMIN_RULES = (Rule(verbs=(ALL,), resources=(ALL,)),)


@dataclass(frozen=True)
class Identity:
    """Who a token belongs to and what it may do."""

    user: str
    rules: tuple[Rule, ...]

    def may(self, verb: str, resource: str, subresource: str, namespace: str, name: str) -> bool:
        full = f"{resource}/{subresource}" if subresource else resource
        return any(r.allows(verb, full, namespace, name) for r in self.rules)


class Authorizer:
    """The token table; safe to extend from the test thread while the server runs."""

    def __init__(self) -> None:
        self._tokens: dict[str, Identity] = {}
        self._lock = threading.Lock()

    def add(self, token: str, identity: Identity) -> None:
        with self._lock:
            self._tokens[token] = identity

    def authenticate(self, header: str | None) -> Identity:
        """The identity of an ``Authorization: Bearer ...`` header, or 401."""
        if not header or not header.startswith("Bearer "):
            raise unauthorized()
        offered = header[len("Bearer ") :].strip()
        with self._lock:
            items = list(self._tokens.items())
        for token, identity in items:
            if hmac.compare_digest(token.encode(), offered.encode()):
                return identity
        raise unauthorized()

    @staticmethod
    def authorize(
        identity: Identity, verbs: Iterable[str], resource: str, subresource: str, namespace: str, name: str
    ) -> None:
        """Raise 403 for the first of ``verbs`` the identity may not use here."""
        for verb in verbs:
            if not identity.may(verb, resource, subresource, namespace, name):
                raise forbidden(identity.user, verb, resource, subresource, namespace, name)
