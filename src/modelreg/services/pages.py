"""Cursor pagination: opaque page tokens over any ordered query."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session

from modelreg.errors import InvalidInput
from modelreg.types import Page

__all__ = ["Page", "check_page_size", "decode_token", "encode_token", "paginate"]

MAX_PAGE_SIZE = 1000


def _fingerprint(context: str | None) -> str:
    return hashlib.sha256((context or "").encode()).hexdigest()[:12]


def encode_token(offset: int, context: str | None) -> str:
    """A page token for ``offset`` that only works with the same query text."""
    raw = json.dumps({"o": offset, "q": _fingerprint(context)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str | None, context: str | None) -> int:
    """The offset inside ``token``; raises ``InvalidInput`` if it is forged or for another query."""
    if not token:
        return 0
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        offset = int(data["o"])
        same = data["q"] == _fingerprint(context)
    except (ValueError, KeyError, TypeError):
        raise InvalidInput("invalid page_token", detail={"page_token": token}) from None
    if offset < 0 or not same:
        raise InvalidInput("page_token belongs to a different query", detail={"page_token": token})
    return offset


def check_page_size(page_size: int) -> int:
    """Return ``page_size`` if it is between 1 and 1000."""
    if (
        isinstance(page_size, bool)
        or not isinstance(page_size, int)
        or not (1 <= page_size <= MAX_PAGE_SIZE)
    ):
        raise InvalidInput(
            f"page_size must be between 1 and {MAX_PAGE_SIZE}", detail={"page_size": page_size}
        )
    return page_size


def paginate(
    session: Session,
    query: Select[Any],
    *,
    page_size: int,
    page_token: str | None,
    context: str | None,
) -> Page[Any]:
    """Run ``query`` for one page; fetches one extra row to know whether another page exists."""
    size = check_page_size(page_size)
    offset = decode_token(page_token, context)
    rows = list(session.scalars(query.offset(offset).limit(size + 1)).unique())
    more = len(rows) > size
    return Page(rows[:size], encode_token(offset + size, context) if more else None)
