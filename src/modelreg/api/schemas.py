"""Wire types of REST `/api/v1`: request bodies (`*Create`, `*Update`) and answers (`*Read`)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from modelreg.names import MAX_VERSION


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# A version number, or 0 for "nothing holds it": the compare-and-set of every move.
ExpectCurrent = Annotated[
    int | None,
    Field(
        ge=0,
        le=MAX_VERSION,
        strict=True,
        description="the version that must hold the target now (0: nothing), else 409",
    ),
]


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
    source: str | None = Field(default=None, max_length=2048)
    imported_from: str | None = Field(default=None, max_length=2048)
    datasets: list[str] = Field(default_factory=list, max_length=1000)
    parents: list[str] = Field(default_factory=list, max_length=1000)


class EnvironmentIn(_Strict):
    """The training environment."""

    python: str | None = None
    packages: list[str] = Field(default_factory=list, max_length=5000)
    source: str | None = Field(
        default=None,
        max_length=1024,
        description="Where the packages were read: `python-process`, `cli-process`, "
        "`requirements.txt`, `conda.yaml`, `pip freeze` or `venv:/path/bin/python`.",
    )


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
    flavor: dict[str, Any] | None = Field(
        default=None,
        description="How `Registry.load` reads the files back: {name, format, libraries, "
        "python, files}; set by `register(model=…)`.",
    )
    signature: dict[str, Any] | None = Field(
        default=None,
        description="Input/output schema: {type: dataframe|tensor, inputs: [{name, dtype, "
        "shape?}], outputs: [...]}.",
    )
    idempotency_key: str | None = None
    number: int | None = Field(
        default=None,
        ge=1,
        le=MAX_VERSION,
        strict=True,
        description="imports only (admin): this number instead of the next one; it must be "
        "above every number the model used",
    )
    stage: str | None = Field(
        default=None,
        pattern="^(none|staging|production|archived)$",
        description="imports only (admin): the version's first stage",
    )


class AliasSet(_Strict):
    """Body of ``PUT /models/{name}/aliases/{alias}``."""

    version: int = Field(ge=1, le=2**31 - 1)
    reason: str = ""
    expect_current: ExpectCurrent = None


class PromotionCreate(_Strict):
    """Body of ``POST /models/{name}/promotions``: move a version into a stage or ``@alias``."""

    version: int = Field(ge=1, le=MAX_VERSION, strict=True)
    to: str = Field(max_length=80, description="a stage, or @alias")
    reason: str = ""
    dry_run: bool = False
    expect_current: ExpectCurrent = None


class PromotionApprove(_Strict):
    """Body of ``POST /promotions/{id}/approve``."""

    reason: str = ""


class PromotionReject(_Strict):
    """Body of ``POST /promotions/{id}/reject``: a rejection always says why."""

    reason: str


class RollbackCreate(_Strict):
    """Body of ``POST /models/{name}/rollback``."""

    stage: str = Field(default="production", max_length=80, description="a stage, or @alias")
    to: int | None = Field(default=None, ge=1, le=MAX_VERSION, strict=True)
    reason: str
    expect_current: ExpectCurrent = None


class RuleSet(_Strict):
    """One rule: the gates and approvals for moving a version into one target.

    The same keys as a policy file; the service validates the values (gates are compiled).
    """

    requires: list[str] | str = Field(
        default_factory=list, description="gates in the search language"
    )
    from_stages: list[str] | str = Field(default_factory=list)
    required_tags: dict[str, str | None] | list[str] = Field(
        default_factory=dict, description="tag keys (any value, null) or key: value"
    )
    approvals: int = Field(default=0, strict=True)
    approver_role: str | None = Field(default=None, max_length=32)
    previous_to: str | None = Field(default=None, max_length=32)


class PolicyDocument(_Strict):
    """Body of ``PUT /policies``: each listed scope's rules become exactly these."""

    scopes: dict[str, dict[str, RuleSet | None]]


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
    flavor: dict[str, Any] | None = Field(
        default=None, description="How `Registry.load` loads it; null for plain files."
    )
    signature: dict[str, Any] | None = Field(
        default=None, description="Input/output schema: {inputs: [{name, dtype}], outputs}."
    )
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


class EventRead(BaseModel):
    """One registry event (docs/events.md): an audit event as every notification sends it."""

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


class EventPage(BaseModel):
    """Events in order; ask again with ``after=next_after`` for the ones that follow."""

    items: list[EventRead]
    next_after: int


class VerifyRead(BaseModel):
    """The outcome of ``audit verify``."""

    ok: bool
    events: int
    first_bad_seq: int | None
    problem: str | None
    last_hash: str | None
    anchors: int = Field(description="how many anchors were checked")


class AnchorRead(BaseModel):
    """The audit chain's head, ``audit anchor``: keep it elsewhere, check it with verify."""

    seq: int
    hash: str
    at: str | None
    anchor: str = Field(description="SEQ:HASH, as `audit verify --anchor` takes it")


class PromotionRead(BaseModel):
    """A promotion request and where it stands."""

    id: int | None
    name: str
    version: int
    target: str
    to_stage: str | None
    to_alias: str | None
    state: str
    dry_run: bool
    requested_by: str
    requested_at: str | None
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


class PromotionPage(BaseModel):
    """Promotion requests, newest first."""

    items: list[PromotionRead]
    next_page_token: str | None


class RollbackRead(BaseModel):
    """What a rollback moved."""

    name: str
    target: str
    from_version: int
    to_version: int


class AliasDeleted(BaseModel):
    """The alias removed and the version it pointed at."""

    name: str
    alias: str
    version: int


class RuleRead(BaseModel):
    """A rule as stored; ``source`` (``model`` or ``*``) in a model's effective policy."""

    requires: list[str]
    from_stages: list[str]
    required_tags: dict[str, str | None]
    approvals: int
    approver_role: str
    previous_to: str | None
    source: str | None = None


class PolicyRead(BaseModel):
    """The rules that govern a model (or ``*``), by target."""

    scope: str
    rules: dict[str, RuleRead]


class PolicyScopes(BaseModel):
    """Every written rule, by scope and target."""

    scopes: dict[str, dict[str, RuleRead]]


class ScopedRuleRead(RuleRead):
    """The rule just written, with its scope and target."""

    scope: str
    target: str


class RuleDeleted(BaseModel):
    """The rule removed."""

    scope: str
    target: str


class PolicyChanges(BaseModel):
    """Per scope, the targets created, updated, deleted and unchanged."""

    changes: dict[str, dict[str, list[str]]]


class ErrorBody(BaseModel):
    """The ``error`` object of every error answer."""

    code: str
    message: str
    detail: dict[str, Any]


class ErrorEnvelope(BaseModel):
    """Every error answer: ``{"error": {...}}``."""

    error: ErrorBody
