from __future__ import annotations

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
