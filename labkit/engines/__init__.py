"""Engines by name: a small registry, so the lab never imports a particular one.

``get_engine()`` takes a name, else ``$LABKIT_ENGINE``, else it chooses:
the Kubernetes engine when a kubeconfig names a cluster that answers, and
the local Podman engine otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from labkit.engines.base import ContainerState, Engine, ExecResult
from labkit.errors import EngineUnavailable

_REGISTRY: dict[str, Callable[..., Engine]] = {}


def register(name: str, factory: Callable[..., Engine]) -> None:
    """Make an engine available under ``name``; a name can be taken only once."""
    if name in _REGISTRY and _REGISTRY[name] is not factory:
        raise ValueError(f"an engine named {name!r} is already registered")
    _REGISTRY[name] = factory


def available() -> list[str]:
    return sorted(_REGISTRY)


def get_engine(name: str | Engine | None = None, **options: Any) -> Engine:
    """The engine called ``name`` (or given), else ``$LABKIT_ENGINE``, else the one that fits.

    ``options`` go to the engine, e.g. ``namespace=`` or ``context=`` for Kubernetes.
    """
    if name is not None and not isinstance(name, str):
        return name
    chosen = name or os.environ.get("LABKIT_ENGINE") or None
    if chosen is None:
        return _automatic(**options)
    factory = _REGISTRY.get(chosen)
    if factory is None:
        raise EngineUnavailable(
            f"there is no engine called {chosen!r}; choose one of: {', '.join(available())} "
            "(with engine=... or the LABKIT_ENGINE environment variable)"
        )
    return factory(**options)


def _automatic(**options: Any) -> Engine:
    """A cluster when a kubeconfig names one that answers, else this machine's Podman."""
    kubeconfig = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST"))  # e.g. JupyterHub on Kubernetes
    if in_cluster or any(os.path.exists(p) for p in kubeconfig.split(os.pathsep) if p):
        try:
            return _REGISTRY["kubernetes"](**options)
        except EngineUnavailable:
            pass
    return _REGISTRY["podman"]()


def _podman() -> Engine:
    from labkit.engines.podman import PodmanEngine

    return PodmanEngine()


def _kubernetes(**options: Any) -> Engine:
    try:
        from labkit.engines.kubernetes import KubernetesEngine
    except ImportError as exc:
        if exc.name not in ("kubernetes", "urllib3", "websocket"):
            raise
        raise EngineUnavailable(
            "the Kubernetes engine needs the official client: pip install 'labkit[kubernetes]' "
            "(or pip install kubernetes)"
        ) from exc

    options.setdefault("context", os.environ.get("LABKIT_CONTEXT") or None)
    return KubernetesEngine(**options)


def _fake(**options: Any) -> Engine:
    from labkit.engines.fake import FakeEngine

    return FakeEngine(**options)


register("podman", _podman)
register("kubernetes", _kubernetes)
register("fake", _fake)

__all__ = ["ContainerState", "Engine", "ExecResult", "available", "get_engine", "register"]
