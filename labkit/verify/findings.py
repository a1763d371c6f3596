"""What ``labkit verify`` found, fact by fact: the findings, the exit code they give, and their renderings.

Pure: plain data in, text out. The scenarios that produce the findings are
in :mod:`labkit.verify.scenarios`, the runner that calls them in
:mod:`labkit.verify.runner`.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

HELD = "held"
DIFFERS = "differs"
NOT_CHECKABLE = "not checkable here"
INTERRUPTED = "not checked: interrupted"
STATUSES = (HELD, DIFFERS, NOT_CHECKABLE, INTERRUPTED)

FACTS_PAGE = "docs/facts.md"
REPORT_SUFFIXES = (".md", ".html")


@dataclass(frozen=True)
class Outcome:
    """What one scenario saw: a status, one line with the figures, and whether it is a named difference.

    ``named`` marks a fact that differs on this engine as the facts register
    says it does (Podman has no ``CrashLoopBackOff`` and no eviction): it is
    reported as *differs* and does not fail the run.
    """

    status: str
    seen: str
    named: bool = False

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {self.status!r}")
        if self.named and self.status != DIFFERS:
            raise ValueError("only a fact that differs can be a named difference of the engine")


@dataclass(frozen=True)
class Finding:
    """One fact of the register (its section ``slug`` and ``title``), what was found, and how long it took."""

    slug: str
    title: str
    status: str
    seen: str
    named: bool = False
    seconds: float | None = None

    @property
    def link(self) -> str:
        """The fact's section in the register, e.g. ``docs/facts.md#exit-code-127``."""
        return f"{FACTS_PAGE}#{self.slug}"

    @property
    def status_label(self) -> str:
        """The status as the table shows it; a named difference says so."""
        return f"{self.status} (named)" if self.named else self.status


def exit_code(findings: Sequence[Finding], interrupted: bool = False) -> int:
    """130 when interrupted; 1 when a fact differs other than as a named difference of the engine; else 0."""
    if interrupted:
        return 130
    return 1 if any(f.status == DIFFERS and not f.named for f in findings) else 0


def summary(findings: Sequence[Finding]) -> str:
    """One line counting the findings by status, e.g. ``9 held, 1 differs (a named difference)``."""
    parts = []
    for status in STATUSES:
        same = [f for f in findings if f.status == status]
        if not same:
            continue
        named = sum(f.named for f in same)
        note = ""
        if named:
            note = " (a named difference)" if named == len(same) == 1 else f" ({named} named differences)"
        parts.append(f"{len(same)} {status}{note}")
    return ", ".join(parts) or "no facts checked"


def verdict(findings: Sequence[Finding], interrupted: bool = False) -> str:
    """What the run means, in one line, matching :func:`exit_code`."""
    if interrupted:
        return "interrupted: the facts not checked are marked so"
    if exit_code(findings):
        return "some facts differ on this engine: see what was seen, and the register's section of each"
    if any(f.named for f in findings):
        return "every fact held, or differs only as the register names for this engine"
    return "every fact checked held"


def report_format(path: str | os.PathLike[str]) -> str:
    """``"md"`` or ``"html"`` from a report's file name; ValueError naming the suffixes for anything else."""
    suffix = Path(path).suffix.lower()
    if suffix not in REPORT_SUFFIXES:
        raise ValueError(
            f"cannot write a report to {str(path)!r}: its name must end in .md (Markdown) or .html, "
            f"not {suffix or 'nothing'!r}"
        )
    return suffix[1:]


def _seconds(f: Finding) -> str:
    return "" if f.seconds is None else f"{f.seconds:.0f} s"


def render_text(findings: Sequence[Finding], interrupted: bool = False) -> str:
    """The findings as a plain-text table, with the summary and verdict under it."""
    rows = [("FACT", "STATUS", "TOOK", "WHAT WAS SEEN")]
    rows += [(f.slug, f.status_label, _seconds(f), f.seen) for f in findings]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r[:3], widths, strict=True)) + "  " + r[3] for r in rows]
    lines = [line.rstrip() for line in lines]
    lines.append("")
    if any(f.named for f in findings):
        lines.append(f"(named): a difference of this engine that {FACTS_PAGE} names; it does not fail the run")
    lines.append(f"result: {summary(findings)}: {verdict(findings, interrupted)}")
    return "\n".join(lines)


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def render_markdown(findings: Sequence[Finding], engine: str, when: datetime, interrupted: bool = False) -> str:
    """The findings as a Markdown document: the engine and the date at the top, then the table."""
    lines = [
        "# labkit verify",
        "",
        f"- engine: {_md_cell(engine)}",
        f"- date: {when.isoformat(timespec='seconds')}",
        f"- result: {summary(findings)}: {verdict(findings, interrupted)}",
        "",
        "| fact | status | took | what was seen |",
        "|---|---|---|---|",
    ]
    for f in findings:
        fact = f"[{_md_cell(f.title)}]({f.link}) (`{f.slug}`)"
        lines.append(f"| {fact} | {_md_cell(f.status_label)} | {_seconds(f)} | {_md_cell(f.seen)} |")
    if any(f.named for f in findings):
        lines += ["", f"*(named)*: a difference of this engine that {FACTS_PAGE} names; it does not fail the run."]
    return "\n".join(lines) + "\n"


def render_html(findings: Sequence[Finding], engine: str, when: datetime, interrupted: bool = False) -> str:
    """The findings as a small HTML page, every text escaped: the engine and the date at the top, then the table."""
    e = html.escape
    rows = "\n".join(
        f'<tr class="{e(f.status.split(":")[0].replace(" ", "-"))}"><td><a href="{e(f.link)}">{e(f.title)}</a> '
        f"(<code>{e(f.slug)}</code>)</td><td>{e(f.status_label)}</td><td>{e(_seconds(f))}</td><td>{e(f.seen)}</td></tr>"
        for f in findings
    )
    note = (
        f"<p><em>(named)</em>: a difference of this engine that {e(FACTS_PAGE)} names; it does not fail the run.</p>\n"
        if any(f.named for f in findings)
        else ""
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"><title>labkit verify</title></head>\n<body>\n'
        "<h1>labkit verify</h1>\n"
        f"<p>engine: {e(engine)}<br>date: {e(when.isoformat(timespec='seconds'))}<br>"
        f"result: {e(summary(findings))}: {e(verdict(findings, interrupted))}</p>\n"
        "<table>\n<thead><tr><th>fact</th><th>status</th><th>took</th><th>what was seen</th></tr></thead>\n"
        f"<tbody>\n{rows}\n</tbody>\n</table>\n{note}</body>\n</html>\n"
    )


def render_report(fmt: str, findings: Sequence[Finding], engine: str, when: datetime, interrupted: bool = False) -> str:
    """The report in ``fmt`` (``"md"`` or ``"html"``, as :func:`report_format` gives it)."""
    render = {"md": render_markdown, "html": render_html}[fmt]
    return render(findings, engine, when, interrupted)
