"""Self-signed certificates for the admission webhook, made with `cryptography`.

For development and tests only: in a cluster the chart provides the serving certificate (cert-manager or a
Helm-generated one). Kopf's own generator needs certbuilder and oscrypto, and oscrypto misdetects
OpenSSL 3.x, so we do not use it.

Files are written atomically (temporary file, then rename), so that a server that re-reads them on
rotation never sees half a certificate.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_VALIDITY = datetime.timedelta(days=365)
_CLOCK_SKEW = datetime.timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class CertificatePaths:
    """Where a serving certificate, its key and the CA that signed it were written."""

    certfile: Path
    pkeyfile: Path
    cafile: Path


@dataclass(frozen=True, slots=True)
class Authority:
    """A throwaway certificate authority."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def create(cls, common_name: str = "readiness-operator-webhook-ca",
               validity: datetime.timedelta = DEFAULT_VALIDITY) -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        cert = (
            certificate_builder(name, name, key.public_key(), validity)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    def issue_server(self, hosts: Iterable[str], validity: datetime.timedelta = DEFAULT_VALIDITY,
                     ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """A serving certificate whose SANs are `hosts` (DNS names or IP addresses)."""
        hosts = list(dict.fromkeys(hosts))
        if not hosts:
            raise ValueError("a serving certificate needs at least one host name or IP address")
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            certificate_builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]),
                                self.cert.subject, key.public_key(), validity)
            .add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                           critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return cert, key


def write_serving_certificate(directory: Path, hosts: Iterable[str], authority: Authority | None = None,
                              validity: datetime.timedelta = DEFAULT_VALIDITY) -> CertificatePaths:
    """Write `ca.crt`, `tls.crt` and `tls.key` (the names a Kubernetes TLS Secret mounts) into `directory`.

    Reuse `authority` to rotate the serving certificate under the same CA (the webhook configuration's
    caBundle then stays valid); pass none to start a new CA.
    """
    directory.mkdir(parents=True, exist_ok=True)
    authority = authority or Authority.create()
    cert, key = authority.issue_server(hosts, validity)
    paths = CertificatePaths(directory / "tls.crt", directory / "tls.key", directory / "ca.crt")
    _write_atomic(paths.cafile, authority.cert.public_bytes(serialization.Encoding.PEM), 0o644)
    _write_atomic(paths.pkeyfile, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), 0o600)
    _write_atomic(paths.certfile, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return paths


def certificate_builder(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey,
                        validity: datetime.timedelta) -> x509.CertificateBuilder:
    """A certificate valid from a few minutes ago (clock skew between hosts) for `validity`, with a
    random serial: what every certificate we issue starts from (the webhook's and the test cluster's)."""
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + validity)
    )


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)
