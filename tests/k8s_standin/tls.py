"""The stand-in's certificates (a fake for tests): a CA of its own, the server's certificate, client certificates.

A cluster's API server speaks HTTPS with a certificate its kubeconfigs
trust (``certificate-authority-data``), and kind and minikube hand their
administrators a client certificate instead of a token: kube-apiserver takes
the certificate's common name as the user and its organizations as the
user's groups. Certificates are made by ``trustme`` and live only in memory
and in the test's temporary directory.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from typing import Any

import trustme

SERVER_NAMES = ("127.0.0.1", "localhost")


class Certificates:
    """One certificate authority, the server certificate it signed, and client certificates on demand."""

    def __init__(self) -> None:
        self.ca = trustme.CA(organization_name="labkit stand-in CA")
        self._server = self.ca.issue_cert(*SERVER_NAMES)

    @property
    def ca_pem(self) -> bytes:
        return self.ca.cert_pem.bytes()

    def server_context(self) -> ssl.SSLContext:
        """TLS for the server: its certificate, and client certificates verified against the CA when offered."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._server.configure_cert(ctx)
        self.ca.configure_trust(ctx)
        ctx.verify_mode = ssl.CERT_OPTIONAL  # bearer tokens need no certificate
        return ctx

    def client(self, user: str, groups: Sequence[str] = ()) -> tuple[bytes, bytes]:
        """A client certificate (PEM) for ``user`` in ``groups``, and its private key (PEM)."""
        # trustme names the subject by common name and organizational unit only; kube-apiserver reads
        # groups from O, so the certificate is issued through the CA's own signing key with O set.
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        names = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
        subject = x509.Name([*names, x509.NameAttribute(NameOID.COMMON_NAME, user)])
        issuer_cert = x509.load_pem_x509_certificate(self.ca.cert_pem.bytes())
        issuer_key = serialization.load_pem_private_key(self.ca.private_key_pem.bytes(), password=None)
        now = issuer_cert.not_valid_before_utc
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(issuer_cert.not_valid_after_utc)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(issuer_key, hashes.SHA256())  # type: ignore[arg-type]
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return cert.public_bytes(serialization.Encoding.PEM), key_pem


def certificate_subject(peercert: dict[str, Any] | None) -> tuple[str, tuple[str, ...]] | None:
    """The user (CN) and groups (each O) of a verified client certificate, as ``ssl`` reports it; None without one."""
    if not peercert:
        return None
    user = ""
    groups: list[str] = []
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                user = value
            elif key == "organizationName":
                groups.append(value)
    return (user, tuple(groups)) if user else None
