"""Labs that break while they are observed, on real engines: never a PASS, always a clear ending.

Each fault runs once per engine: Podman, the Kubernetes engine against the
API stand-in, and (with ``-m cluster``) the cluster of ``$KUBECONFIG``. The
same faults run in seconds on the fake engine in ``tests/test_lab_faults.py``;
these show that the real machinery reports them too.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

import labkit
from labkit import lifecycle
from labkit.cli import main
from labkit.errors import PodGone, ReadyTimeout, Stopped
from labkit.report import LatencyReport
from tests.engine_params import ENGINES

pytestmark = pytest.mark.parametrize("engine", ENGINES)

FAULTY = Path(__file__).resolve().parent / "manifests" / "faulty-pod.yaml"


@pytest.fixture(scope="module")
def faulty(make_engine):
    """One faulty-producer lab per engine, shared by the tests that leave it running."""
    labs: dict[str, labkit.Lab] = {}

    def get(engine: str) -> labkit.Lab:
        if engine not in labs:
            lab = labkit.Lab(FAULTY, engine=make_engine(engine), name=f"faults-{engine}", progress=False)
            lab.apply().wait_ready(timeout=120)
            labs[engine] = lab
        return labs[engine]

    yield get
    for lab in labs.values():
        lab.delete()


def _when_observing(handle: labkit.Lab, action, after: float = 0.3) -> threading.Thread:
    """Run ``action`` once the observer's first request has reached the server (its access log grows).

    On a cluster the clock is estimated by exec before observation begins, so
    a fixed delay would hit that instead; ``handle`` may be a Lab that never
    applied the pod (a CLI run's pod, by name).
    """

    def requests() -> int:
        try:
            return handle.logs("consumer").count("GET /index.html")
        except labkit.LabkitError:
            return -1

    def run() -> None:
        seen, deadline = requests(), time.monotonic() + 90
        while requests() <= max(seen, 0) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(after)
        with contextlib.suppress(labkit.LabkitError):
            action()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def _status(report: LatencyReport) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def _detail(report: LatencyReport, name: str) -> str:
    return next(c.detail for c in report.checks if c.name == name)


def test_a_silent_producer_fails_and_lines_that_never_come_are_named(engine, faulty):
    lab = faulty(engine)
    lab.exec(["touch", "/tmp/silence"], check=True)
    try:
        report = lab.measure(lines=3, timeout=2, poll_interval=0.05)
    finally:
        lab.exec(["rm", "-f", "/tmp/silence"], check=True)
    assert not report.passed
    status = _status(report)
    assert status["3 new lines served"] == "failed"
    assert "before the time limit of 2 s" in _detail(report, "3 new lines served")
    assert status["producer cadence"] == "failed" and "no line for" in _detail(report, "producer cadence")
    assert "some checks did not pass" in str(report)


def test_a_producer_that_crashes_and_is_restarted_is_reported(engine, faulty):
    lab = faulty(engine)
    _when_observing(lab, lambda: lab.exec(["touch", "/tmp/crash"]))
    report = lab.measure(duration=3, poll_interval=0.05)
    assert not report.passed
    assert _status(report)["containers stayed up"] == "failed"
    assert "producer restarted 1 time, last exit code 3 at " in _detail(report, "containers stayed up")
    assert report.containers["producer"].restarts >= 1
    text = re.sub(r"\n {3,}", " ", str(report))  # folded lines joined again
    assert "restarted while observed" in text  # with what a kubelet would do spelled out, on every engine
    assert "a kubelet restarts" in text and "holds each later" in text and "CrashLoopBackOff" in text


def test_a_dropped_forward_is_reopened_counted_and_said(engine, faulty):
    lab = faulty(engine)
    fwd = lab._forward_to(None)
    stop = threading.Event()

    def drop() -> None:
        time.sleep(0.5)
        while not stop.is_set():
            with fwd._lock:
                conns = list(fwd._conns)
            for s in conns:  # cut the relayed connections, whatever is in flight on them
                with contextlib.suppress(OSError):
                    s.shutdown(2)
            time.sleep(0.7)

    t = threading.Thread(target=drop, daemon=True)
    t.start()
    try:
        report = lab.measure(duration=2.5, poll_interval=0.05)
    finally:
        stop.set()
        t.join()
    assert "the connection to the server broke" in str(report)
    assert report.poll_errors >= 1
    status = _status(report)
    assert status["all lines served"] == "passed"  # nothing lost: the observer carried on where it was
    assert status["server answered"] == "passed"


def test_ctrl_c_during_measure_raises_stopped_with_the_partial_report(engine, faulty):
    lab = faulty(engine)
    _when_observing(lab, _thread.interrupt_main, after=0.5)
    started = time.monotonic()
    with pytest.raises(Stopped) as info:
        lab.measure(duration=30, poll_interval=0.05)
    assert time.monotonic() - started < 10
    report = info.value.report
    assert report is not None and report is lab.last_report
    assert report.interrupted and not report.passed
    assert _status(report)["observed for 30 s"] == "undecided"
    assert "stopped by the user" in _detail(report, "observed for 30 s")
    assert lab.exists()  # in a notebook the lab stays for the next cell; lab.delete() or the kernel's end removes it
    again = lab.measure(duration=1.5, poll_interval=0.05)  # and the next measurement works at once
    assert again.ended == "done" and lab.last_report is again


def test_a_consumer_that_exits_is_reported_last_on_the_shared_pod(engine, faulty):
    lab = faulty(engine)
    _when_observing(lab, lambda: lab.exec(["nginx", "-s", "quit"], "consumer"))
    report = lab.measure(duration=3, poll_interval=0.05)
    assert not report.passed
    assert "consumer restarted 1 time" in _detail(report, "containers stayed up")
    # the last test on the shared pod: a cluster would back off 10 s before the consumer runs again


def test_a_bound_shorter_than_the_start_raises_ready_timeout(engine, make_engine):
    """A pod that is not running when the bound ends is reported and removed.

    A cluster accepts the pod first and starts its containers afterwards, so a bound of a few
    milliseconds ends while they are still being created. ``podman kube play`` returns only once the
    containers run, so on the local engine the same bound is met at once: the difference is this test's
    second branch. (A pod that stays not ready for ever is tested on the fake engine.)
    """
    lab = labkit.Lab(FAULTY, engine=make_engine(engine), name=f"never-ready-{engine}", progress=False)
    lab.apply()
    if engine == "kubernetes":
        with pytest.raises(
            ReadyTimeout, match=r"was not ready within 0\.01 s; still waiting for: producer \(\w+\), consumer"
        ):
            lab.wait_ready(timeout=0.01)
        assert not lifecycle.exists(lab.engine, lab.pod)  # a pod that did not get ready is removed
    else:
        with lab:
            lab.wait_ready(timeout=0.01)
            states = lifecycle.container_states(lab.engine, lab.pod)
            assert {c: st.state for c, st in states.items()} == {"producer": "running", "consumer": "running"}


def test_a_pod_deleted_by_someone_else_ends_the_measurement(engine, make_engine):
    lab = labkit.Lab(FAULTY, engine=make_engine(engine), name=f"deleted-{engine}", progress=False)
    with lab:
        lab.apply().wait_ready()
        deleted_at: list[float] = []

        def delete_behind_the_kits_back() -> None:
            if engine == "podman":
                # Without -t 0 Podman gives the producer (a shell as PID 1, which ignores SIGTERM)
                # 10 s before it kills it; the pod is gone when the command returns.
                subprocess.run(["podman", "pod", "rm", "-f", "-t", "0", lab.name], capture_output=True, check=True)
            else:
                # On a cluster the pod is terminating from this call on (deletionTimestamp set).
                from labkit.engines.kubernetes import KubernetesEngine

                k8s = lab.engine
                assert isinstance(k8s, KubernetesEngine)
                k8s.api.delete_namespaced_pod(lab.name, k8s.namespace, grace_period_seconds=30)
            deleted_at.append(time.monotonic())

        _when_observing(lab, delete_behind_the_kits_back, after=0.5)
        with pytest.raises(PodGone, match="disappeared while it was measured") as info:
            lab.measure(duration=60, poll_interval=0.05)
        ended = time.monotonic()
    assert ended - deleted_at[0] < 5  # the measurement's end; leaving the block then waits for the pod to go
    report = info.value.report
    assert isinstance(report, LatencyReport) and report.ended == "pod gone" and not report.passed
    assert report.summary["count"] >= 1  # what was observed before is kept
    assert _status(report)["containers stayed up"] == "failed"
    assert not lifecycle.exists(lab.engine, lab.pod)


def _variant(tmp_path: Path, **env: str) -> str:
    doc = yaml.safe_load(FAULTY.read_text())
    producer = doc["spec"]["containers"][0]
    producer["env"] = [e for e in producer["env"] if e["name"] not in env] + [
        {"name": k, "value": v} for k, v in env.items()
    ]
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def _cli_env(engine: str, request, monkeypatch) -> list[str]:
    if engine == "kubernetes":
        monkeypatch.setenv("KUBECONFIG", request.getfixturevalue("kube").kubeconfig)
    return ["--engine", "kubernetes" if engine in ("kubernetes", "cluster") else "podman"]


def test_cli_never_passes_a_producer_that_went_silent(engine, request, monkeypatch, tmp_path, capsys):
    args = _cli_env(engine, request, monkeypatch)
    code = main(
        [
            "run",
            _variant(tmp_path, SILENT_AFTER="2"),
            "--duration",
            "2",
            "--poll",
            "0.1",
            "--name",
            f"cli-silent-{engine}",
            *args,
        ]
    )
    out, err = capsys.readouterr()
    assert code == 1, err
    assert "FAILED    producer cadence: no line for" in out
    assert "all checks passed" not in out


def test_cli_never_passes_a_producer_that_crashed(engine, request, monkeypatch, tmp_path, capsys, make_engine):
    args = _cli_env(engine, request, monkeypatch)
    name = f"cli-crash-{engine}"
    handle = labkit.Lab(FAULTY, engine=make_engine(engine), name=name, progress=False)
    _when_observing(handle, lambda: handle.exec(["touch", "/tmp/crash"]))
    code = main(["run", str(FAULTY), "--duration", "3", "--poll", "0.1", "--name", name, *args])
    out, err = capsys.readouterr()
    assert code == 1, err
    assert "FAILED    containers stayed up: producer restarted 1 time, last exit code 3 at" in out
    # running again on Podman; on a cluster it may still wait out its back-off
    assert re.search(r"producer (running|waiting \(CrashLoopBackOff\)), 1 restart \(last exit code 3 at", out)


def test_cli_ctrl_c_prints_the_partial_report_exits_130_and_removes_the_pod(engine, request, tmp_path):
    if engine != "podman":
        pytest.skip(
            "the CLI's handling is the same on every engine: tested on Podman and the fake engine; "
            "Ctrl-C during measure on this engine is tested through the library above"
        )
    env = dict(os.environ)
    args = ["--engine", "kubernetes" if engine in ("kubernetes", "cluster") else "podman"]
    if engine == "kubernetes":
        env["KUBECONFIG"] = request.getfixturevalue("kube").kubeconfig
    name = f"cli-int-{engine}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "labkit.cli", "run", str(FAULTY), "--duration", "60", "--name", name, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    handle = labkit.Lab(FAULTY, engine=request.getfixturevalue("make_engine")(engine), name=name, progress=False)
    _when_observing(handle, lambda: proc.send_signal(signal.SIGINT), after=1.0).join(120)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "stopped by the user" in out and "a partial report" in out
    assert "UNDECIDED observed for 60 s" in out
    assert "the report above is partial and the pod was removed" in err
    assert not handle.exists()
