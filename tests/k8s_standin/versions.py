"""The stand-in's one resourceVersion counter (a fake for tests).

kube-apiserver takes every object's resourceVersion from one etcd revision,
so versions grow across kinds and a list's version is at least that of each
item in it. Pods, events, namespaces and the other stored objects share this
counter for the same reason.
"""

from __future__ import annotations


class ResourceVersions:
    """Hands out increasing resource versions; ``current`` is the last one handed out."""

    def __init__(self) -> None:
        self.current = 0

    def next(self) -> int:
        self.current += 1
        return self.current

    def __str__(self) -> str:
        return str(self.current)
