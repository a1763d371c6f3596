"""What the kit says when an API server's certificate is not what the kubeconfig expects.

Both the Kubernetes engine and ``labkit class`` talk HTTPS through the official
client, which buries the ``ssl`` error a few exceptions deep; a student needs
to hear which of the usual causes it is (a kubeconfig from another cluster, an
address the certificate does not name, a clock or certificate out of date)
and what to do about each. Nothing here imports the client.
"""

from __future__ import annotations

import re
import ssl
import warnings
from typing import Any
from urllib.parse import urlsplit

# OpenSSL's verify codes (X509_V_ERR_*), grouped by what the user can do about them.
_NOT_OUR_CA = {2, 18, 19, 20, 21}  # no issuer found, self-signed leaf or chain, no local issuer, leaf unverifiable
_OUT_OF_DATE = {9, 10}  # not yet valid, expired
_WRONG_NAME = {62}  # hostname mismatch


class UnverifiedServerWarning(UserWarning):
    """The kubeconfig turns off the check of the API server's certificate (``insecure-skip-tls-verify``)."""


def certificate_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate check that broke a connection, wherever the client wrapped it; else None.

    urllib3 wraps it in SSLError inside MaxRetryError (as ``reason``), websocket-client not at all,
    so causes, contexts, reasons and arguments are all searched.
    """
    seen: set[int] = set()
    todo: list[Any] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        if isinstance(current, BaseException):
            todo += [getattr(current, "reason", None), current.__cause__, current.__context__]
            todo += [a for a in current.args if isinstance(a, BaseException)]
    return None


def certificate_message(server: str, exc: BaseException) -> str | None:
    """What to tell the user when ``exc`` is a failed check of ``server``'s certificate; None for any other error."""
    error = certificate_error(exc)
    if error is None:
        return None
    why = str(error.verify_message or error.reason or error)
    code = error.verify_code
    if code in _OUT_OF_DATE:
        return (
            f"the certificate of the Kubernetes API server at {server} is not valid at this machine's time ({why}): "
            "check this machine's clock (run 'date'); if it is right, the cluster's certificate must be renewed "
            "by whoever runs the cluster"
        )
    if code in _WRONG_NAME:
        return (
            f"the certificate of the Kubernetes API server at {server} does not name that address ({why}): use the "
            "server address the cluster's own kubeconfig gives, not another name or IP address of the same machine"
        )
    if code in _NOT_OUR_CA:
        return (
            f"the Kubernetes API server at {server} is not the one your kubeconfig trusts ({why}): its certificate "
            "is not signed by the kubeconfig's certificate-authority. Get the kubeconfig again from whoever runs "
            "the cluster (your instructor, or the cluster's own tools) and point KUBECONFIG at it"
        )
    return (
        f"the certificate of the Kubernetes API server at {server} could not be verified ({why}); get the "
        "kubeconfig again from whoever runs the cluster and point KUBECONFIG at it"
    )


_warned: set[str] = set()


def warn_unverified(server: str, context: str | None) -> None:
    """Say once per server that its certificate goes unchecked (``insecure-skip-tls-verify``).

    The client's own warning comes with every request to that host; it is silenced for that host
    only, and this one comes once and names the fix.
    """
    host = urlsplit(server).hostname or server
    try:
        from urllib3.exceptions import InsecureRequestWarning
    except ImportError:  # pragma: no cover - the client always brings urllib3
        pass
    else:
        warnings.filterwarnings(
            "ignore",
            message=rf"Unverified HTTPS request is being made to host '{re.escape(host)}'",
            category=InsecureRequestWarning,
        )
    if server in _warned:
        return
    _warned.add(server)
    warnings.warn(
        f"the kubeconfig's cluster ({context or server}) sets insecure-skip-tls-verify: the API server at "
        f"{server} is not checked, so anyone between you and it can read your token and answer in its place. "
        "Ask for a kubeconfig with the cluster's certificate-authority-data",
        UnverifiedServerWarning,
        stacklevel=3,
    )
