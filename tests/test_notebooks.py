"""The notebooks on the Kubernetes engine.

``pytest`` itself runs every notebook under nbval on the default (Podman)
engine. Here the same notebooks, with the same committed outputs, run again
with ``LABKIT_ENGINE=kubernetes``: against the API stand-in, and with
``-m cluster`` against the real cluster of ``$KUBECONFIG``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _nbval(notebook: Path, env: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(notebook.relative_to(ROOT))],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout


@pytest.mark.podman
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_notebook_on_kubernetes_standin(notebook, kube):
    _nbval(notebook, {"LABKIT_ENGINE": "kubernetes", "KUBECONFIG": str(kube.kubeconfig)})


@pytest.mark.cluster
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_notebook_on_cluster(notebook):
    _nbval(notebook, {"LABKIT_ENGINE": "kubernetes"})
