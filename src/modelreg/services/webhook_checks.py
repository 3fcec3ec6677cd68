"""What a subscription may name: its target URL or address, its event patterns.

A URL is http(s) with a host and no user name or password; whether its host is a private
address is the delivery guard's to check, on the address actually connected
(``services.delivery.guard``). ``display_url`` masks what may be a credential in a URL.
"""

from __future__ import annotations

import fnmatch
import re
from urllib.parse import urlsplit

from modelreg.db.tables.notify import WebhookKind
from modelreg.errors import InvalidInput
from modelreg.services.audit import EventTag
from modelreg.services.delivery import guard

MAX_PATTERNS = 50
MAX_URL = 2048
_PATTERN_RE = re.compile(r"[a-z0-9:*?_\-]{1,100}")
# One address, as SMTP takes it: no display name, no spaces, no line breaks.
_EMAIL_RE = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)


def check_url(url: str, *, allow_private: bool = False) -> str:
    """A target URL: http(s), a host, no user name or password, no spaces or control bytes.

    A host written as an IP address must be a global one unless ``allow_private`` (the
    delivery guard's rule, applied early for a clear answer; names are checked at send time).
    """
    if not isinstance(url, str) or not url:
        raise InvalidInput("a webhook needs a URL (http:// or https://)", detail={"url": ""})
    if len(url) > MAX_URL or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise InvalidInput(
            f"a URL is at most {MAX_URL} characters, without spaces or control characters",
            detail={},
        )
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidInput(
            f"a webhook URL must start with http:// or https://, not {parts.scheme or '(none)'}:",
            detail={"url": display_url(url), "scheme": parts.scheme[:20]},
        )
    if "@" in parts.netloc:
        raise InvalidInput(
            "a webhook URL may not carry a user name or password (user@host): the target "
            "authenticates the message by its signature",
            detail={"url": display_url(url)},
        )
    try:
        parts.port  # noqa: B018 (raises ValueError for a port out of range)
    except ValueError:
        raise InvalidInput("the URL's port is not a number from 1 to 65535", detail={}) from None
    if not parts.hostname:
        raise InvalidInput("the URL names no host", detail={"url": display_url(url)})
    # The delivery guard makes the private-address refusal on the address it connects to;
    # a literal address can be judged now.
    guard.check_url(url, allow_private)
    return url


def check_email(address: str) -> str:
    """One e-mail address (``name@example.com``)."""
    if not isinstance(address, str) or len(address) > 320 or not _EMAIL_RE.fullmatch(address):
        raise InvalidInput(
            f"{str(address)[:100]!r} is not an e-mail address (name@example.com)",
            detail={"to": str(address)[:100]},
        )
    return address


def check_patterns(patterns: tuple[str, ...] | list[str]) -> list[str]:
    """Event name patterns (``registry:version:*``), each matching at least one event name."""
    names = [tag.value for tag in EventTag]
    wanted = list(dict.fromkeys(patterns)) or ["*"]
    if len(wanted) > MAX_PATTERNS:
        raise InvalidInput(f"at most {MAX_PATTERNS} event patterns", detail={})
    for pattern in wanted:
        if not isinstance(pattern, str) or not _PATTERN_RE.fullmatch(pattern):
            raise InvalidInput(
                f"invalid event pattern {str(pattern)[:100]!r}: lower-case event names with "
                "':' and the wildcards * and ?",
                detail={"event": str(pattern)[:100]},
            )
        if not fnmatch.filter(names, pattern):
            raise InvalidInput(
                f"no event is called {pattern!r}; events are the audit log's actions, such as "
                "registry:version:stage or registry:promotion:* (docs/events.md)",
                detail={"event": pattern},
            )
    return wanted


def display_url(url: str, kind: WebhookKind | str = WebhookKind.WEBHOOK) -> str:
    """``url`` with what may be a credential masked: the query, and a Slack URL's token."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    path = parts.path
    if kind == WebhookKind.SLACK and path.count("/") > 1:
        path = path.rsplit("/", 1)[0] + "/…"
    query = "?…" if parts.query else ""
    return f"{parts.scheme}://{host}{port}{path}{query}"
