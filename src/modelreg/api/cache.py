"""Memory the server keeps between requests, correct across processes by the change stamp.

Every committed registry write moves the change stamp (``db.stamp``), whoever makes it and
through whatever code path. A value cached with the stamp it was computed under is served only
while the stamp is the same, which keeps many stateless workers correct with no
cross-process invalidation at all. Reading the stamp is one primary-key lookup, far cheaper
than the queries it saves. ``AnswerCache`` keeps the server's answers this way (served by
``api.answers``), ``api.deps`` authenticated callers, ``api.origin`` whether there are users.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from starlette.types import Scope

from modelreg.services.actor import Actor, Permission


class StampedCache:
    """A bounded LRU of values, each valid only under the stamp it was computed at.

    Bounded by entries and by bytes (what ``put`` is told a value holds): keys may include
    request query strings, so a client sending endless distinct searches must only churn the
    cache, never grow the server past its budget.
    """

    def __init__(self, size: int = 4096, max_bytes: int = 32 * 2**20) -> None:
        self._size = size
        self._max_bytes = max_bytes
        self._bytes = 0
        self._items: OrderedDict[Hashable, tuple[int, Any, int]] = OrderedDict()
        # Every read and write of the shared state holds it: requests run on the event loop
        # and in worker threads at once, and a read racing a move or an eviction on another
        # thread is safe only by the GIL's grace (not on free-threaded Python).
        self._lock = threading.Lock()

    def get(self, key: Hashable, stamp: int) -> Any | None:
        """The value cached for ``key`` under ``stamp``, or ``None``."""
        with self._lock:
            item = self._items.get(key)
            if item is None or item[0] != stamp:
                return None
            self._items.move_to_end(key)
            return item[1]

    def peek(self, key: Hashable) -> Any | None:
        """The value cached for ``key`` under any stamp (to skip work when there is none)."""
        with self._lock:  # see __init__: the dict may be changing on another thread
            item = self._items.get(key)
        return None if item is None else item[1]

    def put(self, key: Hashable, stamp: int, value: Any, nbytes: int = 0) -> None:
        """Remember ``value`` (``nbytes`` large) for ``key`` as computed under ``stamp``."""
        if nbytes > self._max_bytes // 8:
            return  # one value may not push out most of the others
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[2]
            self._items[key] = (stamp, value, nbytes)
            self._bytes += nbytes
            while len(self._items) > self._size or self._bytes > self._max_bytes:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= evicted[2]

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._items.clear()
            self._bytes = 0

    @property
    def nbytes(self) -> int:
        """The bytes of the values held now."""
        with self._lock:
            return self._bytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


@dataclass(frozen=True, slots=True)
class Answer:
    """A 200 answer's JSON bytes, and the model it is about (``None``: it spans models)."""

    model_id: Any
    body: bytes


class AnswerCache:
    """Answers valid while the change stamp stands still, served only to their model's readers.

    Bounded by entries and by bytes, keys included: keys hold what the client sent (up to
    ~80 KB of query string), so distinct junk queries must count, or they would hold many
    times the budget.
    """

    def __init__(self, size: int = 4096, max_bytes: int = 32 * 2**20) -> None:
        self._entries = StampedCache(size, max_bytes)

    def get(self, key: Hashable, stamp: int, actor: Actor) -> Answer | None:
        """The answer for ``key`` if computed under ``stamp`` and ``actor`` may read it."""
        answer: Answer | None = self._entries.get(key, stamp)
        if answer is None or not actor.can(Permission.READ, answer.model_id):
            # Remembered for other readers: the slow path answers an unreadable model as
            # absent (404), never with a 403 that confirms the name.
            return None
        return answer

    def holds(self, key: Hashable) -> bool:
        """Whether anything is remembered for ``key`` (to skip reading the stamp if not)."""
        return self._entries.peek(key) is not None

    def put(self, key: Hashable, stamp: int, answer: Answer) -> None:
        """Remember ``answer`` for ``key``; ``stamp`` must have been read before its data."""
        parts = key if isinstance(key, tuple) else (key,)
        size = sum(len(p) for p in parts if isinstance(p, str | bytes))
        self._entries.put(key, stamp, answer, len(answer.body) + size)

    def remember(self, scope: Scope, stamp: int, answer: Answer) -> None:
        """Let ``CachedReads`` serve ``answer`` to this request's repeats while ``stamp`` stands."""
        key = answer_key(scope)
        if key is not None:
            self.put(key, stamp, answer)

    def clear(self) -> None:
        """Forget every answer."""
        self._entries.clear()

    @property
    def nbytes(self) -> int:
        """The bytes held now, keys included."""
        return self._entries.nbytes

    def __len__(self) -> int:
        return len(self._entries)


def answer_key(scope: Scope) -> tuple[str, str, bytes] | None:
    """The key a request's answer is remembered under, or ``None`` for requests never served.

    Only GETs without a body: their answer depends on nothing but the path and query string
    (and the caller, checked on every hit).
    """
    if scope.get("method") != "GET":
        return None
    for name, value in scope.get("headers", ()):
        if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            return None
    return ("answer", scope["path"], bytes(scope.get("query_string", b"")))
