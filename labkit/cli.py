"""``labkit run MANIFEST``: the whole lab from a terminal, with a report and an exit code.

Exit codes: 0 every check passed; 1 a check failed or could not be decided;
2 the lab could not run (bad manifest, engine missing, pod did not start,
pod gone while measured: the partial report is printed first); 130
interrupted (during the measurement, the partial report is printed). The
pod is removed in every case.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

from labkit.errors import LabkitError, PodGone
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
    return p


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
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
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)
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
    except KeyboardInterrupt:
        print("labkit: interrupted; the pod was removed", file=sys.stderr)
        return 130
    if not _show(report, args.csv):
        return 2
    if report.interrupted:
        print("labkit: interrupted; the report above is partial and the pod was removed", file=sys.stderr)
        return 130
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


if __name__ == "__main__":
    sys.exit(main())
