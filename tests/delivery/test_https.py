"""HTTPS to a pinned address: the sender connects to the address it checked and still checks
the certificate against the URL's name (SNI), so pinning costs no TLS safety."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from receivers import Receiver

from modelreg.services.delivery.send import post
from server_process import ThreadedServer


def certificate(folder: Path, dns_name: str) -> tuple[Path, Path]:
    """A self-signed certificate for ``dns_name`` and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / f"{dns_name}.pem", folder / f"{dns_name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.mark.parametrize(("served_as", "ok"), [("localhost", True), ("other.example", False)])
def test_pinned_address_keeps_the_name_for_tls(served_as: str, ok: bool, tmp_path: Path) -> None:
    cert, key = certificate(tmp_path, served_as)
    receiver = Receiver()
    server = ThreadedServer(receiver.app(), ssl_certfile=str(cert), ssl_keyfile=str(key))
    trust = ssl.create_default_context(cafile=str(cert))
    with server, httpx.Client(verify=trust, trust_env=False) as client:
        url = f"https://localhost:{server.port}/hook"
        outcome = post(client, url, b"{}", {}, allow_private=True, timeout=10)
    if ok:
        assert outcome.status == 200, outcome.error
        assert receiver.got[0].headers["host"] == f"localhost:{server.port}"
    else:  # the certificate names another host: refused, nothing sent
        assert outcome.status is None
        assert "CERTIFICATE_VERIFY_FAILED" in outcome.error or "certificate" in outcome.error
        assert receiver.got == []
