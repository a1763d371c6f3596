"""A sweep: the same measurement over a grid of settings, one tidy table of every line of every run.

Each run is one pod of its own, applied, measured and deleted before the
next starts, so a failed run leaves nothing behind and the runs cannot
disturb each other. A sweep the user stops (Ctrl-C, the notebook's stop
button) removes the pod of the run under way and raises
:class:`~labkit.errors.Stopped` with the runs done so far.
"""

from __future__ import annotations

import contextlib
import html
import itertools
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import pandas as pd

from labkit.display import in_notebook
from labkit.engines import Engine
from labkit.errors import Stopped
from labkit.lab import Lab
from labkit.layout import derive_layout, interval_variable
from labkit.manifest import Pod, load_pod
from labkit.report import LatencyReport

__all__ = ["GRID_KEYS", "sweep"]

GRID_KEYS = ("interval", "poll_interval")
"""The keys a grid may vary, the producer's cadence and the observer's poll interval (both in seconds)."""


def sweep(
    manifest: str | os.PathLike[str] | Pod,
    grid: Mapping[str, Sequence[float]],
    *,
    lines: int = 20,
    engine: str | Engine | None = None,
    via: Literal["port-forward", "in-pod"] = "port-forward",
    timeout: float | None = None,
    progress: bool = True,
    lab_options: Mapping[str, Any] | None = None,
    on_run: Callable[[dict[str, float], LatencyReport], None] | None = None,
) -> pd.DataFrame:
    """Measure ``lines`` new lines for every combination of ``grid``; one row per measured line of every run.

    ``grid`` maps ``"interval"`` (the producer's cadence, set through the
    variable its ``sleep "$VAR"`` reads) and ``"poll_interval"`` to the
    values to try, e.g. ``{"interval": [0.05, 0.2], "poll_interval": [0.001,
    0.005]}``. The table has the columns of
    ``lines`` of :class:`~labkit.report.LatencyReport`, then ``run`` (0, 1, ...),
    one column per grid key with that run's value, ``passed`` (the run's
    verdict) and ``via``. ``table.attrs["runs"]`` has one row per run: its
    parameters, its report's summary (``p50`` with ``p50_low`` and
    ``p50_high``, ...) and its verdict. ``lab_options`` go to each run's :class:`~labkit.Lab`
    (``producer=``, ``file=``, ...). ``on_run(params, report)`` hears of each
    run as it ends. A run that fails raises, after its pod is removed.

    Ctrl-C (or the notebook's stop button) stops the sweep: the pod of the
    run under way is removed, the runs done so far are shown (in a notebook,
    as a table with one row per run) and :class:`~labkit.errors.Stopped` is
    raised, whose ``table`` is the table of those runs (with
    ``attrs["runs"]``) and whose ``report`` is the stopped run's partial
    report when it was measuring.
    """
    pod = manifest if isinstance(manifest, Pod) else load_pod(manifest)
    unknown = sorted(set(grid) - set(GRID_KEYS))
    if unknown:
        raise ValueError(f"a sweep varies {', '.join(GRID_KEYS)}; not {', '.join(unknown)}")
    if not grid or any(len(values) == 0 for values in grid.values()):
        raise ValueError("give each grid key at least one value, e.g. {'poll_interval': [0.005, 0.05]}")
    for key, values in grid.items():
        if isinstance(values, str) or not all(isinstance(v, int | float) and v > 0 for v in values):
            raise ValueError(f"{key} takes positive numbers of seconds, not {values!r}")
    chosen = {k: v for k, v in (lab_options or {}).items() if k in ("producer", "server", "file")}
    producer = derive_layout(pod, **chosen).producer
    variable = interval_variable(pod, producer)
    if "interval" in grid and variable is None:
        raise ValueError(
            f"the producer {producer!r} of {pod.name!r} sleeps no variable, so its interval cannot be swept; "
            'use a manifest whose producer runs sleep "$INTERVAL" (manifests/multicontainer-pod-hires.yaml)'
        )
    keys = list(grid)
    combinations = list(itertools.product(*(grid[k] for k in keys)))
    frames: list[pd.DataFrame] = []
    runs: list[dict[str, Any]] = []
    for run, values in enumerate(combinations):
        params = dict(zip(keys, values, strict=True))
        env = {producer: {variable: str(params["interval"])}} if "interval" in params and variable else None
        options = {"name": f"{pod.name}-sweep", **(lab_options or {})}
        lab: Lab | None = None
        try:
            with Lab(pod, engine=engine, env=env, progress=progress, **options) as lab:
                lab.apply().wait_ready(timeout=120)
                report = lab.measure(
                    lines=lines, poll_interval=params.get("poll_interval", 0.2), via=via, timeout=timeout
                )
            frames.append(_run_frame(report, run, params, via))
            summary = {str(k): v for k, v in report.summary.items()}
            runs.append({"run": run, **params, **summary, "passed": report.passed})
            if on_run is not None:
                on_run(params, report)
        except KeyboardInterrupt as stop:
            if lab is not None:
                # A stop that landed while the pod was being removed left it: remove it now.
                with contextlib.suppress(Exception):
                    lab.delete()
            raise _stopped(keys, frames, runs, run, len(combinations), stop) from None
    return _table(keys, frames, runs)


def _table(keys: Sequence[str], frames: list[pd.DataFrame], runs: list[dict[str, Any]]) -> pd.DataFrame:
    """The sweep's tidy table of the runs done, with one row per run in ``attrs["runs"]``."""
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["run", *keys, "passed", "via"])
    table.attrs["runs"] = pd.DataFrame(runs, columns=None if runs else ["run", *keys, "passed"]).set_index("run")
    return table


def _stopped(
    keys: Sequence[str],
    frames: list[pd.DataFrame],
    runs: list[dict[str, Any]],
    run: int,
    total: int,
    stop: KeyboardInterrupt,
) -> Stopped:
    """The stop of a sweep during run ``run`` (from 0) of ``total``: the runs done shown, and kept in the error."""
    table = _table(keys, frames, runs)
    done = len(runs)
    finished = "no run was done" if not done else "run 1 done" if done == 1 else f"runs 1..{done} done"
    where = f"during run {run + 1} of {total}; {finished}"
    if done > run:  # stopped once the run was done, while on_run heard of it
        where = f"after run {done} of {total}"
    shown = in_notebook()
    if shown:
        _show_runs(table.attrs["runs"], keys, done, total)
    kept = "the runs done are shown above; " if shown and done else ""
    kept += "the partial table is this error's .table (sys.last_value.table in the next cell)"
    return Stopped("the sweep", where, report=getattr(stop, "report", None), table=table, kept=kept)


def _show_runs(runs: pd.DataFrame, keys: Sequence[str], done: int, total: int) -> None:
    """In a notebook: the runs done before the stop, one row each, p50 and its bounds in ms."""
    from IPython.display import display

    caption = f"The runs done before you stopped the sweep: {done} of {total}"
    if not done:
        text = f"{caption}; the first run was stopped, so there is nothing to show"
        display({"text/plain": text, "text/html": f"<p><b>{html.escape(text)}</b></p>"}, raw=True)
        return
    ms = {f"{c}_ms": (runs[c] * 1000).round(2) for c in ("p50", "p50_low", "p50_high")}
    frame = runs[[*keys, "count"]].assign(**ms, passed=runs["passed"])
    frame["count"] = frame["count"].astype(int)
    display(
        {
            "text/plain": f"{caption}\n{frame.to_string()}",
            "text/html": f"<p><b>{html.escape(caption)}</b></p>{frame.to_html(border=0, na_rep='')}",
        },
        raw=True,
    )


def _run_frame(report: LatencyReport, run: int, params: Mapping[str, Any], via: str) -> pd.DataFrame:
    measured = report.lines["latency"].notna()  # lines there before the run started have no latency
    frame = report.lines[measured].reset_index(drop=False)
    frame["run"] = run
    for key, value in params.items():
        frame[key] = value
    frame["passed"] = report.passed
    frame["via"] = via
    return frame
