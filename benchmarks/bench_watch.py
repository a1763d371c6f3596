"""What watching the containers costs while a measurement runs.

Why: ``measure`` reads every container's state about once a second (to see
restarts at once and a pod that disappeared within seconds). The look runs on
the thread that waits for the observer, so a slow look delays progress and
the end of the wait; it must stay small against its one-second period.

Where: Podman on this machine, and the Kubernetes engine against the kit's
API stand-in (``tests/k8s_standin``, a fake API server that runs the pod on
local Podman), since no cluster runs here.

Baseline: ``exec true`` in the producer, the cheapest round trip the lab
already makes, timed in the same run on the same pod.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchlib import MANIFESTS, ROOT, Result, main, say

import labkit
from labkit import lifecycle

ROUNDS = 15
PERIOD = 1.0  # seconds between looks during a measurement (labkit.lab._Watch.EVERY)
GOAL = 0.2  # a look may take at most a fifth of its period


def _median(fn: Callable[[], object], rounds: int = ROUNDS) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _measure(lab: labkit.Lab, label: str) -> Result:
    look = _median(lambda: lifecycle.container_states(lab.engine, lab.pod))
    exec_true = _median(lambda: lab.exec(["true"], check=True))
    say(f"  {label}: container_states {look * 1e3:.1f} ms, exec true {exec_true * 1e3:.1f} ms (median of {ROUNDS})")
    return Result(
        f"one look at the containers, {label}",
        f"{look * 1e3:.1f} ms ({look / PERIOD:.1%} of {PERIOD:g} s)",
        f"{exec_true * 1e3:.1f} ms (exec true)",
        f"{look / exec_true:.2f}x an exec",
        f"<= {GOAL * 1e3:.0f} ms",
        look <= GOAL,
    )


def run() -> list[Result]:
    sys.path.insert(0, str(ROOT))
    from labkit.engines import get_engine
    from tests.k8s_standin import KubernetesStandIn

    manifest = MANIFESTS / "multicontainer-pod.yaml"
    results = []
    say(f"watch: {manifest.name}, container_states against exec true, {ROUNDS} rounds each")
    with labkit.Lab(manifest, name="bench-watch", engine=get_engine("podman"), progress=False) as lab:
        lab.apply().wait_ready(timeout=120)
        results.append(_measure(lab, "Podman"))
    with (
        tempfile.TemporaryDirectory(prefix="labkit-bench-watch-") as tmp,
        KubernetesStandIn(namespaces=("default",), tmp_dir=Path(tmp)) as api,
    ):
        engine = get_engine("kubernetes", kubeconfig=api.kubeconfig)
        with labkit.Lab(manifest, name="bench-watch", engine=engine, progress=False) as lab:
            lab.apply().wait_ready(timeout=120)
            results.append(_measure(lab, "Kubernetes (stand-in)"))
    return results


if __name__ == "__main__":
    main(run)
