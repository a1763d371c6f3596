"""Write-to-serve latency: when did each line the producer wrote first come back over HTTP?

A measurement has two halves. An observer watches the served file and
returns an :class:`~labkit.observation.Observation`: the port-forward poller
(:func:`labkit.poller.observe`) or the in-pod probe
(:func:`labkit.probe.observe`). The report (:func:`labkit.report.build_report`)
joins that with what the producer wrote and runs the checks, without side
effects. This module holds what runs them: :func:`measure`, and the wait
loop both observers share (:func:`wait_for_end`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from labkit.checks import Ending
from labkit.clocks import ClockOffset, shared_clock
from labkit.errors import PodGone
from labkit.observation import Observation
from labkit.report import LatencyReport, Lifecycle, build_report
from labkit.settings import MeasureSettings

__all__ = ["LatencyReport", "measure", "wait_for", "wait_for_end"]

_STOPPED_BY_USER = "observation was stopped by the user (Ctrl-C); what was seen until then is reported"


def measure(
    observe: Callable[[], Observation],
    settings: MeasureSettings,
    *,
    clock: ClockOffset | None = None,
    lifecycle: Callable[[], Lifecycle] | None = None,
    engine_description: str = "",
    lab_description: str = "",
) -> LatencyReport:
    """Run an observer, look at what became of the containers, and report.

    ``observe()`` watches the served file as ``settings`` ask (the caller
    binds it to them). ``clock`` is the offset of the clock that stamps the
    answers from the pod's (none by default). ``lifecycle()`` says what
    became of the containers once observation ended; Ctrl-C while it reads
    them marks the report as interrupted.
    """
    observation = observe()
    after: Lifecycle | None = None
    if lifecycle is not None:
        try:
            after = lifecycle()
        except KeyboardInterrupt:
            observation = replace(observation, ended="interrupted")
    return build_report(
        observation,
        settings,
        clock=clock or shared_clock("no clock offset was given"),
        lifecycle=after,
        engine_description=engine_description,
        lab_description=lab_description,
    )


def wait_for_end(
    settings: MeasureSettings,
    seen: Callable[[], int],
    failed: Callable[[], int],
    tick: Callable[[int, int], None] | None,
    notes: list[str],
    *,
    reached: Callable[[], bool] | None = None,
    every: float = 0.05,
) -> Ending:
    """Wait while an observer works, and say how observation ended.

    ``done`` when ``settings.duration`` passed or ``settings.lines`` new
    lines were seen (or ``reached()`` says so), ``time limit`` when
    ``settings.time_limit`` ended it first, ``interrupted`` on Ctrl-C and
    ``pod gone`` when ``tick(seen(), failed())`` raised
    :class:`~labkit.errors.PodGone`; a note, added to ``notes``, says why
    observation ended early.
    """
    lines = settings.lines

    def call_tick() -> None:
        if tick is not None:
            tick(seen(), failed())

    done = reached or (lambda: lines is not None and seen() >= lines)
    try:
        late = wait_for(settings.duration, lines, settings.time_limit, done, every=every, tick=call_tick)
    except KeyboardInterrupt:
        notes.append(_STOPPED_BY_USER)
        return "interrupted"
    except PodGone as exc:
        notes.append(f"observation ended early: {exc}")
        return "pod gone"
    try:
        call_tick()  # the last look, so progress shows the end and a pod gone meanwhile is seen
    except PodGone as exc:
        notes.append(f"observation ended: {exc}")
        return "pod gone"
    except KeyboardInterrupt:
        notes.append(_STOPPED_BY_USER)
        return "interrupted"
    if late:
        notes.append(late)
        return "time limit"
    return "done"


def wait_for(
    duration: float | None,
    lines: int | None,
    timeout: float,
    reached: Callable[[], bool],
    every: float = 0.05,
    tick: Callable[[], None] | None = None,
) -> str | None:
    """Wait until ``duration`` has passed or ``reached()`` is true, at most ``timeout`` seconds.

    Returns None, or a note saying the time limit ended the wait first.
    ``tick()`` is called on every round (to show progress, or to raise and end the wait).
    """
    started = time.monotonic()
    while True:
        if tick is not None:
            tick()
        elapsed = time.monotonic() - started
        if duration is not None and elapsed >= duration:
            return None
        if reached():
            return None
        if elapsed >= timeout:
            wanted = f"{lines} new lines were served" if lines is not None else f"{duration:g} s had passed"
            return f"stopped after {timeout:g} s, before {wanted}"
        time.sleep(every)
