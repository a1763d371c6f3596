"""Bearer tokens, client certificates and RBAC-like grants for the stand-in (a fake for tests).

A token handed out by the test names a user and the rules granted to it. A
rule grants verbs on resources (``pods``, ``pods/exec``, ``events``, ``*``)
of some API groups in some namespaces, like a Role bound in a namespace (or a
ClusterRole when ``namespaces`` is None). Tokens issued through the
TokenRequest API, and the Roles and RoleBindings stored in the stand-in, come
from a :class:`Directory` the authorizer consults as well. Refusals carry
kube-apiserver's exact wording, because the engine under test shows them to
students.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .status import forbidden, unauthorized

ALL = "*"

STUDENT_RESOURCES = ("pods", "pods/exec", "pods/portforward", "pods/log", "events")
STUDENT_VERBS = ("get", "list", "watch", "create", "patch", "delete")


@dataclass(frozen=True)
class Rule:
    """Grant ``verbs`` on ``resources`` (``"pods/exec"`` for a subresource) of ``api_groups`` in ``namespaces``.

    ``namespaces=None`` grants everywhere, cluster-scoped requests included;
    ``resource_names`` limits the grant to named objects, as RBAC's
    ``resourceNames`` does; ``api_groups`` defaults to the core group ``""``.
    """

    verbs: tuple[str, ...]
    resources: tuple[str, ...]
    namespaces: tuple[str, ...] | None = None
    resource_names: tuple[str, ...] = ()
    api_groups: tuple[str, ...] = ("",)

    @classmethod
    def from_policy_rule(cls, rule: Mapping[str, Any], namespace: str | None) -> Rule:
        """Read an RBAC PolicyRule mapping (``verbs``, ``resources``, ``resourceNames``, ``apiGroups``).

        A mapping without ``apiGroups`` means the core group, which keeps the
        rules tests write short; a stored Role must name its groups.
        """
        return cls(
            verbs=tuple(rule.get("verbs") or ()),
            resources=tuple(rule.get("resources") or ()),
            namespaces=None if namespace is None else (namespace,),
            resource_names=tuple(rule.get("resourceNames") or ()),
            api_groups=tuple(rule.get("apiGroups", [""]) or ()),
        )

    def allows(self, verb: str, resource: str, namespace: str, name: str, group: str = "") -> bool:
        if ALL not in self.api_groups and group not in self.api_groups:
            return False
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


ADMIN_RULES = (Rule(verbs=(ALL,), resources=(ALL,), api_groups=(ALL,)),)
MASTERS = "system:masters"  # the group kube-apiserver lets do anything

SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"


def service_account_user(namespace: str, name: str) -> str:
    """The user name a service account's token authenticates as."""
    return f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"


def groups_of(user: str) -> tuple[str, ...]:
    """The groups kube-apiserver puts a user in: every authenticated user, and a service account's own."""
    if user.startswith(SERVICE_ACCOUNT_PREFIX):
        namespace = user[len(SERVICE_ACCOUNT_PREFIX) :].split(":", 1)[0]
        return ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated")
    return ("system:authenticated",)


def binds(subject: Mapping[str, Any], user: str, binding_namespace: str) -> bool:
    """Whether a RoleBinding subject names ``user``; a ServiceAccount without a namespace is the binding's own."""
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "ServiceAccount":
        return user == service_account_user(subject.get("namespace") or binding_namespace, str(name))
    if kind == "User":
        return user == name
    if kind == "Group":
        return name in groups_of(user)
    return False


@dataclass(frozen=True)
class Identity:
    """Who a token belongs to and what it may do besides what stored RoleBindings grant the user."""

    user: str
    rules: tuple[Rule, ...]

    def may(self, verb: str, resource: str, subresource: str, namespace: str, name: str, group: str = "") -> bool:
        full = f"{resource}/{subresource}" if subresource else resource
        return any(r.allows(verb, full, namespace, name, group) for r in self.rules)


class Directory(Protocol):
    """What the authorizer asks the stand-in's stored objects: issued tokens and bound Roles."""

    def identity_for(self, token: str) -> Identity | None:
        """The identity of a token issued through the TokenRequest API, while it is valid."""

    def bound_rules(self, user: str, namespace: str) -> Iterable[Rule]:
        """The rules of the Roles that RoleBindings in ``namespace`` grant ``user``."""


class Authorizer:
    """The token table; safe to extend from the test thread while the server runs.

    Authentication and authorization run on the stand-in's event loop, as
    does the :class:`Directory`, so only the table needs the lock.
    """

    def __init__(self) -> None:
        self._tokens: dict[str, Identity] = {}
        self._lock = threading.Lock()
        self._directory: Directory | None = None

    def add(self, token: str, identity: Identity) -> None:
        with self._lock:
            self._tokens[token] = identity

    def consult(self, directory: Directory) -> None:
        """Also accept the tokens ``directory`` issued and grant what its RoleBindings bind."""
        self._directory = directory

    def authenticate(self, header: str | None, certificate: tuple[str, tuple[str, ...]] | None = None) -> Identity:
        """The identity of a verified client certificate (user, groups), else of a ``Bearer`` header, else 401.

        As in kube-apiserver, the certificate is tried first; its user may do what RoleBindings grant
        it, and everything in the group ``system:masters``.
        """
        if certificate is not None:
            user, groups = certificate
            return Identity(user, ADMIN_RULES if MASTERS in groups else ())
        if not header or not header.startswith("Bearer "):
            raise unauthorized()
        offered = header[len("Bearer ") :].strip()
        with self._lock:
            items = list(self._tokens.items())
        for token, identity in items:
            if hmac.compare_digest(token.encode(), offered.encode()):
                return identity
        issued = self._directory.identity_for(offered) if self._directory is not None and offered else None
        if issued is None:
            raise unauthorized()
        return issued

    def authorize(
        self,
        identity: Identity,
        verbs: Iterable[str],
        resource: str,
        subresource: str,
        namespace: str,
        name: str,
        group: str = "",
    ) -> None:
        """Raise 403 for the first of ``verbs`` the identity may not use here (in API group ``group``)."""
        bound: list[Rule] | None = None
        full = f"{resource}/{subresource}" if subresource else resource
        for verb in verbs:
            if identity.may(verb, resource, subresource, namespace, name, group):
                continue
            if bound is None:
                found = self._directory.bound_rules(identity.user, namespace) if self._directory and namespace else ()
                bound = list(found)
            if not any(r.allows(verb, full, namespace, name, group) for r in bound):
                raise forbidden(identity.user, verb, resource, subresource, namespace, name, group)
