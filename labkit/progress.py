"""How far a student got through the tutorial's steps, recorded where the instructor can read it.

As a :class:`~labkit.lab.Lab` goes through the steps (applied, ready, an exec
in the default container and one in another, a fetch, a measurement with its
verdict, deleted) it records the time each was first reached and the last
report's summary. The engine keeps that record (``Engine.record``); for a
student of a class it is the ConfigMap ``labkit-progress`` in the student's
namespace, which ``labkit class status`` reads. It holds no credential, and a record
that cannot be written never stops the lab.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from labkit.errors import LabkitError

if TYPE_CHECKING:
    from labkit.engines import Engine
    from labkit.report import LatencyReport

PROGRESS_CONFIGMAP = "labkit-progress"
"""The name the record is kept under (a ConfigMap of that name in a student's namespace)."""

STEPS = ("applied", "ready", "exec-default", "exec-other", "fetched", "measured", "deleted")
"""The tutorial's steps in order (apply, wait, exec in each container, port-forward and fetch, measure, delete)."""


@dataclass
class Progress:
    """Each step reached (first time, RFC 3339), the pod, and the last measurement's summary."""

    pod: str = ""
    steps: dict[str, str] = field(default_factory=dict)
    report: dict[str, Any] | None = None

    def next_step(self) -> str | None:
        """The first step of the tutorial not reached yet (None: every step done)."""
        return next((s for s in STEPS if s not in self.steps), None)


def to_record(progress: Progress) -> dict[str, str]:
    """The record's string data, as a ConfigMap holds it."""
    data = {"pod": progress.pod, "steps": json.dumps(progress.steps, sort_keys=True)}
    if progress.report is not None:
        data["report"] = json.dumps(progress.report, sort_keys=True)
    return data


def from_record(data: Mapping[str, str] | None) -> Progress:
    """A record written by :func:`to_record`; anything unreadable in it counts as not recorded."""
    data = data or {}
    steps = _json(data.get("steps"))
    report = _json(data.get("report"))
    return Progress(
        pod=str(data.get("pod") or ""),
        steps={str(k): str(v) for k, v in steps.items() if k in STEPS} if isinstance(steps, dict) else {},
        report=report if isinstance(report, dict) else None,
    )


def report_summary(report: LatencyReport) -> dict[str, Any]:
    """What the instructor sees of a measurement: verdict, line count, p50 with its bounds (s), each check's status."""
    summary = report.summary

    def seconds(key: str) -> float | None:
        value = summary.get(key) if summary is not None else None
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), 6)

    return {
        "verdict": "passed" if report.passed else ("interrupted" if report.interrupted else "failed"),
        "lines": len(report.lines),
        "p50": seconds("p50"),
        "p50_low": seconds("p50_low"),
        "p50_high": seconds("p50_high"),
        "checks": {c.name: c.status for c in report.checks},
    }


def merged(earlier: Progress, now: Progress) -> Progress:
    """A student's progress over all their labs: each step at the time it was first reached, the newest report.

    A student runs many labs (each notebook, every re-run kernel); a new one
    must not set back what an earlier one reached.
    """
    steps = dict(earlier.steps)
    for step, at in now.steps.items():
        steps[step] = min(at, steps.get(step, at))
    return Progress(pod=now.pod or earlier.pod, steps=steps, report=now.report or earlier.report)


class Recorder:
    """Records a lab's steps through its engine, once per new step, and warns once if it cannot.

    The first write merges with what the engine already keeps for the
    student (an earlier lab's steps and report), so the record only grows.
    """

    def __init__(self, engine: Engine, pod: str) -> None:
        self.engine = engine
        self.progress = Progress(pod=pod)
        self._earlier: Progress | None = None
        self._warned = False

    def step(self, name: str, report: LatencyReport | None = None) -> None:
        if name not in STEPS:
            raise ValueError(f"unknown step {name!r}; the steps are {', '.join(STEPS)}")
        first = name not in self.progress.steps
        if first:
            self.progress.steps[name] = _stamp(datetime.now(UTC))
        if report is not None:
            self.progress.report = report_summary(report)
        if first or report is not None:
            self._save()

    def _save(self) -> None:
        try:
            if self._earlier is None:
                self._earlier = from_record(self.engine.read_record(PROGRESS_CONFIGMAP))
            self.engine.record(PROGRESS_CONFIGMAP, to_record(merged(self._earlier, self.progress)))
        except LabkitError as exc:
            if not self._warned:
                self._warned = True
                warnings.warn(
                    f"the lab's progress could not be recorded for the instructor ({exc}); the lab itself goes on",
                    stacklevel=3,
                )


def _json(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _stamp(moment: datetime) -> str:
    """RFC 3339 in UTC to the millisecond, so steps a moment apart keep their order."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
