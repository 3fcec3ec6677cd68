"""Registry events, as the event stream and every notification send them (docs/events.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    """One registry event: an audit log entry, named by its action (``registry:version:stage``).

    ``model`` is the model's name when the event was written, ``version`` the version it is
    about, and ``url`` its page in the web UI (``None`` unless the server sets ``public_url``).
    ``seq`` orders events; pass the last one seen as ``after`` to continue.
    """

    seq: int
    event: str
    at: str
    actor: str
    model: str | None
    version: int | None
    target: str
    reason: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    url: str | None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        """Build from the JSON shape."""
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}
