"""The lab's Pod manifest: loaded, checked, and asked the questions the kit needs.

A manifest is the single source of truth for names: containers, volumes,
ports and the default container all come from it, never from constants.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml

from labkit.errors import ContainerNotFound, ManifestError

DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "labkit"

# RFC 1123 label, as Kubernetes requires for pod and container names.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

# Fields a cluster writes into a Pod, as in a manifest saved with 'kubectl get pod -o yaml',
# and why each is left out: none is what a user means to apply, and an API server refuses some
# of them in an apply (managedFields must be nil; a stale resourceVersion or uid conflicts).
SERVER_SET_METADATA = {
    "uid": "set by the server",
    "resourceVersion": "set by the server",
    "creationTimestamp": "set by the server",
    "generation": "set by the server",
    "managedFields": "set by the server",
    "selfLink": "set by the server",
    "deletionTimestamp": "set by the server",
    "deletionGracePeriodSeconds": "set by the server",
    "ownerReferences": "names an owner another cluster does not have, which would delete the pod",
}
SERVER_SET_SPEC = {
    "nodeName": "chosen by the scheduler; it would pin the pod to a node of the cluster it came from",
    "priority": "computed by the cluster from priorityClassName",
    "preemptionPolicy": "computed by the cluster from priorityClassName",
}


@dataclass(frozen=True)
class Container:
    """One container of the Pod, reduced to what the lab uses."""

    name: str
    image: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()
    mounts: tuple[tuple[str, str], ...] = ()  # (volume name, mount path)
    sub_paths: tuple[tuple[str, str], ...] = ()  # (mount path, subPath) for mounts of part of a volume
    env: tuple[tuple[str, str], ...] = ()  # plain name/value variables, in order

    @property
    def script(self) -> str:
        """The command and arguments joined, for reading what the container does."""
        return " ".join(self.command + self.args)


@dataclass(frozen=True)
class Pod:
    """A validated Pod manifest.

    ``doc`` keeps the whole YAML document so engines can apply it unchanged
    in meaning; the other fields are views on it. ``ignored`` lists what
    loading left out of the file because a cluster, not the user, wrote it
    (see :func:`strip_server_fields`), e.g. ``"metadata.uid (set by the
    server)"``, so the user can be told.
    """

    name: str
    containers: tuple[Container, ...]
    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    doc: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    source: str = ""
    ignored: tuple[str, ...] = field(default=(), compare=False)

    @property
    def container_names(self) -> list[str]:
        return [c.name for c in self.containers]

    @property
    def default_container(self) -> str:
        """The container ``kubectl exec`` picks when none is named.

        kubectl honours the ``kubectl.kubernetes.io/default-container``
        annotation and otherwise takes the first container.
        """
        named = self.annotations.get(DEFAULT_CONTAINER_ANNOTATION)
        if named and named in self.container_names:
            return named
        return self.containers[0].name

    def container(self, name: str | None = None) -> Container:
        """The container called ``name``, or the default one when ``name`` is None."""
        wanted = self.default_container if name is None else name
        for c in self.containers:
            if c.name == wanted:
                return c
        raise ContainerNotFound(
            f"pod {self.name!r} has no container {wanted!r}; its containers are: {', '.join(self.container_names)}"
        )

    def renamed(self, name: str) -> Pod:
        """The same Pod under another name, so two copies can run side by side."""
        check_name(name, "pod name")
        doc = copy.deepcopy(self.doc)
        doc.setdefault("metadata", {})["name"] = name
        return _pod_from_doc(doc, self.source, self.ignored)

    def with_labels(self, labels: dict[str, str]) -> Pod:
        """The same Pod with ``labels`` added to its metadata."""
        doc = copy.deepcopy(self.doc)
        doc.setdefault("metadata", {}).setdefault("labels", {}).update(labels)
        return _pod_from_doc(doc, self.source, self.ignored)

    def with_env(self, env: Mapping[str, Mapping[str, object]]) -> Pod:
        """The same Pod with environment variables set per container, e.g. ``{"producer": {"INTERVAL": "0.05"}}``.

        Lets a notebook vary a container's behaviour without editing the YAML.
        """
        doc = copy.deepcopy(self.doc)
        by_name = {c["name"]: c for c in doc["spec"]["containers"]}
        for container, variables in env.items():
            self.container(container)  # an unknown name lists the pod's containers
            if not isinstance(variables, dict):
                raise ManifestError(
                    f"env for {container!r} must map variable names to values, e.g. {{'INTERVAL': '1'}}"
                )
            entries = by_name[container].setdefault("env", [])
            for key, value in variables.items():
                if not isinstance(key, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
                    raise ManifestError(f"{key!r} is not a valid environment variable name")
                entries[:] = [e for e in entries if e.get("name") != key]
                entries.append({"name": key, "value": str(value)})
        return _pod_from_doc(doc, self.source, self.ignored)

    def with_volume(self, name: str, **source: Any) -> Pod:
        """The same Pod with volume ``name``'s source replaced, e.g. ``emptyDir={"medium": "Memory"}``.

        Keyword names are the fields of a Kubernetes volume (``emptyDir``,
        ``hostPath``, ...); exactly one is given. For experiments on the
        shared volume without editing the YAML.
        """
        if len(source) != 1:
            raise TypeError(
                f"give the volume exactly one source, such as emptyDir={{}}, not {sorted(source) or 'none'}"
            )
        doc = copy.deepcopy(self.doc)
        volume = self._find_volume(doc, name)
        volume.clear()
        volume.update({"name": name, **copy.deepcopy(source)})
        return _pod_from_doc(doc, self.source, self.ignored)

    def with_mount(self, container: str, volume: str, **fields: Any) -> Pod:
        """The same Pod with ``container``'s mount of ``volume`` changed, e.g. ``readOnly=True, subPath="site"``.

        Keyword names are the fields of a Kubernetes ``volumeMount``; a value
        of None removes that field.
        """
        self.container(container)  # an unknown name lists the pod's containers
        doc = copy.deepcopy(self.doc)
        self._find_volume(doc, volume)
        spec = next(c for c in doc["spec"]["containers"] if c["name"] == container)
        mounts = [m for m in spec.get("volumeMounts") or [] if m.get("name") == volume]
        if not mounts:
            raise ManifestError(f"container {container!r} does not mount volume {volume!r}; add a volumeMount first")
        for key, value in fields.items():
            if value is None:
                mounts[0].pop(key, None)
            else:
                mounts[0][key] = value
        return _pod_from_doc(doc, self.source, self.ignored)

    def with_args(self, container: str, args: Sequence[str]) -> Pod:
        """The same Pod with ``container``'s ``args`` replaced (its command stays), e.g. a producer's loop."""
        self.container(container)
        if isinstance(args, str) or not all(isinstance(a, str) for a in args):
            raise TypeError("args is a list of strings, e.g. ['-c', 'while true; do ...; done']")
        doc = copy.deepcopy(self.doc)
        next(c for c in doc["spec"]["containers"] if c["name"] == container)["args"] = list(args)
        return _pod_from_doc(doc, self.source, self.ignored)

    @staticmethod
    def _find_volume(doc: dict[str, Any], name: str) -> dict[str, Any]:
        volumes = doc["spec"].get("volumes") or []
        for volume in volumes:
            if volume.get("name") == name:
                return cast(dict[str, Any], volume)
        known = ", ".join(repr(v.get("name")) for v in volumes) or "none"
        raise ManifestError(f"the pod has no volume {name!r} (its volumes: {known})")


def check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or len(name) > 63 or not _DNS_LABEL.match(name):
        raise ManifestError(
            f"{what} {name!r} is not a valid Kubernetes name: use lower-case letters, "
            "digits and '-', starting and ending with a letter or digit, at most 63 characters"
        )


def load_pod(path: str | os.PathLike[str]) -> Pod:
    """Read a Pod from a YAML file.

    The file may hold several documents; exactly one must be a Pod (empty
    documents are ignored). Errors say which file and what to change.
    Fields a cluster wrote (a file saved with ``kubectl get pod -o yaml``)
    are left out and listed in :attr:`Pod.ignored`.
    """
    p = Path(path)
    if not p.exists():
        raise ManifestError(
            f"manifest {str(p)!r} does not exist; give the path of a Pod YAML file, "
            "for example manifests/multicontainer-pod.yaml"
        )
    if p.is_dir():
        raise ManifestError(f"manifest {str(p)!r} is a directory; give the path of one Pod YAML file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read manifest {str(p)!r}: {exc}") from exc
    return parse_pod(text, source=str(p))


def parse_pod(text: str, *, source: str = "<string>") -> Pod:
    """Read a Pod from YAML text; see :func:`load_pod`."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise ManifestError(f"manifest {source!r} is not valid YAML: {exc}") from exc
    if not docs:
        raise ManifestError(f"manifest {source!r} is empty; it must hold a Pod (kind: Pod)")
    pods = [d for d in docs if isinstance(d, dict) and d.get("kind") == "Pod"]
    if not pods:
        kinds = ", ".join(repr(d.get("kind")) if isinstance(d, dict) else type(d).__name__ for d in docs)
        raise ManifestError(
            f"manifest {source!r} holds no Pod (found {kinds}); the lab needs a document "
            "with 'apiVersion: v1' and 'kind: Pod'"
        )
    if len(pods) > 1:
        raise ManifestError(f"manifest {source!r} holds {len(pods)} Pods; keep one Pod per lab manifest")
    doc, ignored = strip_server_fields(pods[0])
    return _pod_from_doc(doc, source, ignored)


def strip_server_fields(doc: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """A copy of the Pod document without what a cluster wrote into it, and what was left out.

    Removes the metadata in :data:`SERVER_SET_METADATA`, the top-level
    ``status`` and the spec fields in :data:`SERVER_SET_SPEC`, once, above
    the engines, so every engine applies what the user meant. ``doc`` itself
    is not changed. Everything else a saved manifest holds stays: the
    defaults a cluster filled in (``dnsPolicy``, ``tolerations``, ...) are
    valid input, and the Podman engine translates what Podman cannot play.
    """
    if not isinstance(doc, dict):
        raise TypeError(f"a Pod document is a dict, not {type(doc).__name__}")
    out = copy.deepcopy(doc)
    ignored: list[str] = []
    for section, fields in (("metadata", SERVER_SET_METADATA), ("spec", SERVER_SET_SPEC)):
        part = out.get(section)
        if isinstance(part, dict):
            for key, why in fields.items():
                if key in part:
                    del part[key]
                    ignored.append(f"{section}.{key} ({why})")
    if "status" in out:
        del out["status"]
        ignored.append("status (reported by the cluster)")
    return out, tuple(ignored)


def _pod_from_doc(doc: dict[str, Any], source: str, ignored: tuple[str, ...] = ()) -> Pod:
    where = f"manifest {source!r}"
    if doc.get("apiVersion") != "v1":
        raise ManifestError(f"{where}: a Pod has 'apiVersion: v1', not {doc.get('apiVersion')!r}")
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        raise ManifestError(f"{where}: the Pod has no metadata.name; give it a name")
    name = meta["name"]
    check_name(name, f"{where}: pod name")
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        raise ManifestError(f"{where}: the Pod has no spec; add spec.containers")
    raw_containers = spec.get("containers")
    if not raw_containers or not isinstance(raw_containers, list):
        raise ManifestError(f"{where}: the Pod has no containers; add at least one under spec.containers")

    volumes: dict[str, dict[str, Any]] = {}
    for v in spec.get("volumes") or []:
        if not isinstance(v, dict) or not v.get("name"):
            raise ManifestError(f"{where}: every entry of spec.volumes needs a name")
        volumes[v["name"]] = v

    containers = []
    seen: set[str] = set()
    for i, c in enumerate(raw_containers):
        if not isinstance(c, dict):
            raise ManifestError(f"{where}: spec.containers[{i}] is not a mapping")
        cname = c.get("name")
        if not cname:
            raise ManifestError(f"{where}: spec.containers[{i}] has no name")
        check_name(cname, f"{where}: container name")
        if cname in seen:
            raise ManifestError(f"{where}: two containers are called {cname!r}; names must be unique")
        seen.add(cname)
        if not c.get("image"):
            raise ManifestError(f"{where}: container {cname!r} has no image")
        ports = []
        for p in c.get("ports") or []:
            port = p.get("containerPort") if isinstance(p, dict) else None
            if not isinstance(port, int) or not 0 < port < 65536:
                raise ManifestError(f"{where}: container {cname!r} has a port without a valid containerPort")
            ports.append(port)
        mounts = []
        sub_paths = []
        for m in c.get("volumeMounts") or []:
            if not isinstance(m, dict) or not m.get("name") or not m.get("mountPath"):
                raise ManifestError(f"{where}: container {cname!r} has a volumeMount without name or mountPath")
            if m["name"] not in volumes:
                raise ManifestError(
                    f"{where}: container {cname!r} mounts volume {m['name']!r}, which spec.volumes does not define"
                )
            mounts.append((m["name"], m["mountPath"]))
            if m.get("subPath"):
                sub_paths.append((m["mountPath"], str(m["subPath"]).strip("/")))
        env = tuple(
            (str(e["name"]), str(e.get("value", "")))
            for e in c.get("env") or []
            if isinstance(e, dict) and e.get("name") and "valueFrom" not in e
        )
        containers.append(
            Container(
                env=env,
                name=cname,
                image=str(c["image"]),
                command=tuple(str(x) for x in c.get("command") or ()),
                args=tuple(str(x) for x in c.get("args") or ()),
                ports=tuple(ports),
                mounts=tuple(mounts),
                sub_paths=tuple(sub_paths),
            )
        )
    annotations = {str(k): str(v) for k, v in (meta.get("annotations") or {}).items()}
    return Pod(
        name=name,
        containers=tuple(containers),
        volumes=volumes,
        annotations=annotations,
        doc=doc,
        source=source,
        ignored=ignored,
    )
