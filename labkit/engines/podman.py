"""The local engine: runs the lab's Pod with ``podman kube play`` on this machine.

Podman 4.3 plays Pod YAML, but differs from Kubernetes where a student can
see it. This engine closes those gaps before the pod starts:

* an ``emptyDir`` is filled with the image's files at the mount path
  (copy-up); here each emptyDir becomes a fresh, empty, world-writable
  directory owned by the kit, removed with the pod;
* a ``containerPort`` without ``hostPort`` is published on every interface
  at the same number, so two labs clash; here each declared port is
  published on 127.0.0.1 only, at a free port, and reached through the
  kit's port-forward;
* init containers are run to their end before the pod's containers are
  made (Podman 4.3 leaves those created, never started); ``medium: Memory``
  becomes a tmpfs and ``subPath`` a mount of that part of the volume;
* the pod's containers are reported in Kubernetes' words (``waiting`` with
  ``ContainerCreating``, the last exit code of a restarted container).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml

from labkit.engines.base import CommandTimedOut, ContainerState, ExecResult, PodState
from labkit.engines.podman_yaml import for_kube_play, quantity_bytes
from labkit.errors import ContainerCrashed, EngineError, EngineUnavailable, ImageNotFound, PortError, WrongImage
from labkit.manifest import Pod

INSTALL_HINT = (
    "install it with 'sudo apt-get install podman runc catatonit' (Debian/Ubuntu) or see "
    "https://podman.io/docs/installation, then run 'scripts/prepare-podman.sh'; "
    "or point the kit at a Kubernetes cluster instead"
)


class PodmanEngine:
    """Drive the ``podman`` command line; see the module docstring for what it adds."""

    name = "podman"
    where = "in Podman on this machine"
    restart_backoff = False  # Podman 4.3 restarts a crashed container at once, every time: no CrashLoopBackOff

    def __init__(self, podman: str | None = None, state_dir: str | os.PathLike[str] | None = None) -> None:
        exe = podman or os.environ.get("LABKIT_PODMAN", "podman")
        found = shutil.which(exe)
        if not found:
            raise EngineUnavailable(f"Podman is not installed (no {exe!r} on PATH); {INSTALL_HINT}")
        self.podman = found
        self.records: dict[str, dict[str, str]] = {}
        proc = self._run(["info", "--format", "json"], timeout=60)
        if proc.returncode != 0:
            raise EngineUnavailable(
                f"Podman is installed but not usable: {_last_line(proc.stderr)}; "
                "on Debian/Ubuntu run 'scripts/prepare-podman.sh' (it fixes the runtime and its limits), "
                "or point the kit at a Kubernetes cluster instead"
            )
        info = json.loads(proc.stdout or b"{}")
        host = info.get("host", {})
        self.rootless = bool(host.get("security", {}).get("rootless"))
        self.container_cgroups = not self.rootless or _delegated_memory_cgroups(host)
        # A remote Podman (a VM on macOS or Windows) has a clock of its own.
        self.shares_host_clock = not host.get("serviceIsRemote", False)
        self.version = info.get("version", {}).get("Version", "?")
        self.runtime = host.get("ociRuntime", {}).get("name", "?")
        default_state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "labkit"
        self.state_dir = Path(state_dir or os.environ.get("LABKIT_STATE_DIR") or default_state) / "podman"
        self._ports: dict[str, dict[int, int]] = {}
        self._applied_at: dict[str, str] = {}
        self._exit_codes: dict[tuple[str, str], tuple[int, int | None]] = {}  # (pod, container): (restarts, code)

    def describe(self) -> str:
        mode = "rootless" if self.rootless else "rootful"
        return f"podman {self.version} ({mode}, runtime {self.runtime}) on this machine"

    # -- lifecycle -----------------------------------------------------------------

    def remove_command(self, pod: Pod) -> str:
        return f"podman pod rm -f {pod.name}"

    def changes(self, pod: Pod) -> list[str]:
        return list(for_kube_play(pod.doc)[1])

    def labels(self, pod: Pod) -> dict[str, str] | None:
        proc = self._run(["pod", "inspect", pod.name], timeout=30)
        if proc.returncode != 0:
            return None
        return _first(json.loads(proc.stdout or b"{}")).get("Labels") or {}

    def create(self, pod: Pod) -> None:
        played, _ = for_kube_play(pod.doc)
        self._check_images(played)
        self._applied_at[pod.name] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        doc, ports = self._local_doc(pod, played)
        spec_file = self._pod_dir(pod) / "pod.yaml"
        spec_file.write_text(yaml.dump(doc, Dumper=_QuotedStrings, sort_keys=False), encoding="utf-8")
        proc = self._run(["kube", "play", str(spec_file)], timeout=300)
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace")
            if "address already in use" in err:
                raise PortError(f"a port of pod {pod.name!r} was taken while it started; apply it again")
            if any(t in err for t in ("rlimit", "cgroup", "/dev/net/tun", "OCI runtime")):
                raise EngineUnavailable(
                    f"Podman cannot run containers here: {_last_line(proc.stderr)}; run 'scripts/prepare-podman.sh' "
                    "(it fixes the runtime and its limits), or point the kit at a Kubernetes cluster instead"
                )
            raise EngineError(f"podman could not start pod {pod.name!r}: {_last_line(proc.stderr)}")
        self._ports[pod.name] = ports

    def remove(self, pod: Pod) -> None:
        # Stopping first is much faster than 'pod rm --force' alone, which also waits on cgroups.
        self._run(["pod", "stop", "--time", "0", pod.name], timeout=60)
        removed = self._run(["pod", "rm", "--force", pod.name], timeout=60).returncode == 0
        if removed or not self._exists(pod.name):
            self._remove(pod)
            self._ports.pop(pod.name, None)
            for key in [k for k in self._exit_codes if k[0] == pod.name]:
                del self._exit_codes[key]

    def state(self, pod: Pod) -> PodState | None:
        items = self._inspect(pod)
        if not items and not self._exists(pod.name):
            return None
        return PodState({name: self._container_state(pod, name, item) for name, item in items.items()})

    def wait_for_change(self, pod: Pod, seen: PodState, seconds: float) -> None:
        time.sleep(max(0.0, min(0.1, seconds)))  # Podman has no watch: look again shortly

    def _container_state(self, pod: Pod, name: str, item: dict[str, Any]) -> ContainerState:
        st = item.get("State", {})
        status = st.get("Status", "unknown")
        restarts = int(item.get("RestartCount") or 0)
        now: Literal["waiting", "running", "terminated"]
        if status == "running":
            now, reason = "running", ""
        elif status in ("exited", "stopped", "dead"):
            now, reason = "terminated", "Error" if st.get("ExitCode") else "Completed"
        else:
            now, reason = "waiting", _WAITING.get(status, status)
        last_code = None
        if restarts:
            # A restarted container shows the new run; its last exit code is in the event log,
            # read again only when the count has moved (a measurement looks once a second).
            key = (pod.name, name)
            known = self._exit_codes.get(key)
            if known is None or known[0] != restarts:
                known = (restarts, self._last_exit_code(pod, name))
                self._exit_codes[key] = known
            last_code = known[1]
        code = int(st.get("ExitCode") or 0)
        return ContainerState(
            name=name,
            state=now,
            reason=reason,
            exit_code=code if now == "terminated" else None,
            restarts=restarts,
            started_at=_timestamp(st.get("StartedAt")),
            last_exit_code=last_code,
            last_reason=("Error" if last_code else "Completed") if last_code is not None else "",
            last_finished_at=_timestamp(st.get("FinishedAt")) if restarts or now == "terminated" else None,
            message=str(st.get("Error") or ""),
        )

    # -- working with a running pod ------------------------------------------------

    def exec(self, pod: Pod, container: str, argv: Sequence[str], timeout: float | None) -> ExecResult:
        ctr = _container_id(pod, container)
        started = time.monotonic()
        try:
            proc = subprocess.run(
                [self.podman, "exec", ctr, *argv],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise CommandTimedOut(exc.stdout or b"", exc.stderr or b"") from None
        duration = time.monotonic() - started
        if proc.returncode in (125, 126, 127, 255) and proc.stderr.startswith(b"Error: "):
            proc = self._exec_failure(pod, container, argv, proc)
        return ExecResult(
            args=list(argv),
            returncode=proc.returncode,
            stdout_bytes=proc.stdout,
            stderr_bytes=proc.stderr,
            container=container,
            duration=duration,
        )

    def connect(self, pod: Pod, port: int, timeout: float) -> socket.socket:
        host_port = self._host_port(pod, port)
        try:
            return socket.create_connection(("127.0.0.1", host_port), timeout=timeout)
        except OSError as exc:
            raise PortError(f"nothing answers on port {port} of pod {pod.name!r} ({exc.strerror or exc})") from exc

    def logs(self, pod: Pod, container: str, tail: int | None = None, previous: bool = False) -> str:
        # Podman keeps every run of a container in one log, so there is no separate previous run to read.
        args = ["logs"]
        if tail is not None:
            args += ["--tail", str(tail)]
        proc = self._run([*args, _container_id(pod, container)], timeout=30, merge=True)
        if proc.returncode != 0:
            raise EngineError(f"podman could not read the logs of {container!r}: {_last_line(proc.stdout)}")
        return proc.stdout.decode("utf-8", "replace")

    def events(self, pod: Pod) -> list[str]:
        return []  # Podman keeps no events about a pod that say more than its containers' states

    def read_record(self, name: str) -> dict[str, str] | None:
        return self.records.get(name)

    def record(self, name: str, data: Mapping[str, str]) -> None:
        self.records[name] = dict(data)  # no instructor reads a machine of one's own: kept for this session

    # -- helpers -------------------------------------------------------------------

    def _run(self, args: list[str], *, timeout: float, merge: bool = False) -> subprocess.CompletedProcess[bytes]:
        try:
            return subprocess.run(
                [self.podman, *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT if merge else subprocess.PIPE,
                timeout=timeout,
            )
        except FileNotFoundError as exc:
            raise EngineUnavailable(f"Podman is not installed; {INSTALL_HINT}") from exc
        except subprocess.TimeoutExpired as exc:
            raise EngineError(f"'podman {' '.join(args[:3])}' did not answer within {timeout:g} s") from exc

    def _exists(self, name: str) -> bool:
        return self._run(["pod", "exists", name], timeout=30).returncode == 0

    def _check_images(self, doc: dict[str, Any]) -> None:
        for kind in ("initContainers", "containers"):
            for c in doc["spec"].get(kind) or []:
                name, image = c["name"], c["image"]
                found = self._run(["image", "inspect", "--format", "{{json .Labels}}", image], timeout=30)
                if found.returncode == 0:
                    _check_standin(name, image, json.loads(found.stdout or b"null") or {})
                    continue
                proc = self._run(["pull", "--quiet", image], timeout=120)
                if proc.returncode != 0:
                    raise ImageNotFound(
                        f"image {image!r} of container {name!r} is not on this machine and could not be "
                        f"pulled ({_last_line(proc.stderr)}); check the image name, or without a registry "
                        "build the lab's stand-in images with 'scripts/build-standin-images.sh' "
                        "or load them with 'podman load -i FILE'",
                        container=name,
                        reason="ErrImagePull",
                    )

    def _local_doc(self, pod: Pod, doc: dict[str, Any]) -> tuple[dict[str, Any], dict[int, int]]:
        """The manifest as Podman must play it to behave like Kubernetes (``doc``: translated, a copy)."""
        spec = doc["spec"]
        self._pod_dir(pod, fresh=True)  # a fresh directory: a leftover of an earlier pod of this name goes
        directories: dict[str, Path] = {}
        for vol in spec.get("volumes") or []:
            if "emptyDir" in vol:
                path = self.volume_dir(pod, vol["name"])
                path.mkdir(parents=True)
                path.chmod(0o777)  # emptyDir is world-writable in Kubernetes too
                source = vol.pop("emptyDir") or {}
                if source.get("medium") == "Memory":
                    limit = source.get("sizeLimit")
                    self._mount_tmpfs(pod, path, quantity_bytes(limit) if limit is not None else None)
                vol["hostPath"] = {"path": str(path), "type": "Directory"}
            if "hostPath" in vol:
                directories[vol["name"]] = Path(vol["hostPath"]["path"])
        hostname = str(spec.get("hostname") or pod.name[:63].rstrip("-."))  # as the kubelet names a pod's host
        for init in spec.pop("initContainers", None) or []:
            self._run_init_container(pod, init, directories, hostname)
        self._play_sub_paths(spec, directories)
        ports: dict[int, int] = {}
        for c in spec["containers"]:
            for p in c.get("ports") or []:
                if not p.get("hostPort"):
                    p["hostPort"] = _free_port()
                p.setdefault("hostIP", "127.0.0.1")
                ports[p["containerPort"]] = p["hostPort"]
        return doc, ports

    def _mount_tmpfs(self, pod: Pod, path: Path, size: int | None) -> None:
        """Make ``path`` a tmpfs, as Kubernetes makes an emptyDir of ``medium: Memory`` (Podman 4.3 drops it)."""
        options = "mode=0777" + (f",size={size}" if size is not None else "")
        cmd = ["mount", "-t", "tmpfs", "-o", options, f"labkit-{pod.name}", str(path)]
        if self.rootless:
            proc = self._run(["unshare", *cmd], timeout=30)  # in the namespace Podman runs the containers in
        else:
            proc = subprocess.run(cmd, capture_output=True, timeout=30, check=False)
        if proc.returncode != 0:
            raise EngineError(
                f"cannot mount a tmpfs for an emptyDir of medium: Memory in pod {pod.name!r}: "
                f"{_last_line(proc.stderr)}; leave out medium: Memory to use a directory on disk, "
                "or run the lab on a cluster (LABKIT_ENGINE=kubernetes)"
            )

    def _play_sub_paths(self, spec: dict[str, Any], directories: dict[str, Path]) -> None:
        """Mount each ``subPath`` as its own directory or file of the volume, which Podman 4.3 ignores.

        As the kubelet does, a sub-path is looked up when the containers are
        made, after the init containers ran, and one that does not exist yet
        is created as a directory.
        """
        volumes = spec.setdefault("volumes", [])
        for c in spec["containers"]:
            for m in c.get("volumeMounts") or []:
                if not m.get("subPath") or m.get("name") not in directories:
                    continue
                target = _sub_path(directories[m["name"]], m.pop("subPath"))
                name = f"{m['name']}-sub-{len(volumes)}"
                kind = "File" if target.is_file() else "Directory"
                volumes.append({"name": name, "hostPath": {"path": str(target), "type": kind}})
                m["name"] = name

    def _run_init_container(self, pod: Pod, c: dict[str, Any], directories: dict[str, Path], hostname: str) -> None:
        """Run one init container to its end before the pod's containers are made, as the kubelet does.

        Podman 4.3's ``kube play`` runs an init container but then fails to
        remove it and leaves the pod's containers created, never started; so
        the engine runs it itself, with the pod's volumes, and plays the pod
        without it. A failure stops the apply with the container's output.
        """
        name = c["name"]
        argv = ["run", "--rm", "--name", f"{pod.name}-{name}", "--hostname", hostname]
        for m in c.get("volumeMounts") or []:
            if m.get("name") not in directories:
                raise EngineError(
                    f"init container {name!r} of pod {pod.name!r} mounts volume {m.get('name')!r}, which the local "
                    "engine gives only to the pod's containers; mount an emptyDir or hostPath volume instead, "
                    "or run the lab on a cluster (LABKIT_ENGINE=kubernetes)"
                )
            source = directories[m["name"]]
            if m.get("subPath"):
                source = _sub_path(source, m["subPath"])
            argv += ["--volume", f"{source}:{m['mountPath']}" + (":ro" if m.get("readOnly") else "")]
        for var in c.get("env") or []:
            argv += ["--env", f"{var['name']}={var.get('value', '')}"]
        if c.get("workingDir"):
            argv += ["--workdir", str(c["workingDir"])]
        if c.get("command"):
            argv += ["--entrypoint", json.dumps([str(a) for a in c["command"]])]
        argv += [c["image"], *[str(a) for a in c.get("args") or []]]
        try:
            proc = self._run(argv, timeout=300, merge=True)
        finally:
            self._run(["rm", "--force", "--ignore", f"{pod.name}-{name}"], timeout=60)
        if proc.returncode != 0:
            raise ContainerCrashed(
                f"init container {name!r} of pod {pod.name!r} exited with code {proc.returncode} "
                f"({_last_line(proc.stdout) or 'no output'}), so the pod's containers were never started; "
                "fix its command and apply the lab again",
                container=name,
                reason="Init:Error",
            )

    def volume_dir(self, pod: Pod, volume: str) -> Path:
        """The directory on this machine that holds ``pod``'s emptyDir ``volume`` while the pod exists."""
        return self.state_dir / pod.name / "volumes" / volume

    def _pod_dir(self, pod: Pod, fresh: bool = False) -> Path:
        path = self.state_dir / pod.name
        if fresh:
            self._remove(pod)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _remove(self, pod: Pod) -> None:
        path = self.state_dir / pod.name
        if not path.exists():
            return
        for volume in sorted((path / "volumes").glob("*")):  # a tmpfs of medium: Memory goes first
            if self.rootless:
                self._run(["unshare", "sh", "-c", '! mountpoint -q "$1" || umount "$1"', "sh", str(volume)], timeout=30)
            elif os.path.ismount(volume):
                subprocess.run(["umount", str(volume)], capture_output=True, timeout=30, check=False)
        if self.rootless:
            # Files written by other users inside the containers belong to sub-ids.
            self._run(["unshare", "rm", "-rf", str(path)], timeout=60)
        shutil.rmtree(path, ignore_errors=True)

    def _inspect(self, pod: Pod) -> dict[str, dict[str, Any]]:
        """``podman container inspect`` of the pod's containers, by container name (none: an empty dict)."""
        ids = [_container_id(pod, n) for n in pod.container_names]
        proc = self._run(["container", "inspect", *ids], timeout=30)
        items = json.loads(proc.stdout or b"[]") or []
        return {item.get("Name", "").removeprefix(pod.name + "-"): item for item in items}

    def _last_exit_code(self, pod: Pod, container: str) -> int | None:
        since = self._applied_at.get(pod.name)
        proc = self._run(
            [
                "events",
                "--stream=false",
                "--since",
                since or "10m",
                "--filter",
                "event=died",
                "--filter",
                f"container={_container_id(pod, container)}",
                "--format",
                "{{.ContainerExitCode}}",
            ],
            timeout=30,
        )
        codes = [ln for ln in proc.stdout.decode().split() if ln.strip().lstrip("-").isdigit()]
        return int(codes[-1]) if codes else None

    def _exec_failure(
        self, pod: Pod, container: str, argv: Sequence[str], proc: subprocess.CompletedProcess[bytes]
    ) -> subprocess.CompletedProcess[bytes]:
        """Tell Podman's own failures apart from the command's exit code."""
        err = proc.stderr.decode("utf-8", "replace")
        if "executable file not found" in err or "no such file or directory" in err:
            proc.returncode = 127
            proc.stderr = f"{argv[0]}: command not found in container {container!r}\n".encode()
            return proc
        if "permission denied" in err:
            proc.returncode = 126
            return proc
        if any(t in err for t in ("no such container", "not running", "no container with name", "state improper")):
            raise EngineError(
                f"container {container!r} of pod {pod.name!r} is not running ({_last_line(proc.stderr)}); "
                "apply the lab and wait until it is ready first"
            )
        return proc

    def _host_port(self, pod: Pod, port: int) -> int:
        ports = self._ports.get(pod.name)
        if ports is None:
            ports = self._read_ports(pod)
            self._ports[pod.name] = ports
        if port not in ports:
            declared = ", ".join(str(p) for p in sorted(ports)) or "none"
            raise PortError(
                f"port {port} is not a containerPort of pod {pod.name!r} (declared: {declared}); "
                "on the Podman engine only declared ports can be forwarded: add it under the "
                "container's 'ports' in the manifest"
            )
        return ports[port]

    def _read_ports(self, pod: Pod) -> dict[int, int]:
        proc = self._run(["pod", "inspect", pod.name], timeout=30)
        if proc.returncode != 0:
            raise EngineError(f"there is no pod {pod.name!r} {self.where}")
        bindings = (_first(json.loads(proc.stdout)).get("InfraConfig") or {}).get("PortBindings") or {}
        out = {}
        for key, binds in bindings.items():
            for b in binds or []:
                if b.get("HostIp") in ("127.0.0.1", "localhost"):
                    out[int(key.split("/")[0])] = int(b["HostPort"])
        return out


class _QuotedStrings(yaml.SafeDumper):
    """Writes every string quoted: Podman's YAML reader would take a label such as 30159254e13 for a number."""


_QuotedStrings.add_representer(str, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", v, style='"'))


def _check_standin(container: str, image: str, labels: dict[str, str]) -> None:
    """Refuse a stand-in image under another image's name (a mixed-up ``podman save``/``load``, say)."""
    meant = labels.get("labkit.standin.image")
    named = image.split("@")[0].rsplit("/", 1)[-1].split(":")[0]
    if labels.get("labkit.standin") != "true" or not meant or meant == named:
        return
    raise WrongImage(
        f"image {image!r} of container {container!r} is the kit's stand-in for {meant!r}, not {named!r} (its label "
        f"labkit.standin.image={meant}): the images were mixed up when they were copied; load each from its own "
        "archive with 'scripts/build-standin-images.sh --load DIR' (written by '--save DIR'), or rebuild them "
        "with 'scripts/build-standin-images.sh --force'",
        container=container,
        reason="ImageMismatch",
    )


def _sub_path(volume: Path, sub_path: str) -> Path:
    """Where ``sub_path`` of a volume is on this machine; made a directory when missing, as the kubelet does."""
    target = volume / sub_path
    if not target.exists():
        target.mkdir(parents=True, mode=0o755)
    return target


def _container_id(pod: Pod, container: str) -> str:
    return f"{pod.name}-{container}"


# Podman's words for a container that is being set up, as Kubernetes says it.
_WAITING = {"configured": "ContainerCreating", "created": "ContainerCreating", "initialized": "ContainerCreating"}


def _timestamp(text: object) -> datetime | None:
    """A time from ``podman inspect`` (nanoseconds, UTC), or None for Podman's zero time."""
    if not text or str(text).startswith("0001-01-01"):
        return None
    try:
        return pd.Timestamp(str(text)).tz_convert("UTC").to_pydatetime(warn=False)
    except (ValueError, TypeError):
        return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _first(value: Any) -> dict[str, Any]:
    if isinstance(value, list):
        return value[0] if value else {}
    return value or {}


def _last_line(data: bytes) -> str:
    lines = [ln.strip() for ln in data.decode("utf-8", "replace").splitlines() if ln.strip()]
    lines = [ln for ln in lines if "failed to connect to syslog" not in ln]
    return lines[-1] if lines else "no message"


def _delegated_memory_cgroups(host: dict[str, Any]) -> bool:
    """Whether rootless Podman gives each container a memory cgroup of its own, from ``podman info``'s host.

    Only through systemd on cgroup v2, with the memory controller delegated to the user; elsewhere
    (cgroup v1, or no systemd user session) its containers stay in the user's own cgroup.
    """
    return (
        host.get("cgroupVersion") == "v2"
        and host.get("cgroupManager") == "systemd"
        and "memory" in (host.get("cgroupControllers") or [])
    )
