"""uvicorn's HTTP protocol with a deadline for a request's headers (slowloris).

uvicorn times out a connection only while it sits idle between requests
(``timeout_keep_alive``), and every byte received cancels that timer: a client that sends its
request line and headers a byte at a time holds its connection for as long as it likes, and
the application never sees the request, so no timeout of ours can reach it (uvicorn issue
#157 lists a ``--timeout-request-start`` that was never built). Here a connection must
deliver a complete set of headers within ``header_timeout`` seconds of opening, or of its
previous response; otherwise it is closed. Bodies have their own idle cut-off in the
application (``api.uploads``, ``api.app.JsonBodyLimit``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

# Enough for any real client on any real network; a browser or SDK sends headers at once.
HEADER_TIMEOUT = 30.0


class HeaderDeadline:
    """A mixin for either of uvicorn's HTTP protocols (httptools, h11): the header deadline.

    Relies on what both implementations share: ``cycle`` is the current request's, replaced
    as soon as the next request's headers are complete, and ``on_response_complete`` runs
    after each response.
    """

    header_timeout = HEADER_TIMEOUT
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    cycle: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._awaited: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def _arm(self) -> None:
        self._disarm()
        # The next headers are complete when ``cycle`` is no longer the one seen now.
        self._awaited = self.cycle
        self._deadline = self.loop.call_later(self.header_timeout, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        cycle = self.cycle
        # A request still being answered (a pipelined one, whose headers came early) is not
        # waiting for headers; its own response re-arms the deadline.
        waiting = cycle is self._awaited and (cycle is None or cycle.response_complete)
        if waiting and not self.transport.is_closing():
            self.transport.close()


class HeaderDeadlineProtocol(HeaderDeadline, AutoHTTPProtocol):  # type: ignore[misc,valid-type]
    """What ``modelreg server`` runs: uvicorn's default protocol with the header deadline."""
