"""Which addresses the registry may send to: no loopback, private or metadata targets.

A subscription's URL is user input; without this check a model admin could make the server
call its own admin ports or a cloud metadata service (SSRF). The check is made twice: on the
URL when a subscription is created (a literal IP gives a clear early error) and on every
address the host name resolves to just before sending, and the sender then connects to the
checked address itself, so a name that resolves differently the second time (DNS rebinding)
never reaches anything unchecked.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from modelreg.errors import InvalidInput

__all__ = ["Target", "check_address", "check_url", "resolve"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL's parts: scheme, host name as written, port, and path with query."""

    scheme: str
    host: str
    port: int
    path: str

    @property
    def host_header(self) -> str:
        """The ``Host`` header: the name, with the port when it is not the scheme's."""
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def _refuse(url: str, why: str) -> InvalidInput:
    return InvalidInput(f"webhook target {url[:200]!r} refused: {why}", detail={"url": url[:200]})


def check_url(url: str, allow_private: bool) -> Target:
    """``url`` as a ``Target`` if it may be a webhook target; raises ``InvalidInput`` if not.

    http(s) only, a host, no user name or password; a host written as an IP address must be
    a global one unless ``allow_private`` (``MODELREG_WEBHOOK_ALLOW_PRIVATE``). Host names are
    checked when sending (``resolve``), as what they resolve to can change.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _refuse(url, str(exc)) from None
    if parts.scheme not in ("http", "https"):
        raise _refuse(url, "only http:// and https:// URLs are allowed")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise _refuse(url, "a user name or password in the URL is not allowed")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise _refuse(url, "the URL has no host")
    literal = _literal_ip(host)
    if literal is not None:
        check_address(literal, allow_private, url=url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path)


def _literal_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_address(address: IPAddress, allow_private: bool, *, url: str = "") -> None:
    """Raise ``InvalidInput`` unless ``address`` is a global unicast address (or allowed).

    Loopback, private, link-local (the cloud metadata service at 169.254.169.254 is one),
    shared (100.64/10), reserved, multicast and unspecified addresses are refused; an
    IPv4-mapped IPv6 address is judged as the IPv4 address it carries.
    """
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_unspecified or address.is_multicast:
        raise _refuse(url or str(address), f"{address} is not a unicast address")
    if allow_private:
        return
    if not address.is_global or address.is_private or address.is_reserved:
        raise _refuse(
            url or str(address),
            f"{address} is a loopback, private, link-local or reserved address "
            "(set MODELREG_WEBHOOK_ALLOW_PRIVATE=true to allow such targets)",
        )


def resolve(target: Target, allow_private: bool) -> list[IPAddress]:
    """The addresses to connect to for ``target``, after checking every one it resolves to.

    The sender connects to these addresses (in order) and to nothing else.

    Raises:
        InvalidInput: the name does not resolve, or one of its addresses is refused.
    """
    literal = _literal_ip(target.host)
    if literal is not None:
        check_address(literal, allow_private, url=target.host)
        return [literal]
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise _refuse(target.host, f"the host name does not resolve ({exc})") from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    if not addresses:  # pragma: no cover - getaddrinfo raises instead
        raise _refuse(target.host, "the host name resolves to no address")
    for address in addresses:
        check_address(address, allow_private, url=target.host)
    return addresses
