"""``kind: Status`` error objects worded as kube-apiserver words them.

The stand-in is a fake for tests, but a client (and the engine under test)
reads these messages and reasons, so each helper reproduces the text that
kube-apiserver builds for the same situation (``k8s.io/apimachinery``'s
``errors.New*`` constructors and the RBAC "forbidden" message).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class ApiError(Exception):
    """An API failure: raised anywhere in the stand-in, rendered as a Status by the server."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        """The ``kind: Status`` object, keys in kube-apiserver's order."""
        return failure(self.code, self.reason, self.message, self.details)


def failure(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        out["details"] = details
    out["code"] = code
    return out


def not_found(resource: str, name: str) -> ApiError:
    """``pods "x" not found`` / ``namespaces "x" not found``."""
    return ApiError(404, "NotFound", f'{resource} "{name}" not found', {"name": name, "kind": resource})


def no_such_path() -> ApiError:
    """What kube-apiserver answers for a path it does not serve."""
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def already_exists(resource: str, name: str, terminating: bool = False) -> ApiError:
    prefix = "object is being deleted: " if terminating else ""
    return ApiError(
        409, "AlreadyExists", f'{prefix}{resource} "{name}" already exists', {"name": name, "kind": resource}
    )


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def forbidden(user: str, verb: str, resource: str, subresource: str, namespace: str, name: str) -> ApiError:
    """RBAC's refusal: ``pods "x" is forbidden: User "u" cannot create resource "pods/exec" ...``."""
    full = f"{resource}/{subresource}" if subresource else resource
    who = f'{resource} "{name}"' if name else resource
    reason = (
        f'User "{user}" cannot {verb} resource "{full}" in API group "" in the namespace "{namespace}"'
        if namespace
        else f'User "{user}" cannot {verb} resource "{full}" in API group "" at the cluster scope'
    )
    return ApiError(
        403,
        "Forbidden",
        f"{who} is forbidden: {reason}",
        {"name": name, "kind": resource} if name else {"kind": resource},
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def invalid(kind: str, name: str, causes: Sequence[tuple[str, str, str]]) -> ApiError:
    """422 Invalid; each cause is (field, cause type, text after the field), as ``field.Error`` prints.

    For example ``("spec", "FieldValueForbidden", "Forbidden: pod updates may not change ...")``.
    """
    texts = [f"{field}: {text}" for field, _, text in causes]
    joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    return ApiError(
        422,
        "Invalid",
        f'{kind} "{name}" is invalid: {joined}',
        {
            "name": name,
            "kind": kind,
            "causes": [{"reason": reason, "message": text, "field": field} for field, reason, text in causes],
        },
    )


def apply_conflict(manager: str, field: str) -> ApiError:
    """Server-side apply refusing to take a field another manager owns (without ``force``)."""
    return ApiError(
        409,
        "Conflict",
        f'Apply failed with 1 conflict: conflict with "{manager}" using v1: {field}',
        {
            "causes": [
                {"reason": "FieldManagerConflict", "message": f'conflict with "{manager}" using v1', "field": field}
            ]
        },
    )


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f"application/apply-patch+yaml (this test stand-in serves no other patch type; got {content_type!r})",
    )


def method_not_allowed() -> ApiError:
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {})


def expired(asked: int, oldest: int) -> ApiError:
    return ApiError(410, "Expired", f"too old resource version: {asked} ({oldest})")


def internal(message: str) -> ApiError:
    """``Internal error occurred: ...`` with the error as its only cause, as ``NewInternalError`` does."""
    return ApiError(500, "InternalError", f"Internal error occurred: {message}", {"causes": [{"message": message}]})
