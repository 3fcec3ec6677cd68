"""A registry-wide change stamp, and a cache that stays correct across processes by it.

Every change to a registry appends an audit event in the same transaction (SECURITY.md rule
12), and appending bumps the audit head's sequence number. So that number is a change stamp:
while it stands still, nothing any process could read has changed. A cached answer stored
with the stamp it was computed under is served only while the stamp is the same, which keeps
many stateless workers correct with no cross-process invalidation at all. Reading the stamp is
one primary-key lookup, far cheaper than the queries it saves.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelreg.db.tables import AuditHead


def current(session: Session) -> int:
    """The registry's change stamp: the audit log's last sequence number.

    Read it *before* the data a cached answer is built from, so an answer is never stored
    under a stamp newer than the data it saw.
    """
    return int(session.scalar(select(AuditHead.last_seq).where(AuditHead.id == 1)) or 0)


class StampedCache:
    """A bounded LRU of answers, each valid only under the stamp it was computed at."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._items: OrderedDict[Hashable, tuple[int, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, stamp: int) -> Any | None:
        """The answer cached for ``key`` under ``stamp``, or ``None``."""
        with self._lock:
            item = self._items.get(key)
            if item is None or item[0] != stamp:
                return None
            self._items.move_to_end(key)
            return item[1]

    def put(self, key: Hashable, stamp: int, value: Any) -> None:
        """Remember ``value`` for ``key`` as computed under ``stamp``."""
        with self._lock:
            self._items[key] = (stamp, value)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)
