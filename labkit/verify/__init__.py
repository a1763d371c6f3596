"""``labkit verify``: an instructor checks the facts of ``docs/facts.md`` on their own cluster, or the local engine.

:func:`verify` chooses the engine as ``labkit run`` does (``--engine``,
else ``$LABKIT_ENGINE``, else a cluster that answers, else Podman), picks the
namespace (the kubeconfig's current one, or a temporary one), runs the
scenarios of :mod:`labkit.verify.scenarios` with :func:`labkit.verify.runner.run`,
prints the findings as a table and writes the report. The findings, the
exit code and the renderings are in :mod:`labkit.verify.findings`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from labkit.engines import get_engine
from labkit.errors import LabkitError
from labkit.verify import findings
from labkit.verify.runner import Context, run
from labkit.verify.scenarios import SCENARIOS, manifests_dir, select

TEMPORARY_PREFIX = "labkit-verify-"


def verify(
    engine: str | None = None,
    *,
    only: Sequence[str] | None = None,
    report: str | os.PathLike[str] | None = None,
    temporary_namespace: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Check the facts on an engine; print progress and the table to ``out``; the exit code.

    ``only`` names facts by their section slug in ``docs/facts.md``
    (``exit-code-127``, ...); ``report`` is a ``.md`` or ``.html`` file to
    write the table to. Exit codes: 0 no fact differs except as a named
    difference of the engine; 1 a fact differs; 2 nothing could run (bad
    arguments, no engine, a cluster that cannot be reached); 130
    interrupted, after the partial table.
    """
    out = out or sys.stdout
    err = err or sys.stderr

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    def fail(text: str) -> int:
        print(f"labkit: error: {text}", file=err, flush=True)
        return 2

    try:
        fmt = findings.report_format(report) if report is not None else None
        scenarios = select(list(only) if only else None)
        manifests_dir()
    except (ValueError, LabkitError) as exc:
        return fail(str(exc))
    try:
        chosen = get_engine(engine)
    except LabkitError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        print("labkit: interrupted before any fact was checked", file=err, flush=True)
        return 130
    result = None
    where = ""
    try:
        with _namespace(chosen, temporary_namespace, say) as (used, where):
            description = used.describe() + (f", {where}" if where else "")
            say(f"labkit verify: {len(scenarios)} fact(s) on {description}")
            result = run(scenarios, Context(used, say=lambda text: say(f"       {text}")), out=say)
    except LabkitError as exc:  # the temporary namespace could not be made
        return fail(str(exc))
    except KeyboardInterrupt:  # while the temporary namespace was being removed: the findings stand
        pass
    if result is None:
        print("labkit: interrupted before any fact was checked", file=err, flush=True)
        return 130
    say("")
    say(findings.render_text(result.findings, result.interrupted))
    if report is not None and fmt is not None:
        when = datetime.now(UTC)
        text = findings.render_report(fmt, result.findings, description, when, result.interrupted)
        try:
            Path(report).write_text(text, encoding="utf-8")
        except OSError as exc:
            return fail(f"cannot write the report to {report}: {exc.strerror or exc}")
        say(f"report written to {report}")
    if result.interrupted:
        print("labkit: interrupted; the table above is partial and what the checks made was removed", file=err)
    return findings.exit_code(result.findings, result.interrupted)


@contextlib.contextmanager
def _namespace(engine: Any, temporary: bool, say: Callable[[str], None]) -> Iterator[tuple[Any, str]]:
    """The engine to check with and a phrase saying in which namespace; a temporary one is deleted at the end."""
    if not hasattr(engine, "namespace"):
        if temporary:
            say(f"note: the {engine.name} engine has no namespaces; --temporary-namespace changes nothing")
        yield engine, ""
        return
    current = engine.namespace
    origin = "from LABKIT_NAMESPACE" if os.environ.get("LABKIT_NAMESPACE") else "the current one"
    if not temporary:
        yield engine, f"in namespace {current} ({origin})"
        return
    name = TEMPORARY_PREFIX + secrets.token_hex(3)
    if not engine.create_namespace(name):
        yield engine, f"in namespace {current} ({origin}: these credentials may not create a temporary namespace)"
        return
    try:
        in_it = get_engine("kubernetes", namespace=name)
        yield in_it, f"in namespace {name} (temporary, deleted at the end)"
    finally:
        engine.delete_namespace(name)
        say(f"namespace {name} deleted")


__all__ = ["SCENARIOS", "verify"]
