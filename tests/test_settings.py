"""MeasureSettings: arguments checked once, with messages that say what to pass, and the limits derived from them."""

from __future__ import annotations

import dataclasses

import pytest

from labkit.settings import MeasureSettings


def test_measure_needs_a_stopping_rule():
    with pytest.raises(ValueError, match=r"duration= .* or lines="):
        MeasureSettings()


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"duration": "40"}, TypeError, r"duration must be a number of seconds such as 0.5, or None, not '40'"),
        ({"duration": True}, TypeError, r"duration must be a number of seconds"),
        ({"duration": 0}, ValueError, r"duration must be a finite number of seconds greater than 0, not 0"),
        ({"duration": float("inf")}, ValueError, r"duration must be a finite number"),
        ({"lines": 2.5}, TypeError, r"lines must be a whole number of lines such as 5, not 2.5"),
        ({"lines": 0}, ValueError, r"lines must be at least 1 \(how many new lines to wait for\), not 0"),
        ({"lines": 1, "poll_interval": None}, TypeError, r"poll_interval must be a number of seconds such as 0.5, not"),
        ({"lines": 1, "poll_interval": -0.1}, ValueError, r"poll_interval must be .* greater than 0"),
        ({"lines": 1, "timeout": 0}, ValueError, r"timeout must be .* greater than 0"),
        ({"lines": 1, "max_latency": "1s"}, TypeError, r"max_latency must be a number of seconds"),
        ({"lines": 1, "cadence_tolerance": -1}, ValueError, r"cadence_tolerance must be .* 0 or more"),
        ({"lines": 1, "interval": 0}, ValueError, r"interval must be .* greater than 0"),
    ],
)
def test_wrong_arguments_say_what_to_pass(options, error, message):
    with pytest.raises(error, match=message):
        MeasureSettings(**options)


def test_numbers_are_kept_as_floats_and_counts_as_ints():
    settings = MeasureSettings(duration=3, lines=True + 1, poll_interval=1, cadence_tolerance=0)
    assert (settings.duration, settings.lines, settings.poll_interval, settings.cadence_tolerance) == (3.0, 2, 1.0, 0.0)
    assert isinstance(settings.duration, float) and isinstance(settings.lines, int)


def test_settings_cannot_be_changed_once_made():
    settings = MeasureSettings(duration=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.duration = 2  # type: ignore[misc]


def test_the_time_limit_is_the_timeout_else_the_duration_else_an_interval_per_line():
    assert MeasureSettings(duration=5, timeout=2).time_limit == 2
    assert MeasureSettings(duration=5).time_limit == 5
    assert MeasureSettings(lines=3, interval=2).time_limit == (3 + 1) * 2 + 30
    assert MeasureSettings(lines=3).time_limit == (3 + 1) * 10 + 30  # interval unknown: the tutorial's 10 s


def test_bounds_left_as_none_come_from_the_resolution():
    derived = MeasureSettings(duration=1, poll_interval=0.2)
    assert derived.latency_bound(1.0) == pytest.approx(1.7)
    assert derived.cadence_tolerance_at(1.0) == pytest.approx(1.25)
    given = MeasureSettings(duration=1, max_latency=0.3, cadence_tolerance=0.1)
    assert (given.latency_bound(1.0), given.cadence_tolerance_at(1.0)) == (0.3, 0.1)
