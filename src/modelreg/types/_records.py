"""Models, versions, promotion requests, audit events and pages: the registry's records."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FileInfo:
    """One file of a version: its path inside the version, size and SHA-256."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Model:
    """A registered model."""

    name: str
    description: str
    tags: dict[str, str]
    owner: str
    created_at: str
    updated_at: str
    latest_version: int | None
    stages: dict[str, int]
    aliases: dict[str, int]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Model:
        """Build from the JSON shape."""
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class Version:
    """One immutable version of a model."""

    name: str
    version: int
    semver: str | None
    status: str
    stage: str
    aliases: list[str]
    description: str
    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str]
    files: list[FileInfo]
    size: int
    framework: str | None
    lineage: dict[str, Any]
    environment: dict[str, Any]
    # How ``Registry.load`` loads it (``None`` for files registered as files).
    flavor: dict[str, Any] | None
    # Input/output schema: ``{inputs: [{name, dtype}], outputs: [...]}``.
    signature: dict[str, Any] | None
    scan: dict[str, Any] | None
    # A signature by a trusted, unrevoked key; ``signatures`` lists every stored one.
    signed: bool
    signatures: list[dict[str, Any]]
    created_by: str
    created_at: str
    updated_at: str

    @property
    def ref(self) -> str:
        """``NAME:VERSION``."""
        return f"{self.name}:{self.version}"

    @property
    def uri(self) -> str:
        """``models:/NAME/VERSION``."""
        return f"models:/{self.name}/{self.version}"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Version:
        """Build from the JSON shape."""
        values = {k: data.get(k) for k in cls.__dataclass_fields__}
        values["files"] = [FileInfo(**f) for f in data.get("files") or []]
        values["signed"] = bool(data.get("signed"))
        values["signatures"] = list(data.get("signatures") or [])
        return cls(**values)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["files"] = [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in self.files]
        return out


@dataclass(frozen=True, slots=True)
class Promotion:
    """A request to move a version into a stage or protected alias, and where it stands.

    ``state`` is ``applied``, ``pending`` (waiting for ``approvals_required`` approvals),
    ``refused`` (``failed_criteria`` lists each failed gate with the value it saw) or
    ``rejected``. ``id`` is ``None`` for a dry run and for a version already in place.
    """

    id: int | None
    name: str
    version: int
    target: str
    to_stage: str | None
    to_alias: str | None
    state: str
    dry_run: bool
    requested_by: str
    requested_at: str
    reason: str
    from_version: int | None
    expect_current: int | None
    approvals_required: int
    approver_role: str
    approvals: list[dict[str, Any]]
    rejections: list[dict[str, Any]]
    failed_criteria: list[dict[str, Any]]
    decided_by: str | None
    decided_at: str | None
    decision_reason: str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Promotion:
        """Build from the JSON shape."""
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One entry of the hash-chained audit log."""

    seq: int
    at: str
    actor: str
    action: str
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str
    hash: str
    prev_hash: str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditEvent:
        """Build from the JSON shape."""
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class Page(Sequence[T], Generic[T]):
    """One page of a listing; iterate it like a list, follow ``next_page_token`` for more."""

    items: list[T]
    next_page_token: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def from_dict(data: Mapping[str, Any], item: Callable[[Any], T]) -> Page[T]:
        """Build from a page's JSON shape, each item with ``item`` (``Version.from_dict``, …)."""
        return Page([item(i) for i in data["items"]], data.get("next_page_token"))

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[T]: ...
    def __getitem__(self, index: int | slice) -> T | Sequence[T]:
        return self.items[index]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)
