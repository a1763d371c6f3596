"""The seam between the lab and the machinery that runs its Pod.

An engine is whatever offers the primitives of :class:`Engine`: create and
remove a pod, report its labels and state, run a command in a container,
connect to a port, read logs and events. What the lab makes of them (whose
pod it is, when it is ready, what a crash is called, how long to wait) is
decided once, in :mod:`labkit.lifecycle`. Behaviour that must match
Kubernetes is pinned down by the contract tests in
``tests/test_engine_contract.py``, which every engine runs.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from labkit.errors import ExecError
from labkit.manifest import Pod


@dataclass
class ExecResult:
    """The outcome of a command run in a container, shaped like ``subprocess.CompletedProcess``.

    ``stdout`` and ``stderr`` are text (UTF-8, undecodable bytes replaced);
    the exact bytes are kept in ``stdout_bytes`` and ``stderr_bytes``.
    """

    args: list[str]
    returncode: int
    stdout_bytes: bytes = b""
    stderr_bytes: bytes = b""
    container: str = ""
    duration: float = 0.0

    @property
    def stdout(self) -> str:
        return self.stdout_bytes.decode("utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_bytes.decode("utf-8", errors="replace")

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def check_returncode(self) -> None:
        """Raise :class:`ExecError` if the command exited with a non-zero code."""
        if self.returncode != 0:
            meaning = exit_code_meaning(self.returncode)
            hint = f" ({self.returncode}: {meaning})" if meaning else ""
            detail = self.stderr.strip().splitlines()[-1:] or [""]
            raise ExecError(
                f"command {self.args!r} in container {self.container!r} exited with code "
                f"{self.returncode}{hint}: {detail[0]}".rstrip(": "),
                returncode=self.returncode,
                stdout=self.stdout,
                stderr=self.stderr,
            )

    def __str__(self) -> str:
        return self.stdout


@dataclass(frozen=True)
class ContainerState:
    """One container as the engine sees it now, shaped like a Kubernetes ``containerStatus``.

    ``state`` is what it does now (``waiting``, ``running`` or ``terminated``)
    with ``reason`` (``CrashLoopBackOff``, ``Completed``, ...) and, when
    terminated, ``exit_code``. ``restarts`` counts how often the engine
    started it again; ``last_exit_code``, ``last_reason`` and
    ``last_finished_at`` (UTC) describe the run before the current one, when
    there was one. ``message`` is the engine's word on a waiting container
    (why an image cannot be pulled, say).
    """

    name: str
    state: Literal["waiting", "running", "terminated"]
    reason: str = ""
    exit_code: int | None = None
    restarts: int = 0
    started_at: datetime | None = None
    last_exit_code: int | None = None
    last_reason: str = ""
    last_finished_at: datetime | None = None
    message: str = ""


def exit_code_meaning(code: object) -> str | None:
    """What a shell's exit code 126 or 127 means, for messages."""
    meanings = {127: "the command was not found in the container's image", 126: "the command cannot be executed"}
    return meanings.get(code) if isinstance(code, int) else None


@dataclass(frozen=True)
class PodState:
    """The pod as the engine sees it now: its containers and, where the engine has them, phase and reason.

    ``reason`` and ``message`` say why a pod cannot run as a whole
    (``Unschedulable``, ``Evicted``); ``deleting_since`` is set while a
    deletion is under way; ``version`` is the engine's revision of this view
    (Kubernetes' ``resourceVersion``), for :meth:`Engine.wait_for_change`.
    """

    containers: dict[str, ContainerState]
    phase: str = ""
    reason: str = ""
    message: str = ""
    deleting_since: datetime | None = None
    version: str = ""


class CommandTimedOut(Exception):
    """Raised by :meth:`Engine.exec` when a command ran past its timeout; the lab ends it and says so.

    Not a :class:`~labkit.errors.LabkitError`: it never reaches a user
    (:mod:`labkit.lifecycle` turns it into :class:`~labkit.errors.ExecTimeout`).
    """

    def __init__(self, stdout: bytes = b"", stderr: bytes = b"") -> None:
        super().__init__("the command ran past its timeout")
        self.stdout, self.stderr = stdout, stderr


class Tunnel(socket.socket):
    """A connection to a pod's port that can say why it closed (a Kubernetes port-forward can)."""

    def close_reason(self) -> str | None:
        """Why the engine closed the connection, when it said; None when it gave no reason."""
        return None


@runtime_checkable
class Engine(Protocol):
    """The primitives the lab needs from a place that runs Pods.

    An engine translates these into its machinery and decides nothing:
    whose pod it is, when it is ready, what a crash is called and how long
    to wait all live in :mod:`labkit.lifecycle`.
    """

    name: str

    @property
    def where(self) -> str:
        """Where the engine runs pods, as a phrase ("in Podman on this machine"), for messages."""

    shares_host_clock: bool
    """True when the pod's containers read this machine's own clock (no offset to measure)."""
    restart_backoff: bool
    """True when repeated crashes wait in CrashLoopBackOff (a kubelet), False when every restart is at once.

    Both restart a container at once after its first crash; a kubelet holds a
    later one for a back-off (10 s, doubling to 5 min), Podman 4.3 never does
    (docs/facts.md, "Restarts after a crash").
    """
    container_cgroups: bool
    """True when each container has a memory cgroup of its own, which :meth:`labkit.Lab.memory` reads."""

    def describe(self) -> str:
        """One line saying which engine this is and where it runs pods."""

    def remove_command(self, pod: Pod) -> str:
        """The command a user runs to remove the pod by hand."""

    def changes(self, pod: Pod) -> list[str]:
        """What the engine changes in the manifest to run it as Kubernetes would, one item each, or [].

        Raises :class:`~labkit.errors.ManifestError` for what it cannot run, before anything is touched.
        """

    def labels(self, pod: Pod) -> dict[str, str] | None:
        """The labels of the existing pod with ``pod``'s name, or None when there is none."""

    def create(self, pod: Pod) -> None:
        """Create the pod from its manifest; the name is free."""

    def remove(self, pod: Pod) -> None:
        """Ask for the pod and its emptyDir volumes to be removed; it may still exist for a while after."""

    def state(self, pod: Pod) -> PodState | None:
        """The pod's state now, or None when it does not exist."""

    def wait_for_change(self, pod: Pod, seen: PodState, seconds: float) -> None:
        """Return when the pod may have changed since ``seen``, after at most about ``seconds``."""

    def exec(self, pod: Pod, container: str, argv: Sequence[str], timeout: float | None) -> ExecResult:
        """Run ``argv`` in ``container`` without a shell; raise :class:`CommandTimedOut` past ``timeout``."""

    def connect(self, pod: Pod, port: int, timeout: float) -> socket.socket:
        """A fresh stream connection to ``port`` of the pod, for the port-forward to relay."""

    def logs(self, pod: Pod, container: str, tail: int | None = None, previous: bool = False) -> str:
        """What ``container`` wrote to stdout and stderr (``previous``: its run before a restart, where kept)."""

    def events(self, pod: Pod) -> list[str]:
        """The pod's recent events as ``"Reason: message"``, oldest first; [] where the engine keeps none."""

    def read_record(self, name: str) -> dict[str, str] | None:
        """The record kept under ``name`` by :meth:`record` (by this or an earlier session), or None."""

    def record(self, name: str, data: Mapping[str, str]) -> None:
        """Keep a small named record beside the lab's pods, replacing an earlier one of that name.

        Others with access to the place read it there: for a student of a
        class (a kubeconfig from ``labkit class``) it is a ConfigMap in the
        student's namespace, which the instructor reads; anywhere else the
        engine keeps it in memory, leaving nothing behind. Raises
        :class:`~labkit.errors.EngineError` when it cannot be kept.
        """
