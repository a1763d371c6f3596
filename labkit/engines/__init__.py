"""Engines by name: a small registry, so the lab never imports a particular one.

``get_engine()`` takes a name, else ``$LABKIT_ENGINE``, else the local
Podman engine.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from labkit.engines.base import Engine, ExecResult
from labkit.errors import EngineUnavailable

_REGISTRY: dict[str, Callable[[], Engine]] = {}


def register(name: str, factory: Callable[[], Engine]) -> None:
    """Make an engine available under ``name``; a name can be taken only once."""
    if name in _REGISTRY and _REGISTRY[name] is not factory:
        raise ValueError(f"an engine named {name!r} is already registered")
    _REGISTRY[name] = factory


def available() -> list[str]:
    return sorted(_REGISTRY)


def get_engine(name: str | Engine | None = None) -> Engine:
    """The engine called ``name`` (or given), else ``$LABKIT_ENGINE``, else Podman."""
    if name is not None and not isinstance(name, str):
        return name
    chosen = name or os.environ.get("LABKIT_ENGINE") or "podman"
    factory = _REGISTRY.get(chosen)
    if factory is None:
        raise EngineUnavailable(
            f"there is no engine called {chosen!r}; choose one of: {', '.join(available())} "
            "(with engine=... or the LABKIT_ENGINE environment variable)"
        )
    return factory()


def _podman() -> Engine:
    from labkit.engines.podman import PodmanEngine

    return PodmanEngine()


register("podman", _podman)

__all__ = ["Engine", "ExecResult", "available", "get_engine", "register"]
