"""Namespaces and what lives in them besides pods, kept in step with the pods, and who they let do what (a fake).

This is where the stand-in's stores meet: a new namespace gets what a
cluster's controllers put in every namespace (the ``default`` service account
and the ``kube-root-ca.crt`` config map); deleting a namespace removes its
service accounts, roles, role bindings and config maps at once, deletes its
pods, and drops the namespace when they are gone. It is also the
authorizer's :class:`~rbac.Directory`: a token from the TokenRequest API
authenticates as its service account while that account (the same uid)
exists and the token is unexpired, and a RoleBinding grants the rules of the
Role it refers to, in its own namespace, to the subjects it names.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .kinds import CONFIG_MAP, ROLE, ROLE_BINDING, SERVICE_ACCOUNT
from .namespaces import Namespaces
from .pods import PodStore
from .rbac import Identity, Rule, binds, service_account_user
from .status import not_found
from .store import ObjectStore
from .tokens import TokenIssuer, check_request_name, read_token_request, requested_seconds, token_request

log = logging.getLogger("k8s_standin")

ROOT_CA = "kube-root-ca.crt"
ROOT_CA_DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the "
    "internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes "
    "clusters."
)
NO_CA = "# this Kubernetes API stand-in serves plain HTTP: there is no certificate authority\n"


class Accounts:
    """Namespaces, the objects in them, issued tokens, and the grants of stored RBAC objects."""

    def __init__(
        self,
        pods: PodStore,
        namespaces: Namespaces,
        objects: ObjectStore,
        issuer: TokenIssuer,
        ca_pem: str = NO_CA,
    ) -> None:
        self.ca_pem = ca_pem
        self.pods = pods
        self.namespaces = namespaces
        self.objects = objects
        self.issuer = issuer
        self._emptying: set[asyncio.Task[None]] = set()
        for name in namespaces.names:
            self._furnish(name)

    async def close(self) -> None:
        """Stop waiting for namespaces to empty (the pod store's own close removes the pods)."""
        for task in list(self._emptying):
            task.cancel()
        await asyncio.gather(*self._emptying, return_exceptions=True)

    # -- namespaces -----------------------------------------------------------------------

    def create_namespace(self, doc: Any) -> dict[str, Any]:
        created = self.namespaces.create(doc)
        self._furnish(created["metadata"]["name"])
        return created

    def _furnish(self, namespace: str) -> None:
        """What a cluster's controllers create in every new namespace."""
        self.objects.create(SERVICE_ACCOUNT, namespace, {"metadata": {"name": "default"}})
        self.objects.create(
            CONFIG_MAP,
            namespace,
            {
                "metadata": {"name": ROOT_CA, "annotations": {"kubernetes.io/description": ROOT_CA_DESCRIPTION}},
                "data": {"ca.crt": self.ca_pem},
            },
        )

    def delete_namespace(self, name: str) -> dict[str, Any]:
        """Mark it Terminating, remove its objects, and let it go once its pods are gone."""
        terminating = self.namespaces.begin_termination(name)
        self.objects.drop_namespace(name)
        task = asyncio.get_running_loop().create_task(self._empty(name))
        self._emptying.add(task)
        task.add_done_callback(self._emptying.discard)
        return terminating

    async def _empty(self, name: str) -> None:
        try:
            await self.pods.delete_namespace(name)
        except Exception:
            log.exception("stand-in: deleting the pods of namespace %s failed", name)
        self.namespaces.remove(name)

    # -- tokens -----------------------------------------------------------------------------

    def request_token(self, namespace: str, name: str, doc: Any) -> dict[str, Any]:
        """TokenRequest, checked in kube-apiserver's order: body, namespace, name, account, lifetime."""
        request = read_token_request(doc, namespace)
        self.namespaces.admit_create(namespace, "serviceaccounts", name)
        check_request_name(request, name)
        account = self.objects.find(SERVICE_ACCOUNT, namespace, name)
        if account is None:
            raise not_found("serviceaccounts", name)
        seconds = requested_seconds(request)
        now = self.issuer.clock.now()
        token, expires = self.issuer.issue(namespace, name, account["metadata"]["uid"], seconds)
        return token_request(namespace, name, request, seconds, token, expires, now)

    # -- the authorizer's Directory ------------------------------------------------------------

    def identity_for(self, token: str) -> Identity | None:
        grant = self.issuer.holder(token)
        if grant is None:
            return None
        account = self.objects.find(SERVICE_ACCOUNT, grant.namespace, grant.name)
        if account is None or account["metadata"]["uid"] != grant.uid:
            return None  # the account was deleted (perhaps with its namespace), or replaced by a namesake
        return Identity(service_account_user(grant.namespace, grant.name), ())

    def bound_rules(self, user: str, namespace: str) -> list[Rule]:
        """The rules of each Role in ``namespace`` that a RoleBinding there binds to ``user``.

        A binding to a ClusterRole grants nothing here: the stand-in has no ClusterRoles.
        """
        rules: list[Rule] = []
        for binding in self.objects.in_namespace(ROLE_BINDING, namespace):
            ref = binding.get("roleRef") or {}
            if ref.get("kind") != "Role" or not any(binds(s, user, namespace) for s in binding.get("subjects") or []):
                continue
            role = self.objects.find(ROLE, namespace, str(ref.get("name")))
            if role is not None:
                rules += [Rule.from_policy_rule(r, namespace) for r in role.get("rules") or []]
        return rules
