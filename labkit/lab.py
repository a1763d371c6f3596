"""The object notebooks use: one lab, one Pod, the tutorial's steps as methods.

``Lab`` never knows which engine runs the pod; it resolves names from the
manifest, keeps track of what it started, and makes sure nothing is left
running when the ``with`` block ends, an exception escapes, or the
interpreter exits.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import os
import shlex
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

import pandas as pd

from labkit import latency, lifecycle, memory, ownership, poller, probe, views
from labkit.checks import restarts_between
from labkit.clocks import ClockOffset, estimate_offset, shared_clock
from labkit.display import MeasureProgress, ReadyProgress, in_notebook
from labkit.engines import ContainerState, Engine, ExecResult, get_engine
from labkit.errors import (
    EngineError,
    ExecError,
    FetchError,
    LabkitError,
    NotReady,
    PodExists,
    PodGone,
    PortError,
    ReadyTimeout,
    Stopped,
)
from labkit.forward import HttpResponse, PortForward
from labkit.layout import Layout, derive_layout
from labkit.manifest import Pod, load_pod
from labkit.observation import Observation
from labkit.progress import Recorder
from labkit.report import LatencyReport, Lifecycle
from labkit.settings import MeasureSettings

# Every applied lab's engine and pod, held strongly so a lab that was garbage-collected
# is still cleaned up when the interpreter exits.
_LIVE: dict[str, tuple[Engine, Pod]] = {}
_LIVE_LOCK = threading.Lock()


class Lab:
    """A sidecar lab: a Pod from ``manifest`` run by an engine.

    ``name`` runs the pod under another name (two labs side by side);
    ``env`` sets environment variables per container, e.g.
    ``{"producer": {"INTERVAL": "0.05"}}``, without editing the YAML;
    ``producer``, ``server``, ``file``, ``port``, ``interval`` and
    ``url_path`` name the roles where the manifest leaves them open (see
    :mod:`labkit.layout`).
    ``engine`` is an engine name or object; by default ``$LABKIT_ENGINE``,
    else a cluster when a kubeconfig names one that answers, else Podman.
    """

    def __init__(
        self,
        manifest: str | os.PathLike[str] | Pod,
        *,
        engine: str | Engine | None = None,
        name: str | None = None,
        producer: str | None = None,
        server: str | None = None,
        file: str | None = None,
        port: int | None = None,
        interval: float | None = None,
        env: Mapping[str, Mapping[str, object]] | None = None,
        url_path: str | None = None,
        progress: bool = True,
    ) -> None:
        pod = manifest if isinstance(manifest, Pod) else load_pod(manifest)
        pod = pod.with_env(env) if env else pod
        pod = pod.renamed(name) if name else pod
        self.session = ownership.new_session()
        self.pod: Pod = ownership.stamp(pod, self.session)
        self.layout: Layout = derive_layout(
            self.pod, producer=producer, server=server, file=file, port=port, interval=interval, url_path=url_path
        )
        self.engine: Engine = get_engine(engine)
        self.progress = progress
        self.applied = False
        self.deleted = False
        """True once :meth:`delete` removed the pod, until :meth:`apply` creates it again."""
        self.changes: list[str] = []
        """What was left out of the manifest or changed to run it on this engine, after :meth:`apply`."""
        self.last_report: LatencyReport | None = None
        """The report of the last :meth:`measure`, finished or not: a stopped one's partial report too.

        None until a measurement made a report (and while one that was stopped before it observed anything).
        """
        self._forwards: list[PortForward] = []
        self._settling: lifecycle.Settling | None = None
        self._steps = Recorder(self.engine, self.pod.name)

    @property
    def name(self) -> str:
        return self.pod.name

    def __repr__(self) -> str:
        state = "applied" if self.applied else "not applied"
        return f"<Lab {self.name!r} on {self.engine.name} ({state})>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """How a notebook shows a lab (``lab.wait_ready()`` as a cell's last line): in words."""
        if self.applied:
            state = "its pod is applied; lab.delete() removes it"
        elif self.deleted:
            state = "its pod was deleted; lab.apply() creates it again"
        else:
            state = "its pod is not applied yet; lab.apply() creates it"
        printer.text(f"lab {self.name!r} on {self.engine.name}: {state}")

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.delete()

    # -- the tutorial's steps ------------------------------------------------------

    def apply(self, *, replace: bool = False) -> Lab:
        """Create the pod (tutorial step 2).

        Applying again in the same session changes nothing. A leftover of a
        session that has ended is replaced; a pod another session is using,
        or one labkit did not create, is an error unless ``replace=True``.
        """
        if self.progress:
            print(f"pod {self.name}: applying on {self.engine.describe()}", flush=True)
        with _LIVE_LOCK:
            _LIVE[self.session] = (self.engine, self.pod)
        self.applied = True
        self.deleted = False
        try:
            ignored = [f"left out of the manifest: {item}" for item in self.pod.ignored]
            self.changes = ignored + lifecycle.apply(self.engine, self.pod, replace=replace)
        except PodExists:
            # The name belongs to someone else's pod: touch nothing.
            self.applied = False
            self._forget()
            raise
        except BaseException:
            self._cleanup_after_failure()
            raise
        if self.progress:
            for change in self.changes:
                print(f"  note: {change}", flush=True)
        self._steps.step("applied")
        return self

    def wait_ready(self, timeout: float = 120) -> Lab:
        """Block until every container runs; raise naming the container and reason if one cannot.

        A pod that cannot start is removed before the error is raised. It
        returns as soon as every container runs; for a moment after that the
        containers are still watched in the background, and a command that
        exits at once is raised by the lab's next step. Ctrl-C (or the
        notebook's stop button) raises :class:`~labkit.errors.Stopped` with
        the containers' states; the pod stays.
        """
        self._stop_settling()
        show = ReadyProgress(self.name, self.pod.container_names, enabled=self.progress)
        states: dict[str, str] = dict.fromkeys(self.pod.container_names, "pending")

        def progress(now: dict[str, str]) -> None:
            states.update(now)
            show(now)

        try:
            with _stop_as(f"waiting for pod {self.name} to be ready", lambda: _states_text(states)):
                ready = lifecycle.wait_ready(self.engine, self.pod, timeout, progress)
        except NotReady as exc:
            show.failed()
            # A pod that cannot start would otherwise keep restarting in the background.
            removed = self._cleanup_after_failure()
            note = " (the pod was removed)" if removed else ""
            raise type(exc)(f"{exc}{note}", container=exc.container, reason=exc.reason) from None
        except BaseException:
            show.failed()
            raise
        show.done()
        self._settling = lifecycle.Settling(self.engine, self.pod, ready)
        self._steps.step("ready")
        return self

    def wait_serving(self, timeout: float = 30) -> Lab:
        """Block until the server answers with the producer's file holding at least one whole line.

        A pod is ready as soon as its containers run, as on Kubernetes; the
        producer's first line comes a moment later, and until then the
        server answers 404 (or, just started, nothing at all) and ``ls``
        shows an empty volume. Call this between :meth:`wait_ready` and
        the first look at the file. Raises
        :class:`~labkit.errors.ReadyTimeout` naming the producer and the last
        answer when nothing is served within ``timeout`` seconds, and
        :class:`~labkit.errors.Stopped` with the last answer on Ctrl-C (or
        the notebook's stop button).
        """
        if timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        self._require_pod("wait_serving")
        answer = ["no answer yet"]
        with _stop_as(
            f"waiting for pod {self.name} to serve {self.layout.url_path}", lambda: f"last answer: {answer[0]}"
        ):
            return self._wait_serving(timeout, answer)

    def _wait_serving(self, timeout: float, answer: list[str]) -> Lab:
        """:meth:`wait_serving`'s loop; ``answer[0]`` is the last answer, in words."""
        started = time.monotonic()
        deadline = started + timeout
        while True:
            try:
                resp = self._get(None, {}, None, max(0.5, min(5.0, deadline - time.monotonic())))
            except PortError as exc:
                answer[0] = str(exc).split("; check that", 1)[0]
            else:
                if resp.status == 200 and b"\n" in resp.body:
                    if self.progress:
                        took = time.monotonic() - started
                        print(f"pod {self.name} serves {resp.path} (took {took:.1f} s)", flush=True)
                    return self
                answer[0] = f"HTTP {resp.status} {resp.reason}" + (", an empty file" if resp.status == 200 else "")
            if time.monotonic() >= deadline:
                producer, path = self.layout.producer, self.layout.producer_path
                raise ReadyTimeout(
                    f"pod {self.name!r} did not serve {self.layout.url_path} within {timeout:g} s (last answer: "
                    f"{answer[0]}); the container {producer!r} should have written {path} by now: look at "
                    f"lab.logs({producer!r}) and lab.containers()",
                    container=producer,
                    reason="NotServing",
                )
            self._require_pod("wait_serving")  # raises what the watch after wait_ready found
            time.sleep(0.1)

    def exec(
        self,
        cmd: str | Sequence[str],
        container: str | None = None,
        *,
        shell: bool = False,
        check: bool = False,
        timeout: float | None = 30,
    ) -> ExecResult:
        """Run a command in a container (tutorial steps 3 and 4), like ``kubectl exec``.

        ``cmd`` is a list of arguments, or a string split like a shell would
        split it; ``shell=True`` runs the string with ``/bin/sh -c`` inside
        the container instead, for pipes and redirections. Nothing is ever
        run by a shell on this machine. Without ``container`` the default
        container is used, as kubectl picks it. A non-zero exit code is
        returned, or raised as :class:`~labkit.errors.ExecError` with ``check=True``.
        Ctrl-C (or the notebook's stop button) ends the command in the
        container too, then raises :class:`~labkit.errors.Stopped`.
        """
        argv = _argv(cmd, shell)
        target = self.pod.container(container).name
        self._require_pod("exec", attach=True)
        try:
            with _stop_as(f"the command {argv!r} in container {target!r}", str):  # the note says if it was ended
                result = lifecycle.run(self.engine, self.pod, target, argv, timeout)
        except EngineError as exc:
            self._raise_if_gone(exc)
            raise
        if check:
            result.check_returncode()
        self._steps.step("exec-default" if target == self.pod.default_container else "exec-other")
        return result

    def port_forward(self, local_port: int | None = None, remote_port: int | None = None) -> PortForward:
        """Listen on ``127.0.0.1:local_port`` and relay to the pod's ``remote_port`` (tutorial step 5).

        ``local_port=None`` picks a free port; ``remote_port`` defaults to the
        serving container's port. Use it in a ``with`` block (which yields the
        URL) or keep it open until :meth:`delete`.
        """
        remote = self.layout.port if remote_port is None else remote_port
        self._require_pod("port_forward", attach=True)
        target = f"port {remote} of pod {self.name}"
        fwd = PortForward(
            lambda: self.engine.connect(self.pod, remote, 10), local_port=local_port, target=target, remote_port=remote
        )
        self._forwards.append(fwd)
        return fwd

    def fetch(self, path: str | None = None, *, port: int | None = None, timeout: float = 10) -> str:
        """GET ``path`` from the pod through a port-forward and return the body (like ``curl``).

        Defaults to the file the producer writes. Raises :class:`FetchError`
        on an HTTP error status and :class:`PortError` if nothing answers.
        """
        self._require_pod("fetch", attach=True)
        resp = self._get(path, {}, port, timeout)
        if resp.status >= 400:
            raise FetchError(
                f"GET {resp.path} from port {resp.port} of pod {self.name} answered HTTP {resp.status} {resp.reason}; "
                + (
                    "the file does not exist yet or is not readable by the server"
                    if resp.status in (403, 404)
                    else "look at the server's logs with lab.logs()"
                ),
                status=resp.status,
            )
        self._steps.step("fetched")
        return resp.text

    def request(
        self,
        path: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        port: int | None = None,
        timeout: float = 10,
    ) -> HttpResponse:
        """GET ``path`` with ``headers`` through a port-forward and return the whole answer, whatever its status.

        For looking at HTTP itself (``curl -i -H ...``): a conditional request
        may answer 304, a range request 206 or 416. Raises :class:`PortError`
        if nothing answers.
        """
        self._require_pod("request", attach=True)
        return self._get(path, headers or {}, port, timeout)

    def _get(self, path: str | None, headers: Mapping[str, str], port: int | None, timeout: float) -> HttpResponse:
        fwd = self._forward_to(port)
        url_path = path if path is not None else self.layout.url_path
        conn = http.client.HTTPConnection("127.0.0.1", fwd.local_port, timeout=timeout)
        try:
            conn.request("GET", url_path, headers=dict(headers))
            resp = conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            # A tunnel reports why it closed a moment after the connection drops.
            deadline = time.monotonic() + 1.5
            while fwd.last_error is None and time.monotonic() < deadline:
                time.sleep(0.05)
            why = fwd.last_error or f"{exc.__class__.__name__}: {exc}"
            if not lifecycle.exists(self.engine, self.pod):
                raise self._gone() from exc
            raise PortError(
                f"no answer from {fwd.target} for GET {url_path}: {why}; "
                "check that the container listens on that port (lab.logs(...))"
            ) from exc
        finally:
            conn.close()
        return HttpResponse(
            path=url_path,
            port=fwd.remote_port,
            status=resp.status,
            reason=resp.reason,
            headers=dict(resp.getheaders()),
            body=body,
        )

    def logs(self, container: str | None = None, *, tail: int | None = None) -> str:
        """What a container printed (``kubectl logs``)."""
        name = self.pod.container(container).name
        self._require_pod("logs", attach=True)
        try:
            return self.engine.logs(self.pod, name, tail)
        except EngineError as exc:
            self._raise_if_gone(exc)
            raise

    def measure(
        self,
        *,
        duration: float | None = None,
        lines: int | None = None,
        poll_interval: float = 0.2,
        max_latency: float | None = None,
        cadence_tolerance: float | None = None,
        timeout: float | None = None,
        via: Literal["port-forward", "in-pod"] = "port-forward",
    ) -> LatencyReport:
        """Measure write-to-serve latency for ``duration`` seconds or ``lines`` new lines, and check the lab.

        ``via="port-forward"`` (the default) fetches the file from this
        machine, as a student's browser would. ``via="in-pod"`` fetches it with
        ``curl`` from inside the serving container and stamps the fetches with
        the pod's own clock, which takes the clock offset out of the bounds;
        it raises :class:`~labkit.errors.ProbeUnavailable` where the image has
        no curl. The arguments are those of
        :class:`~labkit.settings.MeasureSettings`, which checks them and says
        how the bounds left as None are derived; see
        :func:`labkit.report.build_report` for the checks.

        Progress shows while it observes. The containers are watched too: a
        restart fails the "containers stayed up" check, and a pod that
        disappears ends the measurement within seconds with
        :class:`~labkit.errors.PodGone`, whose ``report`` holds what was seen.

        Ctrl-C (or the notebook's stop button) stops it: the partial report,
        whose ``interrupted`` is True and whose checks cannot all pass, is
        kept in :attr:`last_report` (in a notebook, with progress on, it is
        shown first, marked stopped by you), then
        :class:`~labkit.errors.Stopped` is raised with it as ``report``, which
        ends the cell and the cells queued after it. The pod stays: the next
        ``measure`` works at once.
        """
        if via not in ("port-forward", "in-pod"):
            raise ValueError(f"via must be 'port-forward' or 'in-pod', not {via!r}")
        settings = MeasureSettings(
            duration=duration,
            lines=lines,
            poll_interval=poll_interval,
            interval=self.layout.interval,
            max_latency=max_latency,
            cadence_tolerance=cadence_tolerance,
            timeout=timeout,
        )
        self._require_pod("measure")
        self.last_report = None
        what = f"the measurement of pod {self.name}"
        stage = ["before observing began, while the containers were read"]
        with _stop_as(what, lambda: f"{stage[0]}; no report was made"):
            report = self._measure(settings, via, stage)
        self.last_report = report
        if report.ended == "pod gone":
            raise PodGone(
                f"pod {self.name!r} disappeared while it was measured (deleted by someone else, or evicted), after "
                f"{report.duration:.1f} s; what was observed until then is in this error's .report; apply the "
                "lab again to measure anew",
                report=report,
            )
        self._steps.step("measured", report)
        if report.interrupted:
            count = int(report.summary["count"])
            shown = self.progress and in_notebook()
            if shown:
                report.show()
            raise Stopped(
                what,
                f"after {report.duration:.1f} s ({count} new line{'s' if count != 1 else ''} seen)",
                report=report,
                kept=f"the partial report is {'shown above and ' if shown else ''}in lab.last_report",
            )
        return report

    def _measure(self, settings: MeasureSettings, via: str, stage: list[str]) -> LatencyReport:
        """:meth:`measure` once its arguments are checked; ``stage[0]`` says what it does, for a stop."""
        before = self._baseline()
        watch = _Watch(
            self.engine,
            self.pod,
            before,
            settings.time_limit,
            settings.duration,
            settings.lines,
            enabled=self.progress,
        )

        fallback_notes: list[str] = []

        def producer_copy() -> ExecResult:
            stage[0] = "while the producer's copy of the file was read"
            try:
                return self.exec(["cat", self.layout.producer_path], self.layout.producer, check=True)
            except ExecError as exc:
                if "No such file" not in exc.stderr:
                    raise
                fallback_notes.append(f"the producer never created {self.layout.producer_path}")
                return ExecResult(["cat", self.layout.producer_path], 0, container=self.layout.producer)
            except LabkitError as exc:
                watch.check_gone()  # a copy that cannot be read because the pod went is PodGone
                try:
                    # A crashed producer waiting to restart cannot run cat; the volume outlives it.
                    copy = self.exec(["cat", self.layout.server_path], self.layout.server, check=True)
                except LabkitError:
                    raise exc from None
                fallback_notes.append(
                    f"the producer could not run cat ({exc}); the file was read from the volume in "
                    f"{self.layout.server} instead (by exec, not over HTTP)"
                )
                return copy

        def observe() -> Observation:
            if via == "port-forward":
                seen = poller.observe(
                    port=self._forward_to(None).local_port,
                    path=self.layout.url_path,
                    read_written=lambda: producer_copy().stdout,
                    settings=settings,
                    tick=watch,
                )
            else:
                seen = self._observe_in_pod(producer_copy, watch, settings)
            return replace(seen, notes=[*seen.notes, *fallback_notes])

        report: LatencyReport | None = None
        try:
            if via == "port-forward":
                stage[0] = "before observing began, while the pod's clock offset was estimated"
                clock = self.clock_offset()
            else:
                clock = shared_clock(f"the in-pod probe and the producer both read the clock of pod {self.name}")
            stage[0] = "while observing"
            report = latency.measure(
                observe,
                settings,
                clock=clock,
                lifecycle=lambda: watch.final(self.engine.restart_backoff),
                engine_description=self.engine.describe(),
                lab_description=f"{self.name}: {self.layout.describe()}",
            )
        finally:
            if report is not None:
                watch.done(report)
            watch.close()
        return report

    def _observe_in_pod(
        self, producer_copy: Callable[[], ExecResult], watch: _Watch, settings: MeasureSettings
    ) -> Observation:
        """Watch the served file with the in-pod probe, by exec in the serving container."""
        server = self.layout.server

        def exists(path: str) -> bool:
            try:
                return self.exec(["test", "-e", path], server).returncode == 0
            except LabkitError:
                return True  # the server is unreachable: stop waiting, the watch says why

        def pod_clock() -> int:
            return int(self.exec(["date", "+%s%N"], server, check=True).stdout.strip())

        return probe.observe(
            lambda argv, limit_s: self.exec(argv, server, timeout=limit_s),
            lambda: producer_copy().stdout_bytes,
            port=self.layout.port,
            path=self.layout.url_path,
            settings=settings,
            exists=exists,
            touch=lambda path: self.exec(["touch", path], server, check=True),
            tick=watch,
            clock=pod_clock,
        )

    def containers(self) -> pd.DataFrame:
        """Each container as the engine sees it now, one row per container (``kubectl get pod`` in a table).

        Columns: ``state`` (waiting, running, terminated), ``reason``,
        ``restarts``, ``exit_code``, ``last_exit_code``, ``last_reason`` and
        ``last_finished_at`` (the run before a restart). Raises
        :class:`PodGone` when the pod has gone.
        """
        self._require_pod("look at the containers", attach=True)
        states = lifecycle.container_states(self.engine, self.pod)
        return views.containers_table([states[n] for n in self.pod.container_names if n in states])

    def memory(self) -> pd.DataFrame:
        """The memory each container is charged now, one row per container, read from its own cgroup.

        Columns: ``memory_bytes`` (all it is charged) and ``tmpfs_bytes``,
        the part held in tmpfs: what it wrote into an emptyDir of ``medium:
        Memory`` counts here, against the container that wrote it. Raises
        :class:`PodGone` when the pod has gone, and :class:`EngineError` where
        containers have no cgroup of their own (rootless Podman on cgroup v1),
        rather than show the user's whole charge as each container's.
        """
        if not self.engine.container_cgroups:
            raise EngineError(memory.NO_OWN_CGROUPS.format(engine=self.engine.describe()))
        rows = {}
        for name in self.pod.container_names:
            result = self.exec(["sh", "-c", memory.READ_CGROUP], container=name)
            use = memory.parse_cgroup_memory(result.stdout, name)
            rows[name] = {"memory_bytes": use.memory_bytes, "tmpfs_bytes": use.tmpfs_bytes}
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis("container")

    def wait_for_restart(self, container: str | None = None, timeout: float = 60) -> pd.Series:
        """Wait until ``container`` restarts and runs again (after a crash); its row of :meth:`containers` then.

        How long that takes is the engine's restart policy: Kubernetes waits
        a back-off first, Podman 4.3 restarts at once. Ctrl-C (or the
        notebook's stop button) raises :class:`~labkit.errors.Stopped` saying
        what the container was doing and how often it had restarted.
        """
        name = self.pod.container(container).name
        self._require_pod("wait for a restart", attach=True)
        now: list[ContainerState | None] = [None]

        def where() -> str:
            state = now[0]
            if state is None:
                return "before its state was read"
            restarts = f"{state.restarts} restart{'s' if state.restarts != 1 else ''}"
            since = "as when the wait began" if state.restarts == before.restarts else f"{before.restarts} before"
            return f"it was {lifecycle.describe(state)} with {restarts}, {since}"

        def seen(state: ContainerState | None) -> None:
            now[0] = state

        with _stop_as(f"waiting for container {name} of pod {self.name} to restart", where):
            before = lifecycle.container_states(self.engine, self.pod)[name]
            now[0] = before
            after = lifecycle.wait_for_restart(self.engine, self.pod, name, before, timeout, seen)
        return views.containers_table([after]).iloc[0]

    def exists(self) -> bool:
        """Whether the lab's pod exists in the engine right now."""
        return lifecycle.exists(self.engine, self.pod)

    def clock_offset(self, rounds: int = 8) -> ClockOffset:
        """How far the pod's clock is from this machine's, which stamps ``served_at``.

        Zero by construction where the engine runs the containers on this
        machine; otherwise estimated from ``date +%s.%N`` run in the producer.
        """
        self._require_pod("clock_offset")
        if self.engine.shares_host_clock:
            return shared_clock(
                f"{self.engine.name} runs the containers on this machine, so one clock stamps both sides"
            )
        return estimate_offset(
            lambda: self.exec(["date", "+%s.%N"], self.layout.producer, check=True).stdout, rounds=rounds
        )

    def delete(self, timeout: float = 60) -> None:
        """Close every port-forward and remove the pod and its volumes (tutorial step 6).

        A pod of that name that another session took over is left alone.
        """
        self._stop_settling()
        for fwd in self._forwards:
            fwd.close()
        self._forwards.clear()
        if self.applied:
            with contextlib.suppress(PodExists):  # no longer ours: someone replaced it on purpose
                lifecycle.delete(self.engine, self.pod, timeout)
            self.applied = False
            self.deleted = True
            self._steps.step("deleted")
        self._forget()

    # -- helpers -------------------------------------------------------------------

    def _require_pod(self, step: str, attach: bool = False) -> None:
        """Fail at once, saying what to run, when the lab has no pod to work on.

        With ``attach`` a lab that never applied may still reach a pod of its
        name that exists (another session's, or one ``labkit run`` applied):
        the engine then answers for it. Once this lab deleted its pod, every
        step refuses until it applies again.
        """
        if self.applied:
            self._raise_if_crashed()
            return
        if attach and not self.deleted:
            return
        if self.deleted:
            raise NotReady(
                f"lab.{step}(): pod {self.name!r} was deleted (lab.delete()); "
                "run lab.apply() and lab.wait_ready() again",
                reason="Deleted",
            )
        raise NotReady(
            f"lab.{step}(): pod {self.name!r} is not applied yet; run lab.apply() and lab.wait_ready() first",
            reason="NotApplied",
        )

    def _raise_if_crashed(self) -> None:
        """Raise what the watch after :meth:`wait_ready` found (a command that exited at once), removing the pod."""
        settling = self._settling
        if settling is None or settling.error is None:
            return
        self._stop_settling()
        error = settling.error
        removed = self._cleanup_after_failure()
        note = "; the pod was removed" if removed else ""
        raise type(error)(
            f"{error} (found just after lab.wait_ready() returned{note})",
            container=error.container,
            reason=error.reason,
        ) from None

    def _stop_settling(self) -> None:
        if self._settling is not None:
            self._settling.stop()
            self._settling = None

    def _baseline(self) -> dict[str, ContainerState]:
        """The containers as a measurement starts, to count restarts from.

        The measurement watches the containers itself, so the look after
        ``wait_ready`` ends here (what it found already is raised).
        """
        self._raise_if_crashed()
        self._stop_settling()
        return lifecycle.container_states(self.engine, self.pod)

    def _gone(self) -> PodGone:
        return PodGone(
            f"pod {self.name!r} no longer exists (deleted outside this lab, or evicted); "
            "run lab.apply() and lab.wait_ready() again"
        )

    def _raise_if_gone(self, error: EngineError) -> None:
        """Raise :class:`PodGone` when ``error`` came from the engine because the pod is not there."""
        if isinstance(error, PodGone):
            return
        try:
            there = lifecycle.exists(self.engine, self.pod)
        except LabkitError:
            return
        if not there:
            raise self._gone() from error
        try:
            lifecycle.container_states(self.engine, self.pod)  # evicted or being deleted: PodGone says which
        except PodGone as gone:
            raise gone from error
        except LabkitError:
            return

    def _forget(self) -> None:
        with _LIVE_LOCK:
            _LIVE.pop(self.session, None)

    def _cleanup_after_failure(self) -> bool:
        """Remove what a failed step left; a failure here must not hide the original error."""
        try:
            self.delete()
            return True
        except Exception:  # whatever the clean-up raised, the original error is the one to show
            return False

    def _forward_to(self, port: int | None) -> PortForward:
        remote = self.layout.port if port is None else port
        for fwd in self._forwards:
            if not fwd.closed and fwd.remote_port == remote:
                return fwd
        return self.port_forward(None, remote)


class _Watch:
    """Looks after the pod while a measurement runs: its containers, and progress for the user.

    Called by the observer's wait loop with what it has seen; about once a
    second it reads the containers' states (a restart shows in the progress
    at once), and raises :class:`PodGone` when the pod has disappeared, so
    the measurement ends within seconds instead of polling a pod that is gone.
    """

    EVERY = 1.0

    def __init__(
        self,
        engine: Engine,
        pod: Pod,
        before: dict[str, ContainerState],
        limit: float,
        duration: float | None,
        lines: int | None,
        *,
        enabled: bool,
    ) -> None:
        self.engine, self.pod, self.before = engine, pod, before
        self.latest: dict[str, ContainerState] | None = before
        self.gone: PodGone | None = None
        self.problem = ""  # why the last look failed, when it did
        self._next = time.monotonic() + self.EVERY
        self._show = MeasureProgress(pod.name, limit, duration, lines, enabled=enabled)

    def __call__(self, seen: int | None, failed: int | None) -> None:
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.EVERY
            self._look()
        restarts = sum(restarts_between(self.before.get(c), st) for c, st in (self.latest or {}).items())
        self._show.update(seen, failed, restarts)
        if self.gone is not None:
            raise self.gone

    def check_gone(self) -> None:
        """Raise :class:`PodGone` if the pod has disappeared (after an exec into it failed)."""
        self._look()
        if self.gone is not None:
            raise self.gone

    def final(self, backoff: bool) -> Lifecycle:
        """The containers at the start and now, once observation has ended."""
        if self.gone is None:
            self._look()
        after = None if self.gone is not None else self.latest
        return Lifecycle(self.before, after, backoff, problem=self.problem)

    def done(self, report: LatencyReport) -> None:
        """Bring the progress to what the report found (the in-pod probe counts no lines while it runs)."""
        restarts = sum(restarts_between(self.before.get(c), st) for c, st in (report.containers or {}).items())
        self._show.update(int(report.summary["count"]), report.poll_errors, restarts)

    def close(self) -> None:
        self._show.close()

    def _look(self) -> None:
        try:
            self.latest = lifecycle.container_states(self.engine, self.pod)
            self.problem = ""
        except PodGone as exc:
            self.gone, self.latest = exc, None
        except LabkitError as exc:
            self.problem = str(exc)  # a blip of the engine: observation goes on, the last states stand


@contextlib.contextmanager
def _stop_as(what: str, detail: Callable[[], str]) -> Iterator[None]:
    """The lab's one policy for a stop: Ctrl-C (or the notebook's stop button) in a wait raises :class:`Stopped`.

    ``what`` names the wait; where it stood is how long it had lasted and
    ``detail()``, with the notes the interrupt carries (an exec's says
    whether its command was ended). A stop raised by a step within the
    wait (an exec while measuring) is said again as the wait's own, since
    that is what the user asked for. Whatever the block must leave in
    order (a port-forward, the progress display, the pod's watch) it does
    in its own ``finally``.
    """
    started = time.monotonic()
    try:
        yield
    except KeyboardInterrupt as stop:
        said = "; ".join(part for part in (detail(), *getattr(stop, "__notes__", ())) if part)
        raise Stopped(what, f"after {time.monotonic() - started:.1f} s ({said})") from None


def _states_text(states: Mapping[str, str]) -> str:
    """``producer creating, consumer running``: the containers' states as the progress shows them."""
    return ", ".join(f"{name} {state}" for name, state in states.items())


def _argv(cmd: str | Sequence[str], shell: bool) -> list[str]:
    if shell:
        if not isinstance(cmd, str):
            raise TypeError("shell=True takes the command as one string, such as 'ls -la | wc -l'")
        return ["/bin/sh", "-c", cmd]
    if isinstance(cmd, str):
        try:
            argv = shlex.split(cmd)
        except ValueError as exc:
            raise ValueError(f"cannot split command {cmd!r}: {exc}; pass a list of arguments instead") from exc
    else:
        argv = [str(a) for a in cmd]
    if not argv:
        raise ValueError("the command is empty; pass a list such as ['ls', '-la', '/var/log']")
    return argv


@atexit.register
def _cleanup_at_exit() -> None:
    """Delete pods that were applied and never deleted, when the interpreter ends."""
    with _LIVE_LOCK:
        leftovers = list(_LIVE.values())
        _LIVE.clear()
    for engine, pod in leftovers:
        # Keep going at exit whatever one removal raised: every other pod still needs removing.
        with contextlib.suppress(Exception):
            lifecycle.delete(engine, pod, 60)


__all__ = ["Lab"]
