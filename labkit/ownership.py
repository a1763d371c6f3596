"""Whose pod is it? The kit touches only pods it created, and only its own session's.

Every pod the kit applies carries labels: ``app.kubernetes.io/managed-by:
labkit``, the session of the :class:`~labkit.lab.Lab` that applied it, the
process that owns it (host and pid) and a digest of its spec. With them an
engine can tell a leftover of a crashed kernel (replace it) from a pod
another notebook is using right now (refuse), and never deletes a pod that
is not its own session's.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import uuid
from collections.abc import Mapping
from typing import Any, Literal

from labkit.errors import PodExists
from labkit.manifest import MANAGED_BY_LABEL, MANAGED_BY_VALUE, Pod

SESSION_LABEL = "labkit.io/session"
OWNER_LABEL = "labkit.io/owner"
SPEC_LABEL = "labkit.io/spec"

Decision = Literal["absent", "same", "replace"]


def new_session() -> str:
    return uuid.uuid4().hex[:12]


def owner() -> str:
    """This process as a label value: ``host.pid`` (letters, digits, '-', '.' only)."""
    host = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:40].strip("-.") or "host"
    return f"{host}.{os.getpid()}"


def spec_digest(doc: Mapping[str, Any]) -> str:
    """A short digest of what cannot change in a running pod: its spec."""
    return hashlib.sha256(json.dumps(doc.get("spec", {}), sort_keys=True).encode()).hexdigest()[:16]


def stamp(pod: Pod, session: str) -> Pod:
    """The pod with the kit's ownership labels."""
    return pod.with_labels(
        {
            MANAGED_BY_LABEL: MANAGED_BY_VALUE,
            SESSION_LABEL: session,
            OWNER_LABEL: owner(),
            SPEC_LABEL: spec_digest(pod.doc),
        }
    )


def managed(pod: Pod) -> Pod:
    """The pod with the kit's managed-by label, which every pod the kit creates carries (also without a Lab)."""
    labels = pod.doc.get("metadata", {}).get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE:
        return pod
    return pod.with_labels({MANAGED_BY_LABEL: MANAGED_BY_VALUE})


def owns(labels: dict[str, str] | None, pod: Pod) -> bool:
    """Whether an existing pod with ``labels`` was applied by the same session as ``pod``."""
    labels = labels or {}
    mine = pod.doc.get("metadata", {}).get("labels", {}).get(SESSION_LABEL)
    return labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE and mine is not None and labels.get(SESSION_LABEL) == mine


def decide(labels: dict[str, str] | None, pod: Pod, *, where: str, remove: str = "", replace: bool = False) -> Decision:
    """What applying ``pod`` may do to an existing pod of the same name (``labels`` None: there is none).

    ``same``: it is this session's pod with this spec, keep it. ``replace``:
    remove it first (this session's with another spec, a leftover of a
    session whose process is gone, or ``replace=True``). Otherwise refuse
    with :class:`PodExists`, saying how to resolve it (``remove`` is the
    engine's command for deleting the pod by hand).
    """
    if labels is None:
        return "absent"
    if replace:
        return "replace"
    if labels.get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE:
        raise PodExists(
            f"a pod named {pod.name!r} already exists {where} and was not created by labkit, so the kit will not "
            f"replace it; delete it yourself{f' ({remove})' if remove else ''}, "
            "give the lab another name (Lab(..., name='...')), or pass "
            "replace=True to take it over"
        )
    if owns(labels, pod):
        mine = pod.doc.get("metadata", {}).get("labels", {}).get(SPEC_LABEL)
        return "same" if labels.get(SPEC_LABEL) == mine else "replace"
    holder = labels.get(OWNER_LABEL, "")
    if _alive(holder):
        raise PodExists(
            f"pod {pod.name!r} {where} is in use by another labkit session (process {holder}); call lab.delete() "
            "there (or restart that kernel), give this lab another name (Lab(..., name='...')), or pass "
            "replace=True to take it over"
        )
    return "replace"  # a leftover of a session that has ended


def _alive(holder: str) -> bool:
    """Whether another process ``host.pid`` still runs; one on another machine is assumed to.

    This process itself counts as gone: a notebook that made a new Lab of
    the same pod (a re-run cell) takes the pod over from its older Lab.
    """
    host, _, pid = holder.rpartition(".")
    if not pid.isdigit() or (int(pid) == os.getpid() and host == owner().rpartition(".")[0]):
        return False
    if host != owner().rpartition(".")[0]:
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
