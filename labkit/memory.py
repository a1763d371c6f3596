"""How much memory a container is charged, read from its own memory cgroup.

A file in an emptyDir of ``medium: Memory`` is tmpfs: Kubernetes counts it
against the memory of the container that wrote it. The kernel keeps that
count per cgroup as ``shmem``, so reading the container's cgroup from inside
it shows the charge on any engine and node, cgroup v2 or v1 alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from labkit.errors import EngineError

# Run with sh inside the container: the charge (v2 memory.current, v1 usage_in_bytes), then its shmem line.
READ_CGROUP = (
    "cd /sys/fs/cgroup 2>/dev/null || exit 3; "
    "if [ -r memory.current ]; then cat memory.current; grep '^shmem ' memory.stat; "
    "elif [ -r memory/memory.usage_in_bytes ]; then "
    "cat memory/memory.usage_in_bytes; grep '^shmem ' memory/memory.stat; "
    "else exit 3; fi"
)

NO_OWN_CGROUPS = (
    "the containers of {engine} have no memory cgroup of their own (rootless Podman leaves them in the user's "
    "cgroup unless systemd delegates the memory controller on cgroup v2), so what each container is charged "
    "cannot be read; run the lab with rootful Podman, in a systemd login session on a machine with cgroup v2, "
    "or on a Kubernetes cluster"
)


@dataclass(frozen=True)
class MemoryUse:
    """One container's memory charge: all of it, and the part that is tmpfs (``shmem``)."""

    memory_bytes: int
    tmpfs_bytes: int


def parse_cgroup_memory(text: str, container: str) -> MemoryUse:
    """What ``READ_CGROUP`` printed for ``container``: the charge, then ``shmem N``.

    Raises :class:`EngineError` when the container shows no memory cgroup
    (a runtime that hides it), naming the container.
    """
    lines = text.split()
    if len(lines) != 3 or lines[1] != "shmem" or not (lines[0].isdigit() and lines[2].isdigit()):
        raise EngineError(
            f"container {container!r} shows no memory cgroup under /sys/fs/cgroup (it printed {text.strip()!r}), "
            "so its memory use cannot be read from inside it; look at the node's metrics instead "
            "(kubectl top pod --containers)"
        )
    return MemoryUse(memory_bytes=int(lines[0]), tmpfs_bytes=int(lines[2]))
