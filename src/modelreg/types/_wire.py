"""``Result``: the base of the typed results, with their wire shape and read access by key."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Self


def plain(value: Any) -> Any:
    """``value`` in its JSON shape: typed results (nested too) become dicts."""
    if isinstance(value, Result):
        return value.to_dict()
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


class Result:
    """A frozen dataclass result whose fields are the keys of its JSON shape, in order.

    Subclasses list in ``_optional`` the keys the wire shape leaves out when they are ``None``
    (``Token.token``: the secret exists only in the answer that issued it), and override
    ``from_dict`` where a field holds nested results.

    These results were plain dicts once, so they still read like one (``r["key"]``,
    ``r.get("key")``, ``"key" in r``, ``dict(r)``, ``r == {...}``): the values are the JSON
    shape's. Subclasses are declared with ``eq=False`` so that this class's ``__eq__`` holds.
    """

    __slots__ = ()
    __dataclass_fields__: ClassVar[dict[str, Any]]
    _optional: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Build from the JSON shape (the REST answer's body)."""
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape, exactly as the REST API answers it."""
        out: dict[str, Any] = {}
        for key in self.__dataclass_fields__:
            value = getattr(self, key)
            if value is None and key in self._optional:
                continue
            out[key] = plain(value)
        return out

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Result):
            return type(self) is type(other) and self.to_dict() == other.to_dict()
        if isinstance(other, dict):
            return self.to_dict() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable fields (lists, dicts): unhashable

    # -- read access by key, as when these results were dicts ------------------------------

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        """The JSON shape's value for ``key``, or ``default``."""
        return self.to_dict().get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self.to_dict()

    def keys(self) -> Iterator[str]:
        """The JSON shape's keys (so ``dict(result)`` works)."""
        return iter(self.to_dict())
