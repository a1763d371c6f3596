"""Shared fixtures.

Tests that need a real engine are marked ``podman`` (the Kubernetes API
stand-in runs its pods on Podman too) and are skipped, with the reason, when
Podman or the lab's images are missing. Tests marked ``cluster`` run against
the real cluster of ``$KUBECONFIG`` and only when asked for with ``-m cluster``.
With ``LABKIT_REQUIRE_ALL=1`` (CI), a missing need stops the run instead of
skipping what needs it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "manifests" / "multicontainer-pod.yaml"
TEST_MANIFESTS = Path(__file__).resolve().parent / "manifests"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _podman_problem() -> str | None:
    if not shutil.which("podman"):
        return "podman is not installed (run scripts/prepare-podman.sh)"
    for image in ("docker.io/library/ubuntu:latest", "docker.io/library/nginx:latest"):
        if subprocess.run(["podman", "image", "exists", image], capture_output=True).returncode != 0:
            return f"image {image} is missing (run scripts/build-standin-images.sh)"
    return None


def _browser_problem() -> str | None:
    from tests.browser.jupyterlab import CHROMIUM

    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium fonts-noto-color-emoji)"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright module is missing (pip install playwright; no browser download is needed)"
    return None


# What a marked test needs, and what is missing when it cannot run here (None: nothing).
NEEDS = {"podman": _podman_problem, "browser": _browser_problem}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "cluster" not in (config.getoption("-m") or ""):
        skip_cluster = pytest.mark.skip(reason="runs against a real cluster: select it with -m cluster")
        for item in items:
            if item.get_closest_marker("cluster"):
                item.add_marker(skip_cluster)
    for marker, problem_of in NEEDS.items():
        marked = [item for item in items if item.get_closest_marker(marker)]
        problem = problem_of() if marked else None
        if problem and os.environ.get("LABKIT_REQUIRE_ALL") == "1":
            raise pytest.UsageError(f"LABKIT_REQUIRE_ALL=1: the {marker} tests must run here, but {problem}")
        if problem:
            for item in marked:
                item.add_marker(pytest.mark.skip(reason=problem))


@pytest.fixture
def seed() -> Path:
    return SEED


@pytest.fixture
def test_manifest():
    return lambda name: TEST_MANIFESTS / name


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory):
    """The Kubernetes API stand-in (a fake API server that runs pods on Podman), one per session."""
    from tests.k8s_standin import KubernetesStandIn

    # Volumes are measured every 2 s rather than a kubelet's default minute, as its --volume-stats-agg-period
    # flag would set it, so that an eviction (notebook 04, the volume contract) comes within seconds here.
    with KubernetesStandIn(
        namespaces=("default", "lab-student-01", "lab-student-02"),
        tmp_dir=tmp_path_factory.mktemp("kube"),
        volume_stats_period=2.0,
    ) as api:
        yield api


@pytest.fixture(scope="session")
def make_engine(request: pytest.FixtureRequest):
    """Build an engine by contract-suite name: podman, kubernetes (the stand-in) or cluster ($KUBECONFIG)."""
    from labkit.engines import get_engine

    def make(name: str, **options: object):
        if name == "kubernetes":
            return get_engine("kubernetes", kubeconfig=request.getfixturevalue("kube").kubeconfig, **options)
        if name == "cluster":
            return get_engine("kubernetes", **options)
        return get_engine(name)

    return make
