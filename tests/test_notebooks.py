"""The notebooks on the Kubernetes engine.

``pytest`` itself runs every notebook under nbval on the default (Podman)
engine. Here the same notebooks, with the same committed outputs, run again
with ``LABKIT_ENGINE=kubernetes``: against the API stand-in, and with
``-m cluster`` against the real cluster of ``$KUBECONFIG``. The instructor's
notebook reads a class, so it runs once, against the stand-in with a class of
three set up by ``tests/class_scenario.py``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
INSTRUCTOR = ROOT / "notebooks" / "07-the-class-at-a-glance.ipynb"
STUDENTS = [n for n in NOTEBOOKS if n != INSTRUCTOR]  # the instructor's needs a class: its own test below


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
@pytest.mark.parametrize("notebook", STUDENTS, ids=[n.stem for n in STUDENTS])
def test_notebook_on_kubernetes_standin(notebook, kube):
    _nbval(notebook, {"LABKIT_ENGINE": "kubernetes", "KUBECONFIG": str(kube.kubeconfig)})


@pytest.mark.podman
def test_the_instructors_notebook_on_a_class_of_three(kube, tmp_path):
    from tests.class_scenario import class_of_three

    with class_of_three(kube.kubeconfig, tmp_path / "kubeconfigs"):
        _nbval(INSTRUCTOR, {"LABKIT_ENGINE": "kubernetes", "KUBECONFIG": str(kube.kubeconfig), "LABKIT_CLASS": "1"})


@pytest.mark.cluster
@pytest.mark.parametrize("notebook", STUDENTS, ids=[n.stem for n in STUDENTS])
def test_notebook_on_cluster(notebook):
    _nbval(notebook, {"LABKIT_ENGINE": "kubernetes"})


RAW_REPRS = re.compile(
    r"^[A-Za-z_.]+\((value|description|children)=|object at 0x|^<Figure size|^<Lab |^<[a-z_.]+\.[A-Z]\w+ "
)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_committed_outputs_read_as_prose(notebook):
    """Before anything runs, a reader sees text, tables and figures: no raw widget or object repr, no live widget."""
    cells = json.loads(notebook.read_text())["cells"]
    outputs = [out for cell in cells if cell["cell_type"] == "code" for out in cell["outputs"]]
    assert outputs, "the notebook is committed with its outputs"
    for out in outputs:
        assert out["output_type"] != "error", out
        data = out.get("data", {})
        text = "".join(data.get("text/plain", "")) or "".join(out.get("text", ""))
        assert text.strip(), out
        assert not RAW_REPRS.search(text), text
        if "application/vnd.jupyter.widget-view+json" in data:
            assert "slider" in text, f"only the slider stays live; it says what it is: {text!r}"
