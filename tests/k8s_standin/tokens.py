"""Service account tokens from the TokenRequest API (a fake for tests), and the clock that ends them.

A token is random (``secrets``), handed out once in the TokenRequest's
status, and kept only as its SHA-256, so the stand-in holds nothing a log or
a stray repr could leak. It is bound to one service account (namespace, name
and uid): deleting the account, or its namespace, ends it, as does reaching
its expiry by the stand-in's :class:`Clock`, which tests move forward instead
of waiting. Unlike a cluster's, tokens are opaque strings, not JWTs.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .status import bad_request, invalid

GROUP = "authentication.k8s.io"
API_VERSION = f"{GROUP}/v1"
AUDIENCE = "https://kubernetes.default.svc.cluster.local"  # a kubeadm cluster's API server audience
DEFAULT_SECONDS = 3600
MIN_SECONDS = 600
MAX_SECONDS = 1 << 32


def rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Clock:
    """UTC now, plus however far a test has moved it; read on the event loop, moved from the test thread."""

    def __init__(self) -> None:
        self._offset = timedelta()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            offset = self._offset
        return datetime.now(UTC).replace(microsecond=0) + offset

    def advance(self, by: timedelta) -> None:
        if by < timedelta():
            raise ValueError("the stand-in's clock only moves forward")
        with self._lock:
            self._offset += by


@dataclass(frozen=True)
class Grant:
    """What a token stands for: one service account, until ``expires``."""

    namespace: str
    name: str
    uid: str
    expires: datetime


class TokenIssuer:
    """Issues tokens and says whose a token is while it is unexpired."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._grants: dict[str, Grant] = {}

    def issue(self, namespace: str, name: str, uid: str, seconds: int) -> tuple[str, datetime]:
        token = secrets.token_urlsafe(32)
        expires = self.clock.now() + timedelta(seconds=seconds)
        self._grants[_digest(token)] = Grant(namespace, name, uid, expires)
        return token, expires

    def holder(self, token: str) -> Grant | None:
        """The grant of an unexpired token; None for an unknown or expired one."""
        grant = self._grants.get(_digest(token))
        if grant is None:
            return None
        if self.clock.now() >= grant.expires:
            del self._grants[_digest(token)]
            return None
        return grant


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def read_token_request(doc: Any, namespace: str) -> dict[str, Any]:
    """A submitted TokenRequest, or 400; ``kind``, ``apiVersion`` and ``spec`` may be left out."""
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise bad_request("the object provided is unrecognized (must be of type TokenRequest)")
    if doc.get("kind") not in (None, "", "TokenRequest"):
        raise bad_request(f"the object provided is unrecognized (must be of type TokenRequest): kind {doc['kind']!r}")
    if doc.get("apiVersion") not in (None, "", API_VERSION):
        raise bad_request(
            f"the API version in the data ({doc['apiVersion']}) does not match the expected API version ({API_VERSION})"
        )
    meta = doc.get("metadata") or {}
    if meta.get("namespace") and meta["namespace"] != namespace:
        raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
    spec = doc.get("spec") or {}
    if not isinstance(spec, dict) or not isinstance(meta, dict):
        raise bad_request("the object provided is unrecognized (must be of type TokenRequest)")
    if spec.get("boundObjectRef"):
        raise bad_request("binding a token to a pod or secret is not served by this test stand-in")
    return {"metadata": meta, "spec": spec}


def check_request_name(request: dict[str, Any], name: str) -> None:
    """A name in the body must be the service account's (the URL's): kube-apiserver answers 422 otherwise."""
    given = request["metadata"].get("name")
    if given and given != name:
        raise invalid(
            "TokenRequest",
            name,
            [
                (
                    "metadata.name",
                    "FieldValueInvalid",
                    f'Invalid value: "{given}": must match the service account name if specified',
                )
            ],
            GROUP,
        )


def requested_seconds(request: dict[str, Any]) -> int:
    """The requested ``expirationSeconds`` (3600 when unset); 422 outside 10 minutes .. 2^32 seconds."""
    seconds = request["spec"].get("expirationSeconds")
    if seconds is None:
        return DEFAULT_SECONDS
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        raise bad_request(
            "json: cannot unmarshal into Go struct field TokenRequestSpec.spec.expirationSeconds of type int64"
        )
    why = None
    if seconds < MIN_SECONDS:
        why = "may not specify a duration less than 10 minutes"
    elif seconds > MAX_SECONDS:
        why = "may not specify a duration larger than 2^32 seconds"
    if why is not None:
        cause = ("spec.expirationSeconds", "FieldValueInvalid", f"Invalid value: {seconds}: {why}")
        raise invalid("TokenRequest", "", [cause], GROUP)
    return seconds


def token_request(
    namespace: str, name: str, request: dict[str, Any], seconds: int, token: str, expires: datetime, now: datetime
) -> dict[str, Any]:
    """The TokenRequest kube-apiserver answers with: the request defaulted, and the token in its status."""
    audiences = list(request["spec"].get("audiences") or []) or [AUDIENCE]
    return {
        "kind": "TokenRequest",
        "apiVersion": API_VERSION,
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": rfc3339(now)},
        "spec": {"audiences": audiences, "expirationSeconds": seconds, "boundObjectRef": None},
        "status": {"token": token, "expirationTimestamp": rfc3339(expires)},
    }
