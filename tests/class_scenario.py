"""A class of three in the states an instructor meets: one finished, one stuck after ready, one not started.

Used by the test that runs the instructor's notebook against the API stand-in
(``tests/test_notebooks.py``) and to produce that notebook's committed outputs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import labkit
from labkit.class_cluster import ClassAdmin
from labkit.engines.kubernetes import KubernetesEngine

ROOT = Path(__file__).resolve().parent.parent
HIRES = ROOT / "manifests" / "multicontainer-pod-hires.yaml"
STUDENTS = ["ada", "grace", "linus"]


def _lab(kubeconfig: Path) -> labkit.Lab:
    engine = KubernetesEngine(kubeconfig=kubeconfig)
    return labkit.Lab(HIRES, engine=engine, env={"producer": {"INTERVAL": "0.2"}}, progress=False)


@contextmanager
def class_of_three(admin_kubeconfig: str, out_dir: Path) -> Iterator[ClassAdmin]:
    """Create the class, walk ada through the whole lab and grace up to ready; remove it all afterwards."""
    admin = ClassAdmin(admin_kubeconfig)
    made = admin.create(STUDENTS, out_dir)
    stuck = _lab(made[1].kubeconfig)
    try:
        with _lab(made[0].kubeconfig) as done:
            done.apply().wait_ready(timeout=120)
            done.exec("ls -la /var/log")
            done.exec(["tail", "-n", "1", done.layout.server_path], container=done.layout.server)
            done.wait_serving().fetch()
            report = done.measure(lines=3, poll_interval=0.05, timeout=60)
            assert report.passed, report
        stuck.apply().wait_ready(timeout=120)
        yield admin
    finally:
        stuck.delete()
        admin.delete(None, out_dir)
