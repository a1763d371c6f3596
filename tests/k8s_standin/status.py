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


def qualified(resource: str, group: str = "") -> str:
    """A resource as kube-apiserver names it in messages: ``pods``, ``roles.rbac.authorization.k8s.io``."""
    return f"{resource}.{group}" if group else resource


def details(name: str, group: str, kind: str, **more: Any) -> dict[str, Any]:
    """``StatusDetails`` in Go's field order; empty name and group are left out, as ``omitempty`` does."""
    out: dict[str, Any] = {"name": name} if name else {}
    if group:
        out["group"] = group
    out["kind"] = kind
    out.update(more)
    return out


def not_found(resource: str, name: str, group: str = "") -> ApiError:
    """``pods "x" not found`` / ``roles.rbac.authorization.k8s.io "x" not found``."""
    return ApiError(404, "NotFound", f'{qualified(resource, group)} "{name}" not found', details(name, group, resource))


def no_such_path() -> ApiError:
    """What kube-apiserver answers for a path it does not serve."""
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def already_exists(resource: str, name: str, terminating: bool = False, group: str = "") -> ApiError:
    prefix = "object is being deleted: " if terminating else ""
    return ApiError(
        409,
        "AlreadyExists",
        f'{prefix}{qualified(resource, group)} "{name}" already exists',
        details(name, group, resource),
    )


def conflict(resource: str, name: str, why: str, group: str = "") -> ApiError:
    """``Operation cannot be fulfilled on configmaps "x": ...``, as ``NewConflict`` words it."""
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {why}',
        details(name, group, resource),
    )


STALE = "the object has been modified; please apply your changes to the latest version and try again"


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def forbidden(
    user: str, verb: str, resource: str, subresource: str, namespace: str, name: str, group: str = ""
) -> ApiError:
    """RBAC's refusal: ``pods "x" is forbidden: User "u" cannot create resource "pods/exec" ...``.

    Requests outside a namespace (creating or listing namespaces) end ``at the cluster scope``.
    """
    full = f"{resource}/{subresource}" if subresource else resource
    where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    return refused(
        resource, name, f'User "{user}" cannot {verb} resource "{full}" in API group "{group}" {where}', group
    )


def refused(
    resource: str, name: str, why: str, group: str = "", causes: list[dict[str, str]] | None = None
) -> ApiError:
    """403 for any reason, as ``NewForbidden`` words it: ``roles.rbac.authorization.k8s.io "x" is forbidden: ...``."""
    who = f'{qualified(resource, group)} "{name}"' if name else qualified(resource, group)
    more = {"causes": causes} if causes else {}
    return ApiError(403, "Forbidden", f"{who} is forbidden: {why}", details(name, group, resource, **more))


def namespace_terminating(resource: str, name: str, namespace: str, group: str = "") -> ApiError:
    """The NamespaceLifecycle admission refusing to create anything in a namespace being deleted."""
    return refused(
        resource,
        name,
        f"unable to create new content in namespace {namespace} because it is being terminated",
        group,
        [
            {
                "reason": "NamespaceTerminating",
                "message": f"namespace {namespace} is being terminated",
                "field": "metadata.namespace",
            }
        ],
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def invalid(kind: str, name: str, causes: Sequence[tuple[str, str, str]], group: str = "") -> ApiError:
    """422 Invalid; each cause is (field, cause type, text after the field), as ``field.Error`` prints.

    For example ``("spec", "FieldValueForbidden", "Forbidden: pod updates may not change ...")``.
    The kind is qualified by its API group: ``Role.rbac.authorization.k8s.io "x" is invalid: ...``.
    """
    texts = [f"{field}: {text}" for field, _, text in causes]
    joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    return ApiError(
        422,
        "Invalid",
        f'{qualified(kind, group)} "{name}" is invalid: {joined}',
        details(
            name,
            group,
            kind,
            causes=[{"reason": reason, "message": text, "field": field} for field, reason, text in causes],
        ),
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


def unsupported_media_type(content_type: str, served: Sequence[str] = ("application/apply-patch+yaml",)) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: {', '.join(served)} "
        f"(this test stand-in serves no other patch type; got {content_type!r})",
    )


def method_not_allowed() -> ApiError:
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {})


def expired(asked: int, oldest: int) -> ApiError:
    return ApiError(410, "Expired", f"too old resource version: {asked} ({oldest})")


def internal(message: str) -> ApiError:
    """``Internal error occurred: ...`` with the error as its only cause, as ``NewInternalError`` does."""
    return ApiError(500, "InternalError", f"Internal error occurred: {message}", {"causes": [{"message": message}]})


def deleted(resource: str, name: str, uid: str, group: str = "") -> dict[str, Any]:
    """What DELETE answers for kinds that do not return the deleted object: a Success Status naming it."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details(name, group, resource, uid=uid),
    }
