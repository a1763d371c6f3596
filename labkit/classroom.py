"""What a class on one cluster is made of: the students' names, what each may do, and their kubeconfigs.

Each student gets a namespace ``lab-{student}`` holding a service account, a
Role with exactly what the lab needs there, and a RoleBinding; the kit
labels every one of them, so that ``labkit class delete`` removes only what
``labkit class create`` made. This module decides all of that and is pure;
:mod:`labkit.class_cluster` carries it out with the official client.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from labkit.manifest import MANAGED_BY_LABEL, MANAGED_BY_VALUE
from labkit.progress import PROGRESS_CONFIGMAP, STEPS, from_record

PART_OF = "app.kubernetes.io/part-of"
STUDENT_LABEL = "labkit/student"
CLASS_LABELS = {MANAGED_BY_LABEL: MANAGED_BY_VALUE, PART_OF: "labkit-class"}
CLASS_SELECTOR = ",".join(f"{k}={v}" for k, v in CLASS_LABELS.items())

ROLE = "labkit-student"
POD_SECURITY = "pod-security.kubernetes.io/enforce"
KUBECONFIG_EXTENSION = "labkit"

# What the lab needs in the student's own namespace, and nothing else: no secrets, nothing cluster-wide.
STUDENT_RULES: tuple[dict[str, Any], ...] = (
    # apply (server-side apply is a patch), wait (get, list, watch), delete
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "create", "patch", "delete"]},
    # exec into a container and port-forward: websocket upgrades of these subresources
    {"apiGroups": [""], "resources": ["pods/exec", "pods/portforward"], "verbs": ["create", "get"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    # the pod's recent events, quoted when a container cannot start
    {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
    # the student's progress record, which the instructor reads
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
    {
        "apiGroups": [""],
        "resources": ["configmaps"],
        "resourceNames": [PROGRESS_CONFIGMAP],
        "verbs": ["get", "patch", "update"],
    },
)

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def student_names(students: int | Sequence[str], prefix: str = "student") -> list[str]:
    """The students of a class: ``N`` gives ``{prefix}-01`` .. ``{prefix}-N``, or a list of names as given.

    Raises ValueError for a count below 1, a name that cannot be part of a
    namespace name (a lower-case DNS label, at most 59 characters), or a
    name given twice.
    """
    if isinstance(students, bool) or not isinstance(students, int | list | tuple):
        raise TypeError("students is a number of students or a list of names, e.g. 40 or ['ada', 'grace']")
    if isinstance(students, int):
        if students < 1:
            raise ValueError(f"a class has at least one student, not {students}")
        width = max(2, len(str(students)))
        names = [f"{prefix}-{i:0{width}d}" for i in range(1, students + 1)]
    else:
        names = [str(s) for s in students]
        if not names:
            raise ValueError("name at least one student, or give their number")
    for name in names:
        if not _LABEL.match(name) or len(namespace_of(name)) > 63:
            raise ValueError(
                f"student name {name!r} cannot name a namespace: use lower-case letters, digits and '-', "
                "starting and ending with a letter or digit, at most 59 characters"
            )
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        raise ValueError(f"student names given twice: {', '.join(doubled)}")
    return names


def namespace_of(student: str) -> str:
    """The namespace a student works in."""
    return f"lab-{student}"


def student_of(labels: Mapping[str, str] | None) -> str | None:
    """The student an object belongs to when the kit's class made it, else None."""
    labels = labels or {}
    if any(labels.get(k) != v for k, v in CLASS_LABELS.items()):
        return None
    return labels.get(STUDENT_LABEL) or None


def class_objects(student: str) -> list[dict[str, Any]]:
    """The namespace, service account, Role and RoleBinding of one student, as Kubernetes objects, in order."""
    ns = namespace_of(student)
    labels = {**CLASS_LABELS, STUDENT_LABEL: student}

    def meta(name: str, namespaced: bool = True) -> dict[str, Any]:
        return {"name": name, **({"namespace": ns} if namespaced else {}), "labels": dict(labels)}

    namespace_meta = meta(ns, namespaced=False)
    # Creating pods must not mean creating privileged ones: the baseline Pod Security level refuses
    # privileged containers and host namespaces and paths; the lab needs none of them (nginx runs as root).
    namespace_meta["labels"][POD_SECURITY] = "baseline"
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": namespace_meta},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(student)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta(ROLE),
            "rules": [dict(r) for r in STUDENT_RULES],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta(ROLE),
            "subjects": [{"kind": "ServiceAccount", "name": student, "namespace": ns}],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROLE},
        },
    ]


def student_kubeconfig(
    student: str,
    *,
    server: str,
    token: str,
    expires: datetime,
    ca_data: str | None = None,
    insecure: bool = False,
) -> dict[str, Any]:
    """The kubeconfig a student is handed: the cluster (with its CA), their token, their namespace.

    The token's expiry is kept in the file (an ``extensions`` entry named
    ``labkit``, which kubectl and the client ignore), so the kit can say when
    it expired and ``labkit class create`` can tell whether to issue a new one.
    """
    ns = namespace_of(student)
    cluster: dict[str, Any] = {"server": server}
    if ca_data:
        cluster["certificate-authority-data"] = ca_data
    if insecure:
        cluster["insecure-skip-tls-verify"] = True
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "labkit-class", "cluster": cluster}],
        "users": [{"name": student, "user": {"token": token}}],
        "contexts": [{"name": student, "context": {"cluster": "labkit-class", "user": student, "namespace": ns}}],
        "current-context": student,
        "extensions": [
            {
                "name": KUBECONFIG_EXTENSION,
                "extension": {"student": student, "tokenExpires": format_time(expires)},
            }
        ],
    }


def token_expiry(kubeconfig: Mapping[str, Any]) -> datetime | None:
    """When the token of a kubeconfig written by :func:`student_kubeconfig` expires (None: not one of those)."""
    for ext in kubeconfig.get("extensions") or []:
        if isinstance(ext, Mapping) and ext.get("name") == KUBECONFIG_EXTENSION:
            stamp = (ext.get("extension") or {}).get("tokenExpires")
            return parse_time(stamp) if isinstance(stamp, str) else None
    return None


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with ``Z``, as the API server writes times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime | None:
    """A time the API server or :func:`format_time` wrote, or None when it is not one."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# A kubeconfig kept by a second 'labkit class create' must leave its student this much time; otherwise a new token.
MIN_TOKEN_LEFT = timedelta(hours=1)


def token_lines(expiries: Mapping[str, datetime | None], now: datetime, where: str) -> list[str]:
    """One line per student on the token in their kubeconfig: how long it lasts, or that it expired or is missing.

    ``expiries`` maps each student to their token's expiry, None where no class
    kubeconfig of theirs is in ``where`` (the directory, named in the line).
    """
    lines = []
    width = max((len(s) for s in expiries), default=0)
    for student, expires in expiries.items():
        if expires is None:
            said = f"no kubeconfig in {where} ('labkit class create' writes it)"
        elif expires <= now:
            said = f"token EXPIRED at {format_time(expires)}; 'labkit class create' issues a new one"
        else:
            left = expires - now
            hours, minutes = divmod(int(left.total_seconds()) // 60, 60)
            said = f"token until {format_time(expires)} ({hours} h {minutes:02d} min left)"
            if left < MIN_TOKEN_LEFT:
                said += "; the next 'labkit class create' renews it"
        lines.append(f"{student:<{width}}  {said}")
    return lines


STATUS_COLUMNS = [
    "namespace",
    "steps",
    "next step",
    "pods",
    "phase",
    "restarts",
    "verdict",
    "p50 (ms)",
    "p50 low (ms)",
    "p50 high (ms)",
]


def status_table(students: Mapping[str, tuple[list[Mapping[str, Any]], Mapping[str, str] | None]]) -> pd.DataFrame:
    """One row per student, from their pods (``phase``, ``restarts``) and their progress record (or None).

    ``steps`` counts the tutorial's steps reached; ``next step`` is the first
    one not reached, where a student may be stuck; the verdict and p50 are
    of their last measurement.
    """
    rows = {}
    for student, (pods, record) in students.items():
        done = from_record(record)
        report = done.report or {}
        phases = sorted({str(p.get("phase") or "Unknown") for p in pods})

        def ms(key: str, report: Mapping[str, Any] = report) -> float | None:
            value = report.get(key)
            return round(float(value) * 1000, 1) if isinstance(value, int | float) else None

        rows[student] = {
            "namespace": namespace_of(student),
            "steps": f"{len(done.steps)}/{len(STEPS)}",
            "next step": done.next_step() or "done",
            "pods": len(pods),
            "phase": ", ".join(phases) if phases else "no pod",
            "restarts": sum(int(p.get("restarts") or 0) for p in pods),
            "verdict": report.get("verdict") or "not measured",
            "p50 (ms)": ms("p50"),
            "p50 low (ms)": ms("p50_low"),
            "p50 high (ms)": ms("p50_high"),
        }
    table = pd.DataFrame.from_dict(rows, orient="index", columns=STATUS_COLUMNS)
    for column in ("p50 (ms)", "p50 low (ms)", "p50 high (ms)"):
        table[column] = table[column].astype(float)  # a student who never measured: NaN
    return table.rename_axis("student")
