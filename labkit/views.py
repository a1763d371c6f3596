"""A latency report as a student reads it: tables in sensible units, one chart, one display.

The functions take a :class:`~labkit.report.LatencyReport` and return data
(DataFrames) or draw on a matplotlib ``Axes``; the report's methods
(:meth:`~labkit.report.LatencyReport.table`, ``summary_table``, ``plot``,
``show``) call them, so every notebook draws the same figure the same way.
The raw numbers, in seconds and at full precision, stay in ``report.lines``
and ``report.summary`` for computation.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import pandas as pd

from labkit.engines.base import ContainerState

if TYPE_CHECKING:
    from labkit.report import LatencyReport

STATISTICS = ("min", "p50", "p95", "max", "mean")

NOTHING_OBSERVED = "no line was written while observed, so there is no latency to report"
"""What every summary of a report without an observed line says instead of a table of blank statistics."""

COLUMNS = {
    "written_at": "when the producer stamped the line (UTC, as `date` printed it)",
    "served_at": "when the line first came back from the server (UTC)",
    "observed": "written while we watched; only these lines get a latency",
    "latency": "served_at minus written_at, as stamped",
    "low": "the least the true latency can be",
    "high": "the most the true latency can be",
    "midpoint": "the middle of [low, high]: the estimate the chart draws",
}
"""What each column of :func:`lines_table` holds (its unit is in the column's name)."""


def unit_for(report: LatencyReport) -> tuple[str, float]:
    """Milliseconds when every bound is under 10 s, else seconds: the unit name and its factor from seconds."""
    high = report.lines["latency_high"].abs().max()
    return ("s", 1.0) if pd.notna(high) and high >= 10 else ("ms", 1000.0)


def _round(values: pd.Series, unit: str) -> pd.Series:
    return values.round(1 if unit == "ms" else 3)


def lines_table(report: LatencyReport) -> pd.DataFrame:
    """One row per written line, indexed by its line number; latencies in the unit of :func:`unit_for`.

    Times are to the millisecond. The columns are explained in :data:`COLUMNS`;
    ``future`` (stamped later than served, beyond the clock's uncertainty)
    appears only when a line is.
    """
    unit, factor = unit_for(report)
    lines = report.lines
    low, high = lines["latency_low"] * factor, lines["latency_high"] * factor
    table = pd.DataFrame(
        {
            "written_at": _to_ms(lines["written_at"]),
            "served_at": _to_ms(lines["served_at"]),
            "observed": lines["observed"],
            f"latency_{unit}": _round(lines["latency"] * factor, unit),
            f"low_{unit}": _round(low, unit),
            f"high_{unit}": _round(high, unit),
            f"midpoint_{unit}": _round((low + high) / 2, unit),
        }
    )
    if lines["future"].any():
        table["future"] = lines["future"]
    table.index = pd.Index(lines["line_no"], name="line_no")
    return table


def _to_ms(stamps: pd.Series) -> pd.Series:
    return cast(pd.Series, stamps.dt.floor("ms").astype("datetime64[ms, UTC]"))


def summary_table(report: LatencyReport) -> pd.DataFrame:
    """min, p50, p95, max and mean of the observed lines' latencies, each with its bounds.

    Each statistic is monotone in every line's latency, so computed over the
    lines' lower bounds it gives the statistic's lower bound, and over their
    upper bounds its upper bound. With no observed line there is nothing to
    summarise, and the table says so in words: one row, ``latency``, whose
    ``summary`` is :data:`NOTHING_OBSERVED`.
    """
    unit, factor = unit_for(report)
    observed = report.lines[report.lines["observed"]]
    if observed.empty:
        return pd.DataFrame({"summary": [NOTHING_OBSERVED]}, index=pd.Index(["latency"]))
    columns = {f"latency_{unit}": "latency", f"low_{unit}": "latency_low", f"high_{unit}": "latency_high"}
    rows = {}
    for stat in STATISTICS:
        rows[stat] = {
            name: (_statistic(observed[source], stat) * factor if len(observed) else np.nan)
            for name, source in columns.items()
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table = table.apply(lambda col: _round(col, unit))
    table.index.name = f"over {len(observed)} line{'s' if len(observed) != 1 else ''}"
    return table


def _statistic(values: pd.Series, stat: str) -> float:
    if stat == "mean":
        return float(values.mean())
    q = {"min": 0.0, "p50": 0.5, "p95": 0.95, "max": 1.0}[stat]
    return float(values.quantile(q))


def plot(report: LatencyReport, ax: Any = None, *, title: str | None = None, legend: bool = True) -> Any:
    """Draw each observed line's latency as its interval [low, high], with the midpoint marked.

    The bar is what is known: the true latency lies somewhere on it. The dot
    is the midpoint of the bar, a defined estimate, not a measurement.
    Returns the matplotlib ``Axes`` (a new figure's when ``ax`` is None).
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.2), layout="constrained")
    unit, factor = unit_for(report)
    rows = report.lines[report.lines["observed"]]
    low, high = rows["latency_low"] * factor, rows["latency_high"] * factor
    x = rows["line_no"]
    ax.vlines(x, low, high, color="tab:blue", linewidth=3, alpha=0.45, label="bounds: the true latency is on the bar")
    ax.plot(x, (low + high) / 2, "o", color="tab:blue", markersize=3.5, label="midpoint of the bounds")
    ax.set_xlabel("line number in the file")
    ax.set_ylabel(f"write-to-serve latency ({unit})")
    ax.set_ylim(bottom=0, top=max(float(high.max()) * 1.1, 1e-9) if len(rows) else 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title or f"{len(rows)} observed line{'s' if len(rows) != 1 else ''}, each with its bounds")
    if legend:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, frameon=False, fontsize="small")
    return ax


def checks_table(report: LatencyReport) -> pd.DataFrame:
    """The checks, one row each: status, name and the whole detail."""
    return report.checks_frame()[["status", "check", "detail"]]


def headline(report: LatencyReport) -> str:
    """One sentence: the verdict (or that the user stopped it), and how much was observed."""
    count = int(report.summary["count"])
    verdict = "stopped by you, a partial report" if report.interrupted else report.verdict
    return (
        f"{verdict}: {count} new line{'s' if count != 1 else ''} observed in {report.duration:.1f} s, "
        f"{report.polls} polls, {report.poll_errors} failed"
    )


def show(report: LatencyReport) -> None:
    """Display the whole report at once: verdict, chart, summary, checks and the lines.

    In a notebook each part is rich output with a readable plain-text form;
    elsewhere the text report is printed. A report the user stopped is
    marked so; where no line was observed the chart and the summary say so
    in words.
    """
    from labkit.display import in_notebook, show_figure

    if not in_notebook():
        print(report)
        return
    from IPython.display import display

    passed = report.passed
    colour = "#1a7f37" if passed else "#9a6700" if report.interrupted else "#cf222e"
    mark = "&#9989;" if passed else "&#9209;" if report.interrupted else "&#10060;"
    display(
        {
            "text/html": f'<p style="color:{colour}"><b>{mark} {html.escape(headline(report))}</b></p>',
            "text/plain": headline(report),
        },
        raw=True,
    )
    if report.summary["count"]:
        ax = plot(report)
        show_figure(ax.figure, f"chart: {ax.get_title()}, latency in {unit_for(report)[0]} against line number")
        _show_frame("The latency, in summary", summary_table(report))
    else:
        caption = "The latency, in summary"
        display(
            {
                "text/html": f"<p><b>{caption}</b></p><p>{html.escape(NOTHING_OBSERVED)}</p>",
                "text/plain": f"{caption}\n{NOTHING_OBSERVED}",
            },
            raw=True,
        )
    _show_frame("The checks", checks_table(report), text="\n".join(str(c) for c in report.checks), align="left")
    _show_frame("Every line the producer wrote", lines_table(report))
    notes = _notes(report)
    if notes:
        display({"text/plain": "\n".join(notes), "text/html": "<br>".join(html.escape(n) for n in notes)}, raw=True)


def _show_frame(
    caption: str, frame: pd.DataFrame, *, text: str | None = None, align: Literal["left", "right"] | None = None
) -> None:
    """A table under a caption, whole: never cut to a column width or a row count."""
    from IPython.display import display

    index = frame.index.name is not None
    if text is None:
        text = frame.to_string(index=index)
    table = frame.to_html(index=index, border=0, na_rep="", justify=align)
    if align is not None:
        table = table.replace("<td>", f'<td style="text-align: {align}">')
    display({"text/html": f"<p><b>{html.escape(caption)}</b></p>{table}", "text/plain": f"{caption}\n{text}"}, raw=True)


def _notes(report: LatencyReport) -> list[str]:
    notes = [f"clock: {report.clock.describe()}"]
    if report.resolution >= 1:
        notes.append(
            f"note: timestamps have {report.resolution:g} s resolution, so latencies below a second cannot be resolved"
        )
    notes += [f"note: {n}" for n in report.notes]
    return notes


def containers_table(states: Sequence[ContainerState]) -> pd.DataFrame:
    """One row per container, indexed by name: what it does now and what ended its run before."""
    columns = ["state", "reason", "restarts", "exit_code", "last_exit_code", "last_reason", "last_finished_at"]
    rows = [{c: getattr(s, c) for c in columns} for s in states]
    table = pd.DataFrame(rows, columns=columns, index=pd.Index([s.name for s in states], name="container"))
    for column in ("exit_code", "last_exit_code"):
        table[column] = table[column].astype("Int64")
    table["last_finished_at"] = pd.to_datetime(table["last_finished_at"], utc=True)
    return table
