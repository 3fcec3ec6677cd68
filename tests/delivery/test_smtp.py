"""Email through a real SMTP server on loopback (aiosmtpd): STARTTLS, TLS, auth."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from modelreg.errors import InvalidInput
from modelreg.services.delivery import formats
from modelreg.services.delivery.send import SmtpConfig, send_email
from server_process import free_port

EVENT = {
    "seq": 1,
    "event": "registry:version:stage",
    "actor": "ann",
    "target": "fraud:3",
    "reason": "",
    "before": None,
    "after": {"stage": "production"},
    "url": None,
}


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class Inbox:
    def __init__(self) -> None:
        self.got: list[Any] = []
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
        self.got.append(envelope)
        return "250 OK"

    def authenticate(self, _server: Any, _session: Any, _env: Any, _mech: str, data: Any) -> Any:
        ok = isinstance(data, LoginPassword) and data.password == b"s3cret"
        if ok:
            self.logins.append((data.login, data.password))
        return AuthResult(success=ok)


# aiosmtpd warns that AUTH without STARTTLS is unsafe; with smtps the whole session is TLS.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("scheme", ["smtp+starttls", "smtps"])
def test_tls_and_auth(scheme: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    # The client trusts what the system trusts; SSL_CERT_FILE points that at the test's CA.
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    inbox = Inbox()
    port = free_port()
    options: dict[str, Any] = {"authenticator": inbox.authenticate, "auth_required": True}
    if scheme == "smtps":
        # aiosmtpd does not count implicit TLS as TLS for AUTH; the connection is TLS anyway.
        options.update(ssl_context=server_ctx, auth_require_tls=False)
    else:
        options.update(tls_context=server_ctx, require_starttls=True)
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        config = SmtpConfig.parse(f"{scheme}://alerts%40example.com:s3cret@127.0.0.1:{port}")
        message = formats.email_message(EVENT, sender="alerts@example.com", to="ops@example.com")
        outcome = send_email(config, message, timeout=10)
        wrong = SmtpConfig.parse(f"{scheme}://alerts%40example.com:nope@127.0.0.1:{port}")
        refused = send_email(wrong, message, timeout=10)
    finally:
        controller.stop()
    assert outcome.ok, outcome.error
    assert inbox.logins == [(b"alerts@example.com", b"s3cret")]
    assert message_from_bytes(inbox.got[0].content)["To"] == "ops@example.com"
    assert not refused.ok
    assert "nope" not in refused.error  # the password is never in what is recorded


def test_smtp_urls() -> None:
    plain = SmtpConfig.parse("smtp://relay.internal")
    assert (plain.port, plain.tls, plain.starttls, plain.user) == (25, False, False, "")
    assert SmtpConfig.parse("smtp://relay:2525?starttls=true").starttls
    assert SmtpConfig.parse("smtp+starttls://u:p@relay").port == 587
    assert SmtpConfig.parse("smtps://relay").port == 465
    with pytest.raises(InvalidInput):
        SmtpConfig.parse("http://relay")
