"""A fake engine for tests: runs the lab's Pod in memory, with scripted containers and faults.

Nothing here starts a container. Each applied pod is a small simulation:

* the producer (found by :func:`labkit.layout.derive_layout`) appends
  ``"<pod name> <UTC time, ISO-8601 with nanoseconds>"`` to its file every
  ``interval`` real seconds, first line at once, whatever its command says;
  the file lives in memory, in the pod's emptyDir, which every container
  mounting that volume sees under its own mount path;
* the serving container is a real HTTP/1.1 server on 127.0.0.1 (an
  ephemeral port, keep-alive) that serves that volume like nginx: 200 with
  the whole file, 206 for ``Range: bytes=N-``, 416 past the end, 404 for a
  missing file, always with ``Content-Length``; :meth:`FakeEngine.connect`
  returns a real socket to it, so the kit's port-forward relays real bytes;
* ``exec`` understands a handful of commands over the in-memory files
  (see :data:`COMMANDS`), and the script with which
  :func:`labkit.lifecycle.kill_command` ends a command (there is none left
  to end: a fake command runs only while its exec waits); anything else
  exits 127.

Faults are scripted per pod with :class:`Script` (timed in real seconds
after ``apply``) or triggered by a test with the engine's methods
(:meth:`~FakeEngine.crash`, :meth:`~FakeEngine.silence`,
:meth:`~FakeEngine.vanish`, :meth:`~FakeEngine.server_down`,
:meth:`~FakeEngine.drop_connections`). It offers the same primitives as the
real engines, so the lab's lifecycle (:mod:`labkit.lifecycle`) runs on it
unchanged; ``remove`` stops every thread and closes every socket of the
pod. Get it with ``get_engine("fake")`` or ``FakeEngine(...)``.

A pod runs here only when :func:`~labkit.layout.derive_layout` finds its
roles without options; an ambiguous manifest raises its ``ManifestError``
at ``create``. Containers' commands are not run: every producer writes the
lines above, every server serves its mount like nginx.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import posixpath
import re
import shlex
import socket
import socketserver
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import TracebackType
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from labkit.engines.base import CommandTimedOut, ContainerState, ExecResult, PodState
from labkit.engines.crashloop import CrashLoop
from labkit.errors import EngineError, ImageNotFound, PortError
from labkit.layout import Layout, derive_layout
from labkit.manifest import Pod

__all__ = ["COMMANDS", "FakeEngine", "Script"]

#: The commands ``exec`` understands; anything else exits 127.
COMMANDS = (
    "cat",
    "date",
    "echo",
    "false",
    "hostname",
    "ls",
    "sh -c 'exit N'",
    "sleep",
    "tail",
    "test",
    "touch",
    "true",
)

# A container scripted to exit at once is started again after at least this long,
# so a crash loop with no restart delay does not spin.
CRASH_LOOP_PAUSE = 0.1
_LOG_LINES = 10_000
_SHELLS = ("sh", "/bin/sh", "bash", "/bin/bash")
_EXIT = re.compile(r"^\s*exit\s+(\d+)\s*;?\s*$")
# The in-pod probe's check for curl: "command -v curl ... || exit N" or "|| { echo MSG >&2; exit N; }".
_CURL_CHECK = re.compile(
    r"command\s+-v\s+curl\b[^|\n]*\|\|\s*(?:\{\s*echo\s+(?P<msg>\"[^\"]*\"|'[^']*')\s*>&2\s*;\s*)?exit\s+(?P<code>\d+)"
)

Phase = Literal["creating", "running", "backoff"]


@dataclass(frozen=True)
class Script:
    """How a pod behaves in the fake engine; every time is real seconds after ``apply``.

    Writing:
        ``interval``: seconds between the producer's lines (None: the
        manifest's ``sleep N``, else 1 s). ``silence_after`` (lines) or
        ``silence_at`` (seconds): the producer stops writing but keeps running.

    Starting:
        ``start_delay``: containers are "creating" this long before they run.
        ``never_ready``: they stay "creating" forever (``wait_ready`` times out).
        ``crash_at_start``: ``{container: exit_code}``, containers that exit at
        once on every start and are restarted forever (the lab reports ``ContainerCrashed``).
        ``apply_error``: ``apply`` raises it after creating a half-made pod
        (containers "creating", threads running), to test the cleanup after it.

    Crashing (the pod keeps its file):
        ``crash_at``: ``crash_container`` (None: the producer) exits with
        ``crash_exit_code``; ``crash_every``: after each restart it exits again
        this long after it started. ``restart_delay``: with
        ``restart_backoff=False``, seconds every crashed container waits (in
        CrashLoopBackOff) before it runs again, 0 restarting at once as Podman
        does; with ``restart_backoff=True``, the first back-off of the kubelet's
        rule (its 10 s, scaled down for a fast test): the first crash restarts at
        once, a later one waits ``restart_delay``, doubling.

    The pod and its server:
        ``vanish_at``: the pod disappears as if someone else deleted it.
        ``server_down_at`` for ``server_down_for`` seconds: connections are
        refused and open ones closed, or with ``server_hang`` accepted but not
        answered until it is back. ``drop_at``: the next ``drop_count``
        responses are cut off halfway and their connections closed.
        ``hang_commands``: commands (``argv[0]``) that never end in ``exec``,
        so its ``timeout`` raises :class:`~labkit.errors.ExecTimeout`.
    """

    interval: float | None = None
    silence_after: int | None = None
    silence_at: float | None = None
    start_delay: float = 0.0
    never_ready: bool = False
    crash_at_start: Mapping[str, int] = field(default_factory=dict)
    apply_error: BaseException | None = None
    crash_at: float | None = None
    crash_container: str | None = None
    crash_exit_code: int = 1
    crash_every: float | None = None
    restart_delay: float = 0.0
    vanish_at: float | None = None
    server_down_at: float | None = None
    server_down_for: float = 1.0
    server_hang: bool = False
    drop_at: float | None = None
    drop_count: int = 1
    hang_commands: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        positive = {"interval": self.interval, "crash_every": self.crash_every, "server_down_for": self.server_down_for}
        for name, value in positive.items():
            if value is not None and value <= 0:
                raise ValueError(f"Script {name}={value!r} must be a positive number of seconds")
        times = {
            "silence_at": self.silence_at,
            "start_delay": self.start_delay,
            "crash_at": self.crash_at,
            "restart_delay": self.restart_delay,
            "vanish_at": self.vanish_at,
            "server_down_at": self.server_down_at,
            "drop_at": self.drop_at,
        }
        for name, value in times.items():
            if value is not None and value < 0:
                raise ValueError(f"Script {name}={value!r} must be zero or more seconds after apply")
        if self.silence_after is not None and self.silence_after < 0:
            raise ValueError(f"Script silence_after={self.silence_after!r} must be a number of lines (0 or more)")
        if self.drop_count < 1:
            raise ValueError(f"Script drop_count={self.drop_count!r} must be at least 1")
        if self.apply_error is not None and not isinstance(self.apply_error, BaseException):
            raise TypeError(f"Script apply_error must be an exception, not {type(self.apply_error).__name__}")
        if isinstance(self.hang_commands, str):
            raise TypeError("Script hang_commands takes a collection of command names, not one string")
        object.__setattr__(self, "hang_commands", frozenset(self.hang_commands))


@dataclass
class _File:
    data: bytearray = field(default_factory=bytearray)
    mtime: float = field(default_factory=time.time)


@dataclass
class _Container:
    name: str
    phase: Phase = "creating"
    restarts: int = 0
    run: int = 0  # which run this is; work scheduled for an earlier run is dropped
    started_at: datetime | None = None
    last_exit_code: int | None = None
    last_reason: str = ""
    last_finished_at: datetime | None = None
    logs: deque[str] = field(default_factory=lambda: deque(maxlen=_LOG_LINES))


class FakeEngine:
    """An in-memory, scripted :class:`~labkit.engines.base.Engine` for tests (see the module docstring).

    ``script`` is one :class:`Script` for every pod, or ``{pod name: Script}``
    (pods not named get ``Script()``). ``restart_backoff=True`` restarts
    crashed containers by the kubelet's rule (``labkit.engines.crashloop``):
    the first crash at once, later ones after a back-off that starts at the
    script's ``restart_delay`` and doubles; the restart count goes up when the
    container runs again, as a kubelet counts it.
    ``existing`` pre-creates pods ``{name: labels}`` that run nothing, such as
    a pod labkit did not create or another live session's pod, to test
    ownership. ``missing_images``: images that ``apply`` cannot find
    (:class:`~labkit.errors.ImageNotFound`). Use it as a context manager,
    or call :meth:`close`, to stop every pod it still runs.
    """

    name = "fake"
    where = "in the fake engine"
    shares_host_clock = True
    container_cgroups = True

    def __init__(
        self,
        script: Script | Mapping[str, Script] | None = None,
        *,
        restart_backoff: bool = False,
        existing: Mapping[str, Mapping[str, str]] | None = None,
        missing_images: Iterable[str] = (),
    ) -> None:
        if script is not None and not isinstance(script, Script | Mapping):
            raise TypeError(f"script must be a Script or a dict of pod name -> Script, not {type(script).__name__}")
        if isinstance(script, Mapping) and not all(isinstance(s, Script) for s in script.values()):
            raise TypeError("every value of the script dict must be a Script")
        if isinstance(missing_images, str):
            raise TypeError("missing_images takes a collection of image names, not one string")
        self._script = script
        self.restart_backoff = restart_backoff
        self.records: dict[str, dict[str, str]] = {}  # what the lab recorded (its progress), by name
        self.missing_images = frozenset(missing_images)
        self._lock = threading.Lock()
        self._pods: dict[str, _FakePod] = {}
        self._foreign: dict[str, dict[str, str]] = {name: dict(labels) for name, labels in (existing or {}).items()}
        self._ended: list[_FakePod] = []  # vanished pods whose threads may still be stopping

    def describe(self) -> str:
        return "fake engine (in memory, scripted; for tests)"

    def __repr__(self) -> str:
        return f"<FakeEngine pods={sorted(self._pods)}>"

    def __enter__(self) -> FakeEngine:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self, timeout: float = 10) -> None:
        """Stop every pod this engine still runs, whoever owns it, and wait for their threads."""
        with self._lock:
            pods, self._pods = list(self._pods.values()), {}
            pods += self._ended
            self._ended = []
        for p in pods:
            p.stop(timeout)

    def script_for(self, name: str) -> Script:
        """The :class:`Script` a pod called ``name`` runs with."""
        if isinstance(self._script, Script):
            return self._script
        if isinstance(self._script, Mapping):
            return self._script.get(name) or Script()
        return Script()

    # -- lifecycle -----------------------------------------------------------------

    def remove_command(self, pod: Pod) -> str:
        return f"FakeEngine.close() ends every pod, {pod.name!r} included"

    def changes(self, pod: Pod) -> list[str]:
        return []  # nothing is translated: the fake runs no manifest

    def labels(self, pod: Pod) -> dict[str, str] | None:
        with self._lock:
            sim = self._pods.get(pod.name)
            labels = sim.labels if sim else self._foreign.get(pod.name)
        return None if labels is None else dict(labels)

    def create(self, pod: Pod) -> None:
        for c in pod.containers:
            if c.image in self.missing_images:
                raise ImageNotFound(
                    f"image {c.image!r} of container {c.name!r} is not on this machine and could not be pulled "
                    "(the fake engine was told it is missing); check the image name",
                    container=c.name,
                    reason="ErrImagePull",
                )
        script = self.script_for(pod.name)
        sim = _FakePod(pod, script, backoff=self.restart_backoff, on_vanish=self._forget)
        with self._lock:
            self._pods[pod.name] = sim
        sim.start(half_made=script.apply_error is not None)
        if script.apply_error is not None:
            raise script.apply_error

    def remove(self, pod: Pod) -> None:
        self._remove(pod.name)

    def state(self, pod: Pod) -> PodState | None:
        with self._lock:
            sim = self._pods.get(pod.name)
            foreign = pod.name in self._foreign
        if sim is not None:
            return PodState(sim.states())
        return PodState({}) if foreign else None

    def wait_for_change(self, pod: Pod, seen: PodState, seconds: float) -> None:
        sim = self._find(pod.name)
        if sim is not None:
            sim.wait_for_change(min(0.05, max(0.0, seconds) + 0.001))

    # -- working with a running pod ------------------------------------------------

    def exec(self, pod: Pod, container: str, argv: Sequence[str], timeout: float | None) -> ExecResult:
        argv = [str(a) for a in argv]
        if not argv:
            raise ValueError("argv is empty; pass a command such as ['ls', '-A', '/var/log']")
        sim = self._running(pod)
        sim.pod.container(container)  # ContainerNotFound, naming the containers
        started = time.monotonic()
        code, out, err = sim.run(container, argv, timeout)
        return ExecResult(
            args=argv,
            returncode=code,
            stdout_bytes=out,
            stderr_bytes=err,
            container=container,
            duration=time.monotonic() - started,
        )

    def connect(self, pod: Pod, port: int, timeout: float) -> socket.socket:
        sim = self._find(pod.name)
        if sim is None:
            raise PortError(
                f"nothing answers on port {port} of pod {pod.name!r}: there is no such pod {self.where} "
                "(connection refused)"
            )
        server_port = sim.accepting(port)
        try:
            return socket.create_connection(("127.0.0.1", server_port), timeout=timeout)
        except OSError as exc:
            raise PortError(f"nothing answers on port {port} of pod {pod.name!r} ({exc.strerror or exc})") from exc

    def logs(self, pod: Pod, container: str, tail: int | None = None, previous: bool = False) -> str:
        # Like Podman, the fake keeps every run of a container in one log.
        if tail is not None and tail < 0:
            raise ValueError(f"tail={tail!r} must be 0 or more lines")
        return self._running(pod).logs(container, tail)

    def events(self, pod: Pod) -> list[str]:
        return []

    def read_record(self, name: str) -> dict[str, str] | None:
        return self.records.get(name)

    def record(self, name: str, data: Mapping[str, str]) -> None:
        self.records[name] = dict(data)

    # -- faults a test triggers ------------------------------------------------------

    def crash(self, pod: str | Pod, container: str | None = None, *, exit_code: int = 1) -> None:
        """Make ``container`` (default: the producer) exit with ``exit_code``; it is restarted like any crash."""
        self._trigger(pod).crash(container, exit_code)

    def silence(self, pod: str | Pod) -> None:
        """Make the producer stop writing; it keeps running."""
        self._trigger(pod).silence()

    def vanish(self, pod: str | Pod) -> None:
        """Remove the pod as if someone else deleted it, whoever owns it; its connections are closed."""
        sim = self._trigger(pod)
        self._forget(sim)
        sim.stop(10)

    def server_down(self, pod: str | Pod, seconds: float, *, hang: bool = False) -> None:
        """Stop answering for ``seconds``: refuse connections and close open ones (``hang``: accept, answer later)."""
        if seconds <= 0:
            raise ValueError(f"seconds={seconds!r} must be a positive number")
        self._trigger(pod).server_down(seconds, hang)

    def drop_connections(self, pod: str | Pod, count: int = 1) -> None:
        """Cut the next ``count`` responses off halfway and close their connections."""
        if count < 1:
            raise ValueError(f"count={count!r} must be at least 1")
        self._trigger(pod).drop(count)

    # -- helpers -------------------------------------------------------------------

    def _find(self, name: str) -> _FakePod | None:
        with self._lock:
            return self._pods.get(name)

    def _running(self, pod: Pod) -> _FakePod:
        with self._lock:
            sim = self._pods.get(pod.name)
            foreign = pod.name in self._foreign
        if sim is not None:
            return sim
        if foreign:
            raise EngineError(
                f"pod {pod.name!r} in the fake engine is a stand-in for someone else's pod and runs nothing; "
                "give the lab another name"
            )
        raise EngineError(f"there is no pod {pod.name!r} {self.where}")

    def _trigger(self, pod: str | Pod) -> _FakePod:
        name = pod.name if isinstance(pod, Pod) else pod
        if not isinstance(name, str):
            raise TypeError(f"pod must be a pod name or a Pod, not {type(pod).__name__}")
        with self._lock:
            sim = self._pods.get(name)
            running = ", ".join(sorted(self._pods)) or "none"
        if sim is None:
            raise ValueError(f"the fake engine runs no pod named {name!r} (it runs: {running})")
        return sim

    def _remove(self, name: str) -> None:
        with self._lock:
            sim = self._pods.pop(name, None)
            self._foreign.pop(name, None)
        if sim is not None:
            sim.stop(10)

    def _forget(self, sim: _FakePod) -> None:
        """Drop a pod that vanished; its own thread may still be stopping it, so :meth:`close` waits for it."""
        with self._lock:
            if self._pods.get(sim.pod.name) is sim:
                del self._pods[sim.pod.name]
            self._ended.append(sim)


class _FakePod:
    """One simulated pod: its containers, its in-memory volumes, its HTTP server and its clockwork.

    A supervisor thread runs what is scheduled (producer writes, scripted
    faults, restarts); everything shared is guarded by ``cond``.
    """

    def __init__(self, pod: Pod, script: Script, *, backoff: bool, on_vanish: Callable[[_FakePod], None]) -> None:
        self.pod = pod
        self.script = script
        self.layout: Layout = derive_layout(pod)
        for name in [*script.crash_at_start, script.crash_container or self.layout.producer]:
            pod.container(name)  # ContainerNotFound for a script that names a container the pod lacks
        self.interval = script.interval or self.layout.interval or 1.0
        self.labels = dict(pod.doc.get("metadata", {}).get("labels") or {})
        self.crashloop = CrashLoop(initial=script.restart_delay) if backoff else None
        self._on_vanish = on_vanish
        self.cond = threading.Condition()
        self.stopped = False
        self._vanishing = False
        self._stop_lock = threading.Lock()
        self.containers = {c.name: _Container(c.name) for c in pod.containers}
        self.volumes: dict[str, dict[str, _File]] = {v: {} for v in pod.volumes}
        self.private: dict[str, dict[str, _File]] = {c.name: {} for c in pod.containers}
        prod_mount = dict(pod.container(self.layout.producer).mounts)[self.layout.volume]
        self.file_key = posixpath.relpath(self.layout.producer_path, prod_mount)
        self.lines_written = 0
        self.silenced = False
        self.down_until = 0.0
        self.down_hang = False
        self.drops = 0
        self.t0 = time.monotonic()
        self._events: list[tuple[float, int, Callable[[float], object]]] = []
        self._seq = itertools.count()
        self.server = _Server(self)
        self._serve_thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"labkit-fake-{pod.name}-http",
            daemon=True,
        )
        self._supervisor = threading.Thread(target=self._supervise, name=f"labkit-fake-{pod.name}", daemon=True)

    # -- clockwork -------------------------------------------------------------------

    def start(self, half_made: bool = False) -> None:
        self._serve_thread.start()
        self._supervisor.start()
        if half_made or self.script.never_ready:
            return
        s = self.script
        with self.cond:
            for name in self.containers:
                self._at(self.t0 + s.start_delay, _later(self._start, name))
            if s.silence_at is not None:
                self._at(self.t0 + s.silence_at, lambda _due: self._silence())
            if s.crash_at is not None:
                target = s.crash_container or self.layout.producer
                self._at(self.t0 + s.crash_at, lambda _due: self._crash(target, s.crash_exit_code))
            if s.vanish_at is not None:
                self._at(self.t0 + s.vanish_at, lambda _due: self._vanish())
            if s.server_down_at is not None:
                down = (s.server_down_for, s.server_hang)
                self._at(self.t0 + s.server_down_at, lambda _due: self._server_down(*down))
            if s.drop_at is not None:
                self._at(self.t0 + s.drop_at, lambda _due: self._drop(s.drop_count))

    def _at(self, when: float, action: Callable[[float], object]) -> None:
        """Have the supervisor run ``action(when)`` at ``when`` (monotonic seconds); call with ``cond`` held."""
        heapq.heappush(self._events, (when, next(self._seq), action))
        self.cond.notify_all()

    def _supervise(self) -> None:
        with self.cond:
            while not self.stopped and not self._vanishing:
                now = time.monotonic()
                if self._events and self._events[0][0] <= now:
                    due, _, action = heapq.heappop(self._events)
                    action(due)
                    self.cond.notify_all()
                    continue
                self.cond.wait(self._events[0][0] - now if self._events else None)
        if self._vanishing and not self.stopped:
            self._on_vanish(self)
            self.stop(10)

    def _start(self, name: str) -> None:
        c = self.containers[name]
        c.phase, c.started_at = "running", _utcnow()
        c.run += 1
        c.logs.append("starting")
        if name in self.script.crash_at_start:
            self._crash(name, self.script.crash_at_start[name], at_start=True)
            return
        if name == self.layout.producer:
            self._at(time.monotonic(), functools.partial(self._write, c.run))
        s = self.script
        if s.crash_every is not None and c.restarts and name == (s.crash_container or self.layout.producer):
            again = time.monotonic() + s.crash_every
            self._at(again, _later(self._crash, name, s.crash_exit_code, run=c.run))

    def _write(self, run: int, due: float) -> None:
        c = self.containers[self.layout.producer]
        if c.phase != "running" or c.run != run:
            return  # a run that crashed: the restarted one writes on its own schedule
        limit = self.script.silence_after
        if limit is not None and self.lines_written >= limit:
            self.silenced = True
        if not self.silenced:
            ns = time.time_ns()
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000))
            line = f"{self.pod.name} {stamp}.{ns % 1_000_000_000:09d}+00:00\n".encode()
            f = self.volumes[self.layout.volume].setdefault(self.file_key, _File())
            f.data += line
            f.mtime = ns / 1e9
            self.lines_written += 1
        following = due + self.interval
        if following < time.monotonic() - self.interval:
            following = time.monotonic()  # fell far behind (a paused process): do not write a burst
        self._at(following, lambda d: self._write(run, d))

    def _crash(self, name: str, code: int, *, at_start: bool = False, run: int | None = None) -> bool:
        c = self.containers[name]
        if c.phase != "running" or (run is not None and c.run != run):
            return False
        c.last_exit_code, c.last_reason, c.last_finished_at = code, "Error" if code else "Completed", _utcnow()
        c.run += 1
        if name == self.layout.server:
            self.server.drop_all()
        if self.crashloop is not None:
            self._restart_after_backoff(name, time.monotonic(), at_start)
            return True
        c.restarts += 1
        delay = self.script.restart_delay
        if at_start:
            delay = max(delay, CRASH_LOOP_PAUSE)
        if delay > 0:
            c.phase = "backoff"
            self._at(time.monotonic() + delay, lambda _due: self._start(name))
        else:
            self._start(name)
        return True

    def _restart_after_backoff(self, name: str, finished: float, at_start: bool) -> None:
        """The kubelet's decision for a container that exited at ``finished``: restart now, or wait in back-off."""
        assert self.crashloop is not None
        c = self.containers[name]
        now = time.monotonic()
        hold = self.crashloop.hold(name, finished, now)
        if hold > 0:
            c.phase = "backoff"
            self._at(now + hold, lambda _due: self._restart_after_backoff(name, finished, at_start))
        elif at_start and now - finished < CRASH_LOOP_PAUSE:
            c.phase = "backoff"
            self._at(finished + CRASH_LOOP_PAUSE, lambda _due: self._restarted(name))
        else:
            self._restarted(name)

    def _restarted(self, name: str) -> None:
        self.containers[name].restarts += 1
        self._start(name)

    def _silence(self) -> None:
        self.silenced = True

    def _vanish(self) -> None:
        self._vanishing = True

    def _server_down(self, seconds: float, hang: bool) -> None:
        self.down_until = time.monotonic() + seconds
        self.down_hang = hang
        if not hang:
            self.server.drop_all()
        self._at(self.down_until, lambda _due: None)  # wakes those waiting for it to come back

    def _drop(self, count: int) -> None:
        self.drops += count

    # -- what the engine asks --------------------------------------------------------

    def crash(self, container: str | None, exit_code: int) -> None:
        name = container or self.layout.producer
        if name not in self.containers:
            raise ValueError(f"pod {self.pod.name!r} has no container {name!r} (it has: {', '.join(self.containers)})")
        with self.cond:
            if not self._crash(name, exit_code):
                raise ValueError(f"container {name!r} of pod {self.pod.name!r} is not running, so it cannot crash")
            self.cond.notify_all()

    def silence(self) -> None:
        with self.cond:
            self._silence()

    def server_down(self, seconds: float, hang: bool) -> None:
        with self.cond:
            self._server_down(seconds, hang)

    def drop(self, count: int) -> None:
        with self.cond:
            self._drop(count)

    def wait_for_change(self, seconds: float) -> None:
        with self.cond:
            self.cond.wait(seconds)

    def states(self) -> dict[str, ContainerState]:
        with self.cond:
            out = {}
            for n, c in self.containers.items():
                running = c.phase == "running"
                out[n] = ContainerState(
                    name=n,
                    state="running" if running else "waiting",
                    reason={"creating": "ContainerCreating", "backoff": "CrashLoopBackOff"}.get(c.phase, ""),
                    restarts=c.restarts,
                    started_at=c.started_at if running else None,
                    last_exit_code=c.last_exit_code,
                    last_reason=c.last_reason,
                    last_finished_at=c.last_finished_at,
                )
            return out

    def logs(self, container: str, tail: int | None) -> str:
        self.pod.container(container)
        with self.cond:
            lines = list(self.containers[container].logs)
        if tail is not None:
            lines = lines[-tail:] if tail else []
        return "".join(ln + "\n" for ln in lines)

    def accepting(self, port: int) -> int:
        """The local port of the fake server, or :class:`PortError` saying why ``port`` refuses connections."""
        refused = f"nothing answers on port {port} of pod {self.pod.name!r} (connection refused"
        if port != self.layout.port:
            raise PortError(
                f"{refused}); in the fake engine only the serving container's port {self.layout.port} answers"
            )
        with self.cond:
            if self.stopped or self._vanishing:
                raise PortError(f"{refused}: the pod is gone)")
            if self.containers[self.layout.server].phase != "running":
                raise PortError(
                    f"{refused}: container {self.layout.server!r} is not running); wait until it runs again"
                )
            if self._down() and not self.down_hang:
                raise PortError(f"{refused}: the server is down for a while); try again in a moment")
        return int(self.server.server_address[1])

    def _down(self) -> bool:
        return time.monotonic() < self.down_until

    # -- the HTTP server's side --------------------------------------------------------

    def wait_until_serving(self) -> bool:
        """Block while the server hangs; False when it cannot answer (down, not running, gone)."""
        with self.cond:
            while self._down() and self.down_hang and not self.stopped:
                self.cond.wait(self.down_until - time.monotonic())
            return not self.stopped and not self._down() and self.containers[self.layout.server].phase == "running"

    def take_drop(self) -> bool:
        with self.cond:
            if self.drops:
                self.drops -= 1
                return True
            return False

    def served(self, url_path: str) -> _File | None:
        """The file a request for ``url_path`` gets, like nginx with the server's mount as its web root."""
        path = unquote(urlsplit(url_path).path) or "/"
        if path.endswith("/"):
            path += "index.html"
        served = self.layout.server_path
        if served.endswith(self.layout.url_path):
            target = posixpath.normpath(served[: len(served) - len(self.layout.url_path)] + "/" + path.lstrip("/"))
        elif path == self.layout.url_path:
            target = served
        else:
            return None
        with self.cond:
            found = self._tree(self.layout.server).get(target)
            return _File(bytearray(found.data), found.mtime) if found is not None else None

    def access_log(self, line: str) -> None:
        with self.cond:
            self.containers[self.layout.server].logs.append(line)

    # -- files -------------------------------------------------------------------------

    def _tree(self, container: str) -> dict[str, _File | None]:
        """Every path ``container`` sees: a file, or None for a directory."""
        tree: dict[str, _File | None] = {"/": None, "/tmp": None}

        def add(path: str, f: _File | None) -> None:
            tree[path] = f
            parent = posixpath.dirname(path)
            while parent not in tree:
                tree[parent] = None
                parent = posixpath.dirname(parent)

        for path, f in self.private[container].items():
            add(path, f)
        for volume, mount in self.pod.container(container).mounts:
            add(mount, None)
            for rel, f in self.volumes.get(volume, {}).items():
                add(posixpath.join(mount, rel), f)
        return tree

    def _store(self, container: str, path: str) -> tuple[dict[str, _File], str]:
        """Where a file at ``path`` of ``container`` lives: a volume it mounts, else its own filesystem."""
        best: tuple[int, str, str] | None = None
        for volume, mount in self.pod.container(container).mounts:
            if (path == mount or path.startswith(mount.rstrip("/") + "/")) and (best is None or len(mount) > best[0]):
                best = (len(mount), volume, mount)
        if best is None:
            return self.private[container], path
        _, volume, mount = best
        return self.volumes.setdefault(volume, {}), posixpath.relpath(path, mount)

    # -- exec --------------------------------------------------------------------------

    def run(self, container: str, argv: list[str], timeout: float | None) -> tuple[int, bytes, bytes]:
        with self.cond:
            if self.containers[container].phase != "running":
                raise EngineError(
                    f"container {container!r} of pod {self.pod.name!r} is not running "
                    f"({self._phase_text(container)}); apply the lab and wait until it is ready first"
                )
            cmd = posixpath.basename(argv[0])
            if cmd in self.script.hang_commands or argv[0] in self.script.hang_commands:
                self._block(container, argv, timeout, None)
            if cmd == "sleep":
                seconds = _number(argv[1]) if len(argv) == 2 else None
                if seconds is None:
                    return 1, b"", b"sleep: the fake engine takes one number of seconds\n"
                self._block(container, argv, timeout, seconds)
                return 0, b"", b""
            return self._command(container, argv)

    def _block(self, container: str, argv: list[str], timeout: float | None, seconds: float | None) -> None:
        """Wait like a command that takes ``seconds`` (None: forever); raise when ``timeout`` ends it first."""
        begun = time.monotonic()
        limits = [x for x in (seconds, timeout) if x is not None]
        end = begun + min(limits) if limits else None
        while not self.stopped and (end is None or time.monotonic() < end):
            self.cond.wait(None if end is None else end - time.monotonic())
        if self.stopped:
            raise EngineError(f"the exec stream to container {container!r} broke: pod {self.pod.name!r} was deleted")
        if timeout is not None and (seconds is None or timeout < seconds):
            raise CommandTimedOut()

    def _phase_text(self, container: str) -> str:
        return {"creating": "still being created", "backoff": "it crashed and waits to restart"}.get(
            self.containers[container].phase, self.containers[container].phase
        )

    def _command(self, container: str, argv: list[str]) -> tuple[int, bytes, bytes]:
        cmd, args = posixpath.basename(argv[0]), argv[1:]
        if argv[0] in _SHELLS and len(args) >= 2 and args[0] == "-c":
            return self._shell(args[1])
        handlers: dict[str, Callable[[str, list[str]], tuple[int, bytes, bytes]]] = {
            "cat": self._cat,
            "tail": self._tail,
            "ls": self._ls,
            "test": self._test,
            "touch": self._touch,
            "date": _date,
            "echo": _echo,
            "hostname": lambda _c, _a: (0, f"{self.pod.name}\n".encode(), b""),
            "true": lambda _c, _a: (0, b"", b""),
            "false": lambda _c, _a: (1, b"", b""),
        }
        handler = handlers.get(cmd)
        if handler is None or (cmd != argv[0] and not argv[0].startswith("/")):
            known = ", ".join(COMMANDS)
            return 127, b"", f"{argv[0]}: command not found (the fake engine runs only: {known})\n".encode()
        return handler(container, args)

    def _shell(self, script: str) -> tuple[int, bytes, bytes]:
        from labkit.lifecycle import kill_command

        if script == kill_command([""])[2]:
            return 0, b"", b""  # a fake command runs only while its exec waits: once that ends there is none to end
        exit_match = _EXIT.match(script)
        if exit_match:
            return int(exit_match.group(1)), b"", b""
        curl = _CURL_CHECK.search(script)
        if curl:
            # The fake images have no curl, so the in-pod probe reports itself unavailable.
            msg = curl.group("msg")
            return int(curl.group("code")), b"", (msg[1:-1] + "\n").encode() if msg else b""
        first = script.strip().split()[0] if script.strip() else "sh"
        return 127, b"", f"{first}: command not found (the fake engine's shell runs only 'exit N')\n".encode()

    def _cat(self, container: str, args: list[str]) -> tuple[int, bytes, bytes]:
        tree, out, err = self._tree(container), bytearray(), bytearray()
        for arg in args or ["-"]:
            path = _abs(arg)
            if path not in tree:
                err += f"cat: {arg}: No such file or directory\n".encode()
            elif tree[path] is None:
                err += f"cat: {arg}: Is a directory\n".encode()
            else:
                out += tree[path].data  # type: ignore[union-attr]
        return (1 if err else 0), bytes(out), bytes(err)

    def _tail(self, container: str, args: list[str]) -> tuple[int, bytes, bytes]:
        count, paths, rest = 10, [], list(args)
        while rest:
            a = rest.pop(0)
            if a == "-n" and rest:
                n = rest.pop(0)
            elif a.startswith("-n") and len(a) > 2:
                n = a[2:]
            elif re.fullmatch(r"-\d+", a):
                n = a[1:]
            else:
                paths.append(a)
                continue
            if not n.isdigit():
                return 1, b"", f"tail: invalid number of lines: {n!r}\n".encode()
            count = int(n)
        if len(paths) != 1:
            return 1, b"", b"tail: the fake engine reads one file: tail -n N PATH\n"
        code, data, err = self._cat(container, paths)
        if code:
            return code, b"", err.replace(b"cat:", b"tail:")
        lines = data.splitlines(keepends=True)
        return 0, b"".join(lines[-count:] if count else []), b""

    def _ls(self, container: str, args: list[str]) -> tuple[int, bytes, bytes]:
        flags = "".join(a[1:] for a in args if a.startswith("-"))
        paths = [a for a in args if not a.startswith("-")] or ["/"]
        if set(flags) - set("Aal1"):
            return 2, b"", f"ls: the fake engine knows only -A, -a, -l: {' '.join(args)}\n".encode()
        tree, out, err = self._tree(container), [], []
        for arg in paths:
            path = _abs(arg)
            if path not in tree:
                err.append(f"ls: cannot access '{arg}': No such file or directory\n")
                continue
            f = tree[path]
            if f is not None:
                out.append(_long(arg, f) if "l" in flags else arg)
                continue
            prefix = path.rstrip("/") + "/"
            names = sorted({p[len(prefix) :].split("/")[0] for p in tree if p.startswith(prefix) and p != path})
            if "l" in flags:
                entries = [(n, tree[prefix + n]) for n in names]
                total = sum((len(e.data) + 4095) // 4096 * 4 for _, e in entries if e is not None)
                out.append(f"total {total}")
                if "a" in flags:
                    out += [_long(".", None), _long("..", None)]
                out += [_long(n, e) for n, e in entries]
            else:
                out += ([".", ".."] if "a" in flags else []) + names
        text = "".join(line + "\n" for line in out)
        return (2 if err else 0), text.encode(), "".join(err).encode()

    def _test(self, container: str, args: list[str]) -> tuple[int, bytes, bytes]:
        if len(args) != 2 or args[0] not in ("-e", "-d", "-f", "-s"):
            return 2, b"", b"test: the fake engine knows only: test -e|-d|-f|-s PATH\n"
        tree, path = self._tree(container), _abs(args[1])
        if path not in tree:
            return 1, b"", b""
        f = tree[path]
        ok = {"-e": True, "-d": f is None, "-f": f is not None, "-s": f is None or bool(f and f.data)}[args[0]]
        return (0 if ok else 1), b"", b""

    def _touch(self, container: str, args: list[str]) -> tuple[int, bytes, bytes]:
        if not args:
            return 1, b"", b"touch: missing file operand\n"
        tree, err = self._tree(container), bytearray()
        for arg in args:
            path = _abs(arg)
            if path in tree:
                if tree[path] is not None:
                    tree[path].mtime = time.time()  # type: ignore[union-attr]
                continue
            if tree.get(posixpath.dirname(path), "missing") is not None:
                err += f"touch: cannot touch '{arg}': No such file or directory\n".encode()
                continue
            store, key = self._store(container, path)
            store[key] = _File()
        return (1 if err else 0), b"", bytes(err)

    # -- stopping ----------------------------------------------------------------------

    def stop(self, timeout: float) -> None:
        """Stop the clockwork and the server, close every connection, and join every thread of this pod."""
        with self._stop_lock:
            with self.cond:
                first = not self.stopped
                self.stopped = True
                self.cond.notify_all()
            if first:
                if self._serve_thread.ident is not None:
                    self.server.shutdown()  # waits for serve_forever, so only once it was started
                self.server.drop_all()
                self.server.server_close()
            deadline = time.monotonic() + timeout
            for t in [self._supervisor, self._serve_thread, *self.server.handler_threads()]:
                if t is not threading.current_thread() and t.ident is not None:
                    t.join(max(0.0, deadline - time.monotonic()))


class _Server(socketserver.ThreadingMixIn, HTTPServer):
    """The serving container's HTTP server on 127.0.0.1, which can close every connection it has open."""

    daemon_threads = True

    def __init__(self, sim: _FakePod) -> None:
        self.sim = sim
        self._track = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._handlers: set[threading.Thread] = set()
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host name up (getfqdn); the fake needs no name lookup.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "localhost", int(self.server_address[1])

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        t = threading.Thread(
            target=self._serve_one,
            args=(request, client_address),
            name=f"labkit-fake-{self.sim.pod.name}-conn",
            daemon=True,
        )
        with self._track:
            self._conns.add(request)
            self._handlers.add(t)
        t.start()

    def _serve_one(self, request: socket.socket, client_address: object) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._track:
                self._conns.discard(request)
                self._handlers.discard(threading.current_thread())

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that went away mid-response is not an error of the server

    def drop_all(self) -> None:
        """Close every open connection (a shutdown wakes its thread, which then closes the socket)."""
        with self._track:
            conns = list(self._conns)
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def handler_threads(self) -> list[threading.Thread]:
        with self._track:
            return list(self._handlers)

    def server_close(self) -> None:
        socketserver.TCPServer.server_close(self)  # the handler threads are joined by _FakePod.stop


class _Handler(BaseHTTPRequestHandler):
    """Answers like nginx serving the shared volume: whole file, ranges, 404 and 416."""

    protocol_version = "HTTP/1.1"
    server_version = "nginx"
    sys_version = ""
    server: _Server

    def do_GET(self) -> None:
        self._answer(with_body=True)

    def do_HEAD(self) -> None:
        self._answer(with_body=False)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the access log goes to the container's logs instead

    def _answer(self, *, with_body: bool) -> None:
        sim = self.server.sim
        if not sim.wait_until_serving():
            self.close_connection = True  # closed without an answer, as by a server that went away
            return
        found = sim.served(self.path)
        status, headers, body = _response(found, self.headers.get("Range"))
        headers["Content-Length"] = str(len(body))
        if self.close_connection:
            headers["Connection"] = "close"
        head = f"HTTP/1.1 {status} {self.responses[status][0]}\r\n"
        head += "".join(
            f"{k}: {v}\r\n"
            for k, v in {"Server": "nginx (labkit fake)", "Date": formatdate(usegmt=True), **headers}.items()
        )
        raw_head = (head + "\r\n").encode("latin-1")
        payload = body if with_body else b""
        if sim.take_drop():
            sent = raw_head + payload[: len(payload) // 2] if payload else raw_head[: len(raw_head) // 2]
            self.close_connection = True
        else:
            sent = raw_head + payload
        # Logged before it is sent, so a client that has its answer also finds it in the logs.
        stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
        agent = self.headers.get("User-Agent", "-")
        sim.access_log(
            f'{self.client_address[0]} - - [{stamp}] "{self.requestline}" {status} {max(0, len(sent) - len(raw_head))} '
            f'"-" "{agent}"'
        )
        try:
            self.wfile.write(sent)
        except OSError:
            self.close_connection = True


def _response(found: _File | None, range_header: str | None) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body for a file (None: missing) and an optional ``Range`` header."""
    if found is None:
        return 404, {"Content-Type": "text/html"}, _page("404 Not Found")
    data, size = bytes(found.data), len(found.data)
    headers = {
        "Content-Type": "text/html",
        "Last-Modified": formatdate(found.mtime, usegmt=True),
        "Accept-Ranges": "bytes",
    }
    wanted = re.fullmatch(r"\s*bytes=(\d+)-(\d*)\s*", range_header or "")
    if not wanted:
        return 200, headers, data
    start = int(wanted.group(1))
    if start >= size:
        return (
            416,
            {"Content-Type": "text/html", "Content-Range": f"bytes */{size}"},
            _page("416 Requested Range Not Satisfiable"),
        )
    end = min(int(wanted.group(2)), size - 1) if wanted.group(2) else size - 1
    if end < start:
        return 200, headers, data
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return 206, headers, data[start : end + 1]


def _page(title: str) -> bytes:
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
        "<hr><center>nginx (labkit fake)</center>\r\n</body>\r\n</html>\r\n".encode()
    )


def _abs(path: str) -> str:
    return posixpath.normpath("/" + path) if not path.startswith("/") else posixpath.normpath(path)


def _long(name: str, f: _File | None) -> str:
    mode, size, mtime = ("drwxrwxrwx", 4096, time.time()) if f is None else ("-rw-r--r--", len(f.data), f.mtime)
    when = time.strftime("%b %e %H:%M", time.gmtime(mtime))
    return f"{mode} 1 root root {size:>6} {when} {name}"


def _date(_container: str, args: list[str]) -> tuple[int, bytes, bytes]:
    ns = time.time_ns()
    secs, frac = divmod(ns, 1_000_000_000)
    fmt = args[0][1:] if args and args[0].startswith("+") else "%a %b %e %H:%M:%S UTC %Y"
    if len(args) > (1 if args and args[0].startswith("+") else 0):
        return 1, b"", f"date: the fake engine takes only +FORMAT: {shlex.join(args)}\n".encode()
    text = fmt.replace("%N", f"{frac:09d}").replace("%s", str(secs))
    return 0, (time.strftime(text, time.gmtime(secs)) + "\n").encode(), b""


def _echo(_container: str, args: list[str]) -> tuple[int, bytes, bytes]:
    if args[:1] == ["-n"]:
        return 0, " ".join(args[1:]).encode(), b""
    return 0, (" ".join(args) + "\n").encode(), b""


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value >= 0 else None


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _later(action: Callable[..., object], *args: Any, **kwargs: Any) -> Callable[[float], object]:
    """An action for the supervisor that ignores the time it was due (arguments bound now, not when it runs)."""
    return lambda _due: action(*args, **kwargs)
