"""The long-poll of ``GET /api/v1/events``: requests park on the loop until the registry changes.

One ``EventHub`` per server process holds the engine's ``db.changes.ChangeFeed``; a request
with nothing to answer yet waits on it as a coroutine, holding no thread and no connection, and
no request polls the database while it waits. Commits of this process, of the server's other
workers and of any CLI or embedded ``Registry`` on the same database wake it (the feed's
sources), and it reads its page once more.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from anyio import to_thread

from modelreg.db.changes import ChangeFeed

# What one read gives: the page, and the change stamp it was read under.
Reader = Callable[[int | None], tuple[dict[str, Any], int]]


class EventHub:
    """Wakes the coroutines waiting for a change; one per server process and engine."""

    def __init__(self, feed: ChangeFeed) -> None:
        self.feed = feed
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rung: asyncio.Event | None = None

    async def page(self, read: Reader, after: int | None, wait: float) -> dict[str, Any]:
        """``read(after)`` until it has items or ``wait`` seconds passed: ``{items, next_after}``.

        Each empty read moves ``after`` to its ``next_after`` (the end of the log as read), so
        the next read costs only the events since.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        with self.feed.watching():
            while True:
                answer, seen = await to_thread.run_sync(read, after)
                remaining = deadline - loop.time()
                if answer["items"] or remaining <= 0:
                    return answer
                after = answer["next_after"]
                if not await self._newer_than(seen, remaining):
                    # Nothing changed in all that time: the answer read last still holds.
                    return answer

    async def _newer_than(self, seen: int, timeout: float) -> bool:
        """Whether a stamp newer than ``seen`` became known within ``timeout`` seconds."""
        rung = self._bell()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self.feed.latest <= seen:
                    await rung.wait()
                    rung = self._bell()
        return self.feed.latest > seen

    def _bell(self) -> asyncio.Event:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._rung = asyncio.Event()
            self.feed.subscribe(self._ring_from_any_thread)
        assert self._rung is not None
        return self._rung

    def _ring_from_any_thread(self, _stamp: int) -> None:
        loop = self._loop
        if loop is not None:
            # The loop may be closing (the server stops): then nobody waits any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._ring)

    def _ring(self) -> None:
        # Everyone waiting holds this event: set it for them, and hang up a fresh one.
        rung, self._rung = self._rung, asyncio.Event()
        if rung is not None:
            rung.set()

    def close(self) -> None:
        """Stop the feed's listener or poller."""
        self.feed.close()
