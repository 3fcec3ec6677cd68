"""Sending: one HTTP POST (webhooks, Slack) or one email, with its outcome as data.

HTTP goes through httpx with redirects off and proxies off (``trust_env=False``): the
connection must go to the address ``guard.resolve`` checked, so the URL's host is replaced by
that address and the name travels in the ``Host`` header and as the TLS server name (SNI and
certificate check). Nothing is resolved twice, so DNS rebinding gains nothing.
"""

from __future__ import annotations

import email.utils
import smtplib
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any
from urllib.parse import unquote, urlsplit

import certifi
import httpx

from modelreg import __version__
from modelreg.errors import InvalidInput
from modelreg.services.delivery import guard

__all__ = ["Outcome", "SmtpConfig", "http_client", "post", "send_email"]

EXCERPT_BYTES = 1024


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt gave.

    The HTTP status (``None`` when none came), the first KB of the answer, an error text, and
    ``Retry-After`` in seconds when the target sent one.
    """

    status: int | None
    duration_ms: float
    excerpt: str = ""
    error: str = ""
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        """Whether the target took it (2xx; an email accepted by the relay counts as 250)."""
        return self.status is not None and 200 <= self.status < 300


def http_client() -> httpx.Client:
    """The client attempts share: no redirects, no proxies from the environment.

    Certificates are checked against the system's trust store (which ``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR`` extend, for a company CA) and certifi's bundle.
    """
    context = ssl.create_default_context()
    context.load_verify_locations(certifi.where())
    return httpx.Client(follow_redirects=False, trust_env=False, verify=context)


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds from now (it may be seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def post(
    client: httpx.Client,
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    allow_private: bool,
    timeout: float,
) -> Outcome:
    """POST ``body`` to ``url``, connecting only to a checked address; never raises."""
    started = time.perf_counter()

    def took() -> float:
        return (time.perf_counter() - started) * 1000

    try:
        target = guard.check_url(url, allow_private)
        addresses = guard.resolve(target, allow_private)
    except InvalidInput as exc:
        return Outcome(None, took(), error=exc.message[:1000])
    extensions: dict[str, Any] = {"timeout": httpx.Timeout(timeout).as_dict()}
    if target.scheme == "https":
        extensions["sni_hostname"] = target.host
    headers = {"host": target.host_header, "user-agent": f"modelreg/{__version__}", **headers}
    error = ""
    for address in addresses:  # each was checked; the first that takes the connection
        host = f"[{address}]" if address.version == 6 else str(address)
        pinned = f"{target.scheme}://{host}:{target.port}{target.path}"
        request = client.build_request(
            "POST", pinned, content=body, headers=headers, extensions=extensions
        )
        try:
            response = client.send(request, stream=True, follow_redirects=False)
            break
        except httpx.ConnectError as exc:
            error = f"{type(exc).__name__}: {exc}"[:1000]
        except httpx.HTTPError as exc:
            return Outcome(None, took(), error=f"{type(exc).__name__}: {exc}"[:1000])
    else:
        return Outcome(None, took(), error=error)
    try:
        excerpt = _read_excerpt(response)
    except httpx.HTTPError as exc:
        excerpt = f"(answer unreadable: {type(exc).__name__})"
    finally:
        response.close()
    return Outcome(
        response.status_code,
        took(),
        excerpt=excerpt,
        retry_after=_retry_after(response.headers.get("retry-after")),
    )


def _read_excerpt(response: httpx.Response) -> str:
    """The first KB of the answer (the rest is never read: a target cannot make us buffer)."""
    data = b""
    for chunk in response.iter_raw():
        data += chunk
        if len(data) >= EXCERPT_BYTES:
            break
    return data[:EXCERPT_BYTES].decode("utf-8", errors="replace")[:EXCERPT_BYTES]


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """An SMTP relay from ``MODELREG_SMTP_URL``.

    ``smtp://`` (STARTTLS with ``?starttls=true`` or ``smtp+starttls://``), ``smtps://`` (TLS
    from the start), optional ``user:password@``.
    """

    host: str
    port: int
    tls: bool
    starttls: bool
    user: str
    password: str

    @classmethod
    def parse(cls, url: str) -> SmtpConfig:
        """Parse ``url``; raises ``InvalidInput`` for another scheme or no host."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("smtp", "smtps", "smtp+starttls") or not parts.hostname:
            raise InvalidInput(
                "MODELREG_SMTP_URL is smtp://HOST[:PORT], smtp+starttls://… or smtps://…",
                detail={},
            )
        starttls = scheme == "smtp+starttls" or "starttls=true" in parts.query.lower()
        tls = scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if tls else 587 if starttls else 25),
            tls=tls,
            starttls=starttls,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
        )


def send_email(
    config: SmtpConfig,
    message: EmailMessage,
    *,
    timeout: float,
    context: ssl.SSLContext | None = None,
) -> Outcome:
    """Hand ``message`` to the relay; never raises. Status 250 when it was accepted."""
    started = time.perf_counter()
    context = context or ssl.create_default_context()
    try:
        smtp: smtplib.SMTP
        if config.tls:
            smtp = smtplib.SMTP_SSL(config.host, config.port, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=timeout)
        with smtp:
            if config.starttls:
                smtp.starttls(context=context)
            if config.user:
                smtp.login(config.user, config.password)
            refused = smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        # Never the password: smtplib's errors carry the server's answer, not our credentials.
        status = getattr(exc, "smtp_code", None)
        took = (time.perf_counter() - started) * 1000
        error = f"{type(exc).__name__}: {exc}"[:1000]
        return Outcome(status if isinstance(status, int) else None, took, error=error)
    took = (time.perf_counter() - started) * 1000
    if refused:
        return Outcome(None, took, error=f"the relay refused {sorted(refused)}"[:1000])
    return Outcome(250, took, excerpt="accepted by the relay")
