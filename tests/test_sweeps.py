"""labkit.sweep: its grid checked before anything runs, one tidy table of every line, no pod left behind."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import labkit
from labkit import lifecycle
from labkit.engines.fake import FakeEngine, Script

HIRES = Path(__file__).resolve().parent.parent / "manifests" / "multicontainer-pod-hires.yaml"


def _sweep_pod_exists(engine: FakeEngine, manifest: Path) -> bool:
    pod = labkit.load_pod(manifest)
    return lifecycle.exists(engine, pod.renamed(f"{pod.name}-sweep"))


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({"cadence": [1]}, "a sweep varies interval, poll_interval; not cadence"),
        ({}, "at least one value"),
        ({"poll_interval": []}, "at least one value"),
        ({"poll_interval": [0.1, 0]}, "positive numbers of seconds"),
        ({"poll_interval": "0.1"}, "positive numbers of seconds"),
    ],
)
def test_a_grid_is_checked_before_anything_runs(seed, grid, message):
    engine = FakeEngine(Script(interval=0.05))
    with pytest.raises(ValueError, match=message):
        labkit.sweep(seed, grid, engine=engine, progress=False)
    assert not _sweep_pod_exists(engine, seed)


def test_the_interval_can_be_swept_only_where_the_producer_sleeps_a_variable(seed):
    with pytest.raises(ValueError, match=r"sleeps no variable.*multicontainer-pod-hires.yaml"):
        labkit.sweep(seed, {"interval": [0.1]}, engine=FakeEngine(), progress=False)


def test_a_sweep_is_one_row_per_line_of_every_run_with_its_parameters(seed):
    engine = FakeEngine(Script(interval=0.05))
    heard: list[dict[str, float]] = []
    table = labkit.sweep(
        seed, {"poll_interval": [0.02, 0.05]}, lines=3, engine=engine, progress=False,
        lab_options={"interval": 0.05}, on_run=lambda params, report: heard.append(params),
    )  # fmt: skip
    assert heard == [{"poll_interval": 0.02}, {"poll_interval": 0.05}]
    assert isinstance(table, pd.DataFrame) and table["run"].tolist().count(0) >= 3
    assert sorted(set(table["run"])) == [0, 1]
    assert table.groupby("run")["poll_interval"].unique().map(list).tolist() == [[0.02], [0.05]]
    assert {"latency", "latency_low", "latency_high", "written_at", "passed", "via"} <= set(table.columns)
    assert table["passed"].all() and (table["via"] == "port-forward").all()
    assert table["latency"].notna().all()  # only the lines each run measured
    runs = table.attrs["runs"]
    assert runs.index.tolist() == [0, 1] and runs["poll_interval"].tolist() == [0.02, 0.05]
    assert (runs["p50_low"] <= runs["p50"]).all() and (runs["p50"] <= runs["p50_high"]).all()
    assert runs["passed"].all() and (runs["count"] >= 3).all()
    assert not _sweep_pod_exists(engine, seed)  # each run's pod went with it


def test_a_run_that_fails_raises_and_leaves_no_pod(seed):
    engine = FakeEngine(Script(interval=0.05, crash_at_start={"producer": 3}))
    with pytest.raises(labkit.ContainerCrashed, match="exit code 3"):
        labkit.sweep(seed, {"poll_interval": [0.05]}, lines=2, engine=engine, progress=False)
    assert not _sweep_pod_exists(engine, seed)
