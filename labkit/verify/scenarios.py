"""The scenarios of ``labkit verify``: one small check per fact of the register, over :class:`~labkit.lab.Lab`.

Each is a plain function of a :class:`~labkit.verify.runner.Context` that
runs its own pod (named ``verify-...``) in a ``with Lab(...)`` block, so the
pod is removed however the check ends, and returns an
:class:`~labkit.verify.findings.Outcome`: *held*, *differs* or *not
checkable here*, with what was seen in one line. They check what the
notebooks' check cells and the contract suites check, with the kit's own
API, on whatever engine the context holds. :data:`SCENARIOS` lists them in
the order they run, each under its section of ``docs/facts.md``.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from labkit.errors import ManifestError, PodGone, PortError
from labkit.forward import HttpResponse
from labkit.lab import Lab
from labkit.lines import read_lines
from labkit.manifest import Pod, load_pod
from labkit.verify.findings import DIFFERS, HELD, NOT_CHECKABLE, Outcome
from labkit.verify.runner import Context, Scenario

MiB = 2**20
READY_TIMEOUT = 120.0
BACKOFF_BOUND = 360.0  # a kubelet's back-off is at most 300 s
EVICTION_BOUND = 180.0  # two volume-stats periods (1 min each, jittered up to 2) and the eviction manager's 10 s
DEFAULT_GRACE = (25.0, 45.0)  # the pod's default 30 s, give or take what the kubelet itself takes


def manifests_dir() -> Path:
    """The kit's ``manifests/`` directory: beside the package in a clone, else in the current directory."""
    for candidate in (Path(__file__).resolve().parents[2] / "manifests", Path.cwd() / "manifests"):
        if (candidate / "multicontainer-pod.yaml").is_file():
            return candidate
    raise ManifestError(
        "labkit verify runs the kit's own manifests (manifests/multicontainer-pod.yaml and "
        "manifests/experiments/), which are not beside the installed package nor in the current directory; "
        "run it from a clone of the kit's repository"
    )


def _pod(name: str) -> Pod:
    return load_pod(manifests_dir() / name)


def _lab(ctx: Context, pod: Pod, name: str, **options: Any) -> Lab:
    """A lab for one scenario: its pod named ``verify-NAME`` on the context's engine, without the lab's progress."""
    return Lab(pod, engine=ctx.engine, name=f"verify-{name}", progress=False, **options)


def _ls(lab: Lab, path: str, container: str | None = None) -> list[str]:
    return sorted(lab.exec(["ls", "-A", path], container=container, check=True).stdout.split())


def _code(value: Any) -> int | None:
    """An exit code from a containers table (a missing one is NaN or None there)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _verdict(ok: bool, seen: str) -> Outcome:
    return Outcome(HELD if ok else DIFFERS, seen)


# -- the tutorial's pod -------------------------------------------------------------------


def emptydir_lifetime(ctx: Context) -> Outcome:
    """The tutorial pod's volume starts empty but for the producer's file, and both containers see the same bytes."""
    with _lab(ctx, _pod("multicontainer-pod.yaml"), "emptydir") as lab:
        lab.apply().wait_ready(timeout=READY_TIMEOUT).wait_serving()
        producer = _ls(lab, "/var/log")
        consumer = _ls(lab, "/usr/share/nginx/html", "consumer")
        written = lab.exec(["cat", "/var/log/index.html"], check=True).stdout_bytes
        seen = lab.exec(["cat", "/usr/share/nginx/html/index.html"], container="consumer", check=True).stdout_bytes
    same = bool(written) and seen.startswith(written)
    ok = producer == consumer == ["index.html"] and same
    return _verdict(
        ok,
        f"ls -A: producer's /var/log {' '.join(producer) or '(empty)'}, consumer's /usr/share/nginx/html "
        f"{' '.join(consumer) or '(empty)'}; the consumer read {len(seen)} bytes, "
        f"{'the same as' if same else 'not the same as'} the producer's {len(written)}",
    )


def hostname_of_a_container(ctx: Context) -> Outcome:
    """Every container's hostname, and so every served line's, is the pod's name."""
    with _lab(ctx, _pod("multicontainer-pod.yaml"), "hostname") as lab:
        lab.apply().wait_ready(timeout=READY_TIMEOUT).wait_serving()
        names = {
            c: lab.exec(["cat", "/proc/sys/kernel/hostname"], container=c, check=True).stdout.strip()
            for c in lab.pod.container_names
        }
        lines = read_lines(lab.fetch())
        served = sorted(set(lines["hostname"].astype(str)))
        pod = lab.name
    ok = served == [pod] and set(names.values()) == {pod}
    each = ", ".join(f"{c} {n}" for c, n in names.items())
    return _verdict(ok, f"pod {pod}: hostnames {each}; {len(lines)} served line(s), hostnames {', '.join(served)}")


def exit_code_127(ctx: Context) -> Outcome:
    """A command that is not in the container's image exits 127, and the container runs on."""
    with _lab(ctx, _pod("multicontainer-pod.yaml"), "exit-127") as lab:
        lab.apply().wait_ready(timeout=READY_TIMEOUT)
        missing = lab.exec(["top-secret-tool", "--help"])
        after = lab.containers()
    restarts = int(after["restarts"].sum())
    running = bool((after["state"] == "running").all())
    message = (missing.stderr.strip().splitlines() or ["no message"])[-1]
    return _verdict(
        missing.returncode == 127 and running and restarts == 0,
        f"exit code {missing.returncode} ({message}); containers afterwards: "
        f"{'all running' if running else 'not all running'}, {restarts} restarts",
    )


def _answer(lab: Lab, path: str, timeout: float = 30) -> HttpResponse:
    """The server's first answer for ``path``, waiting while it does not listen yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return lab.request(path, timeout=5)
        except PortError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


def ready_is_not_serving(ctx: Context) -> Outcome:
    """Before the producer's first line nginx answers 404 for /index.html and 403 for /; 200 for both after it.

    The producer of this pod waits, before its first write, until the
    scenario has looked (a file in the producer's own /tmp, not in the
    volume), so the window before the first line is as long as it needs.
    """
    wait_then_write = (
        "until [ -e /tmp/write-now ]; do sleep 0.2; done; "
        "while true; do echo $(hostname) $(date) >> /var/log/index.html; sleep 10; done"
    )
    pod = _pod("multicontainer-pod.yaml").with_args("producer", ["-c", wait_then_write])
    with _lab(ctx, pod, "ready-not-serving") as lab:
        lab.apply().wait_ready(timeout=READY_TIMEOUT)
        before = (_answer(lab, "/index.html").status, _answer(lab, "/").status)
        lab.exec(["touch", "/tmp/write-now"], check=True)
        started = time.monotonic()
        lab.wait_serving()
        took = time.monotonic() - started
        after = (lab.request("/index.html").status, lab.request("/").status)
    ok = before == (404, 403) and after == (200, 200)
    return _verdict(
        ok,
        f"ready, before the first line: /index.html {before[0]}, / {before[1]}; "
        f"after it ({took:.1f} s after the producer was let write): {after[0]} and {after[1]}",
    )


# -- restarts -----------------------------------------------------------------------------


def restarts_after_a_crash(ctx: Context) -> Outcome:
    """A first crash is restarted at once; the second is held in CrashLoopBackOff where the engine backs off.

    The sequence of notebook 04, section 1: the producer of
    ``crash-on-demand.yaml`` exits with code 3 when told to (a file in the
    volume); its lines are kept over the restart.
    """
    with _lab(ctx, _pod("experiments/crash-on-demand.yaml"), "crash") as lab:
        lab.apply().wait_ready(timeout=READY_TIMEOUT).wait_serving()
        time.sleep(2.5)
        before = lab.fetch().splitlines()
        lab.exec(["touch", "/usr/share/nginx/html/crash-now"], container="consumer", check=True)
        asked = time.monotonic()
        row = lab.wait_for_restart("producer", timeout=60)
        first = time.monotonic() - asked
        first_count, first_code = int(row["restarts"]), _code(row["last_exit_code"])
        first_ok = first < 10 and (first_count, first_code) == (1, 3)
        time.sleep(1.5)
        after = lab.fetch().splitlines()
        kept = after[: len(before)] == before and len(after) > len(before)

        lab.exec(["touch", "/usr/share/nginx/html/crash-now"], container="consumer", check=True)
        asked, held_since, held_for, say_at = time.monotonic(), None, 0.0, 30.0
        while True:
            now: dict[Any, Any] = lab.containers().loc["producer"].to_dict()
            waited = time.monotonic() - asked
            if now["reason"] == "CrashLoopBackOff" and int(now["restarts"]) == 1 and held_since is None:
                held_since = waited
            if now["state"] == "running" and int(now["restarts"]) == 2:
                break
            if waited >= BACKOFF_BOUND:
                return Outcome(
                    DIFFERS,
                    f"first restart {first:.1f} s after the crash; the second crash was not restarted within "
                    f"{BACKOFF_BOUND:g} s (the producer is {now['state']} {now['reason'] or ''}, "
                    f"{int(now['restarts'])} restarts)",
                )
            if waited >= say_at:
                ctx.say(f"waited {waited:.0f} s for the second restart (a back-off is at most 300 s)")
                say_at += 30
            time.sleep(0.2)
        if held_since is not None:
            held_for = waited - held_since
        second_code = _code(lab.containers().loc["producer", "last_exit_code"])
    held = held_since is not None
    seen = (
        f"first restart {first:.1f} s after the crash, restart count {first_count}, last exit code "
        f"{first_code}, {len(before)} lines {'kept' if kept else 'NOT kept'}; second "
        + (f"held {held_for:.1f} s in CrashLoopBackOff" if held else f"restarted at once ({waited:.1f} s)")
        + f", last exit code {second_code}"
    )
    if not (first_ok and kept and second_code == 3):
        return Outcome(DIFFERS, seen)
    if held:
        return Outcome(HELD, seen)
    if not ctx.engine.restart_backoff:
        return Outcome(DIFFERS, seen + f"; {ctx.engine.name} restarts every crash at once", named=True)
    return Outcome(DIFFERS, seen + "; never held in CrashLoopBackOff")


# -- the volume's experiments -------------------------------------------------------------


def read_only_mounts(ctx: Context) -> Outcome:
    """The consumer's read-only mount refuses its writes while the producer's mount of the volume takes them."""
    with _lab(ctx, _pod("experiments/read-only-consumer.yaml"), "read-only") as lab:
        lab.apply().wait_ready(timeout=READY_TIMEOUT).wait_serving()
        refused = lab.exec(["touch", "/usr/share/nginx/html/from-the-consumer"], container="consumer")
        then = len(lab.fetch().splitlines())
        time.sleep(2.5)
        now = len(lab.fetch().splitlines())
    erofs = "Read-only file system" in refused.stderr
    return _verdict(
        refused.returncode != 0 and erofs and now > then,
        f"the consumer's touch exited {refused.returncode}"
        + (" (Read-only file system)" if erofs else f" ({refused.stderr.strip()[-80:] or 'no message'})")
        + f"; the producer went on appending: {then} then {now} lines served",
    )


def emptydir_in_memory(ctx: Context) -> Outcome:
    """``medium: Memory``: one 16 MiB tmpfs in both containers; a write past it fails with ENOSPC."""
    mounts = {"producer": "/var/log", "consumer": "/usr/share/nginx/html"}
    with _lab(ctx, _pod("experiments/memory-volume.yaml"), "memory") as lab:
        lab.apply().wait_ready(timeout=READY_TIMEOUT)
        kinds = {c: lab.exec(["stat", "-f", "-c", "%T", m], container=c, check=True).stdout.strip()
                 for c, m in mounts.items()}  # fmt: skip
        sizes = {c: int(lab.exec(["df", "-k", "--output=size", m], container=c, check=True).stdout.split()[-1])
                 for c, m in mounts.items()}  # fmt: skip
        lab.exec(["sh", "-c", "echo hello from the producer > /var/log/note.txt"], check=True)
        shared = lab.exec(["cat", "/usr/share/nginx/html/note.txt"], container="consumer").stdout.strip()
        filled = lab.exec(["sh", "-c", "head -c 25165824 /dev/zero > /var/log/big"])
        written = int(lab.exec(["stat", "-c", "%s", "/var/log/big"], check=True).stdout)
    enospc = "No space left on device" in filled.stderr
    ok = (
        set(kinds.values()) == {"tmpfs"}
        and set(sizes.values()) == {16 * 1024}
        and shared == "hello from the producer"
        and filled.returncode != 0
        and enospc
        and written <= 16 * MiB
    )
    each = ", ".join(f"{c} {kinds[c]} of {sizes[c] // 1024} MiB" for c in mounts)
    return _verdict(
        ok,
        f"{each}; a note written by the producer {'read' if shared else 'NOT read'} by the consumer; writing "
        f"24 MiB exited {filled.returncode}"
        + (" (No space left on device)" if enospc else "")
        + f" after {written / MiB:.1f} MiB",
    )


def emptydir_sizelimit_on_disk(ctx: Context) -> Outcome:
    """A disk-backed emptyDir that outgrows its sizeLimit gets the pod evicted, with the documented message."""
    with _lab(ctx, _pod("experiments/disk-size-limit.yaml"), "disk-limit") as lab:
        lab.apply().wait_ready(timeout=READY_TIMEOUT)
        unenforced = [c for c in lab.changes if "sizeLimit" in c and "not enforced" in c]
        lab.exec(["sh", "-c", "head -c 8388608 /dev/zero > /var/log/big"], check=True)
        if unenforced:
            return Outcome(
                DIFFERS,
                f"8 MiB written into a 4 MiB volume; {ctx.engine.name} said on apply that the sizeLimit is not "
                "enforced and has no eviction, so the pod runs on",
                named=True,
            )
        written, say_at = time.monotonic(), 10.0
        try:
            while (waited := time.monotonic() - written) < EVICTION_BOUND:
                lab.containers()
                if waited >= say_at:
                    ctx.say(f"waited {say_at:.0f} s for the eviction (a kubelet may take up to {EVICTION_BOUND:g} s)")
                    say_at += 10
                time.sleep(1)
        except PodGone as gone:
            took = time.monotonic() - written
            message = str(gone)
            documented = "was evicted" in message and 'Usage of EmptyDir volume "webcontent" exceeds the limit' in (
                message
            )
            detail = (message.split("(", 1)[-1].split(");", 1)[0] if "(" in message else message).strip()
            return _verdict(documented, f"evicted {took:.0f} s after 8 MiB went into the 4 MiB volume: {detail}")
    return Outcome(
        DIFFERS,
        f"still running {EVICTION_BOUND:g} s after 8 MiB went into the 4 MiB volume (the kit cannot tell from "
        "here whether the node's local storage isolation is off)",
    )


def _quiet_fetch_and_append(lab: Lab) -> tuple[HttpResponse, bool]:
    """Fetch the page, then append a line, up to ten times until both fall in one second of the file's clock."""
    append = ["sh", "-c", "echo $(hostname) $(date) >> /var/log/index.html"]
    for _ in range(10):
        first = lab.request()
        lab.exec(append, check=True)
        modified = int(lab.exec(["stat", "-c", "%Y", "/var/log/index.html"], check=True).stdout)
        if modified == parsedate_to_datetime(first.headers["Last-Modified"]).timestamp():
            return first, True
    return first, False


def conditional_requests(ctx: Context) -> Outcome:
    """After a same-second append, If-Modified-Since alone gets 304; with If-None-Match too, 200 and the new line."""
    with _lab(ctx, _pod("experiments/quiet-producer.yaml"), "conditional") as lab:
        lab.apply().wait_ready(timeout=READY_TIMEOUT).wait_serving()
        first, same_second = _quiet_fetch_and_append(lab)
        if not same_second:
            return Outcome(
                NOT_CHECKABLE,
                "no fetch and append fell within one second in 10 tries (each exec takes too long here), "
                "so If-Modified-Since could not be put to the test",
            )
        since = lab.request(headers={"If-Modified-Since": first.headers["Last-Modified"]})
        both = lab.request(
            headers={"If-Modified-Since": first.headers["Last-Modified"], "If-None-Match": first.headers["ETag"]}
        )
    new_line = both.body[len(first.body) :]
    has_line = bool(new_line) and both.body.startswith(first.body)
    return _verdict(
        since.status == 304 and both.status == 200 and has_line,
        f"after an append in the same second: If-Modified-Since alone {since.status}; with If-None-Match too "
        f"{both.status}, {'with' if has_line else 'without'} the new line ({len(new_line)} bytes)",
    )


def range_requests(ctx: Context) -> Outcome:
    """A Range from the old end gets 206 with exactly the appended line; from the new end, 416."""
    with _lab(ctx, _pod("experiments/quiet-producer.yaml"), "range") as lab:
        lab.apply().wait_ready(timeout=READY_TIMEOUT).wait_serving()
        first = lab.request()
        lab.exec(["sh", "-c", "echo $(hostname) $(date) >> /var/log/index.html"], check=True)
        now = lab.request()
        old_end = lab.request(headers={"Range": f"bytes={len(first.body)}-"})
        new_end = lab.request(headers={"Range": f"bytes={len(now.body)}-"})
    new_line = now.body[len(first.body) :]
    exact = bool(new_line) and old_end.body == new_line
    return _verdict(
        old_end.status == 206 and exact and new_end.status == 416,
        f"Range from the old end ({len(first.body)}): {old_end.status}, "
        f"{'exactly the new line' if exact else f'{len(old_end.body)} bytes, not the new line'} "
        f"({len(new_line)} bytes); from the new end ({len(now.body)}): {new_end.status}",
    )


def sub_path(ctx: Context) -> Outcome:
    """A subPath mounts one directory of the volume: the consumer sees only it, the producer the whole volume."""
    with _lab(ctx, _pod("experiments/sub-path.yaml"), "sub-path") as lab:
        lab.apply().wait_ready(timeout=READY_TIMEOUT).wait_serving()
        producer = _ls(lab, "/var/log")
        consumer = _ls(lab, "/usr/share/nginx/html", "consumer")
        served = read_lines(lab.fetch())
    ok = consumer == ["index.html"] and "producer-notes.txt" in producer and "site" in producer and len(served) >= 1
    return _verdict(
        ok,
        f"ls -A: consumer's /usr/share/nginx/html {' '.join(consumer) or '(empty)'}; producer's /var/log "
        f"{' '.join(producer) or '(empty)'}; {len(served)} line(s) served",
    )


# -- deleting ------------------------------------------------------------------------------


def deleting_a_pod(ctx: Context) -> Outcome:
    """On a cluster, deleting the tutorial's pod with its default grace period takes about 30 s.

    The producer is bash as PID 1, which ignores SIGTERM, so the kubelet
    waits the whole grace period before SIGKILL. The delete is made through
    the engine's API client without a grace period, as ``kubectl delete pod``
    makes it, and timed until the pod has gone.
    """
    engine = ctx.engine
    delete = getattr(engine, "delete_with_grace", None)
    if delete is None:
        return Outcome(
            NOT_CHECKABLE,
            f"the {engine.name} engine deletes a pod at once, with no grace period to wait (and the kit's own "
            "delete asks for a short one on every engine)",
        )
    with _lab(ctx, _pod("multicontainer-pod.yaml"), "delete") as lab:
        lab.apply().wait_ready(timeout=READY_TIMEOUT).wait_serving()
        started = time.monotonic()
        granted = delete(lab.pod)
        say_at = 10.0
        while engine.state(lab.pod) is not None:
            waited = time.monotonic() - started
            if waited >= 120:
                return Outcome(DIFFERS, f"the pod was still there {waited:.0f} s after the delete")
            if waited >= say_at:
                ctx.say(f"waited {say_at:.0f} s for the pod to go")
                say_at += 10
            time.sleep(0.25)
        took = time.monotonic() - started
    low, high = DEFAULT_GRACE
    grace = "no grace period recorded" if granted is None else f"grace period {granted} s"
    return _verdict(low <= took <= high, f"gone {took:.1f} s after a delete with the pod's default ({grace})")


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("emptydir-lifetime", "emptyDir lifetime", emptydir_lifetime),
    Scenario("hostname-of-a-container", "Hostname of a container", hostname_of_a_container),
    Scenario("exit-code-127", "Exit code 127", exit_code_127),
    Scenario("ready-is-not-serving", "Ready is not serving", ready_is_not_serving),
    Scenario("restarts-after-a-crash", "Restarts after a crash", restarts_after_a_crash),
    Scenario("read-only-mounts", "Read-only mounts", read_only_mounts),
    Scenario("emptydir-in-memory", "emptyDir in memory", emptydir_in_memory),
    Scenario("emptydir-sizelimit-on-disk", "emptyDir sizeLimit on disk", emptydir_sizelimit_on_disk),
    Scenario("conditional-requests-and-stale-pages", "Conditional requests and stale pages", conditional_requests),
    Scenario("range-requests", "Range requests", range_requests),
    Scenario("subpath", "subPath", sub_path),
    Scenario("deleting-a-pod", "Deleting a pod", deleting_a_pod),
)
"""Every scenario, in the order ``labkit verify`` runs them."""


def select(only: list[str] | None) -> list[Scenario]:
    """The scenarios of the facts named in ``only`` (section slugs), in their usual order; all of them for None.

    Raises ValueError naming the unknown slugs and the known ones.
    """
    if not only:
        return list(SCENARIOS)
    known = {s.slug for s in SCENARIOS}
    unknown = [name for name in only if name not in known]
    if unknown:
        raise ValueError(
            f"no fact called {', '.join(map(repr, unknown))}; the facts labkit verify checks are: "
            + ", ".join(s.slug for s in SCENARIOS)
        )
    return [s for s in SCENARIOS if s.slug in only]


__all__ = ["SCENARIOS", "manifests_dir", "select"]
