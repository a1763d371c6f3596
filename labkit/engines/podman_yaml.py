"""The Pod document as Podman 4.3's ``kube play`` accepts it, for manifests a cluster accepts.

``podman kube play`` refuses or mishandles some Pods that Kubernetes runs.
:func:`for_kube_play` is a pure function that closes each gap, or refuses
with a :class:`~labkit.errors.ManifestError` where Podman has no equivalent,
before the engine creates anything:

* annotation values longer than 63 characters: Podman refuses the whole pod
  (``invalid annotation "k"="..." value length exceeds Kubernetetes max 63``),
  checking them like label values; Kubernetes allows 256 KiB for all
  annotations together. Such annotations (kubectl's
  ``last-applied-configuration`` is the usual one) are left out of the
  played YAML; the kit still reads every annotation from the manifest.
* the service-account token volume that Kubernetes admission adds to every
  pod (``kube-api-access-xxxxx``, a projected volume, or a ``*-token-xxxxx``
  secret on old clusters), with its mounts at
  ``/var/run/secrets/kubernetes.io/serviceaccount``, as in a manifest saved
  with ``kubectl get pod -o yaml``: Podman has no service accounts and
  refuses a projected volume. It is removed for Podman only; a cluster adds
  it again by itself, so the Kubernetes engine applies it unchanged.
* ``imagePullPolicy: Always``, which a cluster fills in for an image
  without a tag or tagged ``latest``: Podman then pulls on every play and
  fails without a registry even though the image is on this machine. It is
  left out, so Podman's default applies: pull only a newer image, use the
  local one when the registry cannot be reached.
* a volume with no type, which Kubernetes defaults to ``emptyDir`` and
  Podman refuses: it becomes an ``emptyDir``.
* an optional ``configMap`` or ``secret`` volume: the kit plays only the
  Pod, so the ConfigMap or Secret never exists for Podman; Kubernetes then
  mounts an empty directory, while Podman omits the mount (configMap) or
  refuses the pod (secret). It becomes an ``emptyDir``.
* ``emptyDir.medium: Memory`` and ``sizeLimit``, which Podman 4.3 drops:
  they are checked here (a medium Kubernetes does not know, a size that is
  not a quantity) and kept for the engine, which mounts a tmpfs of that
  size. A ``sizeLimit`` on a disk-backed emptyDir is kept too, but nothing
  here enforces it: Kubernetes evicts a pod whose volume outgrows it, and
  the local engine has no eviction, so it says so as a change.
* ``subPath``, which Podman 4.3 ignores (it mounts the whole volume): the
  engine plays it on its own directories; here a ``subPath`` that is
  absolute or climbs out with ``..`` is refused, as Kubernetes refuses it,
  and so are ``subPathExpr`` and a ``subPath`` into a
  ``persistentVolumeClaim``, which the local engine cannot play.
* volumes Podman cannot provide are refused, naming the field and what to
  change: a ``configMap`` or ``secret`` that is not optional, and every type
  but ``emptyDir``, ``hostPath`` and ``persistentVolumeClaim`` (which Podman
  plays as a named volume that outlives the pod, as a claim does).

The engine turns each ``emptyDir`` into a fresh directory afterwards; that
needs the machine, so it is not done here.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from labkit.errors import ManifestError

MAX_ANNOTATION_VALUE = 63  # what Podman 4.3 allows, though Kubernetes does not limit one value
SERVICE_ACCOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
PLAYED_VOLUME_TYPES = ("emptyDir", "hostPath", "persistentVolumeClaim")
_LEGACY_TOKEN_SECRET = re.compile(r"^[a-z0-9.-]+-token-[a-z0-9]{5}$")
_TO_CLUSTER = "or run the lab on a cluster (LABKIT_ENGINE=kubernetes)"


def for_kube_play(doc: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """A new Pod document that Podman 4.3 plays as Kubernetes would run ``doc``, and what changed.

    ``doc`` is never changed. Each change is one human-readable item, such
    as ``"metadata.annotations['a'] (a value of 312 characters) left out of
    the pod Podman plays: ..."``; see the module docstring for all of them.
    Being pure, it can be called again to tell the user what the local
    engine changes. Raises :class:`ManifestError` naming every volume Podman
    cannot provide.
    """
    if not isinstance(doc, Mapping):
        raise TypeError(f"a Pod document is a mapping, not {type(doc).__name__}")
    out = copy.deepcopy(dict(doc))
    changes: list[str] = []
    _drop_long_annotations(out, changes)
    token_volumes = _service_account_volumes(out)
    _check_volumes(out, changes, skip={name for _, name in token_volumes})  # indices as in the file
    _drop_service_account_volumes(out, token_volumes, changes)
    _check_sub_paths(out)
    _drop_always_pull(out, changes)
    return out, tuple(changes)


_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)|[eE]([+-]?\d+))?$")
_FACTORS: dict[str, int | Fraction] = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "m": Fraction(1, 1000), "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
}  # fmt: skip


def quantity_bytes(text: object) -> int:
    """A Kubernetes quantity (``64Mi``, ``1G``, ``1.5Gi``, ``2e6``) as a whole number of bytes, rounded up.

    Raises ValueError for anything Kubernetes would not accept as a quantity.
    """
    match = _QUANTITY.match(str(text).strip()) if isinstance(text, str | int) else None
    if match is None:
        raise ValueError(f"{text!r} is not a Kubernetes quantity (write it like 64Mi, 1Gi or 500M)")
    number, suffix, exponent = match.groups()
    value = Fraction(number) * (_FACTORS[suffix] if suffix else Fraction(10) ** int(exponent or 0))
    if value < 0:
        raise ValueError(f"{text!r} is negative; a size must be zero or more")
    return -(-value.numerator // value.denominator)  # rounded up, exactly


def _containers(spec: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(field path, container) for every container and init container."""
    found = []
    for kind in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(kind) or []):
            if isinstance(c, dict):
                found.append((f"spec.{kind}[{i}] ({c.get('name')!r})", c))
    return found


def _drop_long_annotations(doc: dict[str, Any], changes: list[str]) -> None:
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("annotations"), dict):
        return
    annotations = meta["annotations"]
    for key in list(annotations):
        value = "" if annotations[key] is None else str(annotations[key])
        if len(value) > MAX_ANNOTATION_VALUE:
            del annotations[key]
            changes.append(
                f"metadata.annotations[{key!r}] (a value of {len(value)} characters) left out of the pod "
                f"Podman plays: Podman 4.3 refuses annotation values over {MAX_ANNOTATION_VALUE} characters"
            )
    if not annotations:
        del meta["annotations"]


def _is_service_account_volume(vol: Mapping[str, Any]) -> bool:
    """Whether ``vol`` is the token volume admission adds (the caller checks where it is mounted)."""
    projected = vol.get("projected")
    if isinstance(projected, dict):
        return any(isinstance(s, dict) and "serviceAccountToken" in s for s in projected.get("sources") or [])
    secret = vol.get("secret")
    return isinstance(secret, dict) and bool(_LEGACY_TOKEN_SECRET.match(str(secret.get("secretName", ""))))


def _service_account_volumes(doc: dict[str, Any]) -> list[tuple[int, str]]:
    """(index, name) of the token volumes admission added: the right kind, mounted at the token path."""
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return []
    at_token_path = {
        m.get("name")
        for _, c in _containers(spec)
        for m in c.get("volumeMounts") or []
        if isinstance(m, dict) and str(m.get("mountPath", "")).rstrip("/") == SERVICE_ACCOUNT_PATH
    }
    return [
        (i, v["name"])
        for i, v in enumerate(spec.get("volumes") or [])
        if isinstance(v, dict) and v.get("name") in at_token_path and _is_service_account_volume(v)
    ]


def _drop_service_account_volumes(doc: dict[str, Any], dropped: list[tuple[int, str]], changes: list[str]) -> None:
    if not dropped:
        return
    spec = doc["spec"]
    names = {name for _, name in dropped}
    spec["volumes"] = [v for v in spec["volumes"] if not (isinstance(v, dict) and v.get("name") in names)]
    for _, c in _containers(spec):
        if c.get("volumeMounts"):
            c["volumeMounts"] = [m for m in c["volumeMounts"] if not (isinstance(m, dict) and m.get("name") in names)]
    for i, name in dropped:
        changes.append(
            f"spec.volumes[{i}] ({name!r}) and its mounts at {SERVICE_ACCOUNT_PATH} left out: the service-account "
            "token Kubernetes adds to every pod, which Podman has no equivalent for (a cluster adds it again)"
        )


def _check_volumes(doc: dict[str, Any], changes: list[str], skip: set[str]) -> None:
    """Translate the volumes Podman can play differently; refuse, naming each, those it cannot."""
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return
    problems: list[str] = []
    for i, vol in enumerate(spec.get("volumes") or []):
        if not isinstance(vol, dict) or vol.get("name") in skip:
            continue
        where = f"spec.volumes[{i}] ({vol.get('name')!r})"
        kinds = [k for k in vol if k != "name"]
        if not kinds:
            vol["emptyDir"] = {}
            changes.append(f"{where} has no type; played as an emptyDir, the type Kubernetes gives it")
            continue
        if len(kinds) > 1:
            problems.append(f"{where} has more than one type ({', '.join(kinds)}); keep one")
            continue
        kind = kinds[0]
        if kind == "emptyDir":
            _check_empty_dir(where, vol, changes, problems)
            continue
        if kind in PLAYED_VOLUME_TYPES:
            continue
        if kind in ("configMap", "secret"):
            source = vol[kind] if isinstance(vol[kind], dict) else {}
            what = "ConfigMap" if kind == "configMap" else "Secret"
            ref = source.get("name" if kind == "configMap" else "secretName")
            if source.get("optional") is True:
                vol.pop(kind)
                vol["emptyDir"] = {}
                changes.append(
                    f"{where}: the optional {kind} {ref!r} is played as an empty directory, as Kubernetes mounts it "
                    f"when the {what} does not exist (the kit plays only the Pod, so it never does here)"
                )
                continue
            problems.append(
                f"{where}: {kind} {ref!r} needs a {what}, and the local engine plays only the Pod; "
                f"mark it 'optional: true' to start with an empty directory, use emptyDir for the lab, {_TO_CLUSTER}"
            )
            continue
        problems.append(
            f"{where}: {kind} has no equivalent in Podman, which provides only "
            f"{', '.join(PLAYED_VOLUME_TYPES)}; use emptyDir for the lab, {_TO_CLUSTER}"
        )
    if problems:
        raise ManifestError("the local Podman engine cannot run this pod: " + "; ".join(problems))


def _check_empty_dir(where: str, vol: dict[str, Any], changes: list[str], problems: list[str]) -> None:
    source = vol["emptyDir"] if isinstance(vol["emptyDir"], dict) else {}
    medium = source.get("medium") or ""
    if medium not in ("", "Memory"):
        problems.append(
            f"{where}: emptyDir.medium {medium!r} is not played locally; use Memory, or leave it out for disk"
        )
        return
    if source.get("sizeLimit") is None:
        return
    try:
        size = quantity_bytes(source["sizeLimit"])
    except ValueError as exc:
        problems.append(f"{where}: emptyDir.sizeLimit {exc}")
        return
    if medium == "Memory" and size == 0:
        problems.append(f"{where}: emptyDir.sizeLimit 0 leaves no room for a file; give a size such as 64Mi")
    elif medium != "Memory":
        changes.append(
            f"{where}: emptyDir.sizeLimit {source['sizeLimit']} is not enforced on the local engine: Kubernetes "
            "evicts the pod when the volume outgrows it, and Podman has no eviction (medium: Memory is enforced)"
        )


def _check_sub_paths(doc: dict[str, Any]) -> None:
    """Refuse the mounts through a sub-path that Kubernetes refuses, and those the local engine cannot play."""
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return
    claims = {v.get("name") for v in spec.get("volumes") or [] if isinstance(v, dict) and "persistentVolumeClaim" in v}
    problems: list[str] = []
    for where, c in _containers(spec):
        for j, m in enumerate(c.get("volumeMounts") or []):
            if not isinstance(m, dict):
                continue
            field = f"{where}.volumeMounts[{j}] ({m.get('name')!r})"
            if m.get("subPathExpr"):
                problems.append(f"{field}: subPathExpr is not played locally; write the path out as subPath")
            sub_path = m.get("subPath")
            if not sub_path:
                continue
            parts = str(sub_path).split("/")
            if str(sub_path).startswith("/") or ".." in parts:
                problems.append(f"{field}: subPath {sub_path!r} must be a relative path that stays in the volume")
            elif m.get("name") in claims:
                problems.append(
                    f"{field}: subPath into a persistentVolumeClaim is not played locally; "
                    f"mount the claim whole, or use an emptyDir, {_TO_CLUSTER}"
                )
    if problems:
        raise ManifestError("the local Podman engine cannot run this pod: " + "; ".join(problems))


def _drop_always_pull(doc: dict[str, Any], changes: list[str]) -> None:
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return
    for where, c in _containers(spec):
        if c.get("imagePullPolicy") == "Always":
            del c["imagePullPolicy"]
            changes.append(
                f"{where}.imagePullPolicy: Always played as Podman's default, which pulls only a newer image "
                "and uses the one on this machine when the registry cannot be reached"
            )
