"""Pod status and events as a kubelet would write them, read from what Podman reports (a fake).

The stand-in has no kubelet: it runs each pod on Podman and translates
``podman container inspect`` into ``status`` (phase, conditions,
containerStatuses) with the reasons and messages a real kubelet uses
(ContainerCreating, ErrImagePull, ImagePullBackOff, CrashLoopBackOff, ...),
plus the events a kubelet would record on the way. Everything here is pure
bookkeeping; running Podman is :mod:`pods`' job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# How long ErrImagePull shows before the kubelet moves on to ImagePullBackOff.
PULL_BACKOFF_AFTER = 1.0


@dataclass(frozen=True)
class EventSpec:
    """One event to record: what happened to which part of the pod, and who says so."""

    type: str  # Normal or Warning
    reason: str
    message: str
    field_path: str = ""
    component: str = "kubelet"


@dataclass(frozen=True)
class Observed:
    """One container as Podman reports it."""

    status: str  # created, running, exited, stopped, ...
    exit_code: int
    started_at: str
    finished_at: str
    container_id: str
    image: str
    image_id: str
    started_epoch: float = 0.0  # exact start of the current run, for the readiness settle time
    finished_epoch: float = 0.0  # exact end of the last run, where the restart back-off counts from


@dataclass
class ContainerMemory:
    """What the fake kubelet remembers about a container between observations.

    The stand-in restarts containers itself (Podman plays them with
    ``restartPolicy: Never``), so the restart count, the last run's exit and
    the back-off being waited out are its own, as a kubelet's are.
    """

    announced_start: bool = False
    restarts: int = 0
    last_exit: int | None = None
    last_finished: str = ""
    pull_backoff_announced: bool = False
    backoff_until: float = 0.0  # epoch seconds: the exited run waits in CrashLoopBackOff until then
    backoff: str = ""  # the back-off as the kubelet's message shows it ("10s", "5m0s")
    backoff_announced_for: str = ""  # the finishedAt of the run whose BackOff event was recorded


@dataclass
class Runtime:
    """A pod's life on Podman, as far as the stand-in has got with it."""

    uid: str
    scheduled: bool = False
    missing_images: dict[str, str] = field(default_factory=dict)  # container -> image
    pull_failed_at: float = 0.0  # time.monotonic()
    sandbox: bool = False  # the Podman pod exists
    observed: dict[str, Observed] = field(default_factory=dict)
    memory: dict[str, ContainerMemory] = field(default_factory=dict)
    start_time: str = ""

    def mem(self, container: str) -> ContainerMemory:
        return self.memory.setdefault(container, ContainerMemory())


# The stand-in reports a container ready once it has run this long.
READY_AFTER = 1.0
# Podman states of a container whose process still runs: "stopping" is after the stop signal, before the exit.
RUNNING = ("running", "paused", "stopping")


def full_image(image: str) -> str:
    """``ubuntu`` -> ``docker.io/library/ubuntu:latest``, as the runtime reports it."""
    ref = image
    first = ref.split("/", 1)[0]
    if "/" not in ref:
        ref = f"docker.io/library/{ref}"
    elif "." not in first and ":" not in first and first != "localhost":
        ref = f"docker.io/{ref}"
    last = ref.rsplit("/", 1)[-1]
    if ":" not in last and "@" not in last:
        ref += ":latest"
    return ref


def pull_error(image: str) -> str:
    ref = full_image(image)
    return (
        f'rpc error: code = NotFound desc = failed to pull and unpack image "{ref}": '
        f'failed to resolve reference "{ref}": {ref}: not found'
    )


def parse_inspect(items: list[dict[str, Any]], podman_pod: str) -> dict[str, Observed]:
    """``podman container inspect`` output -> Observed per container name of the Kubernetes pod."""
    out: dict[str, Observed] = {}
    for item in items:
        name = str(item.get("Name", ""))
        if not name.startswith(podman_pod + "-"):
            continue
        st = item.get("State") or {}
        image_name = str(item.get("ImageName") or "")
        digest = str(item.get("ImageDigest") or "")
        repo = image_name.rsplit(":", 1)[0] if ":" in image_name.rsplit("/", 1)[-1] else image_name
        out[name[len(podman_pod) + 1 :]] = Observed(
            status=str(st.get("Status", "unknown")),
            exit_code=int(st.get("ExitCode") or 0),
            started_at=_seconds(str(st.get("StartedAt") or "")),
            finished_at=_seconds(str(st.get("FinishedAt") or "")),
            container_id=str(item.get("Id") or ""),
            image=image_name,
            image_id=f"{repo}@{digest}" if digest else "",
            started_epoch=_epoch(str(st.get("StartedAt") or "")),
            finished_epoch=_epoch(str(st.get("FinishedAt") or "")),
        )
    return out


_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def _epoch(stamp: str) -> float:
    """Podman's ``2026-11-25T13:17:37.656434195Z`` as seconds since the epoch (0.0 when unset)."""
    m = _STAMP.match(stamp.strip())
    if not m or stamp.startswith("0001-"):
        return 0.0
    whole, frac, zone = m.groups()
    then = datetime.fromisoformat(whole + ("+00:00" if zone == "Z" else zone))
    return then.timestamp() + float(f"0{frac or '.0'}")


def _seconds(stamp: str) -> str:
    """Podman's nanosecond stamp -> Kubernetes' UTC second precision (``2026-11-25T13:17:37Z``)."""
    epoch = _epoch(stamp)
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if epoch else ""


def go_duration(seconds: float) -> str:
    """Whole seconds as Go's ``time.Duration`` prints them (``10s``, ``1m20s``, ``5m0s``), as the message shows."""
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest}s" if minutes else f"{rest}s"


def must_restart(restart_policy: str, exit_code: int) -> bool:
    """Whether the kubelet starts an exited container again (``ShouldContainerBeRestarted``)."""
    return restart_policy == "Always" or (restart_policy == "OnFailure" and exit_code != 0)


def observe(
    doc: dict[str, Any], rt: Runtime, previous: dict[str, Any], now_mono: float
) -> tuple[dict[str, Any], list[EventSpec]]:
    """The pod's status now, and the events that happened since the last observation."""
    now = datetime.now(UTC)
    meta, spec = doc["metadata"], doc["spec"]
    events: list[EventSpec] = []
    statuses = []
    for c in spec["containers"]:
        cs, evs = _container_status(c, meta, spec, rt, now, now_mono)
        statuses.append(cs)
        events.extend(evs)

    phase = _phase(statuses, spec.get("restartPolicy", "Always"))
    unready = [cs["name"] for cs in statuses if not cs["ready"]]
    ready = "False" if unready else "True"
    why = (
        {"reason": "ContainersNotReady", "message": f"containers with unready status: [{' '.join(unready)}]"}
        if unready
        else {}
    )
    conditions: list[dict[str, Any]] = [
        {"type": "PodReadyToStartContainers", "status": "True" if rt.sandbox else "False"},
        {"type": "Initialized", "status": "True"},
        {"type": "Ready", "status": ready, **why},
        {"type": "ContainersReady", "status": ready, **why},
        {"type": "PodScheduled", "status": "True"},
    ]
    before = {c["type"]: c for c in previous.get("conditions") or []}
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    for cond in conditions:
        old: dict[str, Any] | None = before.get(cond["type"])
        cond["lastProbeTime"] = None
        cond["lastTransitionTime"] = old["lastTransitionTime"] if old and old["status"] == cond["status"] else stamp
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": conditions,
        "hostIP": "127.0.0.1",
        "hostIPs": [{"ip": "127.0.0.1"}],
        "startTime": rt.start_time,
        "containerStatuses": statuses,
        "qosClass": "BestEffort",
    }
    return status, events


def scheduled_status(rt: Runtime) -> dict[str, Any]:
    """What the pod shows right after the scheduler bound it, before the kubelet has reported."""
    stamp = rt.start_time
    return {
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": stamp}],
        "qosClass": "BestEffort",
    }


def _waiting(reason: str, message: str = "") -> dict[str, Any]:
    body = {"reason": reason}
    if message:
        body["message"] = message
    return {"waiting": body}


def _container_status(
    c: dict[str, Any], meta: dict[str, Any], spec: dict[str, Any], rt: Runtime, now: datetime, now_mono: float
) -> tuple[dict[str, Any], list[EventSpec]]:
    name, image = c["name"], str(c["image"])
    where = f"spec.containers{{{name}}}"
    mem = rt.mem(name)
    events: list[EventSpec] = []
    cs: dict[str, Any] = {
        "name": name,
        "image": full_image(image),
        "imageID": "",
        "ready": False,
        "restartCount": 0,
        "started": False,
        "lastState": {},
    }
    obs = rt.observed.get(name)

    if name in rt.missing_images:
        if now_mono - rt.pull_failed_at < PULL_BACKOFF_AFTER:
            cs["state"] = _waiting("ErrImagePull", pull_error(image))
        else:
            cs["state"] = _waiting("ImagePullBackOff", f'Back-off pulling image "{image}"')
            if not mem.pull_backoff_announced:
                mem.pull_backoff_announced = True
                events += [
                    EventSpec("Normal", "BackOff", f'Back-off pulling image "{image}"', where),
                    EventSpec("Warning", "Failed", "Error: ImagePullBackOff", where),
                ]
        return cs, events
    if not rt.sandbox or obs is None:
        if rt.sandbox and mem.announced_start:
            # It ran, and Podman no longer knows it: what a kubelet says of a container it lost.
            cs["state"] = {
                "terminated": {
                    "exitCode": 137,
                    "reason": "ContainerStatusUnknown",
                    "message": "The container could not be located when the pod was terminated",
                }
            }
        else:
            cs["state"] = _waiting("ContainerCreating")
        return cs, events

    cs["containerID"] = f"podman://{obs.container_id}"
    cs["image"] = obs.image or cs["image"]
    cs["imageID"] = obs.image_id
    cs["restartCount"] = mem.restarts
    if obs.status in ("created", "configured", "initialized"):
        cs["state"] = _waiting("ContainerCreating")
        return cs, events

    if not mem.announced_start:
        mem.announced_start = True
        events += [
            EventSpec("Normal", "Created", f"Created container: {name}", where),
            EventSpec("Normal", "Started", f"Started container {name}", where),
        ]
    if mem.restarts and mem.last_exit is not None:
        cs["lastState"] = _terminated(mem.last_exit, "", mem.last_finished, obs.container_id)
    if obs.status in RUNNING:
        running_for = now.timestamp() - obs.started_epoch if obs.started_epoch else 0.0
        cs["state"] = {"running": {"startedAt": obs.started_at}}
        cs["started"] = True
        cs["ready"] = running_for >= READY_AFTER
        return cs, events
    ended = _terminated(obs.exit_code, obs.started_at, obs.finished_at, obs.container_id)
    if mem.backoff_until > now.timestamp():
        # The kubelet's doBackOff: the run that just ended is the last state, the container waits.
        pod_ref = f"{meta['name']}_{meta['namespace']}({rt.uid})"
        cs["lastState"] = ended
        cs["state"] = _waiting(
            "CrashLoopBackOff", f"back-off {mem.backoff} restarting failed container={name} pod={pod_ref}"
        )
        if mem.backoff_announced_for != obs.finished_at:
            mem.backoff_announced_for = obs.finished_at
            events.append(
                EventSpec("Warning", "BackOff", f"Back-off restarting failed container {name} in pod {pod_ref}", where)
            )
        return cs, events
    cs["state"] = ended
    return cs, events


def _terminated(code: int, started_at: str, finished_at: str, container_id: str) -> dict[str, Any]:
    body = {
        "exitCode": code,
        "reason": "Completed" if code == 0 else "Error",
        "startedAt": started_at,
        "finishedAt": finished_at,
        "containerID": f"podman://{container_id}",
    }
    return {"terminated": {k: v for k, v in body.items() if v != ""}}


def _phase(statuses: list[dict[str, Any]], restart_policy: str) -> str:
    """The kubelet's phase rule (``getPhase``) over the container statuses."""
    running = waiting = stopped = succeeded = 0
    for cs in statuses:
        state = cs["state"]
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            succeeded += state["terminated"]["exitCode"] == 0
        elif cs["lastState"].get("terminated"):
            stopped += 1
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if restart_policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"
