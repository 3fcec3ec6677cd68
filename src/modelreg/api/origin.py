"""Which requests the server answers at all: the Host it is addressed as, the page that sent it.

Two browser attacks reach a registry that a user runs on their own machine or that trusts
cookies or cached Basic credentials (SECURITY.md rules 6, 14, 15):

- **DNS rebinding.** A page at ``evil.example`` rebinds its name to ``127.0.0.1``; the browser
  then treats the registry as the page's own origin and reads and writes it freely. The only
  trace is the ``Host`` header, which names ``evil.example``. A registry without users (laptop
  mode: every loopback client acts as its owner) therefore answers only loopback host names,
  unless ``allowed_hosts`` names the hosts it is served as.
- **Cross-site writes.** Any page can send a ``POST`` to any address without asking first. Such
  a request says where it came from (``Origin``, ``Sec-Fetch-Site``); no client of the API writes
  from another site (the web UI is same-origin), so those writes are refused on every registry.
  ``JsonOnly`` (``api.app``) closes the rest: a write must declare a JSON body, which a page can
  only send cross-site after a CORS preflight that this server never grants.

``HostAndOrigin`` is a plain ASGI layer outside every other (bar the security headers), so
nothing, not even a cached read (``api.answers``), is answered before it has looked.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from anyio import to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from modelreg.db.stamp import current as stamp_of
from modelreg.services import auth

if TYPE_CHECKING:
    # ``api.deps`` imports this module's host checks; the layer only needs the type.
    from modelreg.api.deps import Registry

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# ``Sec-Fetch-Site`` values a browser sends for a request another site's page started.
CROSS_SITE = frozenset({b"cross-site", b"same-site"})
DEFAULT_PORTS = {"http": "80", "https": "443"}
LOOPBACK_HELP = "localhost, *.localhost, 127.0.0.1 or [::1], with any port"


def split_host(value: str) -> tuple[str, str] | None:
    """``(name, port)`` of a ``Host`` header, lowercased; ``None`` if it is malformed.

    ``[::1]:8080`` gives ``("::1", "8080")``, ``localhost`` gives ``("localhost", "")``.
    """
    value = value.strip().lower()
    if value.startswith("["):
        name, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port = rest[1:]
    else:
        name, _, port = value.partition(":")
    if not name or (port and not port.isdigit()) or not port.isascii():
        return None
    return name, port


def is_loopback_name(name: str) -> bool:
    """Whether ``name`` (from ``split_host``) can only mean this machine to a browser.

    ``localhost`` and ``*.localhost`` (RFC 6761; browsers resolve them to loopback without
    asking DNS) and loopback address literals. A page can rebind a name it owns, never these.
    """
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@functools.lru_cache(maxsize=64)
def is_loopback_host(host: str) -> bool:
    """Whether a ``Host`` header names this machine by a loopback name.

    Cached: every request asks, and a server is called by a handful of names.
    """
    target = split_host(host)
    return target is not None and is_loopback_name(target[0])


def host_allowed(name: str, patterns: list[str]) -> bool:
    """Whether ``name`` matches ``allowed_hosts``: ``*`` (any), ``*.example.com``, or exactly."""
    for given in patterns:
        pattern = given.strip().lower()
        if pattern in ("*", name):
            return True
        if pattern.startswith("*.") and name.endswith(pattern[1:]):
            return True
    return False


def same_origin(origin: str, host: str) -> bool:
    """Whether a browser's ``Origin`` names the authority the request was sent to (``Host``).

    The scheme is not compared (a proxy in front may end TLS), the port is: an ``Origin``
    without one means its scheme's default, as a ``Host`` without one may.
    """
    try:
        parts = urlsplit(origin)
        origin_port = "" if parts.port is None else str(parts.port)
    except ValueError:
        return False
    target = split_host(host)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or target is None:
        return False
    default = DEFAULT_PORTS[parts.scheme]
    name, port = target
    return parts.hostname == name and (origin_port or default) == (port or default)


class HostAndOrigin:
    """Refuse requests to a host name this registry is not served as, and cross-site writes.

    A loopback ``Host`` costs a string check; another name, unless ``allowed_hosts`` is set,
    a lookup of whether users exist until the first time they do.
    """

    def __init__(self, app: ASGIApp, *, registry: Registry, allowed_hosts: list[str]) -> None:
        self.app = app
        self.registry = registry
        self.allowed_hosts = list(allowed_hosts)
        self.users_seen = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = b""
        origin = fetch_site = None
        for key, value in scope["headers"]:
            if key == b"host":
                host = value
            elif key == b"origin":
                origin = value
            elif key == b"sec-fetch-site":
                fetch_site = value
        # Headers arrive as latin-1 bytes; Starlette reads them the same way.
        host_text = host.decode("latin-1")
        write = scope["method"] in WRITE_METHODS
        # The common case, a read by a loopback name, without awaiting anything.
        if not write and not self.allowed_hosts and is_loopback_host(host_text):
            await self.app(scope, receive, send)
            return
        refusal = await self._host_refusal(host_text)
        if refusal is None and write:
            refusal = self._cross_site_refusal(host_text, origin, fetch_site)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        # Imported here: ``api.errors`` reaches ``api.deps``, which imports this module.
        from modelreg.api import errors as api_errors

        code, message, detail, status = refusal
        response = api_errors.envelope(code, message, detail, status, path=path)
        await response(scope, receive, send)

    async def _host_refusal(self, host: str) -> tuple[str, str, dict[str, str], int] | None:
        if not self.allowed_hosts and is_loopback_host(host):
            return None
        target = split_host(host)
        name = "" if target is None else target[0]
        if self.allowed_hosts:
            if target is not None and host_allowed(name, self.allowed_hosts):
                return None
            return (
                "invalid_host",
                f"this server is not served as {host!r}: the Host header must name one of its "
                f"allowed_hosts ({', '.join(self.allowed_hosts)})",
                {"host": host},
                400,
            )
        if await self._has_users():
            return None  # every request needs a token: a rebound page has none
        return (
            "invalid_host",
            f"this registry has no users, so it answers only loopback host names "
            f"({LOOPBACK_HELP}), not {host!r}: a web page can point any other name at this "
            "machine (DNS rebinding). Use http://localhost or http://127.0.0.1, or set "
            "allowed_hosts for the names it is served as",
            {"host": host},
            400,
        )

    @staticmethod
    def _cross_site_refusal(
        host: str, origin: bytes | None, fetch_site: bytes | None
    ) -> tuple[str, str, dict[str, str], int] | None:
        if fetch_site is not None and fetch_site.strip().lower() in CROSS_SITE:
            site = fetch_site.decode("latin-1")
            return (
                "cross_site_request",
                f"refused a write a page of another site started (Sec-Fetch-Site: {site}): "
                "this API takes writes only from its own origin or from non-browser clients",
                {"sec_fetch_site": site},
                403,
            )
        if origin is not None and not same_origin(origin.decode("latin-1"), host):
            text = origin.decode("latin-1")
            return (
                "cross_site_request",
                f"refused a write from the page at {text!r}, which is not this server "
                f"({host!r}): this API takes writes only from its own origin or from "
                "non-browser clients",
                {"origin": text, "host": host},
                403,
            )
        return None

    async def _has_users(self) -> bool:
        """Whether authentication is on, as of the registry's current change stamp.

        Once users have been seen the answer is kept: no operation removes a principal, and
        ``deps.is_local`` still refuses a foreign ``Host`` should a registry ever lose them.
        A server database is asked in a worker thread, so that costs a deployed server only
        its first request by name.
        """
        if self.users_seen:
            return True
        key = ("has-users",)
        fast = self.registry.sqlite_stamp
        stamp = fast.read() if fast is not None else None
        if stamp is not None:
            known: bool | None = self.registry.actors.get(key, stamp)
            if known is not None:
                return known
        read_at, users = await to_thread.run_sync(self._read_users)
        # Creating the first user is a write, so it moves the stamp and ends this answer.
        self.registry.actors.put(key, read_at, users)
        self.users_seen = users
        return users

    def _read_users(self) -> tuple[int, bool]:
        with self.registry.read() as session:
            return stamp_of(session), auth.has_principals(session)
