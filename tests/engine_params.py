"""The engines every contract suite runs on: Podman, the Kubernetes engine against the API stand-in, and
(with ``-m cluster``) the real cluster of ``$KUBECONFIG``."""

from __future__ import annotations

import pytest

ENGINES = [
    pytest.param("podman", marks=pytest.mark.podman, id="podman"),
    pytest.param("kubernetes", marks=pytest.mark.podman, id="kubernetes"),
    pytest.param("cluster", marks=pytest.mark.cluster, id="cluster"),
]
