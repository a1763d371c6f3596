from __future__ import annotations

from datetime import UTC

import pandas as pd

from labkit import checks


def _times(*seconds: float) -> pd.Series:
    base = pd.Timestamp("2026-11-05 09:00:00", tz="UTC")
    return pd.Series([base + pd.Timedelta(seconds=s) for s in seconds])


def test_all_served_and_in_order_pass_on_a_prefix():
    written = ["a", "b"]
    served = ["a", "b", "c"]
    assert checks.all_served(written, served).status == "passed"
    assert checks.in_order(written, served).status == "passed"


def test_missing_line_fails_and_names_it():
    c = checks.all_served(["a", "b"], ["a"])
    assert c.status == "failed" and "'b'" in c.detail and "1 of 2" in c.detail


def test_out_of_order_fails_with_position():
    c = checks.in_order(["a", "b"], ["b", "a"])
    assert c.status == "failed" and "line 1" in c.detail


def test_duplicates_fail():
    assert checks.no_duplicates(["a", "b", "a"]).status == "failed"
    assert checks.no_duplicates(["a", "b"]).status == "passed"


def test_nothing_written_is_undecided_not_passed():
    assert checks.all_served([], ["x"]).status == "undecided"
    assert checks.in_order([], []).status == "undecided"
    assert not checks.all_served([], []).passed


def test_latency_bound_is_judged_on_the_bounds():
    lat = checks.latency_within
    assert lat(pd.Series([0.0, 0.2]), pd.Series([0.5, 0.9]), 1.0).status == "passed"
    failed = lat(pd.Series([0.1, 1.1]), pd.Series([0.3, 1.4]), 1.0)
    assert failed.status == "failed" and "max in [1.100, 1.400] s" in failed.detail
    straddles = lat(pd.Series([0.0, 0.8]), pd.Series([0.5, 1.3]), 1.0)
    assert straddles.status == "undecided" and not straddles.passed
    assert lat(pd.Series([float("nan")]), pd.Series([float("nan")]), 1.0).status == "undecided"


def test_cadence():
    assert checks.cadence(_times(0, 10, 21, 31), 10, 1.25).status == "passed"
    c = checks.cadence(_times(0, 10, 25), 10, 1.25)
    assert c.status == "failed" and "worst 15 s" in c.detail
    assert checks.cadence(_times(0), 10, 1).status == "undecided"
    assert checks.cadence(_times(0, 10), None, 1).status == "undecided"


def test_checks_frame_has_one_row_per_check():
    frame = checks.checks_frame([checks.no_duplicates(["a"]), checks.in_order([], [])])
    assert list(frame.columns) == ["check", "status", "detail"]
    assert list(frame["status"]) == ["passed", "undecided"]


def test_silence_at_the_end_fails_the_cadence_and_slack_protects_a_healthy_producer():
    stamps = _times(0, 10, 20)
    end = stamps.iloc[-1] + pd.Timedelta(seconds=31)
    c = checks.cadence(stamps, 10, 1.25, until=end, slack=1.0)
    assert c.status == "failed" and c.detail.startswith("no line for 31.0 s after the line stamped 09:00:20")
    assert "expected one every 10 s" in c.detail
    healthy = checks.cadence(stamps, 10, 1.25, until=stamps.iloc[-1] + pd.Timedelta(seconds=10.9), slack=1.0)
    assert healthy.status == "passed"
    never = checks.cadence(_times(), 10, 1.25, since=_times(0).iloc[0], until=_times(40).iloc[0])
    assert never.status == "failed" and "since observation began" in never.detail


def test_observation_complete_never_passes_a_run_cut_short():
    oc = checks.observation_complete
    assert oc("done", elapsed=30, duration=None, lines=3, observed=3, limit=60).status == "passed"
    short = oc("time limit", elapsed=60, duration=None, lines=3, observed=1, limit=60)
    assert short.status == "failed" and "only 1 of 3 new lines served before the time limit of 60 s" in short.detail
    assert oc("interrupted", elapsed=5, duration=40, lines=None, observed=0, limit=40).status == "undecided"
    assert oc("pod gone", elapsed=5, duration=40, lines=None, observed=0, limit=40).status == "failed"
    assert oc("done", elapsed=40.1, duration=40, lines=None, observed=4, limit=40).status == "passed"


def test_server_answered_allows_slow_polls_and_fails_an_outage():
    sa = checks.server_answered
    assert sa(0.5, 0, 0.2, 0.25, poll_interval=0.5).status == "passed"  # polls further apart than writes
    out = sa(12.3, 40, 10, 1.25, poll_interval=0.2, when="from 12:00:01 to 12:00:13")
    assert out.status == "failed"
    assert out.detail == (
        "no answer for 12.3 s (from 12:00:01 to 12:00:13), longer than the producer's interval of 10 s; 40 failed polls"
    )
    assert sa(3.0, 2, None, 1.0).status == "undecided"
    assert sa(0.2, 0, None, 1.0).status == "passed"


def _state(name="producer", restarts=0, started=0, state="running", last=None):
    from datetime import datetime, timedelta

    from labkit.engines.base import ContainerState

    t0 = datetime(2026, 11, 5, 12, 0, 0, tzinfo=UTC)
    return ContainerState(
        name,
        state,
        restarts=restarts,
        started_at=t0 + timedelta(seconds=started),
        last_exit_code=last,
        last_finished_at=t0 + timedelta(seconds=31) if last is not None else None,
    )


def test_containers_stayed_up():
    before = {"producer": _state(), "consumer": _state("consumer")}
    assert checks.stayed_up(before, before).status == "passed"
    crashed = {"producer": _state(restarts=1, started=32, last=3), "consumer": _state("consumer")}
    c = checks.stayed_up(before, crashed)
    assert c.status == "failed" and c.detail == "producer restarted 1 time, last exit code 3 at 12:00:31"
    by_hand = {"producer": _state(started=40), "consumer": _state("consumer")}  # started anew, count unchanged
    assert checks.stayed_up(before, by_hand).detail.startswith("producer restarted 1 time")
    stopped = {"producer": _state(state="terminated"), "consumer": _state("consumer")}
    assert checks.stayed_up(before, stopped).status == "failed"
    assert checks.stayed_up(before, {"producer": _state()}).detail == "consumer is gone"
    assert checks.stayed_up(before, None).status == "failed"
    assert checks.stayed_up({}, {}).status == "undecided"
    assert checks.stayed_up(before, before, problem="API server timed out").status == "undecided"
