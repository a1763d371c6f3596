"""Runs the scenarios of ``labkit verify`` one after another, saying what each found as it goes.

A scenario is a plain function of a :class:`Context` that returns an
:class:`~labkit.verify.findings.Outcome`. The runner turns each into a
:class:`~labkit.verify.findings.Finding`: an unexpected error of the kit
becomes *differs* with the error's first line, never the end of the run, and
Ctrl-C ends the run with the facts not yet checked marked so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from labkit.errors import LabkitError
from labkit.verify.findings import DIFFERS, INTERRUPTED, Finding, Outcome


@dataclass
class Context:
    """What a scenario gets: the engine to run its pods on, and ``say`` for progress while it waits."""

    engine: Any
    say: Callable[[str], None] = print


@dataclass(frozen=True)
class Scenario:
    """One fact of the register (its section ``slug`` and ``title``) and the function that checks it."""

    slug: str
    title: str
    check: Callable[[Context], Outcome]


@dataclass
class Run:
    """The findings in the order the scenarios were given, and whether Ctrl-C ended the run early."""

    findings: list[Finding] = field(default_factory=list)
    interrupted: bool = False


def progress_name(title: str) -> str:
    """A section title as a progress line words it: ``Exit code 127`` reads ``exit code 127``, ``subPath`` stays."""
    return title[:1].lower() + title[1:] if title[1:2].islower() or title[1:2] == " " else title


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def run(scenarios: Sequence[Scenario], context: Context, out: Callable[[str], None] = print) -> Run:
    """Check each scenario in turn; one progress line as each starts and one as it ends, through ``out``.

    A scenario that raises a :class:`~labkit.errors.LabkitError` (or any
    other error) is *differs* with the error's first line. Ctrl-C
    (:class:`KeyboardInterrupt`) stops the run: the scenario under way and
    those after it are *not checked: interrupted*; the scenario's own
    ``with Lab(...)`` has removed its pod by then.
    """
    result = Run()
    total = len(scenarios)
    for index, scenario in enumerate(scenarios, 1):
        head = f"[{index}/{total}] {progress_name(scenario.title)} ..."
        out(head)
        started = time.monotonic()
        try:
            outcome = scenario.check(context)
        except KeyboardInterrupt:
            result.interrupted = True
            rest = scenarios[index - 1 :]
            result.findings += [Finding(s.slug, s.title, INTERRUPTED, "Ctrl-C came before it was done") for s in rest]
            out(f"{head} {INTERRUPTED}")
            return result
        except LabkitError as exc:
            outcome = Outcome(DIFFERS, f"the check stopped: {_first_line(exc)}")
        except Exception as exc:  # a check's own failure is reported as such, and the other facts still run
            outcome = Outcome(DIFFERS, f"the check stopped ({type(exc).__name__}): {_first_line(exc)}")
        took = time.monotonic() - started
        finding = Finding(scenario.slug, scenario.title, outcome.status, outcome.seen, outcome.named, took)
        result.findings.append(finding)
        named = f"; a named difference of this engine, {finding.link}" if finding.named else ""
        out(f"{head} {finding.status} ({finding.seen}{named})")
    return result
