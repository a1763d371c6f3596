"""The stand-in's pod store: Kubernetes pod objects, each run for real on Podman (a fake for tests).

Every Kubernetes pod ``ns/name`` is played as the Podman pod
``k8s-{ns}-{name}`` through labkit's own :class:`PodmanEngine` (apply,
connect, logs, delete), with the pod's name as the containers' hostname.
Status comes from polling Podman (every ``poll_interval`` seconds while
someone watches or has just read) and is shaped by :mod:`kubelet`. Each
change bumps the resource version and goes to the watchers.

All methods run on the stand-in's event loop; blocking Podman calls go to
worker threads.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import functools
import json
import logging
import random
import time
import uuid
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from labkit import lifecycle, ownership
from labkit.engines.crashloop import CrashLoop
from labkit.engines.podman import PodmanEngine
from labkit.engines.podman_yaml import quantity_bytes
from labkit.errors import LabkitError, ManifestError
from labkit.manifest import Pod, _pod_from_doc

from . import kubelet, termination
from .events import EventLog
from .kubelet import EventSpec, Runtime
from .namespaces import Namespaces
from .objects import (
    IMMUTABLE_SPEC,
    check_submitted,
    defaulted_spec,
    managed_entry,
    now_rfc3339,
    podman_pod_name,
    spec_changes,
)
from .selectors import Match
from .status import already_exists, apply_conflict, bad_request, expired, invalid, not_found
from .termination import Termination
from .versions import ResourceVersions

log = logging.getLogger("k8s_standin")

HISTORY = 2000  # watch events kept for resuming a watch from a resourceVersion
DEMAND_SECONDS = 3.0  # keep polling this long after the last read
# While pods run, Podman is read at least this often, as a kubelet's PLEG relists (genericPlegRelistPeriod,
# pkg/kubelet/kubelet.go): a container's exit is noticed, and the container restarted, within about a second.
RELIST_SECONDS = 1.0
# How often a kubelet measures a pod's volumes: volumeStatsAggPeriod (KubeletConfiguration, 1 min by default),
# each wait jittered up to twice as long (wait.JitterUntil with factor 1.0 in
# pkg/kubelet/server/stats/volume_stat_calculator.go). Eviction acts on the last measurement, so a volume
# that outgrows its sizeLimit is evicted 0-2 periods later. Tests may set it shorter, as the kubelet's
# --volume-stats-agg-period flag would.
VOLUME_STATS_PERIOD = 60.0
# The stand-in shutting down is not a cluster deleting pods: 1 s keeps the tests' tear-down short where a pod's
# PID 1 ignores its stop signal (the tutorial's producer would hold every test for its 30 s grace period).
CLOSE_GRACE = 1
STOP_POLL = 0.5  # how often a kill in progress looks for exited containers (a kubelet's PLEG relists every 1 s)


@dataclass
class PodRecord:
    """One Kubernetes pod: its API object, the Podman pod behind it, and its life so far."""

    obj: dict[str, Any]
    podman: Pod
    runtime: Runtime
    start_task: asyncio.Task[None] | None = None
    delete_task: asyncio.Task[None] | None = None
    termination: Termination | None = None
    stopping: bool = False
    evicted: bool = False
    volume_usage: dict[str, int] = field(default_factory=dict)  # bytes per emptyDir at the last measurement
    volume_stats_due: float = 0.0  # time.monotonic() of the next measurement

    @property
    def key(self) -> tuple[str, str]:
        return self.obj["metadata"]["namespace"], self.obj["metadata"]["name"]

    @property
    def container_names(self) -> list[str]:
        return [c["name"] for c in self.obj["spec"]["containers"]]

    def container_status(self, container: str) -> dict[str, Any]:
        statuses: list[dict[str, Any]] = self.obj["status"].get("containerStatuses") or []
        for cs in statuses:
            if cs["name"] == container:
                return cs
        return {"name": container, "state": {"waiting": {"reason": "ContainerCreating"}}}


@dataclass(eq=False)
class _Watcher:
    namespace: str
    queue: asyncio.Queue[tuple[str, dict[str, Any]] | None] = field(default_factory=asyncio.Queue)


class PodStore:
    """Pods by (namespace, name), their events, and the watch fan-out."""

    def __init__(
        self,
        engine: PodmanEngine,
        namespaces: Namespaces,
        node: str,
        poll_interval: float = 0.2,
        versions: ResourceVersions | None = None,
        *,
        volume_stats_period: float = VOLUME_STATS_PERIOD,
    ) -> None:
        self.engine = engine
        self.session = ownership.new_session()
        self.namespaces = namespaces
        self.node = node
        self.poll_interval = poll_interval
        self.volume_stats_period = volume_stats_period
        self._records: dict[tuple[str, str], PodRecord] = {}
        self.versions = versions or ResourceVersions()
        self._history: collections.deque[tuple[int, str, str, dict[str, Any]]] = collections.deque(maxlen=HISTORY)
        self._watchers: set[_Watcher] = set()
        self.events = EventLog(node, self.versions.next)
        self._played: set[str] = set()  # every Podman pod name this store asked for
        self.crashloop = CrashLoop()  # the kubelet's restart back-off, per pod uid and container
        self._killing: dict[str, asyncio.Task[None]] = {}  # Podman pod name -> its kill, until it is gone
        self._refreshing: asyncio.Future[None] | None = None
        self._last_refresh = 0.0
        self._last_demand = 0.0
        self._poller: asyncio.Task[None] | None = None
        self._closed = False

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        self._poller = asyncio.get_running_loop().create_task(self._poll_loop())

    async def close(self) -> None:
        """End every watch, delete every pod this store played, and stop polling."""
        self._closed = True
        if self._poller:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
        for w in list(self._watchers):
            w.queue.put_nowait(None)
        for ns, name in list(self._records):
            await self.delete(ns, name, CLOSE_GRACE)
        await asyncio.gather(*self._killing.values(), return_exceptions=True)
        # A safety net: anything played and still there (a failed removal) goes too.
        leftovers = [n for n in self._played if await asyncio.to_thread(self.engine._exists, n)]
        await asyncio.gather(
            *(asyncio.to_thread(lifecycle.delete, self.engine, _stub(n, self.session), 60) for n in leftovers),
            return_exceptions=True,
        )

    # -- reading ----------------------------------------------------------------------

    @property
    def resource_version(self) -> str:
        return str(self.versions)

    def record(self, namespace: str, name: str) -> PodRecord:
        rec = self._records.get((namespace, name))
        if rec is None:
            raise not_found("pods", name)
        return rec

    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        await self.fresh()
        return copy.deepcopy(self.record(namespace, name).obj)

    async def list_pods(self, namespace: str, match: Match) -> tuple[list[dict[str, Any]], str]:
        await self.fresh()
        items = [
            copy.deepcopy(r.obj) for (ns, _), r in sorted(self._records.items()) if ns == namespace and match(r.obj)
        ]
        return items, self.resource_version

    async def watch(
        self, namespace: str, match: Match, since: str | None
    ) -> AsyncGenerator[tuple[str, dict[str, Any]], None]:
        """Watch events for ``namespace`` from ``since`` (None/"0": the current pods as ADDED first)."""
        w = _Watcher(namespace)
        self._watchers.add(w)
        try:
            for kind, obj in self._backlog(namespace, since):
                if kind == "ERROR" or match(obj):
                    yield kind, obj
            while not self._closed:
                item = await w.queue.get()
                if item is None:
                    return
                kind, obj = item
                if match(obj):
                    yield kind, obj
        finally:
            self._watchers.discard(w)

    def _backlog(self, namespace: str, since: str | None) -> list[tuple[str, dict[str, Any]]]:
        if not since or since == "0":
            return [("ADDED", copy.deepcopy(r.obj)) for (ns, _), r in sorted(self._records.items()) if ns == namespace]
        try:
            asked = int(since)
        except ValueError:
            raise bad_request(f"invalid resource version: {since}") from None
        oldest = self._history[0][0] if self._history else self.versions.current + 1
        if len(self._history) == self._history.maxlen and asked < oldest - 1:
            return [("ERROR", expired(asked, oldest).status())]
        return [(kind, copy.deepcopy(obj)) for rv, ns, kind, obj in self._history if rv > asked and ns == namespace]

    async def fresh(self) -> None:
        """Make sure the statuses are at most one poll interval old."""
        self._last_demand = time.monotonic()
        if time.monotonic() - self._last_refresh > self.poll_interval:
            await self.refresh()

    # -- writing ----------------------------------------------------------------------

    async def apply(
        self, namespace: str, name: str, doc: Any, manager: str, force: bool, may_create: Callable[[], None]
    ) -> tuple[dict[str, Any], bool]:
        """Server-side apply of a whole Pod: (object, created)."""
        if self._records.get((namespace, name)) is None:
            self.namespaces.admit_create(namespace, "pods", name)
        doc = check_submitted(doc, namespace, name)
        if doc["metadata"].get("managedFields") is not None:
            raise bad_request("metadata.managedFields must be nil")  # kube-apiserver's words for an apply
        rec = self._records.get((namespace, name))
        if rec is None:
            may_create()
            return copy.deepcopy(self._admit(doc, namespace, manager, "Apply").obj), True
        return self._reapply(rec, doc, manager, force), False

    async def create(self, namespace: str, doc: Any, manager: str) -> dict[str, Any]:
        """A plain create (POST): 404/403 unless the namespace is Active, 409 when the name is taken."""
        self.namespaces.admit_create(namespace, "pods", _submitted_name(doc))
        doc = check_submitted(doc, namespace, None)
        name = doc["metadata"]["name"]
        rec = self._records.get((namespace, name))
        if rec is not None:
            raise already_exists("pods", name, terminating=rec.delete_task is not None)
        return copy.deepcopy(self._admit(doc, namespace, manager, "Update").obj)

    async def delete(self, namespace: str, name: str, grace: int | None) -> dict[str, Any]:
        """DELETE as kube-apiserver answers it; the kubelet's kill and the removal go on in the background.

        The object stays, with ``deletionTimestamp``, until its containers have stopped and Podman removed
        the pod; a grace period of 0 removes the object at once (the containers are still killed). The
        rules and their sources are in :mod:`termination`.
        """
        rec = self.record(namespace, name)
        meta = rec.obj["metadata"]
        if rec.delete_task is None:
            period = termination.first_grace(rec.obj, grace)
        else:
            shorter = termination.shorter_grace(meta, grace)
            if shorter is None:
                return copy.deepcopy(rec.obj)
            period = shorter
        termination.mark_deleted(meta, period, datetime.now(UTC))
        self._publish("MODIFIED", rec)
        if rec.termination is None:
            rec.termination = Termination.after(termination.kill_grace(period))
        else:
            rec.termination.shorten(termination.kill_grace(period))
        if rec.delete_task is None:
            rec.delete_task = asyncio.get_running_loop().create_task(self._terminate(rec))
            self._track_kill(rec.podman.name, rec.delete_task)
        if period == 0:
            self._forget(rec)
        return copy.deepcopy(rec.obj)

    def _track_kill(self, podman_name: str, task: asyncio.Task[None]) -> None:
        """Remember a kill until it is over: close() waits for it, and so does a new pod of that name."""
        self._killing[podman_name] = task

        def done(_: asyncio.Task[None]) -> None:
            if self._killing.get(podman_name) is task:
                del self._killing[podman_name]

        task.add_done_callback(done)

    async def delete_namespace(self, namespace: str) -> None:
        """Delete every pod of ``namespace`` as the namespace controller does; when they are gone, its events go."""
        for ns, name in sorted(self._records):
            if ns == namespace:
                await self.delete(ns, name, None)
        removals = [r.delete_task for (ns, _), r in self._records.items() if ns == namespace and r.delete_task]
        await asyncio.gather(*removals, return_exceptions=True)
        self.events.forget(namespace)

    def _admit(self, doc: dict[str, Any], namespace: str, manager: str, operation: str) -> PodRecord:
        name = doc["metadata"]["name"]
        stamp = now_rfc3339()
        uid = str(uuid.uuid4())
        meta: dict[str, Any] = {
            "name": name,
            "namespace": namespace,
            "uid": uid,
            "resourceVersion": "",
            "creationTimestamp": stamp,
        }
        for key in ("labels", "annotations"):
            if doc["metadata"].get(key):
                meta[key] = {str(k): str(v) for k, v in doc["metadata"][key].items()}
        meta["managedFields"] = [managed_entry(manager, operation, doc, stamp)]
        obj = {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": meta,
            "spec": defaulted_spec(doc["spec"]),
            "status": {"phase": "Pending", "qosClass": "BestEffort"},
        }
        rec = PodRecord(obj=obj, podman=self._podman_pod(doc, namespace), runtime=Runtime(uid=uid))
        self._records[(namespace, name)] = rec
        self._publish("ADDED", rec)
        rec.start_task = asyncio.get_running_loop().create_task(self._run_pod(rec))
        return rec

    def _podman_pod(self, doc: dict[str, Any], namespace: str) -> Pod:
        """The labkit Pod that Podman plays: renamed ``k8s-{ns}-{name}``, hostname = the pod's name."""
        name = doc["metadata"]["name"]
        local = copy.deepcopy(doc)
        local["metadata"] = {
            "name": podman_pod_name(namespace, name),
            "labels": dict(doc["metadata"].get("labels") or {}),
            "annotations": dict(doc["metadata"].get("annotations") or {}),
        }
        # The kubelet makes the pod's name its hostname, cut to 63 characters.
        local["spec"].setdefault("hostname", name[:63].rstrip("-."))
        # Podman 4.3 restarts a container at once, every time; the stand-in restarts it as a kubelet does.
        local["spec"]["restartPolicy"] = "Never"
        try:
            # The stand-in is the kubelet here: the Podman pods are its own session's.
            return ownership.stamp(_pod_from_doc(local, f"{namespace}/{name}"), self.session)
        except ManifestError as exc:
            raise invalid("Pod", name, [("spec", "FieldValueInvalid", f"Invalid value: {exc}")]) from None

    def _reapply(self, rec: PodRecord, doc: dict[str, Any], manager: str, force: bool) -> dict[str, Any]:
        meta = rec.obj["metadata"]
        if spec_changes(rec.obj["spec"], doc["spec"]):
            owners = [
                m["manager"] for m in meta["managedFields"] if m["manager"] != manager and "f:spec" in m["fieldsV1"]
            ]
            if owners and not force:
                raise apply_conflict(owners[0], ".spec")
            raise invalid("Pod", meta["name"], [("spec", "FieldValueForbidden", IMMUTABLE_SPEC)])
        changed = False
        for key in ("labels", "annotations"):
            wanted = {str(k): str(v) for k, v in (doc["metadata"].get(key) or {}).items()}
            if wanted and any(meta.get(key, {}).get(k) != v for k, v in wanted.items()):
                meta.setdefault(key, {}).update(wanted)
                changed = True
        entry = managed_entry(manager, "Apply", doc, now_rfc3339())
        mine = [m for m in meta["managedFields"] if m["manager"] == manager and m["operation"] == "Apply"]
        if not mine or mine[0]["fieldsV1"] != entry["fieldsV1"]:
            meta["managedFields"] = [m for m in meta["managedFields"] if m not in mine] + [entry]
            changed = True
        if changed:
            self._publish("MODIFIED", rec)
        return copy.deepcopy(rec.obj)

    # -- running on Podman ------------------------------------------------------------

    async def _run_pod(self, rec: PodRecord) -> None:
        """Schedule, check images, play the pod on Podman: what scheduler and kubelet would do."""
        await asyncio.sleep(0)  # the create answer goes out before the first change
        earlier = self._killing.get(rec.podman.name)
        if earlier is not None:
            # A force-deleted pod of the same name is still being killed. A node runs both side by side;
            # Podman has one pod per name, so this one waits (at most that kill's grace period).
            await asyncio.gather(earlier, return_exceptions=True)
        try:
            await self._start_on_podman(rec)
        except Exception as exc:
            log.exception("stand-in: starting pod %s/%s failed", *rec.key)
            self._record(rec, EventSpec("Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {exc}"))

    async def _start_on_podman(self, rec: PodRecord) -> None:
        rt = rec.runtime
        rt.scheduled = True
        rt.start_time = now_rfc3339()
        rec.obj["spec"]["nodeName"] = self.node
        rec.obj["status"] = kubelet.scheduled_status(rt)
        ns, name = rec.key
        self._record(
            rec,
            EventSpec(
                "Normal",
                "Scheduled",
                f"Successfully assigned {ns}/{name} to {self.node}",
                component="default-scheduler",
            ),
        )
        self._publish("MODIFIED", rec)

        containers = rec.obj["spec"]["containers"]
        present = await asyncio.gather(*(asyncio.to_thread(self._image_present, str(c["image"])) for c in containers))
        missing = {c["name"]: str(c["image"]) for c, ok in zip(containers, present, strict=True) if not ok}
        for c, ok in zip(containers, present, strict=True):
            where, image = f"spec.containers{{{c['name']}}}", c["image"]
            if not ok:
                self._record(rec, EventSpec("Normal", "Pulling", f'Pulling image "{image}"', where))
                self._record(
                    rec,
                    EventSpec(
                        "Warning", "Failed", f'Failed to pull image "{image}": {kubelet.pull_error(image)}', where
                    ),
                )
                self._record(rec, EventSpec("Warning", "Failed", "Error: ErrImagePull", where))
            elif c.get("imagePullPolicy") == "Always":
                self._record(rec, EventSpec("Normal", "Pulling", f'Pulling image "{image}"', where))
                self._record(
                    rec,
                    EventSpec(
                        "Normal", "Pulled", f'Successfully pulled image "{image}" in 0s (0s including waiting)', where
                    ),
                )
            else:
                self._record(
                    rec, EventSpec("Normal", "Pulled", f'Container image "{image}" already present on machine', where)
                )
        if missing:
            # Like a kubelet that cannot pull: report it, never start the pod.
            rt.missing_images = missing
            rt.pull_failed_at = time.monotonic()
        else:
            self._played.add(rec.podman.name)
            try:
                await asyncio.to_thread(lifecycle.apply, self.engine, rec.podman)
                rt.sandbox = True
            except LabkitError as exc:
                # The containers stay ContainerCreating, as they do when a kubelet cannot make the sandbox.
                self._record(
                    rec, EventSpec("Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {exc}")
                )
        self._last_refresh = 0.0
        await self.refresh()

    def _image_present(self, image: str) -> bool:
        return self.engine._run(["image", "exists", image], timeout=30).returncode == 0

    async def _terminate(self, rec: PodRecord) -> None:
        """Kill the pod as a kubelet does, then remove it from Podman and (if still there) from the API.

        Status keeps being read from Podman meanwhile (``rec.stopping`` is set only once every container
        has stopped), so a container that exits on its stop signal shows ``terminated`` with its exit code
        while the others still run; ``rec.delete_task`` is set from the start, which tells the rest of the
        stand-in that this pod is terminating.
        """
        if rec.start_task:
            await asyncio.gather(rec.start_task, return_exceptions=True)
        if rec.runtime.sandbox:
            await self._stop_containers(rec)
            await self._write_terminal_status(rec)
        rec.stopping = True
        with contextlib.suppress(LabkitError):  # close() tries again through its safety net
            await asyncio.to_thread(lifecycle.delete, self.engine, rec.podman, 60)
        self._forget(rec)

    def _forget(self, rec: PodRecord) -> None:
        """The object leaves the API: watchers get DELETED."""
        if self._records.get(rec.key) is rec:
            del self._records[rec.key]
            self._publish("DELETED", rec)

    async def _stop_containers(self, rec: PodRecord) -> None:
        """``killContainer`` for each running container at once: its stop signal, then SIGKILL at the deadline.

        The stop signal is what the runtime's StopContainer sends: the image's STOPSIGNAL, SIGTERM when it
        names none (nginx's image names SIGQUIT). It goes through ``podman kill``, which leaves the container
        ``running`` until its process exits: ``podman stop`` would mark it ``stopping``, and then Podman's
        pod exit policy ("stop" for a played pod) stops the whole pod, with its own 10 s timeout, as soon
        as another container exits. A shortened grace period (a second DELETE) brings the SIGKILL forward.
        """
        term = rec.termination
        assert term is not None
        seen = await asyncio.to_thread(self._observe_containers, rec)
        running = [c for c, obs in seen.items() if obs.status in kubelet.RUNNING]
        for c in running:
            self._record(rec, EventSpec("Normal", "Killing", f"Stopping container {c}", f"spec.containers{{{c}}}"))
        # Podman plays the pod with restartPolicy Never, and _restart_exited skips a pod being deleted:
        # a container that exits on its signal stays exited, as on a kubelet.
        await asyncio.to_thread(self._signal_stop, rec, running)
        while running and term.remaining() > 0:
            term.moved.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(term.moved.wait(), timeout=min(term.remaining(), STOP_POLL))
            seen = await asyncio.to_thread(self._observe_containers, rec)
            running = [c for c in running if c in seen and seen[c].status in kubelet.RUNNING]
        if running:
            await asyncio.to_thread(self._kill, rec, running, "KILL")

    def _observe_containers(self, rec: PodRecord) -> dict[str, kubelet.Observed]:
        """The pod's containers as Podman reports them now."""
        items = self._inspect_ids([f"{rec.podman.name}-{c}" for c in rec.container_names]) or []
        return kubelet.parse_inspect(items, rec.podman.name)

    def _signal_stop(self, rec: PodRecord, containers: list[str]) -> None:
        """Send each container its own stop signal (``Config.StopSignal``, which Podman fills from the image)."""
        names = [f"{rec.podman.name}-{c}" for c in containers]
        items = self._inspect_ids(names) or []
        for item in items:
            signal = str((item.get("Config") or {}).get("StopSignal") or "TERM")
            self._kill_named([str(item.get("Name"))], signal)

    def _kill(self, rec: PodRecord, containers: list[str], signal: str) -> None:
        self._kill_named([f"{rec.podman.name}-{c}" for c in containers], signal)

    def _kill_named(self, names: list[str], signal: str) -> None:
        """``podman kill``; an error for a container that has just exited is expected and changes nothing."""
        if names:
            self.engine._run(["kill", "--signal", signal, *names], timeout=60)

    async def _write_terminal_status(self, rec: PodRecord) -> None:
        """Read the stopped containers once more and give the pod its terminal phase, as the kubelet does."""
        if self._refreshing is not None:
            await asyncio.shield(self._refreshing)  # a reading under way may predate the last exit
        await self.refresh()
        status = copy.deepcopy(rec.obj["status"])
        status["phase"] = termination.terminal_phase(status.get("containerStatuses") or [])
        rec.stopping = True  # from here on the status is final; Podman's containers are about to go
        if status != rec.obj["status"] and self._records.get(rec.key) is rec:
            rec.obj["status"] = status
            self._publish("MODIFIED", rec)

    # -- status from Podman -------------------------------------------------------------

    async def _poll_loop(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.poll_interval)
            try:
                await self._poll_once()
            except Exception:
                log.exception("stand-in: reading pod states from Podman failed")

    async def _poll_once(self) -> None:
        """Read Podman if anyone cares: a watcher, a recent reader, or a pod still on its way."""
        busy = any(
            (r.start_task and not r.start_task.done())
            or (
                r.runtime.missing_images
                and not all(r.runtime.mem(c).pull_backoff_announced for c in r.runtime.missing_images)
            )
            for r in self._records.values()
        )
        wanted = self._watchers or time.monotonic() - self._last_demand < DEMAND_SECONDS or busy
        running = any(r.runtime.sandbox and not r.stopping for r in self._records.values())
        relist = running and time.monotonic() - self._last_refresh >= RELIST_SECONDS
        if self._records and (wanted or relist):
            await self.refresh()

    async def refresh(self) -> None:
        """Read every pod's containers from Podman once; concurrent callers share one reading."""
        if self._refreshing is not None:
            await asyncio.shield(self._refreshing)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._refreshing = fut
        try:
            await self._refresh()
        finally:
            self._last_refresh = time.monotonic()
            self._refreshing = None
            fut.set_result(None)

    async def _refresh(self) -> None:
        live = [r for r in self._records.values() if r.runtime.sandbox and not r.stopping]
        observed = await asyncio.to_thread(self._inspect, live) if live else {}
        restarted = [r for r in live if r.key in observed and await self._restart_exited(r, observed[r.key])]
        if restarted:
            observed.update(await asyncio.to_thread(self._inspect, restarted))
        now = time.monotonic()
        for rec in list(self._records.values()):
            rt = rec.runtime
            if rec.stopping or rec.evicted or not rt.scheduled:
                continue
            if rec.start_task and not rec.start_task.done() and not rt.sandbox:
                continue
            if rec.key in observed:
                rt.observed = observed[rec.key]
                outgrown = await asyncio.to_thread(self._outgrown_volume, rec)
                if outgrown is not None:
                    await self._evict(rec, outgrown)
                    continue
            status, events = kubelet.observe(rec.obj, rt, rec.obj["status"], now)
            for e in events:
                self._record(rec, e)
            if status != rec.obj["status"]:
                rec.obj["status"] = status
                self._publish("MODIFIED", rec)

    async def _restart_exited(self, rec: PodRecord, seen: dict[str, kubelet.Observed]) -> bool:
        """Start exited containers again as a kubelet's ``doBackOff`` decides; True when one was started.

        The first restart comes at once, a later one after the back-off that
        :class:`~labkit.engines.crashloop.CrashLoop` keeps; meanwhile the
        container waits in CrashLoopBackOff (``kubelet.observe`` says so). A
        pod being deleted or evicted is not restarted.
        """
        if rec.delete_task is not None or rec.evicted:
            return False
        policy = rec.obj["spec"].get("restartPolicy", "Always")
        started = False
        for name, obs in seen.items():
            if obs.status not in ("exited", "stopped") or not kubelet.must_restart(policy, obs.exit_code):
                continue
            mem = rec.runtime.mem(name)
            key = f"{rec.runtime.uid}/{name}"
            hold = self.crashloop.hold(key, obs.finished_epoch, time.time())
            if hold > 0:
                mem.backoff_until = time.time() + hold
                mem.backoff = kubelet.go_duration(self.crashloop.backoff(key))
                continue
            mem.backoff_until, mem.last_exit, mem.last_finished = 0.0, obs.exit_code, obs.finished_at
            podman_name = f"{rec.podman.name}-{name}"
            proc = await asyncio.to_thread(functools.partial(self.engine._run, timeout=30), ["start", podman_name])
            if proc.returncode != 0:
                log.warning("stand-in: restarting %s of %s/%s failed: %s", name, *rec.key, proc.stderr)
                continue
            mem.restarts += 1
            started = True
            where = f"spec.containers{{{name}}}"
            image = next(str(c["image"]) for c in rec.obj["spec"]["containers"] if c["name"] == name)
            for spec in (
                EventSpec("Normal", "Pulled", f'Container image "{image}" already present on machine', where),
                EventSpec("Normal", "Created", f"Created container: {name}", where),
                EventSpec("Normal", "Started", f"Started container {name}", where),
            ):
                self._record(rec, spec)
        return started

    def _outgrown_volume(self, rec: PodRecord) -> str | None:
        """The kubelet's eviction message when a disk-backed emptyDir has outgrown its sizeLimit.

        The eviction manager judges by the volume statistics last measured, which are measured again
        only every (jittered) volume-stats period: see ``VOLUME_STATS_PERIOD``.
        """
        limited = [
            vol
            for vol in rec.obj["spec"].get("volumes") or []
            if isinstance(vol.get("emptyDir"), dict)
            and vol["emptyDir"].get("medium") != "Memory"
            and vol["emptyDir"].get("sizeLimit") is not None
        ]
        if limited and time.monotonic() >= rec.volume_stats_due:
            for vol in limited:
                path = self.engine.volume_dir(rec.podman, vol["name"])
                rec.volume_usage[vol["name"]] = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            rec.volume_stats_due = time.monotonic() + self.volume_stats_period * (1 + random.random())
        for vol in limited:
            source = vol["emptyDir"]
            if rec.volume_usage.get(vol["name"], 0) > quantity_bytes(source["sizeLimit"]):
                return f'Usage of EmptyDir volume "{vol["name"]}" exceeds the limit "{source["sizeLimit"]}". '
        return None

    async def _evict(self, rec: PodRecord, message: str) -> None:
        """Evict as a kubelet does: the pod fails with reason Evicted, its containers are stopped, the object stays."""
        rec.evicted = True
        self._record(rec, EventSpec("Warning", "Evicted", message))
        status = copy.deepcopy(rec.obj["status"])
        status.update(phase="Failed", reason="Evicted", message=message)
        for cs in status.get("containerStatuses") or []:
            cs["ready"] = False
            cs["state"] = {"terminated": {"exitCode": 137, "reason": "ContainerStatusUnknown"}}
        rec.obj["status"] = status
        self._publish("MODIFIED", rec)
        with contextlib.suppress(LabkitError):
            await asyncio.to_thread(self.engine.remove, rec.podman)
        rec.runtime.sandbox = False

    def _inspect(self, recs: list[PodRecord]) -> dict[tuple[str, str], dict[str, kubelet.Observed]]:
        """One ``podman container inspect`` for all pods (per pod if one of them is gone)."""
        ids = [f"{r.podman.name}-{c}" for r in recs for c in r.container_names]
        everything = self._inspect_ids(ids)
        out: dict[tuple[str, str], dict[str, kubelet.Observed]] = {}
        for rec in recs:
            mine = everything
            if mine is None:
                # Podman 4.3 answers nothing at all when one name is missing: ask per container.
                mine = []
                for c in rec.container_names:
                    mine += self._inspect_ids([f"{rec.podman.name}-{c}"]) or []
            seen = kubelet.parse_inspect(mine, rec.podman.name)
            out[rec.key] = seen
        return out

    def _inspect_ids(self, ids: list[str]) -> list[dict[str, Any]] | None:
        proc = self.engine._run(["container", "inspect", *ids], timeout=30)
        if proc.returncode != 0:
            return None
        return list(json.loads(proc.stdout or b"[]") or [])

    # -- bookkeeping --------------------------------------------------------------------

    def _record(self, rec: PodRecord, spec: EventSpec) -> None:
        self.events.record(rec.obj, spec)

    def _publish(self, kind: str, rec: PodRecord) -> None:
        rv = self.versions.next()
        rec.obj["metadata"]["resourceVersion"] = str(rv)
        obj = copy.deepcopy(rec.obj)
        ns = obj["metadata"]["namespace"]
        self._history.append((rv, ns, kind, obj))
        for w in list(self._watchers):
            if w.namespace == ns:
                w.queue.put_nowait((kind, copy.deepcopy(obj)))


def _stub(podman_name: str, session: str) -> Pod:
    """A minimal labkit Pod naming one of the stand-in's Podman pods, enough for PodmanEngine.delete."""
    pod = _pod_from_doc(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": podman_name},
            "spec": {"containers": [{"name": "c", "image": "none"}]},
        },
        "stand-in cleanup",
    )
    return ownership.stamp(pod, session)


def _submitted_name(doc: Any) -> str:
    """The name a submitted body gives, before it is checked (admission names the object it refuses)."""
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    return str(meta.get("name") or "") if isinstance(meta, dict) else ""


def require_container(rec: PodRecord, container: str | None) -> str:
    """The container a subresource request means, or 400 worded as kube-apiserver does."""
    names = rec.container_names
    name = rec.obj["metadata"]["name"]
    if not container:
        if len(names) == 1:
            return names[0]
        raise bad_request(f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]")
    if container not in names:
        raise bad_request(f"container {container} is not valid for pod {name}")
    return container
