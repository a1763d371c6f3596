"""The seam between the lab and the machinery that runs its Pod.

Everything above this module speaks only :class:`Engine`; an engine is
whatever can apply a Pod, wait for it, run commands in its containers,
open a connection to one of its ports, read logs and delete it. Behaviour
that must match Kubernetes is pinned down by the contract tests in
``tests/test_engine_contract.py``, which every engine runs.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from labkit.errors import ExecError, ExecTimeout
from labkit.manifest import Pod

Progress = Callable[[dict[str, str]], None]
"""Called with ``{container: state}`` each time a container's state changes."""


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
    there was one.
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


# A container must keep running this long after it first runs to count as ready,
# so a command that exits at once is reported instead of passing as "running".
SETTLE_SECONDS = 1.0


def exit_code_meaning(code: object) -> str | None:
    """What a shell's exit code 126 or 127 means, for messages."""
    return {127: "the command was not found in the container's image", 126: "the command cannot be executed"}.get(
        code  # type: ignore[call-overload]
    )


def crash_hint(code: object) -> str:
    meaning = exit_code_meaning(code)
    return f"; exit code {code} means {meaning}" if meaning else ""


def exec_timeout(argv: Sequence[str], container: str, timeout: float, stdout: bytes, stderr: bytes) -> ExecTimeout:
    """The error for a command that ran past its timeout and was stopped."""
    return ExecTimeout(
        f"command {list(argv)!r} in container {container!r} did not finish within {timeout:g} s "
        "and was stopped; raise timeout= or make the command end by itself "
        "(for example 'tail' instead of 'tail -f')",
        stdout=stdout.decode("utf-8", "replace"),
        stderr=stderr.decode("utf-8", "replace"),
    )


# $1 is the command line to end. The matching processes are collected first,
# then every process whose parent is already collected (repeated until none is
# added), so children that a shell started go too. Each is stopped when it is
# collected, so none can start another meanwhile; then all get SIGKILL.
_KILL_SCRIPT = r"""
targets=""
for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [ "$p" = 1 ] || [ "$p" = "$$" ] && continue
    c=$(tr "\0" " " < "$d/cmdline" 2>/dev/null) || continue
    [ "${c% }" = "$1" ] && { targets="$targets $p"; kill -STOP "$p" 2>/dev/null; }
done
[ -n "$targets" ] || exit 0
added=1
while [ "$added" = 1 ]; do
    added=0
    for d in /proc/[0-9]*; do
        p=${d#/proc/}
        case " $targets " in *" $p "*) continue ;; esac
        read -r stat < "$d/stat" 2>/dev/null || continue
        set -- ${stat##*) }
        case " $targets " in *" $2 "*) targets="$targets $p"; added=1; kill -STOP "$p" 2>/dev/null ;; esac
    done
done
kill -9 $targets 2>/dev/null
true
"""


def kill_command(argv: Sequence[str]) -> list[str]:
    """A command that ends every process in a container running exactly ``argv``, and their children.

    Neither ``podman exec`` nor the Kubernetes exec stream stops a command
    when its client goes away, so a timed-out command is ended this way.
    """
    return ["/bin/sh", "-c", _KILL_SCRIPT, "sh", " ".join(argv)]


@runtime_checkable
class Engine(Protocol):
    """What the lab needs from a place that runs Pods."""

    name: str
    shares_host_clock: bool
    """True when the pod's containers read this machine's own clock (no offset to measure)."""
    restart_backoff: bool
    """True when a crashed container is restarted after a growing delay (Kubernetes), False when at once."""

    def describe(self) -> str:
        """One line saying which engine this is and where it runs pods."""

    def apply(self, pod: Pod, replace: bool = False) -> list[str]:
        """Create the pod; decide about an existing one of the same name with :func:`labkit.ownership.decide`.

        Returns what the engine had to change in the manifest to run it as
        Kubernetes would (one item each, for the user), or an empty list.
        """

    def wait_ready(self, pod: Pod, timeout: float, progress: Progress | None = None) -> None:
        """Return once every container runs; raise a :class:`~labkit.errors.NotReady` subclass otherwise."""

    def exec(self, pod: Pod, container: str, argv: Sequence[str], timeout: float | None) -> ExecResult:
        """Run ``argv`` in ``container`` without a shell and return what it printed and its exit code."""

    def connect(self, pod: Pod, port: int, timeout: float) -> socket.socket:
        """A fresh stream connection to ``port`` of the pod, for the port-forward to relay."""

    def logs(self, pod: Pod, container: str, tail: int | None = None) -> str:
        """What ``container`` wrote to its stdout and stderr."""

    def exists(self, pod: Pod) -> bool:
        """Whether the pod exists in the engine now."""

    def container_states(self, pod: Pod) -> dict[str, ContainerState]:
        """Each container's state, restart count and last termination, by container name.

        Raises :class:`~labkit.errors.PodGone` when the pod does not exist.
        """

    def delete(self, pod: Pod, timeout: float) -> None:
        """Remove this session's pod and its emptyDir volumes, and wait until they are gone.

        Raises :class:`~labkit.errors.PodExists` (touching nothing) when the pod
        of that name is not this session's.
        """
