"""``labkit class``: an instructor sets up, watches and removes a class on one cluster, through the official client.

What a class is made of is decided in :mod:`labkit.classroom`; this module
only carries it out: with an administrator's kubeconfig it creates each
student's objects (leaving alone what is already there and the kit's,
refusing what is there and not the kit's), issues short-lived tokens through
the TokenRequest API, writes one kubeconfig per student, and deletes only
namespaces the kit's class labels name.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from labkit import classroom, progress
from labkit.errors import ClassError
from labkit.tls import certificate_message, warn_unverified

TOKEN_MIN_SECONDS = 600  # the API server refuses shorter tokens


@dataclass(frozen=True)
class StudentAccess:
    """What ``create`` did for one student: their namespace, kubeconfig and token expiry, and what changed."""

    student: str
    namespace: str
    kubeconfig: Path
    token_expires: datetime
    changed: tuple[str, ...]


class ClassAdmin:
    """An instructor's handle on a cluster: the kubeconfig (and context) of an administrator."""

    def __init__(
        self,
        kubeconfig: str | os.PathLike[str] | None = None,
        context: str | None = None,
        request_timeout: float = 10.0,
    ) -> None:
        try:
            import kubernetes  # the official client; only the cluster side of the kit needs it
            import urllib3
        except ImportError:
            raise ClassError(
                "labkit class talks to the cluster through the official Kubernetes client, which is not installed: "
                "pip install 'labkit[kubernetes]' (or pip install kubernetes), then run the command again"
            ) from None

        self._k8s: Any = kubernetes
        self._transport_errors: tuple[type[BaseException], ...] = (OSError, urllib3.exceptions.HTTPError)
        k8s = self._k8s
        cfg = k8s.client.Configuration()
        path = str(kubeconfig) if kubeconfig else os.environ.get("KUBECONFIG") or None
        try:
            k8s.config.load_kube_config(config_file=path, context=context, client_configuration=cfg)
        except (k8s.config.ConfigException, OSError, TypeError, KeyError, yaml.YAMLError) as exc:
            raise ClassError(
                f"no usable administrator kubeconfig ({path or '~/.kube/config'}: {exc}); point --kubeconfig or "
                "KUBECONFIG at the kubeconfig of a cluster administrator"
            ) from None
        cfg.retries = 1
        self._cfg = cfg
        self.server: str = cfg.host
        if not cfg.verify_ssl:
            warn_unverified(self.server, context)
        self.timeout = request_timeout
        client = k8s.client.ApiClient(cfg)
        self.core: Any = k8s.client.CoreV1Api(client)
        self.rbac: Any = k8s.client.RbacAuthorizationV1Api(client)
        self._plain = client.sanitize_for_serialization

    # -- create ------------------------------------------------------------------------

    def create(
        self,
        students: int | Sequence[str],
        out_dir: str | os.PathLike[str] = "kubeconfigs",
        *,
        prefix: str = "student",
        token_hours: float = 12,
        renew: bool = False,
    ) -> list[StudentAccess]:
        """Give each student their namespace, account, Role, RoleBinding and a kubeconfig in ``out_dir``.

        Running it again changes nothing that is already right: a student's
        kubeconfig is kept while its token has an hour or more left (or
        ``renew=True`` issues new tokens). Nothing is created when any of the
        namespaces exists without the kit's class labels: that is refused,
        naming them, and they stay untouched.
        """
        names = classroom.student_names(students, prefix)
        seconds = round(token_hours * 3600)
        if seconds < TOKEN_MIN_SECONDS:
            raise ValueError(f"token_hours={token_hours!r}: a token lasts at least 10 minutes (1/6 hour)")
        foreign = [ns for ns in map(classroom.namespace_of, names) if self._foreign_namespace(ns)]
        if foreign:
            raise ClassError(
                f"namespace{'s' if len(foreign) > 1 else ''} {', '.join(foreign)} "
                f"already exist{'' if len(foreign) > 1 else 's'} and labkit's class did not create them, so nothing "
                "was created or changed; choose other names (--prefix, or a list of names) or remove those namespaces "
                "yourself if they are no longer needed"
            )
        out = Path(out_dir)
        try:
            if not out.exists():
                out.mkdir(parents=True, mode=0o700)  # it will hold tokens: for the instructor's eyes only
        except OSError as exc:
            raise ClassError(f"cannot make {out} for the kubeconfigs ({exc.strerror}); choose another --out") from None
        return [self._create_one(student, out, seconds, renew) for student in names]

    def _create_one(self, student: str, out: Path, seconds: int, renew: bool) -> StudentAccess:
        ns = classroom.namespace_of(student)
        changed = [kind for obj in classroom.class_objects(student) if (kind := self._ensure(obj))]
        path = out / f"{student}.kubeconfig"
        new_account = bool({"Namespace", "ServiceAccount"} & set(changed))  # a new account: old tokens are void
        kept = None if renew or new_account else self._usable_kubeconfig(path, student)
        if kept is not None:
            return StudentAccess(student, ns, path, kept, tuple(changed))
        token, expires = self._token(student, ns, seconds)
        doc = classroom.student_kubeconfig(
            student,
            server=self.server,
            token=token,
            expires=expires,
            ca_data=self._ca_data(),
            insecure=not self._cfg.verify_ssl,
        )
        _write_private(path, yaml.safe_dump(doc, sort_keys=False))
        return StudentAccess(student, ns, path, expires, (*changed, "token"))

    def _ensure(self, obj: dict[str, Any]) -> str | None:
        """Create one object, or leave it when it is there and the kit's; the kind when something changed."""
        kind: str = obj["kind"]
        meta = obj["metadata"]
        create, read, replace = self._calls(kind, meta.get("namespace"))
        try:
            self._call(f"create {kind} {meta['name']}", lambda: create(body=obj))
            return kind
        except _Exists:
            pass
        current = self._plain(self._call(f"read {kind} {meta['name']}", lambda: read(meta["name"])))
        if (
            classroom.student_of((current.get("metadata") or {}).get("labels"))
            != meta["labels"][classroom.STUDENT_LABEL]
        ):
            where = f" in namespace {meta['namespace']}" if "namespace" in meta else ""
            raise ClassError(
                f"{kind} {meta['name']!r}{where} exists but labkit's class did not make it for this student; "
                "it was left untouched: remove it, or choose another student name"
            )
        wanted = {k: v for k, v in obj.items() if k in ("rules", "subjects", "roleRef")}
        if replace is None or all(_bare(current.get(k)) == _bare(v) for k, v in wanted.items()):
            return None
        body = {**current, **wanted}
        self._call(f"update {kind} {meta['name']}", lambda: replace(meta["name"], body=body))
        return kind

    def _calls(self, kind: str, namespace: str | None) -> tuple[Callable[..., Any], Callable[[str], Any], Any]:
        core, rbac, t = self.core, self.rbac, self.timeout
        namespace = namespace or ""
        if kind == "Namespace":
            return (
                lambda body: core.create_namespace(body, _request_timeout=t),
                lambda name: core.read_namespace(name, _request_timeout=t),
                None,
            )
        if kind == "ServiceAccount":
            return (
                lambda body: core.create_namespaced_service_account(namespace, body, _request_timeout=t),
                lambda name: core.read_namespaced_service_account(name, namespace, _request_timeout=t),
                None,
            )
        if kind == "Role":
            return (
                lambda body: rbac.create_namespaced_role(namespace, body, _request_timeout=t),
                lambda name: rbac.read_namespaced_role(name, namespace, _request_timeout=t),
                lambda name, body: rbac.replace_namespaced_role(name, namespace, body, _request_timeout=t),
            )
        if kind == "RoleBinding":
            return (
                lambda body: rbac.create_namespaced_role_binding(namespace, body, _request_timeout=t),
                lambda name: rbac.read_namespaced_role_binding(name, namespace, _request_timeout=t),
                lambda name, body: rbac.replace_namespaced_role_binding(name, namespace, body, _request_timeout=t),
            )
        raise ValueError(f"no calls for kind {kind!r}")

    def _token(self, student: str, namespace: str, seconds: int) -> tuple[str, datetime]:
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"audiences": [], "expirationSeconds": seconds},
        }
        answer = self._call(
            f"request a token for service account {student}",
            lambda: self.core.create_namespaced_service_account_token(
                student, namespace, body, _request_timeout=self.timeout
            ),
        )
        expires = answer.status.expiration_timestamp
        if isinstance(expires, str):
            expires = classroom.parse_time(expires)
        if not isinstance(expires, datetime):
            expires = datetime.now(UTC) + timedelta(seconds=seconds)
        if not answer.status.token:
            raise ClassError(f"the API server issued no token for service account {student} in {namespace}; try again")
        return str(answer.status.token), expires.astimezone(UTC)

    def _usable_kubeconfig(self, path: Path, student: str) -> datetime | None:
        """The token expiry of a kubeconfig this class wrote for ``student`` that is still good to hand out."""
        doc = _read_kubeconfig(path)
        if doc is None:
            return None
        expires = classroom.token_expiry(doc)
        clusters = doc.get("clusters") or [{}]
        same_server = (clusters[0].get("cluster") or {}).get("server") == self.server
        if expires is None or not same_server or doc.get("current-context") != student:
            return None
        return expires if expires - datetime.now(UTC) >= classroom.MIN_TOKEN_LEFT else None

    def _ca_data(self) -> str | None:
        ca = self._cfg.ssl_ca_cert
        if not ca:
            return None
        return base64.b64encode(Path(ca).read_bytes()).decode("ascii")

    def _foreign_namespace(self, namespace: str) -> bool:
        try:
            found = self._call(
                f"read namespace {namespace}",
                lambda: self.core.read_namespace(namespace, _request_timeout=self.timeout),
            )
        except _Missing:
            return False
        student = classroom.student_of(found.metadata.labels)
        if student is not None and found.status is not None and found.status.phase == "Terminating":
            raise ClassError(
                f"namespace {namespace} is still being deleted; wait until 'labkit class status' no longer lists "
                "it, then run create again"
            )
        return student is None or classroom.namespace_of(student) != namespace

    # -- delete and status --------------------------------------------------------------

    def class_namespaces(self) -> dict[str, str]:
        """The namespaces the kit's class made, by student."""
        found = self._call(
            "list namespaces",
            lambda: self.core.list_namespace(label_selector=classroom.CLASS_SELECTOR, _request_timeout=self.timeout),
        )
        out = {}
        for ns in found.items:
            student = classroom.student_of(ns.metadata.labels)
            if student is not None and ns.metadata.name == classroom.namespace_of(student):
                out[student] = ns.metadata.name
        return dict(sorted(out.items()))

    def delete(
        self,
        students: int | Sequence[str] | None = None,
        out_dir: str | os.PathLike[str] | None = "kubeconfigs",
        *,
        prefix: str = "student",
    ) -> list[str]:
        """Delete the students' namespaces (and with them every pod, account and token); None: the whole class.

        Only namespaces carrying the kit's class labels are deleted; a named
        student without one is reported, not touched. Their kubeconfigs in
        ``out_dir`` are removed too. Returns the namespaces deleted.
        """
        ours = self.class_namespaces()
        names = list(ours) if students is None else classroom.student_names(students, prefix)
        missing = [n for n in names if n not in ours]
        if missing and students is not None and len(missing) == len(names):
            raise ClassError(
                f"no namespace of labkit's class for {', '.join(missing)}; 'labkit class status' lists the class"
            )
        deleted = []
        background = {"propagation_policy": "Background", "_request_timeout": self.timeout}
        for student in names:
            if student not in ours:
                continue
            ns = ours[student]
            # Gone meanwhile, or already being deleted (409): what delete wants.
            with contextlib.suppress(_Missing, _Conflict):
                self._call(f"delete namespace {ns}", partial(self.core.delete_namespace, ns, **background))
            deleted.append(ns)
            if out_dir is not None:
                (Path(out_dir) / f"{student}.kubeconfig").unlink(missing_ok=True)
        return deleted

    def token_expiries(self, out_dir: str | os.PathLike[str] = "kubeconfigs") -> dict[str, datetime | None]:
        """When each student's token expires, from their kubeconfig in ``out_dir``; None where there is none.

        Tokens are not objects the API server lists, so the kubeconfigs ``create`` wrote are the record.
        """
        expiries: dict[str, datetime | None] = {}
        for student in self.class_namespaces():
            doc = _read_kubeconfig(Path(out_dir) / f"{student}.kubeconfig")
            expiries[student] = classroom.token_expiry(doc) if doc is not None else None
        return expiries

    def status(self) -> pd.DataFrame:
        """One row per student of the class: steps reached, where they are, pods, restarts, last verdict and p50."""
        gathered: dict[str, tuple[list[Mapping[str, Any]], Mapping[str, str] | None]] = {}
        for student, ns in self.class_namespaces().items():
            try:
                listed = self._call(
                    f"list pods in {ns}", partial(self.core.list_namespaced_pod, ns, _request_timeout=self.timeout)
                ).items
            except _Missing:
                continue  # deleted since it was listed
            pods: list[Mapping[str, Any]] = [
                {
                    "phase": p.status.phase if p.status else None,
                    "restarts": sum(cs.restart_count or 0 for cs in (p.status.container_statuses or []))
                    if p.status
                    else 0,
                }
                for p in listed
            ]
            try:
                record = self._call(
                    f"read the progress of {student}",
                    partial(
                        self.core.read_namespaced_config_map,
                        progress.PROGRESS_CONFIGMAP,
                        ns,
                        _request_timeout=self.timeout,
                    ),
                ).data
            except _Missing:
                record = None
            gathered[student] = (pods, record)
        return classroom.status_table(gathered)

    # -- errors -------------------------------------------------------------------------

    def _call(self, what: str, call: Callable[[], Any]) -> Any:
        api_exception = self._k8s.client.ApiException
        try:
            return call()
        except api_exception as exc:
            from labkit.engines.kubernetes import status_message  # needs the client, as this call does

            message = status_message(exc)
            if exc.status == 409 and what.startswith("create "):
                raise _Exists(f"could not {what}: it exists already") from None
            if exc.status == 409:
                raise _Conflict(f"could not {what}: {message}; run it again in a moment") from None
            if exc.status == 404:
                raise _Missing(f"could not {what}: {message}; run 'labkit class status' to see the class") from None
            if exc.status == 401:
                raise ClassError(
                    f"the API server at {self.server} did not accept the administrator's credentials "
                    f"(HTTP 401: {message}); get a fresh administrator kubeconfig and try again"
                ) from None
            if exc.status == 403:
                raise ClassError(
                    f"could not {what}: the API server refused it ({message}). labkit class needs an administrator's "
                    f"kubeconfig, or one whose user is granted {_missing_rule(message)}"
                ) from None
            raise ClassError(f"could not {what}: HTTP {exc.status} from {self.server}: {message}") from None
        except self._transport_errors as exc:
            untrusted = certificate_message(self.server, exc)
            if untrusted is not None:
                raise ClassError(f"could not {what}: {untrusted}") from None
            raise ClassError(f"could not {what}: cannot reach {self.server} ({exc}); check the cluster") from None


class _Exists(ClassError):
    """The object is there already (409 on create): what an idempotent create checks for."""


class _Conflict(ClassError):
    """Another change is under way (409), such as a namespace already being deleted."""


class _Missing(ClassError):
    """The object is not there (404)."""


def _read_kubeconfig(path: Path) -> dict[str, Any] | None:
    """A kubeconfig file as a mapping; None when it is missing, unreadable or not a kubeconfig."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    return doc if isinstance(doc, dict) else None


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read, replacing any earlier one (whatever its mode) in one step."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ClassError(f"cannot write {path} ({exc.strerror}); check the --out directory") from None


def _bare(value: Any) -> Any:
    """``value`` without empty fields, which a server may fill in with defaults (``apiGroup: ""``)."""
    if isinstance(value, dict):
        return {k: _bare(v) for k, v in value.items() if v not in (None, "", [], {})}
    if isinstance(value, list):
        return [_bare(v) for v in value]
    return value


_FORBIDDEN = re.compile(
    r'cannot (\w+) resource "([^"]+)" in API group "([^"]*)"(?: (?:in the namespace "([^"]+)"|at the cluster scope))?'
)


def _missing_rule(message: str) -> str:
    """The RBAC rule a 'forbidden' message says is missing, written as it goes into a (Cluster)Role."""
    found = _FORBIDDEN.search(message)
    if found is None:
        return "the rights to create namespaces, service accounts, roles, role bindings and tokens"
    verb, resource, group, namespace = found.groups()
    scope = f"in namespace {namespace}" if namespace else "cluster-wide (a ClusterRole)"
    return f'the rule {{apiGroups: ["{group}"], resources: ["{resource}"], verbs: ["{verb}"]}} {scope}'
