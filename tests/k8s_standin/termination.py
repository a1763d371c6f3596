"""Deleting a pod: the grace period kube-apiserver stores and the one a kubelet kills with (a fake's rules).

Paths are in the public ``kubernetes/kubernetes`` repository.

- The first DELETE: ``podStrategy.CheckGracefulDelete`` (``pkg/registry/core/pod/strategy.go``) takes
  ``deleteOptions.gracePeriodSeconds``, else ``spec.terminationGracePeriodSeconds`` (defaulted to 30),
  and makes it 0 for a pod that is not scheduled or already Succeeded/Failed; ``BeforeDelete``
  (``staging/src/k8s.io/apiserver/pkg/registry/rest/delete.go``) treats a negative value as 1, sets
  ``deletionTimestamp`` = now + grace and ``deletionGracePeriodSeconds`` = grace.
- A grace period of 0 deletes the object at once (the registry store's
  ``updateForGracefulDeletionAndFinalizers``: no finalizers and grace 0 means delete immediately).
  ``kubectl delete`` sends 0 only with ``--force``; without it ``--grace-period=0`` becomes 1
  (``Complete`` in ``staging/src/k8s.io/kubectl/pkg/cmd/delete/delete.go``).
- A later DELETE of a pod already being deleted may only shorten the period; the new
  ``deletionTimestamp`` is the old one moved by the difference (``BeforeDelete``).
- The kubelet kills with ``deletionGracePeriodSeconds``, never less than 1 s, and a grace period may only
  decrease (``calculateEffectiveGracePeriod`` in ``pkg/kubelet/pod_workers.go``); it passes that value as
  the override to ``killContainer`` (``pkg/kubelet/kuberuntime/kuberuntime_container.go``), which asks the
  runtime to stop each running container: the image's STOPSIGNAL (SIGTERM when it names none) to PID 1,
  then SIGKILL when the grace period ends (containerd's ``stopContainer``; KEP-4960 in
  ``kubernetes/enhancements`` describes that order).
- Once every container has stopped, the kubelet writes the pod's terminal phase
  (``SyncTerminatingPod`` calls ``generateAPIPodStatus(..., podIsTerminal=true)``; ``getPhase`` in
  ``pkg/kubelet/kubelet_pods.go``: Succeeded when every container exited 0, else Failed), and only after
  the pod's resources are reclaimed does it delete the object (``pkg/kubelet/status/status_manager.go``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

DEFAULT_GRACE = 30  # spec.terminationGracePeriodSeconds when the pod does not set it
_STAMP = "%Y-%m-%dT%H:%M:%SZ"


def first_grace(pod: dict[str, Any], asked: int | None) -> int:
    """The grace period kube-apiserver stores for the first DELETE of ``pod`` (``CheckGracefulDelete``)."""
    if asked is not None and asked < 0:
        asked = 1
    period = asked if asked is not None else int(pod["spec"].get("terminationGracePeriodSeconds", DEFAULT_GRACE))
    if not pod["spec"].get("nodeName") or pod["status"].get("phase") in ("Succeeded", "Failed"):
        period = 0
    return 1 if period < 0 else period


def shorter_grace(meta: dict[str, Any], asked: int | None) -> int | None:
    """For a pod already being deleted: the new, shorter grace period, or None when nothing changes."""
    if asked is None:
        return None
    asked = 1 if asked < 0 else asked
    current = meta.get("deletionGracePeriodSeconds")
    if current is None or asked >= current:
        return None
    return asked


def mark_deleted(meta: dict[str, Any], grace: int, now: datetime) -> None:
    """Set ``deletionTimestamp`` and ``deletionGracePeriodSeconds`` as ``BeforeDelete`` does."""
    old_grace = meta.get("deletionGracePeriodSeconds")
    if old_grace is None:
        when = now + timedelta(seconds=grace)
    else:
        # A shortened period moves the existing timestamp back by the difference.
        when = datetime.strptime(meta["deletionTimestamp"], _STAMP).replace(tzinfo=now.tzinfo) + timedelta(
            seconds=grace - int(old_grace)
        )
    meta["deletionTimestamp"] = when.strftime(_STAMP)
    meta["deletionGracePeriodSeconds"] = grace


def kill_grace(deletion_grace: int) -> int:
    """The seconds a kubelet gives the containers before SIGKILL (``calculateEffectiveGracePeriod``: at least 1)."""
    return max(deletion_grace, 1)


def terminal_phase(statuses: list[dict[str, Any]]) -> str:
    """The phase of a pod whose containers have all stopped (``getPhase`` with ``podIsTerminal``)."""
    codes = [(cs.get("state") or {}).get("terminated", {}).get("exitCode") for cs in statuses]
    return "Succeeded" if codes and all(code == 0 for code in codes) else "Failed"


@dataclass
class Termination:
    """One pod's kill in progress: when SIGKILL is due (time.monotonic()), and a wake-up when that moves."""

    deadline: float
    moved: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def after(cls, seconds: int) -> Termination:
        return cls(deadline=time.monotonic() + seconds)

    def shorten(self, seconds: int) -> None:
        """A grace period may only decrease (``calculateEffectiveGracePeriod``)."""
        deadline = time.monotonic() + seconds
        if deadline < self.deadline:
            self.deadline = deadline
            self.moved.set()

    def remaining(self) -> float:
        return self.deadline - time.monotonic()
