"""Lab's orchestration and every fault path, on the fake engine: seconds, no Podman.

The fake engine (:mod:`labkit.engines.fake`) serves real HTTP and scripts
the faults; what only a real engine can show is in ``tests/test_faults.py``.
"""

from __future__ import annotations

import _thread
import io
import re
import threading
import time

import pytest

import labkit
from labkit import engines, lifecycle
from labkit.cli import main
from labkit.display import MeasureProgress
from labkit.engines.fake import FakeEngine, Script
from labkit.errors import (
    ContainerCrashed,
    EngineError,
    FetchError,
    NotReady,
    PodExists,
    PodGone,
    PortError,
    ProbeUnavailable,
    ReadyTimeout,
    Stopped,
)
from labkit.lab import _LIVE, _cleanup_at_exit
from labkit.report import LatencyReport

EVERY = 0.1  # the fake producer's interval, in seconds


def _lab(seed, engine: FakeEngine, **options) -> labkit.Lab:
    return labkit.Lab(seed, engine=engine, interval=EVERY, progress=False, **options)


def _status(report: LatencyReport) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def _detail(report: LatencyReport, name: str) -> str:
    return next(c.detail for c in report.checks if c.name == name)


def _unwrapped(report) -> str:
    """The text report with its folded lines joined again."""
    return re.sub(r"\n {3,}", " ", str(report))


def _later(seconds: float, action) -> None:
    def run() -> None:
        time.sleep(seconds)
        action()

    threading.Thread(target=run, daemon=True).start()


@pytest.fixture
def fake_cli(monkeypatch):
    """Run ``labkit run`` on a fake engine scripted by the test (as ``--engine fake-test``)."""

    def run(seed, script: Script, *args: str, **engine_options) -> tuple[int, FakeEngine]:
        engine = FakeEngine(script, **engine_options)
        monkeypatch.setitem(engines._REGISTRY, "fake-test", lambda **_: engine)
        code = main(["run", str(seed), "--engine", "fake-test", "--interval", str(EVERY), "--poll", "0.02", *args])
        return code, engine

    return run


# -- a healthy lab passes, and every check in it can fail ------------------------------


def test_a_healthy_lab_passes_every_check(seed):
    with _lab(seed, FakeEngine(Script(interval=EVERY))) as lab:
        lab.apply().wait_ready(timeout=5)
        report = lab.measure(duration=1.0, poll_interval=0.02)
    assert report.passed, report
    assert set(_status(report)) == {
        "all lines served",
        "served in order",
        "no duplicates",
        f"latency <= {report.checks[3].name.split()[-2]} s",
        "producer cadence",
        "server answered",
        "containers stayed up",
        "observed for 1 s",
    }
    assert report.summary["count"] >= 5
    assert "producer running, 0 restarts; consumer running, 0 restarts" in str(report)
    assert "result:   all checks passed" in str(report)


# -- liveness: silence, missing lines -------------------------------------------------


def test_a_producer_that_goes_silent_fails_the_cadence_with_the_silence(seed):
    with _lab(seed, FakeEngine(Script(interval=EVERY, silence_after=3))) as lab:
        lab.apply().wait_ready(timeout=5)
        report = lab.measure(duration=1.5, poll_interval=0.02)
    assert not report.passed
    detail = _detail(report, "producer cadence")
    assert detail.startswith("no line for 1.") and "expected one every 0.1 s" in detail
    assert "all checks passed" not in str(report)


def test_lines_that_never_come_fail_and_the_time_limit_is_named(seed):
    with _lab(seed, FakeEngine(Script(interval=EVERY, silence_after=2))) as lab:
        lab.apply().wait_ready(timeout=5)
        started = time.monotonic()
        report = lab.measure(lines=5, timeout=1, poll_interval=0.02)
    assert time.monotonic() - started < 4
    assert _status(report)["5 new lines served"] == "failed"
    assert "before the time limit of 1 s" in _detail(report, "5 new lines served")
    assert any("stopped after 1 s, before 5 new lines were served" in n for n in report.notes)


def test_the_cli_exits_1_for_a_silent_producer(seed, fake_cli, capsys):
    code, _ = fake_cli(seed, Script(interval=EVERY, silence_after=2), "--duration", "1")
    out = capsys.readouterr().out
    assert code == 1
    assert "FAILED    producer cadence: no line for" in out and "all checks passed" not in out


def test_the_cli_exits_1_when_the_lines_asked_for_never_come(seed, fake_cli, capsys):
    code, _ = fake_cli(seed, Script(interval=EVERY, silence_after=1), "--lines", "3", "--timeout", "1")
    out = capsys.readouterr().out
    assert code == 1
    assert "FAILED    3 new lines served: only 0 of 3 new lines served before the time limit of 1 s" in out


# -- restarts and exits ---------------------------------------------------------------


def test_a_producer_crash_and_restart_fails_and_is_reported(seed):
    engine = FakeEngine(Script(interval=EVERY, crash_at=0.5, crash_exit_code=3))
    with _lab(seed, engine) as lab:
        lab.apply().wait_ready(timeout=5)
        report = lab.measure(duration=1.0, poll_interval=0.02)
    assert not report.passed
    detail = _detail(report, "containers stayed up")
    assert detail.startswith("producer restarted 1 time, last exit code 3 at ")
    assert report.containers is not None
    assert report.containers["producer"].last_exit_code == 3
    assert "restarts a crashed container at once" in str(report)


def test_a_second_crash_held_in_back_off_is_worded_for_kubernetes(seed):
    # The kubelet's rule: the first crash (0.5 s) is restarted at once, the second (0.3 s later) waits.
    script = Script(interval=EVERY, crash_at=0.5, crash_every=0.3, crash_exit_code=3, restart_delay=5)
    engine = FakeEngine(script, restart_backoff=True)
    with _lab(seed, engine) as lab:
        lab.apply().wait_ready(timeout=5)
        report = lab.measure(duration=1.4, poll_interval=0.02)
    text = _unwrapped(report)
    assert "producer waiting (CrashLoopBackOff), 1 restart (last exit code 3 at" in text
    assert "a kubelet restarts a container at once after its first crash and holds each later crash" in text
    assert _status(report)["producer cadence"] == "failed"  # down for the back-off: silence


def test_the_cli_exits_1_for_a_producer_that_crashed(seed, fake_cli, capsys):
    code, _ = fake_cli(seed, Script(interval=EVERY, crash_at=0.5, crash_exit_code=3), "--duration", "1.5")
    out = capsys.readouterr().out
    assert code == 1
    assert "FAILED    containers stayed up: producer restarted 1 time, last exit code 3 at" in out


def test_a_consumer_that_exits_is_reported(seed):
    engine = FakeEngine(Script(interval=EVERY, crash_at=0.5, crash_container="consumer", crash_exit_code=0))
    with _lab(seed, engine) as lab:
        lab.apply().wait_ready(timeout=5)
        report = lab.measure(duration=1.0, poll_interval=0.02)
    assert "consumer restarted 1 time, last exit code 0" in _detail(report, "containers stayed up")


def test_restarts_before_observation_are_noted_not_failed(seed):
    engine = FakeEngine(Script(interval=EVERY))
    with _lab(seed, engine) as lab:
        lab.apply().wait_ready(timeout=5)
        engine.crash(lab.name, "producer", exit_code=2)
        time.sleep(0.3)
        report = lab.measure(duration=0.8, poll_interval=0.02)
    assert _status(report)["containers stayed up"] == "passed"
    assert "producer had restarted 1 time before observation began" in str(report)


# -- the server and the connection ------------------------------------------------------


def test_a_server_outage_longer_than_the_interval_fails_with_its_duration(seed):
    engine = FakeEngine(Script(interval=EVERY, server_down_at=0.4, server_down_for=0.6))
    with _lab(seed, engine) as lab:
        lab.apply().wait_ready(timeout=5)
        report = lab.measure(duration=1.3, poll_interval=0.02)
    detail = _detail(report, "server answered")
    assert _status(report)["server answered"] == "failed"
    assert detail.startswith("no answer for 0.") and "longer than the producer's interval of 0.1 s" in detail
    assert report.poll_errors > 0


def test_a_server_that_hangs_fails_too(seed):
    engine = FakeEngine(Script(interval=EVERY, server_down_at=0.4, server_down_for=0.6, server_hang=True))
    with _lab(seed, engine) as lab:
        lab.apply().wait_ready(timeout=5)
        report = lab.measure(duration=1.3, poll_interval=0.02)
    assert _status(report)["server answered"] == "failed"


def test_a_connection_dropped_mid_response_is_reopened_counted_and_said(seed):
    engine = FakeEngine(Script(interval=EVERY, drop_at=0.4, drop_count=3))
    with _lab(seed, engine) as lab:
        lab.apply().wait_ready(timeout=5)
        report = lab.measure(duration=1.0, poll_interval=0.02)
    assert report.poll_errors >= 3
    assert re.search(
        r"the connection to the server broke [1-3] times? \([3-9] failed polls\) and was opened again", str(report)
    )
    status = _status(report)
    assert status["all lines served"] == "passed" and status["no duplicates"] == "passed"
    assert status["server answered"] == "passed"


# -- the pod disappears, the user stops ---------------------------------------------------


def test_a_pod_that_vanishes_raises_pod_gone_with_the_partial_report(seed):
    engine = FakeEngine(Script(interval=EVERY, vanish_at=1.0))
    with _lab(seed, engine) as lab:
        lab.apply().wait_ready(timeout=5)
        started = time.monotonic()
        with pytest.raises(PodGone, match="disappeared while it was measured") as info:
            lab.measure(duration=30, poll_interval=0.02)
        assert time.monotonic() - started < 4
    report = info.value.report
    assert isinstance(report, LatencyReport)
    assert report.ended == "pod gone" and not report.passed
    assert report.summary["count"] >= 3
    status = _status(report)
    assert status["containers stayed up"] == "failed" and status["observed for 30 s"] == "failed"
    assert status["all lines served"] == "undecided"  # the producer's copy went with the pod
    assert "a partial report" in str(report)


def test_the_cli_prints_the_partial_report_and_exits_2_when_the_pod_vanishes(seed, fake_cli, capsys):
    code, _engine = fake_cli(seed, Script(interval=EVERY, vanish_at=1.0), "--duration", "30")
    out, err = capsys.readouterr()
    assert code == 2
    assert "the pod disappeared: a partial report" in out
    assert "labkit: error: pod 'multicontainer-pod' disappeared while it was measured" in err


def test_ctrl_c_raises_stopped_with_the_partial_report(seed):
    with _lab(seed, FakeEngine(Script(interval=EVERY))) as lab:
        lab.apply().wait_ready(timeout=5)
        _later(0.8, _thread.interrupt_main)
        with pytest.raises(Stopped) as info:
            lab.measure(duration=30, poll_interval=0.02)
        assert lab.exists()
    report = info.value.report
    assert report is not None and report is lab.last_report
    assert report.interrupted and not report.passed
    assert _status(report)["observed for 30 s"] == "undecided"
    assert _status(report)["all lines served"] == "passed"  # the copy was still read
    assert "stopped by the user: a partial report" in str(report)


def test_ctrl_c_in_the_cli_prints_the_report_exits_130_and_removes_the_pod(seed, fake_cli, capsys):
    _later(1.0, _thread.interrupt_main)
    code, engine = fake_cli(seed, Script(interval=EVERY), "--duration", "30")
    out, err = capsys.readouterr()
    assert code == 130
    assert "UNDECIDED observed for 30 s: stopped by the user" in out
    assert "the report above is partial and the pod was removed" in err
    assert not lifecycle.exists(engine, labkit.load_pod(seed))


# -- getting ready ----------------------------------------------------------------------


def test_a_pod_that_never_gets_ready_raises_ready_timeout_and_is_removed(seed):
    lab = _lab(seed, FakeEngine(Script(never_ready=True)))
    lab.apply()
    with pytest.raises(ReadyTimeout, match=r"not ready within 0\.5 s; still waiting for: producer \(creating\)"):
        lab.wait_ready(timeout=0.5)
    assert not lab.exists() and not lab.applied


def test_a_container_that_exits_at_once_is_reported(seed):
    lab = _lab(seed, FakeEngine(Script(crash_at_start={"producer": 3})))
    lab.apply()
    with pytest.raises(ContainerCrashed, match="exit code 3") as info:
        lab.wait_ready(timeout=5)
    assert info.value.container == "producer" and "(the pod was removed)" in str(info.value)
    assert not lab.exists()


def test_a_failed_apply_leaves_nothing(seed):
    lab = _lab(seed, FakeEngine(Script(apply_error=EngineError("the engine broke halfway"))))
    with pytest.raises(EngineError, match="broke halfway"):
        lab.apply()
    assert not lab.exists() and not lab.applied and lab.session not in _LIVE


def test_measure_before_apply_says_what_to_do(seed):
    lab = _lab(seed, FakeEngine(Script(interval=EVERY)))
    with pytest.raises(NotReady, match=r"not applied .* run lab.apply\(\) and lab.wait_ready\(\) first"):
        lab.measure(duration=1)


def test_measure_arguments_are_checked(seed):
    with _lab(seed, FakeEngine(Script(interval=EVERY))) as lab:
        lab.apply().wait_ready(timeout=5)
        with pytest.raises(ValueError, match="via must be"):
            lab.measure(duration=1, via="pigeon")  # type: ignore[arg-type]  # deliberately not a via: the runtime check
        with pytest.raises(ValueError, match="give duration"):
            lab.measure()
        with pytest.raises(ProbeUnavailable, match="no curl"):
            lab.measure(duration=1, via="in-pod")


# -- ownership, forwards, the small steps ---------------------------------------------------


def test_a_foreign_pod_is_refused_and_left_alone(seed):
    engine = FakeEngine(existing={"multicontainer-pod": {"app": "theirs"}})
    lab = _lab(seed, engine)
    with pytest.raises(PodExists, match="not created by labkit"):
        lab.apply()
    assert not lab.applied and lab.session not in _LIVE
    lab.delete()  # nothing of ours to remove
    assert lab.exists()  # theirs is still there
    lab.apply(replace=True).wait_ready(timeout=5)  # taken over on purpose
    lab.delete()
    assert not lab.exists()


def test_a_pod_another_session_took_over_is_not_deleted(seed):
    engine = FakeEngine(Script(interval=EVERY))
    first = _lab(seed, engine)
    first.apply().wait_ready(timeout=5)
    second = _lab(seed, engine)
    second.apply(replace=True)
    first.delete()  # the pod is the second lab's now: left alone, no error
    assert second.exists()
    second.delete()
    assert not second.exists()


def test_one_forward_per_port_is_reused_and_replaced_when_closed(seed):
    with _lab(seed, FakeEngine(Script(interval=EVERY))) as lab:
        lab.apply().wait_ready(timeout=5)
        assert lab.fetch().startswith("multicontainer-pod ")
        fwd = lab._forward_to(None)
        assert lab._forward_to(None) is fwd
        fwd.close()
        assert lab._forward_to(None) is not fwd
        with pytest.raises(FetchError, match="HTTP 404") as info:
            lab.fetch("/no-such-file.html")
        assert info.value.status == 404
    assert fwd.closed


def test_fetch_from_a_server_that_is_down_is_a_port_error(seed):
    engine = FakeEngine(Script(interval=EVERY))
    with _lab(seed, engine) as lab:
        lab.apply().wait_ready(timeout=5)
        engine.server_down(lab.name, 3)
        with pytest.raises(PortError, match="no answer from port 80 of pod multicontainer-pod"):
            lab.fetch(timeout=2)


def test_exec_logs_and_a_clock_estimated_by_exec(seed):
    engine = FakeEngine(Script(interval=EVERY))
    engine.shares_host_clock = False  # as on a cluster: the offset is estimated from the pod's date
    with _lab(seed, engine) as lab:
        lab.apply().wait_ready(timeout=5)
        assert lab.exec("ls -A /var/log").stdout.split() == ["index.html"]
        assert lab.exec(["ls", "-A", "/usr/share/nginx/html"], "consumer").stdout.split() == ["index.html"]
        with pytest.raises(labkit.ExecError, match="exited with code 127"):
            lab.exec(["no-such-command"], check=True)
        assert "starting" in lab.logs("producer")
        clock = lab.clock_offset(rounds=3)
        assert abs(clock.offset) < 0.5 and clock.uncertainty > 0


def test_leftovers_are_removed_when_the_interpreter_exits(seed):
    engine = FakeEngine(Script(interval=EVERY))
    lab = _lab(seed, engine)
    lab.apply()
    assert lab.session in _LIVE
    _cleanup_at_exit()
    assert not lifecycle.exists(engine, lab.pod) and lab.session not in _LIVE


def test_repr_and_name(seed):
    lab = _lab(seed, FakeEngine(), name="other-name")
    assert repr(lab) == "<Lab 'other-name' on fake (not applied)>"


# -- what the report says about little data ------------------------------------------------


def test_a_report_over_one_line_says_so(seed):
    with _lab(seed, FakeEngine(Script(interval=EVERY))) as lab:
        lab.apply().wait_ready(timeout=5)
        report = lab.measure(lines=1, poll_interval=0.02)
    assert "latency:  one line observed:" in str(report) and "p50, p95 and max are that line" in _unwrapped(report)


def test_a_report_over_no_line_says_so(seed):
    with _lab(seed, FakeEngine(Script(interval=EVERY, silence_after=1))) as lab:
        lab.apply().wait_ready(timeout=5)
        time.sleep(0.2)
        report = lab.measure(duration=0.5, poll_interval=0.02)
    assert "no line was written while observed, so there is no latency to report" in str(report)
    assert not report.passed


# -- progress ---------------------------------------------------------------------------------


def test_progress_shows_lines_failed_polls_and_restarts():
    out = io.StringIO()
    show = MeasureProgress("p", 30, None, 5, file=out)
    show.update(2, 1, 1)
    show.update(5, 1, 1)
    show.close()
    text = out.getvalue()
    assert "pod p: new lines" in text and "5/5" in text
    assert "failed polls=1" in text and "restarts=1" in text and "time limit=30 s" in text


def test_progress_counts_seconds_for_a_duration():
    out = io.StringIO()
    show = MeasureProgress("p", 2, 2, None, file=out)
    time.sleep(0.3)
    show.update(3, 0, 0)
    show.close()
    assert "pod p: observing" in out.getvalue() and "lines=3" in out.getvalue()


def test_progress_can_be_off():
    show = MeasureProgress("p", 2, 2, None, enabled=False)
    show.update(1, 0, 0)
    show.close()


def test_apply_names_what_was_left_out_of_a_saved_manifest(test_manifest, capsys):
    lab = labkit.Lab(test_manifest("saved-seed-pod.yaml"), engine=FakeEngine(Script(interval=EVERY)), interval=EVERY)
    with lab:
        lab.apply()
    out = capsys.readouterr().out
    assert "note: left out of the manifest: metadata.resourceVersion" in out
    assert any("status" in c for c in lab.changes)


def test_a_producer_that_never_writes_fails_instead_of_erroring(seed):
    with _lab(seed, FakeEngine(Script(interval=EVERY, silence_after=0))) as lab:
        lab.apply().wait_ready(timeout=5)
        # no stamp to learn the resolution from: 1 s is assumed, so the allowed silence is 1.35 s
        report = lab.measure(duration=2.0, poll_interval=0.02)
    assert not report.passed
    assert "since observation began" in _detail(report, "producer cadence")
    assert any("never created /var/log/index.html" in n for n in report.notes)


def test_wait_serving_waits_through_a_server_that_is_not_up_yet(seed):
    with _lab(seed, FakeEngine(Script(interval=EVERY, server_down_at=0, server_down_for=0.6))) as lab:
        lab.apply().wait_ready(timeout=5)
        with pytest.raises(PortError):
            lab.fetch(timeout=1)  # what a student who fetched at once would see
        assert lab.wait_serving(timeout=10) is lab
        assert lab.fetch().startswith("multicontainer-pod ")


def test_wait_serving_names_a_producer_that_never_writes(seed):
    with _lab(seed, FakeEngine(Script(interval=EVERY, silence_after=0))) as lab:
        lab.apply().wait_ready(timeout=5)
        with pytest.raises(ReadyTimeout, match=r"did not serve /index.html within 1 s \(last answer: HTTP 404") as info:
            lab.wait_serving(timeout=1)
        assert "lab.logs('producer')" in str(info.value)
        assert (info.value.container, info.value.reason) == ("producer", "NotServing")
        assert lab.exists()  # the pod is left for the student to look at


def test_wait_serving_refuses_a_lab_without_a_pod_and_a_timeout_that_is_not_positive(seed):
    lab = _lab(seed, FakeEngine(Script(interval=EVERY)))
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        lab.wait_serving(timeout=0)
    with pytest.raises(NotReady, match=r"lab.wait_serving\(\): pod 'multicontainer-pod' is not applied yet"):
        lab.wait_serving()


def test_an_engine_blip_during_the_watch_does_not_lose_the_measurement(seed, monkeypatch):
    engine = FakeEngine(Script(interval=EVERY))
    with _lab(seed, engine) as lab:
        lab.apply().wait_ready(timeout=5)
        real = engine.state
        calls = {"n": 0}

        def flaky(pod):
            calls["n"] += 1
            if calls["n"] == 2:
                raise EngineError("the API server did not answer")
            return real(pod)

        monkeypatch.setattr(engine, "state", flaky)
        report = lab.measure(duration=1.0, poll_interval=0.02)
    assert report.passed, report


def test_every_step_after_delete_fails_at_once_and_says_what_to_run(seed):
    lab = _lab(seed, FakeEngine(Script(interval=EVERY)))
    lab.apply().wait_ready(timeout=5)
    lab.delete()
    again = r"was deleted \(lab.delete\(\)\); run lab.apply\(\) and lab.wait_ready\(\) again"
    steps = {
        "measure": lambda: lab.measure(lines=1),
        "exec": lambda: lab.exec("ls"),
        "fetch": lambda: lab.fetch(),
        "port_forward": lambda: lab.port_forward(),
        "logs": lambda: lab.logs(),
        "clock_offset": lambda: lab.clock_offset(),
    }
    for step, call in steps.items():
        started = time.monotonic()
        with pytest.raises(NotReady, match=rf"lab.{step}\(\): pod 'multicontainer-pod' {again}"):
            call()
        assert time.monotonic() - started < 0.5, step
    lab.apply().wait_ready(timeout=5)
    try:
        assert lab.exec("ls").returncode == 0
        assert lab.measure(lines=1).passed
    finally:
        lab.delete()


def test_a_pod_deleted_behind_the_lab_is_named_gone(seed):
    engine = FakeEngine(Script(interval=EVERY))
    with _lab(seed, engine) as lab:
        lab.apply().wait_ready(timeout=5)
        engine.vanish(lab.pod)
        for call in (lambda: lab.exec("ls"), lambda: lab.logs(), lambda: lab.fetch()):
            with pytest.raises(PodGone, match=r"no longer exists .* run lab.apply\(\) and lab.wait_ready\(\) again"):
                call()


def test_a_lab_reads_as_words_in_a_notebook(seed):
    from IPython.lib.pretty import pretty

    lab = _lab(seed, FakeEngine(Script(interval=EVERY)))
    assert pretty(lab) == "lab 'multicontainer-pod' on fake: its pod is not applied yet; lab.apply() creates it"
    lab.apply().wait_ready(timeout=5)
    assert pretty(lab) == "lab 'multicontainer-pod' on fake: its pod is applied; lab.delete() removes it"
    lab.delete()
    assert pretty(lab).endswith("its pod was deleted; lab.apply() creates it again")


def test_a_request_returns_any_status_with_headers_and_body(seed):
    engine = FakeEngine(Script(interval=EVERY))
    with _lab(seed, engine) as lab:
        lab.apply().wait_ready(timeout=5)
        time.sleep(3 * EVERY)
        whole = lab.request()
        assert whole.status == 200 and whole.text == lab.fetch()[: len(whole.text)]
        size = len(whole.body)
        tail = lab.request(headers={"Range": f"bytes={size - 5}-"})
        assert tail.status == 206 and tail.body[:5] == whole.body[-5:]
        assert tail.headers["Content-Range"].startswith(f"bytes {size - 5}-")
        missing = lab.request("/no-such-file")
        assert missing.status == 404 and missing.path == "/no-such-file" and missing.port == 80
        with pytest.raises(FetchError, match="HTTP 404"):
            lab.fetch("/no-such-file")
