"""What the in-pod probe gains on the Kubernetes engine: the clock's uncertainty leaves the bounds.

Why: through a port-forward, ``served_at`` is stamped by this machine's clock
and ``written_at`` by the pod's, so every bound on a cluster is widened by the
uncertainty of the estimated clock offset (half the fastest exec round trip).
The in-pod probe fetches from inside the serving container and stamps with
the pod's clock, so that term is zero; what remains is its fetch cycle.

Where: the Kubernetes engine against the kit's Kubernetes API stand-in (a
fake API server from ``tests/k8s_standin`` that runs the pod on local Podman),
since no cluster runs here. On a real cluster the round trips, and so the
gain, differ.

Baseline: the same pod measured through the port-forward, in the same run.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from benchlib import MANIFESTS, ROOT, Result, main, say

import labkit

LINES = 100
POLL = 0.005
INTERVAL = "0.05"


def run() -> list[Result]:
    sys.path.insert(0, str(ROOT))
    from labkit.engines import get_engine
    from tests.k8s_standin import KubernetesStandIn

    manifest = MANIFESTS / "multicontainer-pod-hires.yaml"
    widths: dict[str, float] = {}
    figures: dict[str, str] = {}
    with (
        tempfile.TemporaryDirectory(prefix="labkit-bench-probe-") as tmp,
        KubernetesStandIn(namespaces=("default",), tmp_dir=Path(tmp)) as api,
    ):
        engine = get_engine("kubernetes", kubeconfig=api.kubeconfig)
        env: dict[str, dict[str, object]] = {"producer": {"INTERVAL": INTERVAL}}
        with labkit.Lab(manifest, name="bench-probe", engine=engine, env=env, progress=False) as lab:
            lab.apply().wait_ready(timeout=120)
            say(
                f"probe: {manifest.name} on the Kubernetes engine (API stand-in), INTERVAL={INTERVAL} s, "
                f"{POLL * 1e3:g} ms polls, {LINES} lines each way"
            )
            for via in ("port-forward", "in-pod"):
                report = lab.measure(lines=LINES, poll_interval=POLL, via=via)
                s = report.summary
                low, high = s["p50_low"] * 1e3, s["p50_high"] * 1e3
                widths[via] = high - low
                figures[via] = f"{s['p50'] * 1e3:.1f} ms in [{low:.1f}, {high:.1f}]"
                say(
                    f"  {via:>12}: p50 {figures[via]} ms, clock uncertainty {report.clock.uncertainty * 1e3:.1f} ms, "
                    f"{report.polls} fetches in {report.duration:.1f} s, "
                    f"checks {'passed' if report.passed else 'NOT passed'}"
                )
    ratio = widths["port-forward"] / widths["in-pod"] if widths["in-pod"] > 0 else float("inf")
    return [
        Result(
            "p50 bounds on Kubernetes (stand-in): in-pod vs port-forward",
            figures["in-pod"],
            figures["port-forward"],
            f"{widths['in-pod']:.1f} vs {widths['port-forward']:.1f} ms wide: {ratio:.1f}x narrower",
            "",
            None,
        ),
    ]


if __name__ == "__main__":
    main(run)
