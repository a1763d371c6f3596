"""The report on plain data: observations built by hand, joined with what was written, never changed."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest

from labkit.clocks import ClockOffset, shared_clock
from labkit.engines.base import ContainerState
from labkit.observation import Gap, Observation
from labkit.report import LatencyReport, Lifecycle, build_report
from labkit.settings import MeasureSettings

ONE_MACHINE = shared_clock("one machine")


def _obs(lines: list[str], served: list[float], pre: int = 0, poll: float = 0.2) -> Observation:
    """An observation whose lines were first served at ``served`` (epoch seconds), polled every ``poll`` s."""
    return Observation(
        lines=lines,
        served_ns=[int(s * 1e9) for s in served],
        visible_after_ns=[int((s - poll) * 1e9) for s in served],
        preexisting=pre,
        polls=10,
        elapsed=25,
    )


def _run(
    obs: Observation,
    written: str | None,
    *,
    clock: ClockOffset = ONE_MACHINE,
    lifecycle: Lifecycle | None = None,
    lab_description: str = "l",
    **settings: object,
) -> LatencyReport:
    """The report on ``obs`` with ``written`` as the producer's copy; ``settings`` as MeasureSettings takes them.

    Observed for 25 s unless ``lines`` are asked for; polled every 0.2 s, written every 10 s.
    """
    options: dict[str, Any] = {"poll_interval": 0.2, "interval": 10, **settings}
    if "lines" not in options:
        options.setdefault("duration", 25)
    return build_report(
        replace(obs, written=written),
        MeasureSettings(**options),
        clock=clock,
        lifecycle=lifecycle,
        engine_description="e",
        lab_description=lab_description,
    )


T0 = datetime(2026, 11, 5, 9, 0, 0, tzinfo=UTC).timestamp()


def test_report_on_seed_format_states_the_resolution():
    written = "p Thu Nov 5 09:00:00 UTC 2026\np Thu Nov 5 09:00:10 UTC 2026\np Thu Nov 5 09:00:20 UTC 2026\n"
    served = [T0 + 0.4, T0 + 10.3, T0 + 20.9]
    report = _run(_obs(written.splitlines(), served, pre=1), written)
    assert report.resolution == 1.0
    assert [c.status for c in report.checks] == ["passed"] * 7
    assert report.summary["count"] == 2
    assert report.summary["max"] == pytest.approx(0.9)
    assert "latencies below a second cannot be resolved" in str(report)
    assert "latency <= 1.7 s" in str(report)


def test_report_fails_on_a_missing_line_and_a_slow_one():
    written = "p Thu Nov 5 09:00:00 UTC 2026\np Thu Nov 5 09:00:10 UTC 2026\np Thu Nov 5 09:00:20 UTC 2026\n"
    lines = written.splitlines()
    report = _run(_obs([lines[0], lines[2]], [T0 + 0.1, T0 + 23.0]), written)
    status = {c.name: c.status for c in report.checks}
    assert status["all lines served"] == "failed"
    assert status["served in order"] == "failed"
    assert status["latency <= 1.7 s"] == "failed"
    assert not report.passed
    assert "some checks did not pass" in str(report)


def test_asking_for_n_lines_reports_exactly_n():
    written = "".join(f"p Thu Nov 5 09:00:{s:02d} UTC 2026\n" for s in (0, 10, 20, 30))
    lines = written.splitlines()
    obs = _obs(lines, [T0 + 0.5, T0 + 10.5, T0 + 20.5, T0 + 30.5], pre=1)
    report = _run(obs, written, lines=2)
    assert report.summary["count"] == 2
    assert len(report.lines) == 3
    assert report.passed, str(report)
    assert "1 line served after the 2 asked for left out" in report.notes


def test_bounds_carry_resolution_poll_interval_and_clock():
    written = "p Thu Nov 5 09:00:00 UTC 2026\np Thu Nov 5 09:00:10 UTC 2026\n"
    obs = _obs(written.splitlines(), [T0 + 0.3, T0 + 10.4], pre=0, poll=0.2)
    report = _run(obs, written, clock=ClockOffset(0.0, 0.05, "test"))
    row = report.lines.iloc[1]
    assert row["latency"] == pytest.approx(0.4)
    assert row["latency_high"] == pytest.approx(0.45)  # + clock uncertainty
    assert row["latency_low"] == 0  # 0.2 - 1 s resolution - 0.05, clipped: nothing below a second is known
    s = report.summary
    assert s["p50_low"] <= s["p50"] <= s["p50_high"]
    assert "± 50.0 ms" in str(report)


def test_high_resolution_bounds_are_tight_and_offset_corrects_served_at():
    written = "p 2026-11-05T09:00:00.100000000+00:00\np 2026-11-05T09:00:00.200000000+00:00\n"
    # This machine's clock is 2 s behind the pod's: served at T0+0.105 local = T0+2.105 pod... as seen here.
    obs = _obs(written.splitlines(), [T0 - 2 + 0.105, T0 - 2 + 0.204], pre=0, poll=0.005)
    report = _run(obs, written, clock=ClockOffset(2.0, 0.001, "test"))
    lat = report.lines["latency"].to_numpy()
    assert lat == pytest.approx([0.005, 0.004], abs=1e-6)
    assert (report.lines["latency_high"] - report.lines["latency_low"]).max() <= 0.012
    assert not report.lines["future"].any()


def test_a_line_stamped_after_it_was_served_is_flagged():
    written = "p 2026-11-05T09:00:05.000000000+00:00\n"
    obs = _obs(written.splitlines(), [T0 + 1.0], pre=0, poll=0.005)
    report = _run(obs, written, clock=ClockOffset(0.0, 0.001, "test"))
    assert report.lines["future"].tolist() == [True]
    assert any("stamped later than it was served" in n for n in report.notes)


def test_silence_is_measured_to_when_the_copy_was_read():
    written = "p 2026-11-05T09:00:00.123456+00:00\np 2026-11-05T09:00:01.123456+00:00\n"
    obs = _obs(written.splitlines(), [T0 + 0.13, T0 + 1.13], pre=0)
    obs = replace(obs, started_ns=int(T0 * 1e9), copy_read_ns=int((T0 + 1.9) * 1e9), ended_ns=int((T0 + 9) * 1e9))
    fine = _run(obs, written, interval=1, duration=2)
    assert {c.name: c.status for c in fine.checks}["producer cadence"] == "passed"
    obs = replace(obs, copy_read_ns=int((T0 + 4) * 1e9))
    silent = _run(obs, written, interval=1, duration=2)
    cadence = next(c for c in silent.checks if c.name == "producer cadence")
    assert cadence.status == "failed" and cadence.detail.startswith("no line for 2.9 s")


def test_a_report_without_checks_never_passes():
    report = _run(_obs([], []), "")
    report.checks = []
    assert not report.passed


# -- the report never changes what it is given ---------------------------------------------------

SECONDS = "".join(f"p Thu Nov 5 09:00:{s:02d} UTC 2026\n" for s in (0, 10, 20, 30))


def _inputs() -> tuple[Observation, MeasureSettings, ClockOffset, Lifecycle]:
    """An observation with more lines than asked for, notes, a reconnect and a restart:
    every path that trims or adds."""
    obs = replace(
        _obs(SECONDS.splitlines(), [T0 + 0.5, T0 + 10.5, T0 + 20.5, T0 + 30.5], pre=1),
        written=SECONDS,
        notes=["poll failed (ConnectionResetError: reset); the run goes on"],
        reconnects=1,
        failed_polls=1,
        longest_gap=Gap(int((T0 + 3) * 1e9), int((T0 + 4) * 1e9), 1),
        started_ns=int(T0 * 1e9),
    )
    settings = MeasureSettings(lines=2, poll_interval=0.2, interval=10)
    before = {"producer": ContainerState("producer", "running"), "consumer": ContainerState("consumer", "running")}
    after = {**before, "producer": ContainerState("producer", "running", restarts=1, last_exit_code=3)}
    return obs, settings, ClockOffset(0.0, 0.05, "test"), Lifecycle(before, after, restart_backoff=False)


def test_building_a_report_changes_none_of_its_inputs():
    obs, settings, clock, lifecycle = _inputs()
    before = copy.deepcopy((obs, settings, clock, lifecycle))
    report = build_report(obs, settings, clock=clock, lifecycle=lifecycle)
    assert (obs, settings, clock, lifecycle) == before
    assert len(report.lines) == 3 and len(obs.lines) == 4  # the report trimmed a copy
    report.notes.append("added later")
    assert obs.notes == before[0].notes  # the report's lists are its own


def test_the_same_inputs_give_the_same_report():
    obs, settings, clock, lifecycle = _inputs()
    first = build_report(obs, settings, clock=clock, lifecycle=lifecycle)
    second = build_report(obs, settings, clock=clock, lifecycle=lifecycle)
    pd.testing.assert_frame_equal(first.lines, second.lines)
    pd.testing.assert_series_equal(first.summary, second.summary)
    assert first.checks == second.checks and first.notes == second.notes


def test_notes_say_what_was_left_out_and_what_broke():
    obs, settings, clock, lifecycle = _inputs()
    notes = build_report(obs, settings, clock=clock, lifecycle=lifecycle).notes
    assert notes[:2] == [
        "poll failed (ConnectionResetError: reset); the run goes on",
        "1 line served after the 2 asked for left out",
    ]
    assert any("broke 1 time (1 failed poll)" in n and "1.00 s" in n for n in notes)
    assert any(n.startswith("producer restarted while observed") and "no back-off" in n for n in notes)


# -- bounds, summary, checks, verdict ---------------------------------------------------------------

MILLI = "".join(f"p 2026-11-05T09:00:0{s}.100+00:00\n" for s in (1, 2, 3))


def test_each_bound_is_the_poll_before_less_one_tick_and_the_answer_plus_the_clock():
    # Written at .100 (ms stamps); the poll before the answer was sent 0.15 s before it came, 0.2 s and more after.
    served = [T0 + s + 0.3 + k * 0.1 for k, s in enumerate((1, 2, 3))]
    report = _run(_obs(MILLI.splitlines(), served, poll=0.15), MILLI, clock=ClockOffset(0.0, 0.01, "test"))
    assert report.resolution == 1e-3
    rows = report.lines
    assert rows["latency"].tolist() == pytest.approx([0.2, 0.3, 0.4], abs=1e-6)
    # low: visible after the poll before (0.05 s after the stamp), less one tick and the clock's uncertainty
    assert rows["latency_low"].tolist() == pytest.approx([0.039, 0.139, 0.239], abs=1e-6)
    assert rows["latency_high"].tolist() == pytest.approx([0.21, 0.31, 0.41], abs=1e-6)  # plus the uncertainty
    assert rows["observed"].all() and not rows["future"].any()


def test_summary_gives_each_statistic_and_the_bounds_of_the_order_statistics():
    served = [T0 + s + 0.3 + k * 0.1 for k, s in enumerate((1, 2, 3))]
    s = _run(_obs(MILLI.splitlines(), served, poll=0.15), MILLI).summary
    assert s["count"] == 3
    assert [s[k] for k in ("min", "p50", "max", "mean")] == pytest.approx([0.2, 0.3, 0.4, 0.3], abs=1e-6)
    assert s["p95"] == pytest.approx(0.39, abs=1e-6)  # linear between the two largest
    assert (s["p50_low"], s["p50_high"]) == pytest.approx((0.149, 0.3), abs=1e-6)
    assert (s["max_low"], s["max_high"]) == pytest.approx((0.249, 0.4), abs=1e-6)


def test_lines_there_before_observation_get_no_latency_and_no_statistics():
    served = [T0 + s + 0.3 for s in (1, 2, 3)]
    report = _run(_obs(MILLI.splitlines(), served, pre=2), MILLI)
    assert report.lines["observed"].tolist() == [False, False, True]
    assert report.lines["latency"].isna().tolist() == [True, True, False]
    assert report.summary["count"] == 1


def test_without_the_producers_copy_the_comparing_checks_are_undecided():
    lines = SECONDS.splitlines()[:2]
    report = _run(_obs(lines, [T0 + 0.5, T0 + 10.5]), None)
    status = {c.name: c.status for c in report.checks}
    assert status["all lines served"] == status["served in order"] == "undecided"
    assert len(report.lines) == 2  # the served lines stand in for what was written
    assert "the producer's copy could not be read: the lines shown are those that were served" in report.notes
    assert not report.passed


@pytest.mark.parametrize(
    ("ended", "verdict", "status"),
    [
        ("done", "all checks passed", "passed"),
        ("interrupted", "some checks did not pass (stopped by the user: a partial report)", "undecided"),
        ("pod gone", "some checks did not pass (the pod disappeared: a partial report)", "failed"),
    ],
)
def test_the_verdict_says_how_observation_ended(ended, verdict, status):
    obs = replace(_obs(SECONDS.splitlines()[:3], [T0 + 0.5, T0 + 10.5, T0 + 20.5], pre=1), ended=ended)
    report = _run(obs, "".join(SECONDS.splitlines(keepends=True)[:3]))
    assert report.ended == ended and report.verdict == verdict
    assert report.checks[-1].name == "observed for 25 s" and report.checks[-1].status == status
    assert report.interrupted == (ended == "interrupted")


def test_lines_that_did_not_come_before_the_time_limit_fail_against_the_settings_limit():
    obs = replace(_obs(SECONDS.splitlines()[:2], [T0 + 0.5, T0 + 10.5], pre=1), ended="time limit")
    report = _run(obs, "".join(SECONDS.splitlines(keepends=True)[:2]), lines=3, timeout=12)
    last = report.checks[-1]
    assert last.name == "3 new lines served" and last.status == "failed"
    assert last.detail == "only 1 of 3 new lines served before the time limit of 12 s ended the observation"


def test_a_restart_fails_the_containers_check_and_the_report_lists_the_containers():
    obs, settings, clock, lifecycle = _inputs()
    report = build_report(obs, settings, clock=clock, lifecycle=lifecycle)
    up = next(c for c in report.checks if c.name == "containers stayed up")
    assert up.status == "failed" and "producer restarted 1 time, last exit code 3" in up.detail
    assert report.containers == lifecycle.after
    assert "producer running, 1 restart (last exit code 3)" in str(report)


def test_the_bounds_of_the_checks_come_from_the_settings():
    served = [T0 + 0.9, T0 + 10.9, T0 + 20.9]
    written = "".join(SECONDS.splitlines(keepends=True)[:3])
    derived = _run(_obs(written.splitlines(), served), written)  # 1 s tick + 0.2 s poll + 0.5 s slack
    given = _run(_obs(written.splitlines(), served), written, max_latency=0.5)
    assert derived.checks[3].name == "latency <= 1.7 s" and derived.checks[3].passed
    # up to 0.9 s, but written anywhere in its second: the bounds straddle 0.5 s
    assert given.checks[3].name == "latency <= 0.5 s" and given.checks[3].status == "undecided"


def test_an_observation_must_have_one_time_of_each_kind_per_line():
    with pytest.raises(ValueError, match="one entry per served line"):
        Observation(lines=["a"], served_ns=[1], visible_after_ns=[])
    with pytest.raises(ValueError, match="preexisting"):
        Observation(lines=["a"], served_ns=[1], visible_after_ns=[0], preexisting=2)
