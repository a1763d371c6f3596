"""What the kit says for an API server whose certificate fails the check, on exceptions shaped as the client's."""

from __future__ import annotations

import re
import ssl
import warnings

import pytest
import urllib3.exceptions

from labkit.tls import UnverifiedServerWarning, certificate_error, certificate_message, warn_unverified

SERVER = "https://10.0.0.1:6443"


def _as_urllib3_raises(code: int, why: str) -> Exception:
    """A failed check wrapped the way urllib3 hands it to the client: MaxRetryError(reason=SSLError(...))."""
    error = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: {why}")
    error.verify_code = code
    error.verify_message = why
    wrapped = urllib3.exceptions.SSLError(error)
    return urllib3.exceptions.MaxRetryError(None, "/version", reason=wrapped)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "why", "says"),
    [
        (
            19,
            "self-signed certificate in certificate chain",
            r"is not the one your kubeconfig trusts .*Get the kubeconfig",
        ),
        (20, "unable to get local issuer certificate", r"not signed by the kubeconfig's certificate-authority"),
        (62, "Hostname mismatch, certificate is not valid for '10.0.0.1'.", r"does not name that address"),
        (10, "certificate has expired", r"not valid at this machine's time .*check this machine's clock"),
        (9, "certificate is not yet valid", r"check this machine's clock"),
        (26, "unsupported certificate purpose", r"could not be verified .*get the kubeconfig again"),
    ],
)
def test_each_cause_gets_its_own_advice(code, why, says):
    message = certificate_message(SERVER, _as_urllib3_raises(code, why))
    assert message is not None and SERVER in message and why in message
    assert re.search(says, message), message


def test_a_bare_ssl_error_is_found_too_and_other_errors_are_not_certificate_errors():
    bare = ssl.SSLCertVerificationError(1, "certificate verify failed")
    bare.verify_code, bare.verify_message = 19, "self-signed certificate in certificate chain"
    assert certificate_error(bare) is bare  # websocket-client raises it unwrapped
    try:
        raise ConnectionError("the stream broke") from bare
    except ConnectionError as chained:
        assert certificate_error(chained) is bare
    assert certificate_message(SERVER, ConnectionRefusedError(111, "Connection refused")) is None
    assert certificate_message(SERVER, urllib3.exceptions.MaxRetryError(None, "/", reason=None)) is None  # type: ignore[arg-type]


def test_the_unverified_warning_comes_once_and_silences_the_clients_only_for_that_host():
    server = "https://unverified.example.invalid:6443"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_unverified(server, "class-admin")
        warn_unverified(server, "class-admin")
        warnings.warn(
            "Unverified HTTPS request is being made to host 'unverified.example.invalid'. Adding ...",
            urllib3.exceptions.InsecureRequestWarning,
            stacklevel=1,
        )
        warnings.warn(
            "Unverified HTTPS request is being made to host 'elsewhere.example.invalid'. Adding ...",
            urllib3.exceptions.InsecureRequestWarning,
            stacklevel=1,
        )
    ours = [w for w in caught if w.category is UnverifiedServerWarning]
    theirs = [str(w.message) for w in caught if w.category is urllib3.exceptions.InsecureRequestWarning]
    assert len(ours) == 1 and "class-admin" in str(ours[0].message)
    assert theirs == ["Unverified HTTPS request is being made to host 'elsewhere.example.invalid'. Adding ..."]
