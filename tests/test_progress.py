"""The students' progress record: the steps a lab went through and its last verdict, written through the engine."""

from __future__ import annotations

import pytest

import labkit
from labkit import progress
from labkit.engines.fake import FakeEngine, Script
from labkit.errors import EngineError

EVERY = 0.1


def _record(engine: FakeEngine) -> progress.Progress:
    return progress.from_record(engine.records.get("labkit-progress"))


def test_a_lab_records_each_step_of_the_tutorial_once_with_the_last_verdict(seed):
    engine = FakeEngine(Script(interval=EVERY))
    lab = labkit.Lab(seed, engine=engine, interval=EVERY, progress=False)
    lab.apply()
    assert list(_record(engine).steps) == ["applied"] and _record(engine).pod == lab.name
    lab.wait_ready(timeout=5)
    assert _record(engine).next_step() == "exec-default"
    lab.exec("ls -la /var/log")
    lab.exec(["tail", "-n", "1", "/usr/share/nginx/html/index.html"], container="consumer")
    first_exec = _record(engine).steps["exec-default"]
    lab.exec("ls")  # a step again: the time it was first reached stays
    assert _record(engine).steps["exec-default"] == first_exec
    lab.fetch()
    report = lab.measure(duration=0.6, poll_interval=0.02)
    lab.delete()
    done = _record(engine)
    assert set(done.steps) == set(progress.STEPS) and done.next_step() is None
    times = [done.steps[s] for s in progress.STEPS]
    assert times == sorted(times)  # reached in the tutorial's order
    assert done.report is not None
    assert done.report["verdict"] == ("passed" if report.passed else "failed")
    assert done.report["checks"] == {c.name: c.status for c in report.checks}
    assert done.report["p50_low"] <= done.report["p50"] <= done.report["p50_high"]
    assert done.report["lines"] == len(report.lines) > 0


def test_a_failed_measurement_is_recorded_as_failed(seed):
    engine = FakeEngine(Script(interval=EVERY, silence_at=0.2))
    with labkit.Lab(seed, engine=engine, interval=EVERY, progress=False) as lab:
        lab.apply().wait_ready(timeout=5)
        report = lab.measure(duration=1.0, poll_interval=0.02)
    assert not report.passed
    recorded = _record(engine).report
    assert recorded is not None and recorded["verdict"] == "failed"
    assert "failed" in recorded["checks"].values()


def test_a_record_that_cannot_be_written_warns_once_and_the_lab_goes_on(seed):
    engine = FakeEngine(Script(interval=EVERY))

    def refuse(name, data):
        raise EngineError("configmaps is forbidden")

    engine.record = refuse  # type: ignore[method-assign]
    with labkit.Lab(seed, engine=engine, interval=EVERY, progress=False) as lab:
        with pytest.warns(
            UserWarning, match="progress could not be recorded.*forbidden.*the lab itself goes on"
        ) as seen:
            lab.apply().wait_ready(timeout=5)
            lab.exec("ls")
        assert len(seen) == 1
        assert lab.fetch()


def test_the_record_is_plain_strings_and_unreadable_parts_count_as_not_recorded():
    done = progress.Progress(pod="p", steps={"applied": "2026-12-01T06:00:00Z"}, report={"verdict": "passed"})
    data = progress.to_record(done)
    assert all(isinstance(v, str) for v in data.values())
    assert progress.from_record(data) == done
    broken = progress.from_record({"pod": "p", "steps": "{not json", "report": "[1]"})
    assert broken == progress.Progress(pod="p") and broken.next_step() == "applied"
    assert progress.from_record({"steps": '{"applied": "t", "hacked": "t"}'}).steps == {"applied": "t"}
    assert progress.from_record(None) == progress.Progress()


def test_an_unknown_step_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown step 'lunch'"):
        progress.Recorder(FakeEngine(Script()), "p").step("lunch")


def test_a_later_lab_adds_to_what_earlier_labs_reached_and_sets_nothing_back(seed):
    engine = FakeEngine(Script(interval=EVERY))
    with labkit.Lab(seed, engine=engine, interval=EVERY, progress=False) as first:
        first.apply().wait_ready(timeout=5)
        first.exec("ls")
        first.measure(duration=0.5, poll_interval=0.02)
    earlier = _record(engine)
    with labkit.Lab(seed, engine=engine, name="another-lab", interval=EVERY, progress=False) as second:
        second.apply()
    now = _record(engine)
    assert now.pod == "another-lab"
    assert now.steps == earlier.steps  # every step kept at the time it was first reached
    assert now.report == earlier.report  # the newest measurement is still the first lab's


def test_steps_are_merged_keeping_the_earliest_time_and_the_newest_report():
    old = progress.Progress(pod="a", steps={"applied": "2026-12-01T06:00:00.000Z"}, report={"verdict": "failed"})
    new = progress.Progress(
        pod="b", steps={"applied": "2026-12-01T07:00:00.000Z", "ready": "2026-12-01T07:00:01.000Z"}, report=None
    )
    both = progress.merged(old, new)
    assert both.steps == {"applied": "2026-12-01T06:00:00.000Z", "ready": "2026-12-01T07:00:01.000Z"}
    assert both.pod == "b" and both.report == {"verdict": "failed"}
    assert progress.merged(old, progress.Progress(report={"verdict": "passed"})).report == {"verdict": "passed"}
