"""Who does what in a sidecar Pod, read from the manifest instead of assumed.

The lab needs to know which container writes, which one serves, through
which shared volume, which file, on which port and how often. An
instructor's variant of the Pod (other names, paths, port or cadence) must
work unchanged, so all of it is derived here, and every guess can be
overridden by name when a manifest is ambiguous.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from labkit.errors import ManifestError
from labkit.manifest import Container, Pod

_SLEEP = re.compile(r"\bsleep\s+(\d+(?:\.\d+)?)\b")
_SLEEP_VAR = re.compile(r'\bsleep\s+"?\$\{?(\w+)(?::-(\d+(?:\.\d+)?))?\}?"?')


@dataclass(frozen=True)
class Layout:
    """The roles in a sidecar Pod and the paths that connect them."""

    producer: str
    server: str
    volume: str
    producer_path: str  # the file, as the producer sees it
    server_path: str  # the same file, as the server sees it
    url_path: str  # what to request from the server to get the file
    port: int
    interval: float | None  # seconds between writes, when the manifest says

    def describe(self) -> str:
        cadence = f"every {self.interval:g} s" if self.interval is not None else "at an unknown cadence"
        return (
            f"{self.producer} writes {self.producer_path} {cadence}; "
            f"{self.server} serves it as {self.server_path} on port {self.port} "
            f"(shared volume {self.volume!r}, URL path {self.url_path})"
        )


def derive_layout(
    pod: Pod,
    *,
    producer: str | None = None,
    server: str | None = None,
    file: str | None = None,
    port: int | None = None,
    interval: float | None = None,
    url_path: str | None = None,
) -> Layout:
    """Work out the sidecar roles of ``pod``.

    The server is the container with a port; the producer is the other
    container that mounts a volume the server mounts. ``file`` is the file
    name relative to the shared volume (found in the producer's command when
    not given); where a container mounts part of the volume through
    ``subPath``, each path is worked out from what that container sees.
    The URL path assumes the server's mount is its web root, as in the
    tutorial; ``url_path`` says otherwise. Raises
    :class:`ManifestError` saying which option to pass when the manifest
    leaves a choice open.
    """
    srv = _pick_server(pod, server)
    prod = _pick_producer(pod, srv, producer)
    volume, prod_mount, srv_mount = _shared_volume(prod, srv)

    if port is None:
        if len(srv.ports) > 1:
            raise ManifestError(f"container {srv.name!r} has several ports {list(srv.ports)}; pass port= to choose one")
        port = srv.ports[0]
    elif port not in srv.ports:
        raise ManifestError(f"container {srv.name!r} has no containerPort {port}; its ports are {list(srv.ports)}")

    prod_sub, srv_sub = dict(prod.sub_paths).get(prod_mount, ""), dict(srv.sub_paths).get(srv_mount, "")
    if file is not None:
        rel = file.lstrip("/")
    else:
        rel = (
            posixpath.join(prod_sub, _file_from_script(prod, prod_mount))
            if prod_sub
            else _file_from_script(prod, prod_mount)
        )
    if not rel or ".." in rel.split("/"):
        raise ManifestError(f"file={file!r} must be a path inside the shared volume, such as 'index.html'")
    # ``rel`` is the file's path in the volume; each container sees only the part its subPath mounts.
    file_mount = bool(srv_sub) and rel == srv_sub  # the server mounts the file itself, its parent being the web root
    if srv_sub and not file_mount and not rel.startswith(srv_sub + "/"):
        raise ManifestError(
            f"{srv.name!r} mounts only {srv_sub!r} of volume {volume!r} (subPath), which does not hold {rel!r}; "
            "mount the directory the producer writes into, or pass file= with a path under it"
        )
    if prod_sub and not rel.startswith(prod_sub + "/"):
        raise ManifestError(
            f"file={file!r} is outside {prod_sub!r}, the part of volume {volume!r} that {prod.name!r} mounts"
        )
    srv_rel = rel[len(srv_sub) + 1 :] if srv_sub and not file_mount else rel
    prod_rel = rel[len(prod_sub) + 1 :] if prod_sub else rel
    if interval is None:
        interval = _interval_from_script(prod)
    elif interval <= 0:
        raise ManifestError(f"interval={interval!r} must be a positive number of seconds")

    if url_path is None:
        url_path = "/" + (posixpath.basename(srv_mount) if file_mount else srv_rel)
    elif not url_path.startswith("/"):
        raise ManifestError(f"url_path={url_path!r} must start with '/', e.g. '/feed/log.txt'")
    return Layout(
        producer=prod.name,
        server=srv.name,
        volume=volume,
        producer_path=posixpath.join(prod_mount, prod_rel),
        server_path=srv_mount if file_mount else posixpath.join(srv_mount, srv_rel),
        url_path=url_path,
        port=port,
        interval=interval,
    )


def _pick_server(pod: Pod, name: str | None) -> Container:
    if name is not None:
        c = pod.container(name)
        if not c.ports:
            raise ManifestError(f"server={name!r} has no containerPort; the serving container must declare its port")
        return c
    with_ports = [c for c in pod.containers if c.ports]
    if not with_ports:
        raise ManifestError(
            f"no container of pod {pod.name!r} declares a containerPort, so none can serve the file; "
            "add 'ports: [{containerPort: 80}]' to the serving container"
        )
    if len(with_ports) > 1:
        names = ", ".join(c.name for c in with_ports)
        raise ManifestError(f"several containers declare ports ({names}); pass server= to name the one that serves")
    return with_ports[0]


def _pick_producer(pod: Pod, srv: Container, name: str | None) -> Container:
    served_volumes = {v for v, _ in srv.mounts}
    if name is not None:
        c = pod.container(name)
        if c.name == srv.name:
            raise ManifestError(f"producer={name!r} is also the serving container; name the container that writes")
        if not served_volumes & {v for v, _ in c.mounts}:
            raise ManifestError(f"producer={name!r} mounts no volume that {srv.name!r} mounts")
        return c
    candidates = [c for c in pod.containers if c.name != srv.name and served_volumes & {v for v, _ in c.mounts}]
    if not candidates:
        raise ManifestError(
            f"no container shares a volume with {srv.name!r}; the producer must mount a volume the server mounts"
        )
    if len(candidates) > 1:
        writers = [c for c in candidates if ">" in c.script]
        if len(writers) == 1:
            return writers[0]
        names = ", ".join(c.name for c in candidates)
        raise ManifestError(f"several containers share a volume with {srv.name!r} ({names}); pass producer=")
    return candidates[0]


def _shared_volume(prod: Container, srv: Container) -> tuple[str, str, str]:
    srv_mounts = dict(srv.mounts)
    shared = [(v, path) for v, path in prod.mounts if v in srv_mounts]
    if len(shared) > 1:
        # Prefer the volume the producer's command writes into.
        written = [(v, p) for v, p in shared if p.rstrip("/") + "/" in prod.script]
        shared = written or shared
    volume, prod_mount = shared[0]
    return volume, prod_mount, srv_mounts[volume]


def _file_from_script(prod: Container, mount: str) -> str:
    prefix = mount.rstrip("/") + "/"
    # The file the command appends to (``>> FILE``) is the one served, else the one it writes to;
    # files it only mentions (a trigger it tests for, say) are not.
    for redirect in (r">>\s*", r">>?\s*"):
        written = sorted(set(re.findall(redirect + re.escape(prefix) + r"([\w./-]+)", prod.script)))
        if len(written) == 1:
            return str(written[0])
    found = re.findall(re.escape(prefix) + r"([\w./-]+)", prod.script)
    names = sorted(set(found))
    if len(names) == 1:
        return str(names[0])
    if not names:
        return "index.html"
    raise ManifestError(
        f"the command of {prod.name!r} writes several files under {mount} ({', '.join(names)}); pass file="
    )


def interval_variable(pod: Pod, producer: str) -> str | None:
    """The environment variable the producer's ``sleep "$VAR"`` reads its cadence from, if it has one.

    Setting that variable (``Lab(..., env={producer: {VAR: "0.05"}})``) changes
    how often the producer writes without editing its command.
    """
    found = _SLEEP_VAR.findall(pod.container(producer).script)
    return str(found[0][0]) if len(found) == 1 else None


def _interval_from_script(prod: Container) -> float | None:
    """The cadence from ``sleep N``, or from ``sleep "$VAR"`` and the container's environment."""
    found = _SLEEP.findall(prod.script)
    if len(found) == 1:
        return float(found[0])
    by_var = _SLEEP_VAR.findall(prod.script)
    if len(by_var) == 1:
        name, default = by_var[0]
        value = dict(prod.env).get(name, default)
        try:
            return float(value) if value else None
        except ValueError:
            return None
    return None
