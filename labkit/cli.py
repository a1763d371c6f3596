"""``labkit run MANIFEST``: the whole lab from a terminal, with a report and an exit code.

(``labkit verify`` checks the facts the notebooks rely on, see :mod:`labkit.verify`;
``labkit class`` sets up a class, see :mod:`labkit.class_cluster`.)

Exit codes: 0 every check passed; 1 a check failed or could not be decided;
2 the lab could not run (bad manifest, engine missing, pod did not start,
pod gone while measured: the partial report is printed first); 130
interrupted (during the measurement, the partial report is printed). The
pod is removed in every case.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import yaml

from labkit import classroom
from labkit.errors import LabkitError, PodGone, Stopped
from labkit.lab import Lab
from labkit.report import LatencyReport


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="labkit", description="Run the sidecar lab and check its claims.")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run",
        help="apply the pod, measure write-to-serve latency, print the report, clean up",
        description="Apply the pod, observe the served file, print the latency report and checks, delete the pod.",
    )
    run.add_argument("manifest", help="Pod YAML file, e.g. manifests/multicontainer-pod.yaml")
    how_long = run.add_mutually_exclusive_group()
    how_long.add_argument("--duration", type=_positive, help="seconds to observe (default 40)")
    how_long.add_argument("--lines", type=_count, help="observe until this many new lines were served")
    run.add_argument("--poll", type=_positive, default=0.2, help="seconds between polls (default 0.2)")
    run.add_argument(
        "--timeout",
        type=_positive,
        help="with --lines, stop waiting after this many seconds (default: one interval per line, plus 30 s)",
    )
    run.add_argument("--max-latency", type=_positive, help="latency bound in seconds (default: derived)")
    run.add_argument("--name", help="run the pod under this name instead of the manifest's")
    run.add_argument(
        "--engine", help="podman or kubernetes (default: $LABKIT_ENGINE, else a reachable cluster, else podman)"
    )
    run.add_argument("--ready-timeout", type=_positive, default=120, help="seconds to wait for the pod (default 120)")
    for role in ("producer", "server", "file"):
        run.add_argument(f"--{role}", help=f"name the {role} where the manifest is ambiguous")
    run.add_argument("--port", type=int, help="the serving container's port, if it has several")
    run.add_argument("--url-path", help="the file's URL path, if the server's mount is not its web root")
    run.add_argument(
        "--interval", type=_positive, help="the producer's write interval in seconds, if not in its command"
    )
    run.add_argument(
        "--via",
        choices=("port-forward", "in-pod"),
        default="port-forward",
        help="fetch through a port-forward from this machine (default), or with curl inside the serving "
        "container, on the pod's own clock",
    )
    run.add_argument("--csv", help="also write the per-line table to this CSV file")
    _class_parser(sub)
    _verify_parser(sub)
    return p


def _verify_parser(sub: Any) -> None:
    check = sub.add_parser(
        "verify",
        help="check the facts the notebooks rely on (docs/facts.md) on this engine, before a class",
        description="Run a small scenario per fact of docs/facts.md on the chosen engine and print, per fact, "
        "whether it held, differs, or cannot be checked here. Exit codes: 0 nothing differs (but for a named "
        "difference of the engine), 1 a fact differs, 2 it could not run, 130 interrupted.",
    )
    check.add_argument(
        "--engine", help="podman or kubernetes (default: $LABKIT_ENGINE, else a reachable cluster, else podman)"
    )
    check.add_argument("--report", metavar="FILE", help="also write the table to FILE.md (Markdown) or FILE.html")
    check.add_argument(
        "--only", nargs="+", metavar="FACT", help="check only these facts (section slugs, e.g. exit-code-127)"
    )
    check.add_argument(
        "--temporary-namespace",
        action="store_true",
        help="on a cluster, work in a new namespace labkit-verify-... and delete it at the end "
        "(default: the kubeconfig context's current namespace)",
    )


def _class_parser(sub: Any) -> None:
    lesson = sub.add_parser(
        "class",
        help="an instructor's class on one cluster: create, status, delete (with an administrator's kubeconfig)",
        description="Give each student a namespace, an account with only what the lab needs, and a kubeconfig; "
        "see who is where; remove it all after the class.",
    )
    actions = lesson.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create the students' namespaces, accounts and kubeconfigs")
    create.add_argument("students", nargs="+", help="the number of students (e.g. 40), or their names")
    create.add_argument("--out", default="kubeconfigs", help="directory for the kubeconfigs (default kubeconfigs/)")
    create.add_argument("--hours", type=_positive, default=12, help="how long each token lasts (default 12)")
    create.add_argument("--renew", action="store_true", help="issue new tokens even where the old ones still last")
    delete = actions.add_parser("delete", help="delete the students' namespaces (and everything in them)")
    delete.add_argument("students", nargs="*", help="the number of students, or their names (default: the whole class)")
    delete.add_argument(
        "--out", default="kubeconfigs", help="directory of the kubeconfigs to remove (default kubeconfigs/)"
    )
    status = actions.add_parser(
        "status", help="one row per student: steps done, next step, pods, restarts, verdict, p50; then their tokens"
    )
    status.add_argument(
        "--out",
        default="kubeconfigs",
        help="directory of the kubeconfigs, to tell when tokens expire (default kubeconfigs/)",
    )
    render = actions.add_parser("render", help="print one student's objects as YAML, to read or apply by hand")
    render.add_argument("student", help="the student's name, e.g. student-07")
    for action in (create, delete):
        action.add_argument("--prefix", default="student", help="names for a number of students (default student)")
    for action in (create, delete, actions.choices["status"]):
        action.add_argument("--kubeconfig", help="the administrator's kubeconfig (default: $KUBECONFIG)")
        action.add_argument("--context", help="the kubeconfig context to use (default: its current one)")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than zero")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "class":
        return _class(args)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)
    if args.command == "verify":
        from labkit.verify import verify

        return verify(args.engine, only=args.only, report=args.report, temporary_namespace=args.temporary_namespace)
    duration = args.duration if args.duration is not None or args.lines is not None else 40.0
    try:
        lab = Lab(
            args.manifest,
            engine=args.engine,
            name=args.name,
            producer=args.producer,
            server=args.server,
            file=args.file,
            port=args.port,
            interval=args.interval,
            url_path=args.url_path,
        )
        print(f"pod:     {lab.name}: {lab.layout.describe()}", flush=True)
        with lab:
            lab.apply()
            lab.wait_ready(timeout=args.ready_timeout)
            what = f"{duration:g} s" if args.lines is None else f"{args.lines} new lines"
            print(f"observing for {what}, polling every {args.poll:g} s via {args.via} ...", flush=True)
            report = lab.measure(
                duration=duration if args.lines is None else None,
                lines=args.lines,
                poll_interval=args.poll,
                max_latency=args.max_latency,
                via=args.via,
                timeout=args.timeout,
            )
    except PodGone as exc:
        if isinstance(exc.report, LatencyReport):
            _show(exc.report, None)
        print(f"labkit: error: {exc}", file=sys.stderr)
        return 2
    except LabkitError as exc:
        print(f"labkit: error: {exc}", file=sys.stderr)
        return 2
    except Stopped as exc:  # Ctrl-C during one of the lab's waits: the measurement's partial report, if it had one
        if exc.report is None:
            print("labkit: interrupted; the pod was removed", file=sys.stderr)
            return 130
        if not _show(exc.report, args.csv):
            return 2
        print("labkit: interrupted; the report above is partial and the pod was removed", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("labkit: interrupted; the pod was removed", file=sys.stderr)
        return 130
    if not _show(report, args.csv):
        return 2
    return 0 if report.passed else 1


def _show(report: LatencyReport, csv: str | None) -> bool:
    """Print the per-line table and the report, and write the CSV; False when the CSV cannot be written."""
    print()
    print(report.table().to_string())
    print()
    print(report)
    if csv:
        try:
            report.lines.to_csv(csv, index=False)
        except OSError as exc:
            print(f"labkit: cannot write {csv}: {exc.strerror or exc}", file=sys.stderr)
            return False
        print(f"per-line table written to {csv}")
    return True


def _class(args: argparse.Namespace) -> int:
    """``labkit class ...``; exit codes: 0 done, 2 refused or failed (the message says why and what to do)."""
    if args.action == "render":
        try:
            objects = classroom.class_objects(classroom.student_names([args.student])[0])
        except ValueError as exc:
            print(f"labkit: error: {exc}", file=sys.stderr)
            return 2
        print(yaml.safe_dump_all(objects, sort_keys=False), end="")
        return 0
    from labkit.class_cluster import ClassAdmin  # needs the cluster client, which only this command uses

    try:
        admin = ClassAdmin(args.kubeconfig, args.context)
        if args.action == "create":
            for done in admin.create(_students(args.students), args.out, prefix=args.prefix, token_hours=args.hours,
                                     renew=args.renew):  # fmt: skip
                what = ", ".join(done.changed) if done.changed else "unchanged"
                expires = classroom.format_time(done.token_expires)
                print(f"{done.student}: namespace {done.namespace}, {done.kubeconfig} (token until {expires}; {what})")
        elif args.action == "delete":
            students = _students(args.students) if args.students else None
            gone = admin.delete(students, args.out, prefix=args.prefix)
            print(f"deleted {len(gone)} namespace{'' if len(gone) == 1 else 's'}: {', '.join(gone) or 'none'}")
            if students is not None:
                named = classroom.student_names(students, args.prefix)
                skipped = [n for n in named if classroom.namespace_of(n) not in gone]
                if skipped:
                    print(f"no namespace of the class for: {', '.join(skipped)} (left as they are)")
        else:
            table = admin.status()
            print(table.to_string() if len(table) else "no class on this cluster ('labkit class create N' makes one)")
            if len(table):
                expiries = admin.token_expiries(args.out)
                print(f"\ntokens (kubeconfigs in {args.out}):")
                print("\n".join(classroom.token_lines(expiries, datetime.now(UTC), args.out)))
    except (LabkitError, ValueError) as exc:
        print(f"labkit: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _students(given: Sequence[str]) -> int | list[str]:
    """A lone number is a count of students; anything else, their names."""
    return int(given[0]) if len(given) == 1 and given[0].isdigit() else list(given)


if __name__ == "__main__":
    sys.exit(main())
