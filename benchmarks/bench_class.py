"""A class at once: N students' labs on one cluster, each in its own namespace with its own kubeconfig.

Why: in a classroom everyone applies, execs and port-forwards within the same
minutes. This shows how apply-to-ready and a whole lab's time grow with the
class, that no lab fails or leaves a pod behind, and that every request one
student makes into another's namespace is refused.

Where: the Kubernetes engine against the kit's API stand-in
(``tests/k8s_standin``, a fake API server that runs each pod on local
Podman), since no cluster runs here; ``labkit class create`` sets the class
up through it. Each student's lab: apply, wait until ready, an exec in each
container, a fetch through a port-forward, a short measurement, delete.

Baseline: a class of one, measured in the same run.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchlib import MANIFESTS, ROOT, Result, main, say

import labkit

SIZES = [int(n) for n in os.environ.get("LABKIT_BENCH_CLASS", "1,4,8,12").split(",")]
LINES = 3  # a short measurement: three lines at 0.2 s


def _lab(kubeconfig: Path, name: str, other_namespace: str | None) -> dict[str, Any]:
    """One student's lab, timed; errors and cross-namespace refusals counted."""
    from kubernetes.client import ApiException

    from labkit.engines.kubernetes import KubernetesEngine

    out: dict[str, Any] = {"error": None, "tried": 0, "refused": 0}
    start = time.perf_counter()
    try:
        engine = KubernetesEngine(kubeconfig=kubeconfig)
        lab = labkit.Lab(
            MANIFESTS / "multicontainer-pod-hires.yaml",
            engine=engine,
            name=name,
            env={"producer": {"INTERVAL": "0.2"}},
            progress=False,
        )
        with lab:
            lab.apply()
            lab.wait_ready(timeout=300)
            out["ready"] = time.perf_counter() - start
            lab.exec("ls -la /var/log")
            lab.exec(["tail", "-n", "1", lab.layout.server_path], container=lab.layout.server)
            lab.fetch()
            report = lab.measure(lines=LINES, timeout=60, poll_interval=0.05)
            out["passed"] = report.passed
            out["not_passed"] = [c.name.split(" <=")[0] for c in report.checks if not c.passed]
            if other_namespace is not None:
                out["tried"] += 1
                try:
                    engine.api.list_namespaced_pod(other_namespace, _request_timeout=10)
                except ApiException as exc:
                    out["refused"] += exc.status == 403
        out["total"] = time.perf_counter() - start
    except Exception as exc:  # one student's failure is a figure of the class, not the end of the run
        out["error"] = f"{type(exc).__name__}: {exc}"[:200]
    return out


def _class_of(n: int, api: Any, tmp: Path) -> dict[str, Any]:
    from labkit.class_cluster import ClassAdmin

    admin = ClassAdmin(api.kubeconfig)
    made = admin.create(n, tmp / f"class-{n}", prefix=f"n{n}")
    results: list[dict[str, Any]] = [{} for _ in made]
    gate = threading.Barrier(len(made))

    def student(i: int) -> None:
        gate.wait()
        other = made[(i + 1) % len(made)].namespace if len(made) > 1 else None
        results[i] = _lab(made[i].kubeconfig, "sidecar", other)

    threads = [threading.Thread(target=student, args=(i,)) for i in range(len(made))]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    left = sum(len(admin.core.list_namespaced_pod(m.namespace).items) for m in made)
    admin.delete(None, tmp / f"class-{n}")
    ok = [r for r in results if r.get("error") is None and "total" in r]
    errors = [r["error"] for r in results if r.get("error")]
    for e in errors[:3]:
        say(f"    error: {e}")
    return {
        "n": n,
        "ready": [r["ready"] for r in ok],
        "total": [r["total"] for r in ok],
        "errors": len(errors),
        "failed": sum(not r.get("passed") for r in ok),
        "not_passed": Counter(name for r in ok for name in r.get("not_passed", [])),
        "left": left,
        "tried": sum(r["tried"] for r in results if r),
        "refused": sum(r["refused"] for r in results if r),
        "wall": wall,
    }


def _p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def run() -> list[Result]:
    sys.path.insert(0, str(ROOT))
    from tests.k8s_standin import KubernetesStandIn

    say(f"class: {os.cpu_count()} cores; classes of {SIZES} students at once on the API stand-in")
    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="labkit-bench-class-") as tmp,
        KubernetesStandIn(namespaces=("default",), tmp_dir=Path(tmp) / "api") as api,
    ):
        for n in SIZES:
            row = _class_of(n, api, Path(tmp))
            rows.append(row)
            say(
                f"  N={n}: apply-to-ready p50 {_p(row['ready'], 0.5):.2f} s p95 {_p(row['ready'], 0.95):.2f} s, "
                f"lab p50 {_p(row['total'], 0.5):.2f} s p95 {_p(row['total'], 0.95):.2f} s, wall {row['wall']:.1f} s, "
                f"errors {row['errors']}, labs whose checks did not all pass {row['failed']} "
                f"({dict(row['not_passed']) or 'none'}), pods left {row['left']}, "
                f"cross-namespace refused {row['refused']}/{row['tried']}"
            )
    base = rows[0]
    base_ready, base_total = _p(base["ready"], 0.5), _p(base["total"], 0.5)
    results = []
    for row in rows:
        ready50, ready95 = _p(row["ready"], 0.5), _p(row["ready"], 0.95)
        total50, total95 = _p(row["total"], 0.5), _p(row["total"], 0.95)
        clean = row["errors"] == 0 and row["left"] == 0 and row["refused"] == row["tried"]
        results.append(
            Result(
                f"class of {row['n']}: apply-to-ready p50/p95",
                f"{ready50:.2f} / {ready95:.2f} s",
                f"{base_ready:.2f} s (class of {base['n']})",
                f"{ready50 / base_ready:.2f}x",
                "",
                None,
            )
        )
        results.append(
            Result(
                f"class of {row['n']}: whole lab p50/p95",
                f"{total50:.2f} / {total95:.2f} s",
                f"{base_total:.2f} s (class of {base['n']})",
                f"{total50 / base_total:.2f}x",
                "",
                None,
            )
        )
        results.append(
            Result(
                f"class of {row['n']}: errors, pods left, refused",
                f"{row['errors']} errors, {row['left']} pods left, {row['refused']}/{row['tried']} refused "
                f"({row['failed']} labs' checks not all passed)",
                "",
                "",
                "0 errors, 0 left, all refused",
                clean,
            )
        )
    return results


if __name__ == "__main__":
    main(run)
