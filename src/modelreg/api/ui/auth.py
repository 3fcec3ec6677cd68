"""Who is asking, for UI pages: a session cookie, else what the API accepts.

A signed-in browser sends its session cookie (``services.sessions``). Without one, the
request is authenticated as the API's are (``api.deps._actor``): laptop mode (a registry
with no users, asked from this machine by a loopback name) acts as the owner, and a Bearer
token works for scripts and the benchmark. Browsers never send a Bearer token on their own.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Annotated

from fastapi import Depends, Request

from modelreg.api import deps
from modelreg.api.access_log import note_actor
from modelreg.api.ui import forms
from modelreg.errors import Unauthenticated
from modelreg.services import sessions
from modelreg.services.actor import Actor


def client_of(request: Request) -> str:
    """The peer address, for sources and the sign-in throttle."""
    return request.client.host if request.client else "unknown"


def ui_actor(request: Request) -> Actor:
    """The actor of a UI request; ``Unauthenticated`` (→ sign-in page) when there is none."""
    request.state.ui_started = time.perf_counter()
    cookie = forms.session_cookie(request)
    actor: Actor | None = None
    if cookie:
        registry: deps.Registry = request.app.state.registry
        with registry.read() as session:
            try:
                actor = sessions.session_actor(session, cookie, source=f"ui:{client_of(request)}")
            except Unauthenticated:
                actor = None  # an ended session: as if none (laptop mode still works)
    if actor is None:
        actor = deps._actor(request)
    else:
        note_actor(request.scope, actor.name)
    request.state.ui_actor = actor
    return actor


UiActorDep = Annotated[Actor, Depends(ui_actor)]


class LoginThrottle:
    """At most ``limit`` failed sign-ins per client address in ``window`` seconds.

    Per server process: with N workers a client gets up to N× the limit, which still turns a
    token search into a crawl (tokens carry 256 bits; this guards against noise and weak
    guesses more than brute force).
    """

    def __init__(self, limit: int = 10, window: float = 600.0) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(client, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def retry_after(self, client: str) -> int:
        """Seconds until ``client`` may try again (0: now)."""
        now = time.monotonic()
        failures = self._recent(client, now)
        if len(failures) < self.limit:
            return 0
        return max(1, int(failures[0] + self.window - now) + 1)

    def failed(self, client: str) -> None:
        """Count one failed sign-in of ``client``."""
        now = time.monotonic()
        self._recent(client, now).append(now)
        if len(self._failures) > 10_000:  # bound memory under a spray of addresses
            self._failures = {k: v for k, v in self._failures.items() if v}

    def succeeded(self, client: str) -> None:
        """Forget ``client``'s failures."""
        self._failures.pop(client, None)
