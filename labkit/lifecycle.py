"""The lab's lifecycle, once for every engine: apply, ready, crashed, gone, delete.

Engines offer primitives (:class:`~labkit.engines.base.Engine`); this
module decides what they mean. Whose pod it is (:mod:`labkit.ownership`),
when a pod is ready, what a crash or a timeout is called and what the user
should do about it, how long a deletion may take and what happens to a
command that runs past its timeout are written here and nowhere else, so a
new engine inherits them and a change is made in one place.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence

from labkit import ownership
from labkit.engines.base import CommandTimedOut, ContainerState, Engine, ExecResult, PodState, exit_code_meaning
from labkit.errors import (
    ContainerCrashed,
    EngineError,
    ExecTimeout,
    ImageNotFound,
    LabkitError,
    NotReady,
    PodExists,
    PodGone,
    ReadyTimeout,
)
from labkit.manifest import Pod

Progress = Callable[[dict[str, str]], None]
"""Called with ``{container: state}`` each time a container's state changes."""

IMAGE_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"})
CONFIG_REASONS = frozenset({"CreateContainerConfigError", "CreateContainerError", "RunContainerError"})

# After a pod is ready its containers are watched this long in the background, so a command that
# exits at once is still reported (at the lab's next step) without making every user wait for it.
SETTLE_SECONDS = 1.0
# How often a deletion is asked for again while the pod is still there (a container caught in the
# middle of a restart cannot be removed at the first try).
REMOVE_AGAIN_EVERY = 1.0
KILL_TIMEOUT = 15.0


# -- ownership: apply and delete -----------------------------------------------------------


def apply(engine: Engine, pod: Pod, *, replace: bool = False) -> list[str]:
    """Create ``pod``, deciding about an existing pod of its name with :func:`labkit.ownership.decide`.

    Returns what the engine changes in the manifest to run it (one item
    each, for the user). A pod of this session with the same spec is kept
    as it is; a create that fails halfway leaves nothing behind.
    """
    pod = ownership.managed(pod)
    changes = engine.changes(pod)  # a manifest the engine cannot run is refused before anything is touched
    decision = ownership.decide(
        engine.labels(pod), pod, where=engine.where, remove=engine.remove_command(pod), replace=replace
    )
    if decision == "same":
        return changes
    if decision == "replace":
        remove(engine, pod, timeout=120)  # a pod's spec cannot change in place
    try:
        engine.create(pod)
    except BaseException:
        # The name was free or ours, so whatever a failed create left is ours to remove.
        with contextlib.suppress(LabkitError):  # the original error says more than a failed clean-up
            remove(engine, pod, timeout=60)
        raise
    return changes


def delete(engine: Engine, pod: Pod, timeout: float) -> None:
    """Remove this session's pod and wait until it is gone; touch nothing that is not its own.

    Raises :class:`PodExists` when the pod of that name is another
    session's or not the kit's.
    """
    labels = engine.labels(pod)
    if labels is None:
        return
    if not ownership.owns(labels, pod):
        raise PodExists(f"pod {pod.name!r} is not this lab's (another session or not labkit's); it was left alone")
    remove(engine, pod, timeout)


def remove(engine: Engine, pod: Pod, timeout: float) -> None:
    """Remove the pod whoever owns it (the caller decided), and wait until it is gone."""
    deadline = time.monotonic() + timeout
    engine.remove(pod)
    asked = time.monotonic()
    while engine.labels(pod) is not None:
        now = time.monotonic()
        if now > deadline:
            raise EngineError(
                f"pod {pod.name!r} was still there {timeout:g} s after it was deleted; remove it by hand "
                f"({engine.remove_command(pod)}) and check the engine"
            )
        if now - asked >= REMOVE_AGAIN_EVERY:
            engine.remove(pod)
            asked = time.monotonic()
        time.sleep(0.1)


# -- ready -------------------------------------------------------------------------------


def wait_ready(engine: Engine, pod: Pod, timeout: float, progress: Progress | None = None) -> dict[str, ContainerState]:
    """Return each container's state once every one runs; raise a :class:`NotReady` subclass otherwise.

    A pod that cannot start fails fast (an image that cannot be pulled, a
    container that cannot be created or keeps crashing, a pod that cannot
    be scheduled) instead of waiting for the timeout. ``progress`` hears of
    every change in what the containers do.
    """
    deadline = time.monotonic() + timeout
    seen: dict[str, str] = {}
    while True:
        state = engine.state(pod)
        if state is None:
            raise NotReady(f"pod {pod.name!r} does not exist {engine.where}; apply it first", reason="Deleted")
        view = {name: describe(state.containers.get(name)) for name in pod.container_names}
        if view != seen:
            seen = view
            if progress:
                progress(dict(view))
        failure = why_not_ready(engine, pod, state)
        if failure is not None:
            raise failure
        if all(s == "running" for s in view.values()):
            return dict(state.containers)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            waiting = [f"{n} ({s})" for n, s in view.items() if s != "running"]
            raise ReadyTimeout(
                f"pod {pod.name!r} was not ready within {timeout:g} s; still waiting for: {', '.join(waiting)}"
                f"{events_text(engine, pod)}; look at lab.logs(container) or allow a longer timeout",
                container=waiting[0].split(" ")[0],
                reason="Timeout",
            )
        engine.wait_for_change(pod, state, remaining)


def describe(container: ContainerState | None) -> str:
    """A container's state in a word or two, as a progress display shows it."""
    if container is None:
        return "pending"
    if container.state == "waiting":
        return {"ContainerCreating": "creating", "": "waiting"}.get(container.reason, container.reason)
    return container.state


def why_not_ready(
    engine: Engine, pod: Pod, state: PodState, since: dict[str, ContainerState] | None = None
) -> NotReady | None:
    """The error that says why the pod cannot become ready, or None while it may still.

    ``since``: container states to compare restarts against (a container
    that restarted after them crashed); by default any restart counts.
    """
    if state.reason == "Unschedulable":
        return NotReady(
            f"pod {pod.name!r} cannot be scheduled: {state.message or 'no message'}{events_text(engine, pod)}",
            reason="Unschedulable",
        )
    for name in pod.container_names:
        c = state.containers.get(name)
        if c is None:
            continue
        if c.state == "waiting" and c.reason in IMAGE_REASONS:
            return ImageNotFound(
                f"image {pod.container(name).image!r} of container {name!r} cannot be pulled ({c.reason}: "
                f"{c.message or 'no message'}){events_text(engine, pod)}; check the image name, or make the image "
                "available to the engine",
                container=name,
                reason=c.reason,
            )
        if c.state == "waiting" and c.reason in CONFIG_REASONS:
            return NotReady(
                f"container {name!r} cannot be created ({c.reason}: {c.message or 'no message'})"
                f"{events_text(engine, pod)}",
                container=name,
                reason=c.reason,
            )
        before = since.get(name) if since is not None else None
        restarted = c.restarts > (before.restarts if before is not None else 0)
        if restarted or c.state == "terminated" or c.reason == "CrashLoopBackOff":
            return crashed(engine, pod, c)
    if state.phase in ("Failed", "Succeeded"):
        return ContainerCrashed(f"pod {pod.name!r} has ended (phase {state.phase})", reason=state.phase)
    return None


def crashed(engine: Engine, pod: Pod, c: ContainerState) -> ContainerCrashed:
    """The error for a container that exited when its command should keep running."""
    code = c.exit_code if c.state == "terminated" else c.last_exit_code
    how = "exited at once" if c.restarts == 0 else f"keeps restarting ({c.restarts} restarts)"
    meaning = exit_code_meaning(code)
    hint = f"; exit code {code} means {meaning}" if meaning else ""
    shown = "unknown" if code is None else code
    return ContainerCrashed(
        f"container {c.name!r} of pod {pod.name!r} {how} with exit code {shown}{hint}{_last_output(engine, pod, c)}; "
        "a container's command must keep running (fix command/args in the manifest)",
        container=c.name,
        reason="CrashLoopBackOff",
    )


def _last_output(engine: Engine, pod: Pod, c: ContainerState) -> str:
    """``; its last output: ...`` from the run that crashed, or nothing when there is none to read."""
    text = ""
    for previous in (True, False) if c.restarts else (False,):
        try:
            text = engine.logs(pod, c.name, tail=5, previous=previous)
        except LabkitError:
            continue  # a run's log may be gone already; the other one may still say something
        if text.strip():
            break
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return f"; its last output: {lines[-1]}" if lines else ""


def events_text(engine: Engine, pod: Pod) -> str:
    """``; recent events: ...`` (the last five), or nothing where the engine keeps none."""
    events = engine.events(pod)[-5:]
    return "; recent events: " + " | ".join(events) if events else ""


class Settling:
    """Looks once more at a pod a moment after it became ready, in the background, for a command that exits at once.

    ``wait_ready`` returns as soon as every container runs, so nobody waits
    for this look. A container that is not running by then, or that has
    restarted twice or more since it was ready, crashes on every start; the
    error is kept in ``error`` for the lab's next step to raise. A
    single restart is not a crash loop: a measurement notes it.
    """

    def __init__(self, engine: Engine, pod: Pod, ready: dict[str, ContainerState], seconds: float = SETTLE_SECONDS):
        self.engine, self.pod, self.ready = engine, pod, ready
        self.error: NotReady | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._look, args=(seconds,), name=f"settle-{pod.name}", daemon=True)
        self._thread.start()

    def _look(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            return
        try:
            state = self.engine.state(self.pod)
        except LabkitError:
            return  # the engine cannot be asked now; the lab's next step meets the same problem and says so
        try:
            containers = _present(self.engine, self.pod, state)
        except PodGone:
            return  # deleted, evicted or being deleted: not a crash, and the lab's next step says so itself
        for name, c in containers.items():
            before = self.ready.get(name)
            restarts = c.restarts - (before.restarts if before is not None else 0)
            if restarts >= 2 or (restarts >= 1 and c.state != "running") or c.state == "terminated":
                self.error = crashed(self.engine, self.pod, c)
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


# -- gone --------------------------------------------------------------------------------


def container_states(engine: Engine, pod: Pod) -> dict[str, ContainerState]:
    """Each container's state by name; :class:`PodGone` when the pod has gone or is going."""
    return _present(engine, pod, engine.state(pod))


def _present(engine: Engine, pod: Pod, state: PodState | None) -> dict[str, ContainerState]:
    if state is None:
        raise PodGone(f"pod {pod.name!r} no longer exists {engine.where} (deleted or evicted); apply the lab again")
    if state.reason == "Evicted":
        raise PodGone(f"pod {pod.name!r} was evicted ({state.message or 'no message'}); apply the lab again")
    if state.deleting_since is not None:
        raise PodGone(
            f"pod {pod.name!r} is being deleted (since {state.deleting_since:%H:%M:%S}), by someone else or by "
            "the cluster; apply the lab again once it is gone"
        )
    return dict(state.containers)


def wait_for_restart(
    engine: Engine,
    pod: Pod,
    container: str,
    since: ContainerState,
    timeout: float,
    seen: Callable[[ContainerState | None], None] | None = None,
) -> ContainerState:
    """Wait until ``container`` has restarted since ``since`` and runs again; its state then.

    The engine's own restart policy decides when that is: both a kubelet
    and Podman 4.3 restart a first crash at once; a kubelet holds a later
    one in CrashLoopBackOff (10 s, doubling), Podman never does. Raises :class:`ReadyTimeout` when it has not within
    ``timeout`` seconds, with what the container does now. ``seen`` hears
    of the container's state at every look (None: not there yet).
    """
    deadline = time.monotonic() + timeout
    while True:
        state = engine.state(pod)
        now = _present(engine, pod, state).get(container)
        assert state is not None  # _present raised PodGone otherwise
        if seen is not None:
            seen(now)
        if now is not None and now.restarts > since.restarts and now.state == "running":
            return now
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            doing = describe(now)
            raise ReadyTimeout(
                f"container {container!r} did not restart and run again within {timeout:g} s "
                f"(it is {doing}, {now.restarts if now else 0} restarts); look at lab.logs({container!r}) "
                "or allow a longer timeout",
                container=container,
                reason="Timeout",
            )
        engine.wait_for_change(pod, state, min(remaining, 1.0))


# -- commands ----------------------------------------------------------------------------


def run(engine: Engine, pod: Pod, container: str, argv: Sequence[str], timeout: float | None) -> ExecResult:
    """Run a command in a container; one that runs past ``timeout`` is ended, with its children.

    Neither ``podman exec`` nor the Kubernetes exec stream stops a command
    when its client goes away, so the command is ended from inside the
    container before :class:`ExecTimeout` is raised, and in the same way
    before a :class:`KeyboardInterrupt` (Ctrl-C) goes on, with a note
    saying whether it was ended.
    """
    try:
        return engine.exec(pod, container, argv, timeout)
    except KeyboardInterrupt as stop:
        ended = end_command(engine, pod, container, argv)
        stop.add_note(
            "the command was ended in the container"
            if ended
            else "the command could not be ended in the container and may still run there"
        )
        raise
    except CommandTimedOut as expired:
        end_command(engine, pod, container, argv)
        raise ExecTimeout(
            f"command {list(argv)!r} in container {container!r} did not finish within {timeout:g} s "
            "and was stopped; raise timeout= or make the command end by itself "
            "(for example 'tail' instead of 'tail -f')",
            stdout=expired.stdout.decode("utf-8", "replace"),
            stderr=expired.stderr.decode("utf-8", "replace"),
        ) from None


# $1 is the command line to end. The matching processes are collected first,
# then every process whose parent is already collected (repeated until none is
# added), so children that a shell started go too. Each is stopped when it is
# collected, so none can start another meanwhile; then all get SIGKILL.
_KILL_SCRIPT = r"""
targets=""
for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [ "$p" = 1 ] || [ "$p" = "$$" ] && continue
    c=$(tr "\0" " " < "$d/cmdline" 2>/dev/null) || continue
    [ "${c% }" = "$1" ] && { targets="$targets $p"; kill -STOP "$p" 2>/dev/null; }
done
[ -n "$targets" ] || exit 0
added=1
while [ "$added" = 1 ]; do
    added=0
    for d in /proc/[0-9]*; do
        p=${d#/proc/}
        case " $targets " in *" $p "*) continue ;; esac
        read -r stat < "$d/stat" 2>/dev/null || continue
        set -- ${stat##*) }
        case " $targets " in *" $2 "*) targets="$targets $p"; added=1; kill -STOP "$p" 2>/dev/null ;; esac
    done
done
kill -9 $targets 2>/dev/null
true
"""


def end_command(engine: Engine, pod: Pod, container: str, argv: Sequence[str]) -> bool:
    """End a command whose client stopped waiting for it, from inside the container (a second exec); True if it did.

    The pod may be going: whatever stops this exec, the reason the first
    one was left (a timeout, Ctrl-C) is what the user needs to hear about.
    """
    try:
        return engine.exec(pod, container, kill_command(argv), KILL_TIMEOUT).returncode == 0
    except (LabkitError, CommandTimedOut):
        return False


def kill_command(argv: Sequence[str]) -> list[str]:
    """A command that ends every process in a container running exactly ``argv``, and their children."""
    return ["/bin/sh", "-c", _KILL_SCRIPT, "sh", " ".join(argv)]


def exists(engine: Engine, pod: Pod) -> bool:
    """Whether a pod of ``pod``'s name exists in the engine now, whoever's it is."""
    return engine.labels(pod) is not None
