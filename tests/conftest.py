"""Shared fixtures. Tests that need a real engine are marked ``podman`` and
skipped, with the reason, when Podman or the lab's images are missing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "manifests" / "multicontainer-pod.yaml"
TEST_MANIFESTS = Path(__file__).resolve().parent / "manifests"


def _podman_problem() -> str | None:
    if not shutil.which("podman"):
        return "podman is not installed (run scripts/prepare-podman.sh)"
    for image in ("docker.io/library/ubuntu:latest", "docker.io/library/nginx:latest"):
        if subprocess.run(["podman", "image", "exists", image], capture_output=True).returncode != 0:
            return f"image {image} is missing (run scripts/build-standin-images.sh)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any(item.get_closest_marker("podman") for item in items):
        return
    problem = _podman_problem()
    if problem is None:
        return
    skip = pytest.mark.skip(reason=problem)
    for item in items:
        if item.get_closest_marker("podman"):
            item.add_marker(skip)


@pytest.fixture
def seed() -> Path:
    return SEED


@pytest.fixture
def test_manifest():
    return lambda name: TEST_MANIFESTS / name
