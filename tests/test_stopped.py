"""Stop means stop: Ctrl-C (the notebook's stop button) in each of the lab's waits, on the fake engine.

Every wait turns the interrupt into :class:`~labkit.errors.Stopped`, which
says where it stood and keeps what it had, and leaves the lab usable. The
interrupt is delivered where the test chooses: the fake engine below raises
:class:`KeyboardInterrupt` from an ``exec`` of a named command or from a
wait for the pod to change, as Ctrl-C would land there; where no call of
the engine's is in the main thread's way, a timer interrupts the main
thread during a wait that cannot end by itself.
"""

from __future__ import annotations

import _thread
import contextlib
import io
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest

import labkit
from labkit import lifecycle
from labkit.engines.base import Engine, ExecResult, PodState
from labkit.engines.fake import FakeEngine, Script
from labkit.errors import LabkitError, Stopped
from labkit.manifest import Pod

EVERY = 0.1  # the fake producer's interval, in seconds
HIRES = Path(__file__).resolve().parent.parent / "manifests" / "multicontainer-pod-hires.yaml"


class StoppingEngine(FakeEngine):
    """The fake engine, where Ctrl-C lands in the ``exec`` of a command named in ``stop_on`` or in a wait.

    Each command named in ``stop_on`` is interrupted once; ``stop_waiting``
    interrupts the next wait for the pod to change. Every ``exec`` is kept
    in ``execs`` as ``(container, argv)``.
    """

    def __init__(self, script: Script, *, shares_host_clock: bool = True) -> None:
        super().__init__(script)
        self.shares_host_clock = shares_host_clock
        self.stop_on: set[str] = set()
        self.stop_waiting = False
        self.no_kill = False
        self.execs: list[tuple[str, list[str]]] = []

    def exec(self, pod: Pod, container: str, argv: Sequence[str], timeout: float | None) -> ExecResult:
        self.execs.append((container, [str(a) for a in argv]))
        if argv and argv[0] in self.stop_on:
            self.stop_on.discard(argv[0])
            raise KeyboardInterrupt
        if self.no_kill and list(argv) == lifecycle.kill_command([str(argv[-1])]):
            return ExecResult(list(argv), 127, stderr_bytes=b"sh: not found\n", container=container)  # no shell there
        return super().exec(pod, container, argv, timeout)

    def wait_for_change(self, pod: Pod, seen: PodState, seconds: float) -> None:
        if self.stop_waiting:
            self.stop_waiting = False
            raise KeyboardInterrupt
        super().wait_for_change(pod, seen, seconds)


def _lab(seed, engine: FakeEngine, **options) -> labkit.Lab:
    return labkit.Lab(seed, engine=engine, interval=EVERY, progress=False, **options)


def _later(seconds: float, action) -> None:
    timer = threading.Timer(seconds, action)
    timer.daemon = True
    timer.start()


def _open_forwards(lab: labkit.Lab) -> int:
    return sum(not fwd.closed for fwd in lab._forwards)


# -- what a stop is -------------------------------------------------------------------------


def test_a_stop_is_a_keyboard_interrupt_that_no_except_exception_swallows():
    assert issubclass(Stopped, KeyboardInterrupt)
    assert not issubclass(Stopped, Exception) and not issubclass(Stopped, LabkitError)
    assert labkit.Stopped is Stopped
    with pytest.raises(Stopped):
        try:
            raise Stopped("the measurement of pod p", "after 6.1 s (3 new lines seen)")
        except Exception:  # what a student's or a library's broad handler would write
            pytest.fail("except Exception caught a stop")


def test_a_stop_reads_as_one_line():
    stop = Stopped(
        "the measurement of pod multicontainer-pod",
        "after 6.1 s (3 new lines seen)",
        kept="the partial report is shown above and in lab.last_report",
    )
    assert str(stop) == (
        "stopped by you: the measurement of pod multicontainer-pod after 6.1 s (3 new lines seen); "
        "the partial report is shown above and in lab.last_report"
    )
    (line,) = stop._render_traceback_()
    assert line.startswith("\u23f9 ") and "Stopped by you\x1b[0m: the measurement of pod multicontainer-pod" in line
    assert line.endswith("in lab.last_report.")
    assert stop.report is None and stop.table is None


def test_in_ipython_a_stop_is_one_line_and_tb_shows_it_whole(monkeypatch):
    IPython = pytest.importorskip("IPython")
    monkeypatch.delenv("LABKIT_TRACEBACK", raising=False)
    shell = IPython.core.interactiveshell.InteractiveShell.instance()
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        result = shell.run_cell("import labkit\nraise labkit.Stopped('the sweep', 'during run 2 of 6; run 1 done')")
    assert isinstance(result.error_in_exec, Stopped)  # the cell ends as an error: "Run All" stops there
    assert out.getvalue().splitlines() == [
        "\u23f9 \x1b[1mStopped by you\x1b[0m: the sweep during run 2 of 6; run 1 done."
    ]
    shown_before = len(out.getvalue())
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        shell.run_cell("%tb")
    full = out.getvalue()[shown_before:]
    assert "line 2" in full and "Stopped" in full and len(full.splitlines()) > 1


# -- measure ---------------------------------------------------------------------------------


def test_ctrl_c_while_observing_raises_stopped_with_the_partial_report_and_the_lab_goes_on(seed):
    with _lab(seed, FakeEngine(Script(interval=EVERY))) as lab:
        lab.apply().wait_ready(timeout=5)
        _later(0.8, _thread.interrupt_main)
        with pytest.raises(Stopped) as info:
            lab.measure(duration=30, poll_interval=0.02)
        stop = info.value
        report = stop.report
        assert report is not None and report is lab.last_report
        assert report.interrupted and not report.passed
        assert stop.what == "the measurement of pod multicontainer-pod"
        assert stop.where.startswith("after ") and f"({int(report.summary['count'])} new line" in stop.where
        assert stop.kept == "the partial report is in lab.last_report"  # progress off: nothing was shown
        assert stop.table is None
        assert "stopped by the user: a partial report" in str(report)
        assert lab._steps.progress.report is not None and lab._steps.progress.report["verdict"] == "interrupted"
        # The lab is left usable: the pod stays, and the next measurement works at once on the same forward.
        assert lab.exists() and lab.applied and _open_forwards(lab) == 1
        again = lab.measure(lines=2, poll_interval=0.02)
        assert again.ended == "done" and again.passed and lab.last_report is again
        assert _open_forwards(lab) == 1 and lab._steps.progress.report["verdict"] == "passed"
    assert not lab.exists()


def test_ctrl_c_while_the_producers_copy_is_read_raises_stopped_and_ends_the_cat(seed):
    engine = StoppingEngine(Script(interval=EVERY))
    with _lab(seed, engine) as lab:
        lab.apply().wait_ready(timeout=5)
        engine.stop_on = {"cat"}
        with pytest.raises(Stopped) as info:
            lab.measure(lines=2, poll_interval=0.02)
        report = info.value.report
        assert report is lab.last_report and report is not None and report.interrupted
        assert "stopped by the user (Ctrl-C) while the producer's copy was read" in str(report)
        assert int(report.summary["count"]) >= 2 and "(2 new lines seen)" in info.value.where
        copy = ["cat", lab.layout.producer_path]
        assert ("producer", lifecycle.kill_command(copy)) in engine.execs  # the cat was ended in the container
        assert lab.measure(lines=2, poll_interval=0.02).passed


def test_ctrl_c_while_the_clock_is_estimated_raises_stopped_without_a_report(seed):
    engine = StoppingEngine(Script(interval=EVERY), shares_host_clock=False)
    with _lab(seed, engine) as lab:
        lab.apply().wait_ready(timeout=5)
        engine.stop_on = {"date"}
        with pytest.raises(Stopped) as info:
            lab.measure(lines=2, poll_interval=0.02)
        stop = info.value
        assert stop.what == "the measurement of pod multicontainer-pod"
        assert "while the pod's clock offset was estimated; no report was made" in stop.where
        assert stop.report is None and lab.last_report is None
        assert lab.exists()
        report = lab.measure(lines=2, poll_interval=0.02)
        assert report.ended == "done" and lab.last_report is report


def test_ctrl_c_in_the_cli_still_prints_the_report_exits_130_and_removes_the_pod(seed, capsys, monkeypatch):
    from labkit import engines
    from labkit.cli import main

    engine = StoppingEngine(Script(interval=EVERY))
    engine.stop_on = {"cat"}
    monkeypatch.setitem(engines._REGISTRY, "fake-stopping", lambda **_: engine)
    code = main(
        ["run", str(seed), "--engine", "fake-stopping", "--lines", "2", "--poll", "0.02", "--interval", str(EVERY)]
    )
    out, err = capsys.readouterr()
    assert code == 130
    assert "stopped by the user: a partial report" in out
    assert "labkit: interrupted; the report above is partial and the pod was removed" in err
    assert not lifecycle.exists(engine, labkit.load_pod(seed))


# -- the waits before and between ----------------------------------------------------------


def test_ctrl_c_while_waiting_for_ready_says_what_the_containers_do_and_leaves_the_pod(seed):
    engine = StoppingEngine(Script(never_ready=True))
    with _lab(seed, engine) as lab:
        lab.apply()
        engine.stop_waiting = True
        with pytest.raises(Stopped) as info:
            lab.wait_ready(timeout=30)
        stop = info.value
        assert stop.what == "waiting for pod multicontainer-pod to be ready"
        assert "(producer creating, consumer creating)" in stop.where
        assert stop.report is None and stop.table is None
        assert lab.exists() and lab.applied  # only a pod that cannot start is removed
    assert not lab.exists()


def test_ctrl_c_while_waiting_to_be_served_says_the_last_answer(seed):
    with _lab(seed, FakeEngine(Script(interval=EVERY, silence_after=0))) as lab:
        lab.apply().wait_ready(timeout=5)
        _later(0.5, _thread.interrupt_main)
        with pytest.raises(Stopped) as info:
            lab.wait_serving(timeout=60)
        stop = info.value
        assert stop.what == "waiting for pod multicontainer-pod to serve /index.html"
        assert "(last answer: HTTP 404 Not Found)" in stop.where
        assert lab.exists() and _open_forwards(lab) == 1
        lab.exec(["true"], check=True)  # the lab answers at once


def test_ctrl_c_while_waiting_for_a_restart_says_what_the_container_does(seed):
    engine = StoppingEngine(Script(interval=EVERY))
    with _lab(seed, engine) as lab:
        lab.apply().wait_ready(timeout=5)
        engine.stop_waiting = True
        with pytest.raises(Stopped) as info:
            lab.wait_for_restart("producer", timeout=30)
        stop = info.value
        assert stop.what == "waiting for container producer of pod multicontainer-pod to restart"
        assert "(it was running with 0 restarts, as when the wait began)" in stop.where
        assert lab.exists()
        assert lab.measure(lines=2, poll_interval=0.02).passed


def test_ctrl_c_during_exec_ends_the_command_in_the_container(seed):
    engine = StoppingEngine(Script(interval=EVERY))
    with _lab(seed, engine) as lab:
        lab.apply().wait_ready(timeout=5)
        engine.stop_on = {"sleep"}
        with pytest.raises(Stopped) as info:
            lab.exec(["sleep", "30"], "producer")
        stop = info.value
        assert stop.what == "the command ['sleep', '30'] in container 'producer'"
        assert "(the command was ended in the container)" in stop.where
        kill = ("producer", lifecycle.kill_command(["sleep", "30"]))
        assert engine.execs[-2:] == [("producer", ["sleep", "30"]), kill]
        assert lab.exists() and lab.exec(["true"], "producer").returncode == 0


def test_a_command_that_could_not_be_ended_is_said_to_be_running_still(seed):
    engine = StoppingEngine(Script(interval=EVERY))
    with _lab(seed, engine) as lab:
        lab.apply().wait_ready(timeout=5)
        engine.stop_on, engine.no_kill = {"sleep"}, True
        with pytest.raises(Stopped) as info:
            lab.exec(["sleep", "30"], "producer")
        assert "(the command could not be ended in the container and may still run there)" in info.value.where


# -- sweep -----------------------------------------------------------------------------------


def _sweep_pod_exists(engine: FakeEngine) -> bool:
    pod = labkit.load_pod(HIRES)
    return lifecycle.exists(engine, pod.renamed(f"{pod.name}-sweep"))


def test_ctrl_c_during_a_sweep_removes_the_runs_pod_and_keeps_the_runs_done():
    engine = StoppingEngine(Script(interval=0.05))

    def stop_the_next_run(params: dict[str, float], report: labkit.LatencyReport) -> None:
        engine.stop_on = {"cat"}  # Ctrl-C as the next run reads the producer's copy

    grid = {"interval": [0.05], "poll_interval": [0.02, 0.03, 0.04]}
    with pytest.raises(Stopped) as info:
        labkit.sweep(HIRES, grid, lines=3, engine=engine, progress=False, on_run=stop_the_next_run)
    stop = info.value
    assert stop.what == "the sweep" and stop.where == "during run 2 of 3; run 1 done"
    assert "sys.last_value.table" in stop.kept
    table = stop.table
    assert isinstance(table, pd.DataFrame) and set(table["run"]) == {0}
    runs = table.attrs["runs"]
    assert runs.index.tolist() == [0] and runs["poll_interval"].tolist() == [0.02] and runs["passed"].all()
    assert stop.report is not None and stop.report.interrupted  # the stopped run's partial report
    assert not _sweep_pod_exists(engine)


def test_ctrl_c_in_a_sweeps_first_run_keeps_an_empty_table():
    engine = StoppingEngine(Script(interval=0.05))
    engine.stop_waiting = True  # Ctrl-C while the first run's pod gets ready
    with pytest.raises(Stopped) as info:
        labkit.sweep(HIRES, {"poll_interval": [0.02, 0.03]}, lines=3, engine=engine, progress=False)
    stop = info.value
    assert stop.where == "during run 1 of 2; no run was done" and stop.report is None
    assert stop.table is not None and stop.table.empty and stop.table.attrs["runs"].empty
    assert not _sweep_pod_exists(engine)


def test_a_stop_while_a_runs_pod_is_removed_still_removes_it(monkeypatch):
    engine = FakeEngine(Script(interval=0.05))
    removals: list[float] = []
    real_delete = lifecycle.delete

    def delete_stopped_once(engine_: Engine, pod: Pod, timeout: float) -> None:
        removals.append(time.monotonic())
        if len(removals) == 1:
            raise KeyboardInterrupt  # Ctrl-C before the first removal got going
        real_delete(engine_, pod, timeout)

    monkeypatch.setattr(lifecycle, "delete", delete_stopped_once)
    with pytest.raises(Stopped) as info:
        labkit.sweep(HIRES, {"poll_interval": [0.02, 0.03]}, lines=3, engine=engine, progress=False)
    assert info.value.where == "during run 1 of 2; no run was done"
    assert len(removals) == 2 and not _sweep_pod_exists(engine)
