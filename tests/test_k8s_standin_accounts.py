"""The API stand-in's namespaces, service accounts, tokens, RBAC objects and config maps, through the official client.

``labkit class`` creates, per student, a namespace, a service account, a
Role and a RoleBinding, and hands out a short-lived TokenRequest token; the
kit keeps each student's progress in a ConfigMap. These tests check that the
stand-in (``tests/k8s_standin``) serves all of that as kube-apiserver does:
shapes, status codes and exact messages, and a token that can do what its
Role allows, nothing else, and nothing once it has expired or its account or
namespace is gone. Each test starts its own stand-in; pods made here are
named ``sia-*``.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

kubernetes = pytest.importorskip("kubernetes")
pytest.importorskip("aiohttp")

from kubernetes import client, config  # noqa: E402
from kubernetes.client.exceptions import ApiException  # noqa: E402

from tests.k8s_standin import KubernetesStandIn  # noqa: E402

pytestmark = pytest.mark.podman

RBAC = "rbac.authorization.k8s.io"
CLASS = "lab-ada"  # the namespace a test's student works in


# -- helpers -----------------------------------------------------------------------------


class Clients:
    """API clients made from kubeconfig files, closed when the test ends.

    They are typed ``Any``: the tests send plain dicts, as ``labkit class``
    does, which the client's typed signatures do not describe.
    """

    def __init__(self, api: KubernetesStandIn, tmp: Path) -> None:
        self.api = api
        self.tmp = tmp
        self._open: list[Any] = []

    def _client(self, kubeconfig: str) -> Any:
        made = config.new_client_from_config(config_file=kubeconfig)
        self._open.append(made)
        return made

    def core(self, kubeconfig: str | None = None) -> Any:
        return client.CoreV1Api(self._client(kubeconfig or self.api.kubeconfig))

    def rbac(self, kubeconfig: str | None = None) -> Any:
        return client.RbacAuthorizationV1Api(self._client(kubeconfig or self.api.kubeconfig))

    def _cluster(self) -> dict[str, Any]:
        """The stand-in's cluster entry (its address and CA), as the administrator's kubeconfig has it."""
        admin = yaml.safe_load(Path(self.api.kubeconfig).read_text(encoding="utf-8"))
        return dict(admin["clusters"][0]["cluster"])

    def with_token(self, token: str, namespace: str) -> str:
        """A kubeconfig of our own: the stand-in's cluster, this bearer token, this namespace."""
        path = self.tmp / f"token-{len(self._open)}-{namespace}.kubeconfig"
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "standin", "cluster": self._cluster()}],
            "users": [{"name": "holder", "user": {"token": token}}],
            "contexts": [
                {"name": "holder", "context": {"cluster": "standin", "user": "holder", "namespace": namespace}}
            ],
            "current-context": "holder",
        }
        path.write_text(yaml.safe_dump(doc), encoding="utf-8")
        return str(path)

    def close(self) -> None:
        while self._open:
            self._open.pop().close()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[KubernetesStandIn]:
    with KubernetesStandIn(tmp_dir=tmp_path / "standin") as stand_in:
        yield stand_in


@pytest.fixture
def clients(api: KubernetesStandIn, tmp_path: Path) -> Iterator[Clients]:
    made = Clients(api, tmp_path)
    yield made
    made.close()


def failure(call: Callable[[], Any]) -> tuple[int, str, str]:
    """The (HTTP status, reason, message) an API call fails with."""
    with pytest.raises(ApiException) as info:
        call()
    assert info.value.body is not None, info.value
    status = json.loads(info.value.body)
    assert (status["kind"], status["status"], status["code"]) == ("Status", "Failure", info.value.status)
    return info.value.status, status["reason"], status["message"]


def names(listed: Any) -> list[str]:
    return [item.metadata.name for item in listed.items]


def student_role(namespace: str = CLASS) -> dict[str, Any]:
    """A Role like the one ``labkit class`` gives a student: pods, and a progress config map by name."""
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "Role",
        "metadata": {"name": "labkit-student", "namespace": namespace},
        "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": ["labkit-progress"],
                "verbs": ["get", "patch", "update"],
            },
        ],
    }


def binding(account: str, namespace: str = CLASS) -> dict[str, Any]:
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "labkit-student", "namespace": namespace},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
        "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "labkit-student"},
    }


def make_student(clients: Clients, namespace: str = CLASS, account: str = "ada") -> None:
    """What ``labkit class create`` makes for one student, with the administrator's kubeconfig."""
    core, rbac = clients.core(), clients.rbac()
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    core.create_namespaced_service_account(namespace, {"metadata": {"name": account}})
    rbac.create_namespaced_role(namespace, student_role(namespace))
    rbac.create_namespaced_role_binding(namespace, binding(account, namespace))


def token_for(clients: Clients, account: str = "ada", namespace: str = CLASS, seconds: int | None = 600) -> Any:
    spec: dict[str, Any] = {"audiences": []}
    if seconds is not None:
        spec["expirationSeconds"] = seconds
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
    return clients.core().create_namespaced_service_account_token(account, namespace, body)


def refused(user: str, verb: str, resource: str, where: str, who: str | None = None, group: str = "") -> str:
    """RBAC's message; ``where`` is a namespace, or "" for the cluster scope."""
    scope = f'in the namespace "{where}"' if where else "at the cluster scope"
    return (
        f"{who or (resource + ('.' + group if group else ''))} is forbidden: "
        f'User "{user}" cannot {verb} resource "{resource}" in API group "{group}" {scope}'
    )


def wait_until_gone(core: Any, namespace: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            core.read_namespace(namespace)
        except ApiException as exc:
            assert exc.status == 404, exc
            return
        assert time.monotonic() < deadline, f"namespace {namespace} still there after {timeout:g} s"
        time.sleep(0.1)


def podman_pods() -> list[str]:
    out = subprocess.run(["podman", "pod", "ps", "--format", "{{.Name}}"], capture_output=True, text=True)
    return out.stdout.split()


# -- namespaces ----------------------------------------------------------------------------


def test_a_namespace_is_created_listed_by_label_read_and_refused_twice(clients: Clients) -> None:
    core = clients.core()
    labels = {"app.kubernetes.io/part-of": "labkit-class", "labkit/student": "ada"}
    made = core.create_namespace(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": CLASS, "labels": labels}}
    )
    assert made.metadata.labels == {**labels, "kubernetes.io/metadata.name": CLASS}
    assert made.metadata.uid and made.metadata.resource_version and made.metadata.creation_timestamp
    assert (made.status.phase, made.spec.finalizers) == ("Active", ["kubernetes"])
    assert names(core.list_namespace()) == ["default", CLASS]
    assert names(core.list_namespace(label_selector="app.kubernetes.io/part-of=labkit-class")) == [CLASS]
    assert names(core.list_namespace(label_selector="labkit/student=grace")) == []
    assert core.read_namespace(CLASS).metadata.uid == made.metadata.uid
    # What a cluster's controllers put in every new namespace.
    assert names(core.list_namespaced_service_account(CLASS)) == ["default"]
    assert names(core.list_namespaced_config_map(CLASS)) == ["kube-root-ca.crt"]

    again = {"metadata": {"name": CLASS}}
    assert failure(lambda: core.create_namespace(again)) == (
        409,
        "AlreadyExists",
        f'namespaces "{CLASS}" already exists',
    )
    assert failure(lambda: core.read_namespace("lab-nobody")) == (404, "NotFound", 'namespaces "lab-nobody" not found')


def test_a_namespace_name_must_be_a_dns_label(clients: Clients) -> None:
    core = clients.core()
    assert failure(lambda: core.create_namespace({"metadata": {"name": "Lab_Ada"}})) == (
        422,
        "Invalid",
        'Namespace "Lab_Ada" is invalid: metadata.name: Invalid value: "Lab_Ada": a lowercase RFC 1123 label must '
        "consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric "
        "character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
    )
    assert failure(lambda: core.create_namespace({"metadata": {}})) == (
        422,
        "Invalid",
        'Namespace "" is invalid: metadata.name: Required value: name or generateName is required',
    )
    assert failure(lambda: core.delete_namespace("default")) == (
        403,
        "Forbidden",
        'namespaces "default" is forbidden: this namespace may not be deleted',
    )


# -- service accounts, roles, role bindings ------------------------------------------------------


def test_service_accounts_are_created_read_listed_and_deleted(clients: Clients) -> None:
    core = clients.core()
    core.create_namespace({"metadata": {"name": CLASS}})
    made = core.create_namespaced_service_account(CLASS, {"metadata": {"name": "ada", "labels": {"k": "v"}}})
    assert (made.kind, made.metadata.namespace, made.metadata.labels) == ("ServiceAccount", CLASS, {"k": "v"})
    assert core.read_namespaced_service_account("ada", CLASS).metadata.uid == made.metadata.uid
    assert names(core.list_namespaced_service_account(CLASS, label_selector="k=v")) == ["ada"]
    assert failure(lambda: core.create_namespaced_service_account(CLASS, {"metadata": {"name": "ada"}})) == (
        409,
        "AlreadyExists",
        'serviceaccounts "ada" already exists',
    )
    elsewhere = {"metadata": {"name": "bob", "namespace": "default"}}
    assert failure(lambda: core.create_namespaced_service_account(CLASS, elsewhere)) == (
        400,
        "BadRequest",
        "the namespace of the provided object does not match the namespace sent on the request",
    )
    assert failure(lambda: core.create_namespaced_service_account("lab-nobody", {"metadata": {"name": "ada"}})) == (
        404,
        "NotFound",
        'namespaces "lab-nobody" not found',
    )
    gone = core.delete_namespaced_service_account("ada", CLASS)
    assert (gone.kind, gone.metadata.uid) == ("ServiceAccount", made.metadata.uid)
    assert failure(lambda: core.read_namespaced_service_account("ada", CLASS)) == (
        404,
        "NotFound",
        'serviceaccounts "ada" not found',
    )


def test_roles_and_role_bindings_are_stored_as_kube_apiserver_stores_them(clients: Clients) -> None:
    core, rbac = clients.core(), clients.rbac()
    core.create_namespace({"metadata": {"name": CLASS}})
    role = rbac.create_namespaced_role(CLASS, student_role())
    assert [r.resource_names for r in role.rules] == [None, None, ["labkit-progress"]]
    # roleRef.apiGroup is defaulted by rbac/v1
    bound = rbac.create_namespaced_role_binding(
        CLASS, {**binding("ada"), "roleRef": {"kind": "Role", "name": "labkit-student"}}
    )
    assert (bound.role_ref.api_group, bound.subjects[0].namespace) == (RBAC, CLASS)
    assert names(rbac.list_namespaced_role(CLASS)) == ["labkit-student"]
    assert names(rbac.list_namespaced_role_binding(CLASS)) == ["labkit-student"]

    # A replace that changes nothing keeps the version; one that does moves it.
    current = rbac.read_namespaced_role("labkit-student", CLASS)
    same = rbac.replace_namespaced_role("labkit-student", CLASS, current)
    assert same.metadata.resource_version == current.metadata.resource_version
    current.rules = current.rules[:1]
    fewer = rbac.replace_namespaced_role("labkit-student", CLASS, current)
    assert len(fewer.rules) == 1 and int(fewer.metadata.resource_version) > int(current.metadata.resource_version)

    assert failure(lambda: rbac.create_namespaced_role(CLASS, student_role())) == (
        409,
        "AlreadyExists",
        'roles.rbac.authorization.k8s.io "labkit-student" already exists',
    )
    no_verbs = {"metadata": {"name": "broken"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": []}]}
    assert failure(lambda: rbac.create_namespaced_role(CLASS, no_verbs)) == (
        422,
        "Invalid",
        'Role.rbac.authorization.k8s.io "broken" is invalid: rules[0].verbs: Required value: verbs must contain at '
        "least one value",
    )
    moved = rbac.read_namespaced_role_binding("labkit-student", CLASS)
    moved.role_ref.name = "another"
    assert failure(lambda: rbac.replace_namespaced_role_binding("labkit-student", CLASS, moved)) == (
        422,
        "Invalid",
        'RoleBinding.rbac.authorization.k8s.io "labkit-student" is invalid: roleRef: Invalid value: '
        'rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"Role", Name:"another"}: cannot change roleRef',
    )

    answer = rbac.delete_namespaced_role("labkit-student", CLASS)
    assert answer["status"] == "Success"
    assert answer["details"] == {"name": "labkit-student", "group": RBAC, "kind": "roles", "uid": role.metadata.uid}
    assert failure(lambda: rbac.read_namespaced_role("labkit-student", CLASS)) == (
        404,
        "NotFound",
        'roles.rbac.authorization.k8s.io "labkit-student" not found',
    )
    rbac.delete_namespaced_role_binding("labkit-student", CLASS)
    assert names(rbac.list_namespaced_role_binding(CLASS)) == []


# -- config maps -------------------------------------------------------------------------------


def test_config_maps_are_replaced_and_patched_with_kube_apiserver_rules(clients: Clients) -> None:
    core = clients.core()
    core.create_namespace({"metadata": {"name": CLASS}})
    made = core.create_namespaced_config_map(
        CLASS,
        {"metadata": {"name": "labkit-progress", "labels": {"app": "labkit"}}, "data": {"step": "1", "verdict": "ok"}},
    )
    assert made.data == {"step": "1", "verdict": "ok"}
    assert names(core.list_namespaced_config_map(CLASS, label_selector="app=labkit")) == ["labkit-progress"]

    # A strategic merge patch (what the client sends for a dict) merges the data.
    patched = core.patch_namespaced_config_map("labkit-progress", CLASS, {"data": {"step": "2"}})
    assert patched.data == {"step": "2", "verdict": "ok"}
    assert patched.metadata.uid == made.metadata.uid
    # A JSON merge patch removes a key with null.
    merged = core.patch_namespaced_config_map(
        "labkit-progress", CLASS, {"data": {"verdict": None}}, _content_type="application/merge-patch+json"
    )
    assert merged.data == {"step": "2"}

    stale = made  # read before both patches
    stale.data = {"step": "9"}
    assert failure(lambda: core.replace_namespaced_config_map("labkit-progress", CLASS, stale)) == (
        409,
        "Conflict",
        'Operation cannot be fulfilled on configmaps "labkit-progress": the object has been modified; please apply '
        "your changes to the latest version and try again",
    )
    merged.data = {"step": "3"}
    replaced = core.replace_namespaced_config_map("labkit-progress", CLASS, merged)
    assert replaced.data == {"step": "3"} and replaced.metadata.labels == {"app": "labkit"}

    bad_key = {"metadata": {"name": "other"}, "data": {"a b": "x"}}
    assert failure(lambda: core.create_namespaced_config_map(CLASS, bad_key)) == (
        422,
        "Invalid",
        'ConfigMap "other" is invalid: data[a b]: Invalid value: "a b": a valid config key must consist of '
        "alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for "
        "validation is '[-._a-zA-Z0-9]+')",
    )
    assert failure(lambda: core.patch_namespaced_config_map("nothing", CLASS, {"data": {}})) == (
        404,
        "NotFound",
        'configmaps "nothing" not found',
    )
    json_patch = [{"op": "add", "path": "/data/x", "value": "1"}]
    status, reason, _ = failure(lambda: core.patch_namespaced_config_map("labkit-progress", CLASS, json_patch))
    assert (status, reason) == (415, "UnsupportedMediaType")

    answer = core.delete_namespaced_config_map("labkit-progress", CLASS)
    assert answer["details"] == {"name": "labkit-progress", "kind": "configmaps", "uid": made.metadata.uid}
    assert names(core.list_namespaced_config_map(CLASS)) == ["kube-root-ca.crt"]


# -- tokens and what they may do -------------------------------------------------------------------


def test_a_token_does_what_its_role_allows_and_nothing_else(clients: Clients) -> None:
    make_student(clients)
    started = datetime.now(UTC)
    answer = token_for(clients, seconds=1800)
    assert (answer.kind, answer.api_version) == ("TokenRequest", "authentication.k8s.io/v1")
    assert answer.spec.expiration_seconds == 1800
    assert answer.spec.audiences == ["https://kubernetes.default.svc.cluster.local"]
    expires = answer.status.expiration_timestamp
    assert timedelta(seconds=1798) <= expires - started <= timedelta(seconds=1802)
    assert answer.status.token and len(answer.status.token) >= 40
    assert answer.status.token != token_for(clients).status.token

    ada = clients.core(clients.with_token(answer.status.token, CLASS))
    user = "system:serviceaccount:lab-ada:ada"
    assert ada.list_namespaced_pod(CLASS).items == []
    ada.create_namespaced_config_map(CLASS, {"metadata": {"name": "labkit-progress"}, "data": {"step": "1"}})
    assert ada.patch_namespaced_config_map("labkit-progress", CLASS, {"data": {"step": "2"}}).data == {"step": "2"}
    assert ada.read_namespaced_config_map("labkit-progress", CLASS).data == {"step": "2"}

    cases = [
        (lambda: ada.list_namespaced_pod("default"), refused(user, "list", "pods", "default")),
        (lambda: ada.list_namespaced_config_map(CLASS), refused(user, "list", "configmaps", CLASS)),
        (
            lambda: ada.read_namespaced_config_map("kube-root-ca.crt", CLASS),
            refused(user, "get", "configmaps", CLASS, who='configmaps "kube-root-ca.crt"'),
        ),
        (
            lambda: ada.delete_namespaced_config_map("labkit-progress", CLASS),
            refused(user, "delete", "configmaps", CLASS, who='configmaps "labkit-progress"'),
        ),
        (
            lambda: clients.rbac(clients.with_token(answer.status.token, CLASS)).create_namespaced_role(
                CLASS, student_role()
            ),
            refused(user, "create", "roles", CLASS, group=RBAC),
        ),
        (lambda: ada.list_namespace(), refused(user, "list", "namespaces", "")),
        (lambda: ada.create_namespace({"metadata": {"name": "mine"}}), refused(user, "create", "namespaces", "")),
        (
            lambda: ada.read_namespace(CLASS),
            refused(user, "get", "namespaces", CLASS, who=f'namespaces "{CLASS}"'),
        ),
        (
            lambda: ada.create_namespaced_service_account_token("ada", CLASS, {"spec": {}}),
            refused(user, "create", "serviceaccounts/token", CLASS, who='serviceaccounts "ada"'),
        ),
    ]
    for call, message in cases:
        assert failure(call) == (403, "Forbidden", message)

    # The grant is the stored RoleBinding: without it, the same token may do nothing.
    clients.rbac().delete_namespaced_role_binding("labkit-student", CLASS)
    assert failure(lambda: ada.list_namespaced_pod(CLASS)) == (403, "Forbidden", refused(user, "list", "pods", CLASS))
    # A binding to the service accounts' group grants the Role to every account of the namespace.
    group_binding = binding("ada")
    group_binding["subjects"] = [{"kind": "Group", "name": "system:serviceaccounts:lab-ada"}]
    made = clients.rbac().create_namespaced_role_binding(CLASS, group_binding)
    assert made.subjects[0].api_group == RBAC
    assert ada.list_namespaced_pod(CLASS).items == []


def test_a_token_request_is_checked_as_kube_apiserver_checks_it(clients: Clients) -> None:
    make_student(clients)
    assert failure(lambda: token_for(clients, seconds=599)) == (
        422,
        "Invalid",
        'TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid value: 599: may not '
        "specify a duration less than 10 minutes",
    )
    assert token_for(clients, seconds=None).spec.expiration_seconds == 3600
    assert failure(lambda: token_for(clients, account="grace")) == (
        404,
        "NotFound",
        'serviceaccounts "grace" not found',
    )
    assert failure(lambda: token_for(clients, namespace="lab-nobody")) == (
        404,
        "NotFound",
        'namespaces "lab-nobody" not found',
    )


def test_a_token_ends_when_it_expires_or_its_account_goes(api: KubernetesStandIn, clients: Clients) -> None:
    make_student(clients)
    ada = clients.core(clients.with_token(token_for(clients, seconds=600).status.token, CLASS))
    assert ada.list_namespaced_pod(CLASS).items == []
    api.advance_clock(timedelta(seconds=598))
    assert ada.list_namespaced_pod(CLASS).items == []
    api.advance_clock(2)
    assert failure(lambda: ada.list_namespaced_pod(CLASS)) == (401, "Unauthorized", "Unauthorized")

    fresh = clients.core(clients.with_token(token_for(clients, seconds=600).status.token, CLASS))
    assert fresh.list_namespaced_pod(CLASS).items == []
    core = clients.core()
    core.delete_namespaced_service_account("ada", CLASS)
    assert failure(lambda: fresh.list_namespaced_pod(CLASS)) == (401, "Unauthorized", "Unauthorized")
    # An account of the same name made again is another account: the old token stays refused.
    core.create_namespaced_service_account(CLASS, {"metadata": {"name": "ada"}})
    assert failure(lambda: fresh.list_namespaced_pod(CLASS)) == (401, "Unauthorized", "Unauthorized")


def test_deleting_a_namespace_removes_its_objects_and_pods_and_ends_its_tokens(clients: Clients) -> None:
    make_student(clients)
    core = clients.core()
    core.create_namespaced_config_map(CLASS, {"metadata": {"name": "labkit-progress"}, "data": {"step": "1"}})
    ada = clients.core(clients.with_token(token_for(clients).status.token, CLASS))
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "sia-work"},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": "docker.io/library/ubuntu:latest",
                    "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 600 & wait"],
                }
            ]
        },
    }
    core.create_namespaced_pod(CLASS, pod)
    deadline = time.monotonic() + 60
    while core.read_namespaced_pod("sia-work", CLASS).status.phase != "Running":
        assert time.monotonic() < deadline, "the pod never ran"
        time.sleep(0.2)
    assert KubernetesStandIn.podman_name(CLASS, "sia-work") in podman_pods()
    assert [p.metadata.name for p in ada.list_namespaced_pod(CLASS).items] == ["sia-work"]

    terminating = core.delete_namespace(CLASS)
    assert terminating["status"]["phase"] == "Terminating" and terminating["metadata"]["deletionTimestamp"]
    # At once: its objects are gone, its token ends, nothing new may be made in it.
    assert names(core.list_namespaced_service_account(CLASS)) == []
    assert names(core.list_namespaced_config_map(CLASS)) == []
    assert names(clients.rbac().list_namespaced_role(CLASS)) == []
    assert names(clients.rbac().list_namespaced_role_binding(CLASS)) == []
    assert failure(lambda: ada.list_namespaced_pod(CLASS)) == (401, "Unauthorized", "Unauthorized")
    being_terminated = f"unable to create new content in namespace {CLASS} because it is being terminated"
    assert failure(lambda: core.create_namespaced_config_map(CLASS, {"metadata": {"name": "late"}})) == (
        403,
        "Forbidden",
        f'configmaps "late" is forbidden: {being_terminated}',
    )
    assert failure(lambda: core.create_namespaced_pod(CLASS, {**pod, "metadata": {"name": "sia-late"}})) == (
        403,
        "Forbidden",
        f'pods "sia-late" is forbidden: {being_terminated}',
    )
    assert failure(lambda: core.delete_namespace(CLASS)) == (
        409,
        "Conflict",
        f'Operation cannot be fulfilled on namespaces "{CLASS}": The system is ensuring all content is removed from '
        "this namespace.  Upon completion, this namespace will automatically be purged by the system.",
    )
    assert core.read_namespace(CLASS).status.phase == "Terminating"

    wait_until_gone(core, CLASS)
    assert failure(lambda: core.read_namespaced_pod("sia-work", CLASS))[0] == 404
    assert KubernetesStandIn.podman_name(CLASS, "sia-work") not in podman_pods()
    assert core.list_namespaced_event(CLASS).items == []
    assert failure(lambda: core.create_namespaced_config_map(CLASS, {"metadata": {"name": "late"}})) == (
        404,
        "NotFound",
        f'namespaces "{CLASS}" not found',
    )
    # The name is free again.
    assert core.create_namespace({"metadata": {"name": CLASS}}).status.phase == "Active"


# -- discovery and the existing identities ------------------------------------------------------------


def test_discovery_names_the_new_resources_and_the_rbac_group(api: KubernetesStandIn, clients: Clients) -> None:
    core = clients.core()
    listed = {r.name: r for r in core.get_api_resources().resources}
    for name in ("namespaces", "serviceaccounts", "serviceaccounts/token", "configmaps", "pods"):
        assert name in listed, name
    assert not listed["namespaces"].namespaced and listed["configmaps"].namespaced
    assert (listed["serviceaccounts/token"].group, listed["serviceaccounts/token"].kind) == (
        "authentication.k8s.io",
        "TokenRequest",
    )
    with config.new_client_from_config(config_file=api.kubeconfig) as api_client:
        groups: Any = client.ApisApi(api_client).get_api_versions().groups
    assert [(g.name, g.preferred_version.group_version) for g in groups] == [(RBAC, f"{RBAC}/v1")]
    rbac = {r.name: r.namespaced for r in clients.rbac().get_api_resources().resources}
    assert rbac == {"roles": True, "rolebindings": True}


def test_the_tokens_tests_hand_out_keep_their_rules(api: KubernetesStandIn, clients: Clients) -> None:
    student = clients.core(api.kubeconfig_for(namespace="default"))
    assert student.list_namespaced_pod("default").items == []
    user = "system:serviceaccount:default:student"
    assert failure(lambda: student.list_namespaced_config_map("default")) == (
        403,
        "Forbidden",
        refused(user, "list", "configmaps", "default"),
    )
    # A RoleBinding naming that user grants it more, as it would on a cluster.
    core, rbac = clients.core(), clients.rbac()
    assert core.read_namespace("default").metadata.labels == {"kubernetes.io/metadata.name": "default"}
    rbac.create_namespaced_role(
        "default",
        {
            "metadata": {"name": "reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        "default",
        {
            "metadata": {"name": "reader"},
            "subjects": [{"kind": "User", "name": user}],
            "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "reader"},
        },
    )
    assert names(student.list_namespaced_config_map("default")) == ["kube-root-ca.crt"]
