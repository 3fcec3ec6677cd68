"""Wire types of REST `/api/v1`: request bodies (`*Create`, `*Update`) and answers (`*Read`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelCreate(_Strict):
    """Body of ``POST /models``."""

    name: str = Field(max_length=200)
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)


class FileEntry(_Strict):
    """One manifest entry: the blob must be uploaded first."""

    path: str = Field(max_length=2048)
    sha256: str = Field(max_length=80)
    size: int = Field(ge=0)


class LineageIn(_Strict):
    """Lineage given at registration."""

    run_id: str | None = None
    git_repo: str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    datasets: list[str] = Field(default_factory=list, max_length=1000)
    parents: list[str] = Field(default_factory=list, max_length=1000)


class EnvironmentIn(_Strict):
    """The training environment."""

    python: str | None = None
    packages: list[str] = Field(default_factory=list, max_length=5000)


class VersionCreate(_Strict):
    """Body of ``POST /models/{name}/versions``: the whole registration, atomically."""

    files: list[FileEntry] = Field(min_length=1, max_length=100_000)
    metrics: dict[str, float] = Field(default_factory=dict)
    params: dict[str, str] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    description: str = ""
    semver: str | None = None
    bump: str | None = Field(default=None, pattern="^(major|minor|patch)$")
    lineage: LineageIn = Field(default_factory=LineageIn)
    environment: EnvironmentIn = Field(default_factory=EnvironmentIn)
    framework: str | None = None
    idempotency_key: str | None = None


class AliasSet(_Strict):
    """Body of ``PUT /models/{name}/aliases/{alias}``."""

    version: int = Field(ge=1, le=2**31 - 1)
    reason: str = ""


class TagsUpdate(_Strict):
    """Body of ``PATCH …/tags``: set some tags, delete others."""

    set: dict[str, str] = Field(default_factory=dict)
    delete: list[str] = Field(default_factory=list)


class DescriptionUpdate(_Strict):
    """Body of ``PATCH`` on a model or version."""

    description: str


class FileRead(BaseModel):
    """One file of a version."""

    path: str
    size: int
    sha256: str


class ModelRead(BaseModel):
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


class VersionRead(BaseModel):
    """One version."""

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
    files: list[FileRead]
    size: int
    framework: str | None
    lineage: dict[str, Any]
    environment: dict[str, Any]
    scan: dict[str, Any] | None
    created_by: str
    created_at: str
    updated_at: str


class ModelPage(BaseModel):
    """A page of models."""

    items: list[ModelRead]
    next_page_token: str | None


class VersionPage(BaseModel):
    """A page of versions."""

    items: list[VersionRead]
    next_page_token: str | None


class AuditEventRead(BaseModel):
    """One audit event."""

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


class AuditPage(BaseModel):
    """Audit events."""

    items: list[AuditEventRead]


class VerifyRead(BaseModel):
    """The outcome of ``audit verify``."""

    ok: bool
    events: int
    first_bad_seq: int | None
    problem: str | None
    last_hash: str | None


class ErrorBody(BaseModel):
    """The ``error`` object of every error answer."""

    code: str
    message: str
    detail: dict[str, Any]


class ErrorEnvelope(BaseModel):
    """Every error answer: ``{"error": {...}}``."""

    error: ErrorBody
