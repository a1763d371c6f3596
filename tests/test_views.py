"""The report as a student reads it, on plain data: units, precision, whole checks, the chart's intervals."""

from __future__ import annotations

import dataclasses

import matplotlib

matplotlib.use("Agg")

import pandas as pd
import pytest

from labkit import views
from labkit.clocks import ClockOffset
from labkit.report import LatencyReport
from tests.test_report import T0, _obs, _run

SEED = "p Thu Nov 5 09:00:00 UTC 2026\np Thu Nov 5 09:00:10 UTC 2026\np Thu Nov 5 09:00:20 UTC 2026\n"


def _seed_report():
    return _run(_obs(SEED.splitlines(), [T0 + 0.4, T0 + 10.3, T0 + 21.5], pre=1), SEED)


def test_lines_table_is_in_milliseconds_to_the_millisecond():
    table = _seed_report().table()
    assert list(table.columns) == [
        "written_at",
        "served_at",
        "observed",
        "latency_ms",
        "low_ms",
        "high_ms",
        "midpoint_ms",
    ]
    assert table.index.name == "line_no" and list(table.index) == [1, 2, 3]
    assert str(table["served_at"].dtype) == "datetime64[ms, UTC]"
    assert table.loc[2, "served_at"] == pd.Timestamp("2026-11-05 09:00:10.300", tz="UTC")
    assert table.loc[2, "latency_ms"] == pytest.approx(300.0)
    assert table.loc[3, ["low_ms", "high_ms"]].tolist() == pytest.approx([300.0, 1500.0])
    assert table.loc[3, "midpoint_ms"] == pytest.approx(900.0)
    assert pd.isna(table.loc[1, "latency_ms"])  # already there at the first fetch
    assert "future" not in table.columns


def test_every_column_is_explained():
    for column in _seed_report().table().columns:
        assert column.removesuffix("_ms") in views.COLUMNS


def test_seconds_when_latencies_are_long():
    slow = _run(_obs(SEED.splitlines(), [T0 + 0.4, T0 + 10.3, T0 + 32.0], pre=1), SEED, max_latency=30)
    assert views.unit_for(slow) == ("s", 1.0)
    assert "latency_s" in slow.table().columns
    assert slow.summary_table().loc["max", "latency_s"] == pytest.approx(12.0)


def test_summary_table_bounds_every_statistic():
    summary = _seed_report().summary_table()
    assert list(summary.index) == ["min", "p50", "p95", "max", "mean"]
    assert summary.index.name == "over 2 lines"
    assert summary.loc["max"].tolist() == pytest.approx([1500.0, 300.0, 1500.0])
    assert summary.loc["min"].tolist() == pytest.approx([300.0, 0.0, 300.0])
    assert (summary["low_ms"] <= summary["latency_ms"]).all() and (summary["latency_ms"] <= summary["high_ms"]).all()


def test_a_flagged_line_adds_the_future_column():
    written = "p 2026-11-05T09:00:05.000000000+00:00\n"
    report = _run(_obs(written.splitlines(), [T0 + 1.0], poll=0.005), written, clock=ClockOffset(0.0, 0.001, "t"))
    assert report.table()["future"].tolist() == [True]


def test_plot_draws_intervals_and_their_midpoints():
    report = _seed_report()
    ax = report.plot()
    (bars,) = ax.collections
    segments = [seg[:, 1].tolist() for seg in bars.get_segments()]
    assert segments == [pytest.approx([0.0, 300.0]), pytest.approx([300.0, 1500.0])]
    (dots,) = ax.lines
    assert dots.get_ydata().tolist() == pytest.approx([150.0, 900.0])
    assert ax.get_ylabel() == "write-to-serve latency (ms)"
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [
        "bounds: the true latency is on the bar",
        "midpoint of the bounds",
    ]
    assert legend.get_bbox_to_anchor().x0 >= ax.get_window_extent().x1  # beside the axes, not on the data


def test_checks_are_never_cut():
    report = _seed_report()
    long = "x" * 300
    report.checks[0] = dataclasses.replace(report.checks[0], detail=long)
    assert views.checks_table(report).loc[0, "detail"] == long
    assert long in views.checks_table(report).to_html()


def test_the_text_report_wraps_at_word_boundaries():
    report = _run(
        _obs(SEED.splitlines(), [T0 + 0.4, T0 + 10.3, T0 + 20.5], pre=1),
        SEED,
        lab_description="consumer serves it as /usr/share/nginx/html/index.html on port 80 " * 3,
    )
    text = str(report)
    assert all(len(line) <= 100 for line in text.splitlines())
    assert "/usr/share/nginx/html/index.html" in text  # a path is never split
    continued = [line for line in text.splitlines() if line.startswith("            ")]
    assert continued, text


def test_headline_and_repr_say_the_verdict():
    report = _seed_report()
    assert views.headline(report).startswith("all checks passed: 2 new lines observed in 25.0 s")
    assert repr(report).startswith("<LatencyReport: all checks passed")
    broken = _run(_obs([SEED.splitlines()[0]], [T0 + 0.4]), SEED)
    assert views.headline(broken).startswith("some checks did not pass")


def _stopped_before_a_line() -> LatencyReport:
    """A report stopped by the user before any new line was written: only the line already there was served."""
    first = SEED.splitlines()[0]
    return _run(dataclasses.replace(_obs([first], [T0 + 0.4], pre=1), ended="interrupted", elapsed=6.1), first + "\n")


def test_a_summary_of_no_observed_line_says_so_in_words():
    report = _stopped_before_a_line()
    assert report.summary["count"] == 0
    summary = report.summary_table()
    assert summary.to_dict() == {"summary": {"latency": views.NOTHING_OBSERVED}}
    assert "over 0 lines" not in summary.to_string() and "NaN" not in summary.to_string()
    assert "no line was written while observed" in views.NOTHING_OBSERVED
    assert f"latency:  {views.NOTHING_OBSERVED}" in str(report)


def test_show_says_no_line_was_observed_and_marks_a_stop(monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell

    shown: list[dict[str, str]] = []
    monkeypatch.setattr("labkit.display.in_notebook", lambda: True)
    monkeypatch.setattr(InteractiveShell, "initialized", classmethod(lambda cls: True))
    monkeypatch.setattr("IPython.core.display_functions.publish_display_data", lambda data, **_: shown.append(data))
    report = _stopped_before_a_line()
    report.show()
    texts = [part["text/plain"] for part in shown]
    assert texts[0].startswith("stopped by you, a partial report: 0 new lines observed in 6.1 s")
    assert "&#9209;" in shown[0]["text/html"]  # the stop sign, not the cross of a failed lab
    assert texts[1] == f"The latency, in summary\n{views.NOTHING_OBSERVED}"
    assert views.NOTHING_OBSERVED in shown[1]["text/html"] and "<table" not in shown[1]["text/html"]
    assert not any(t.startswith("chart:") for t in texts)  # no empty chart
    assert texts[2].splitlines()[0] == "The checks"
    assert all("over 0 lines" not in t for t in texts)


def test_the_headline_of_a_stopped_report_says_who_stopped_it():
    report = _stopped_before_a_line()
    assert views.headline(report).startswith("stopped by you, a partial report: 0 new lines observed")
    assert repr(report).startswith("<LatencyReport: stopped by you")
    assert report.verdict == "some checks did not pass (stopped by the user: a partial report)"
