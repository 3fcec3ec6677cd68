"""``…/versions/{version}/signatures`` and ``/api/v1/keys``: version signatures, trusted keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from modelreg.api.bodies import StrictJsonRoute
from modelreg.api.deps import ActorDep, RegistryDep
from modelreg.api.schemas import SignatureDownload, SignatureList
from modelreg.names import Ref
from modelreg.services.usecases import signing
from modelreg.signing import MAX_BUNDLE, MAX_PUBLIC_KEY

router = APIRouter(prefix="/api/v1", route_class=StrictJsonRoute)

Number = Path(ge=1, le=2**31 - 1)


class SignatureCreate(BaseModel):
    """Body of ``POST …/signatures``: a model-signing bundle over the version's manifest."""

    model_config = ConfigDict(extra="forbid")
    bundle: str = Field(max_length=MAX_BUNDLE, description="the bundle (Sigstore JSON)")
    public_key: str | None = Field(
        default=None,
        max_length=MAX_PUBLIC_KEY,
        description="the signer's PEM public key; omitted, the trusted key the bundle names",
    )


class KeyCreate(BaseModel):
    """Body of ``POST /keys``."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=250)
    public_key: str = Field(max_length=MAX_PUBLIC_KEY, description="PEM (elliptic curve)")


class KeyRevoke(BaseModel):
    """Body of ``POST /keys/{name}/revoke``."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500)


class KeyRead(BaseModel):
    """A trusted key: signatures by it make a version ``signed`` until it is revoked."""

    name: str
    fingerprint: str = Field(description="SHA-256 of the key's PEM (the bundles' key hint)")
    public_key: str
    added_by: str
    added_at: str
    revoked: bool
    revoked_at: str | None
    revoked_by: str | None
    revoke_reason: str | None


class KeyList(BaseModel):
    """Answer of ``GET /keys``."""

    items: list[KeyRead]


@router.post(
    "/models/{name:model}/versions/{version}/signatures",
    status_code=201,
    response_model=SignatureDownload,
    operation_id="signatures-sign",
    tags=["signatures"],
)
def sign_version(
    name: str, body: SignatureCreate, registry: RegistryDep, actor: ActorDep, version: int = Number
) -> Any:
    """Store a signature of the version's manifest, once it verifies (immutable, audited).

    The bundle must verify with ``public_key`` (or the trusted key it names) and sign exactly
    the version's files and digests; otherwise 400 ``signature_invalid`` and nothing is stored.
    """
    ref = Ref(name, version=version)
    return signing.add_signature(registry, actor, ref, body.bundle, body.public_key)


@router.get(
    "/models/{name:model}/versions/{version}/signatures",
    response_model=SignatureList,
    operation_id="signatures-list",
    tags=["signatures"],
)
def list_signatures(
    name: str, registry: RegistryDep, actor: ActorDep, version: int = Number
) -> Any:
    """The version's signatures, with their bundles."""
    return signing.list_signatures(registry, actor, Ref(name, version=version))


@router.get(
    "/models/{name:model}/versions/{version}/signatures/{signature_id}",
    response_model=SignatureDownload,
    operation_id="signatures-get",
    tags=["signatures"],
)
def get_signature(
    name: str,
    signature_id: str,
    registry: RegistryDep,
    actor: ActorDep,
    version: int = Number,
) -> Any:
    """One signature with its bundle (to check with ``model_signing verify key``)."""
    return signing.get_signature(registry, actor, Ref(name, version=version), signature_id)


@router.post(
    "/keys", status_code=201, response_model=KeyRead, operation_id="keys-add", tags=["keys"]
)
def add_key(body: KeyCreate, registry: RegistryDep, actor: ActorDep) -> Any:
    """Trust a public key (admin): versions it signs become ``signed``."""
    return signing.add_key(registry, actor, body.name, body.public_key)


@router.get("/keys", response_model=KeyList, operation_id="keys-list", tags=["keys"])
def list_keys(registry: RegistryDep, actor: ActorDep) -> Any:
    """Every trusted key, revoked ones included."""
    return {"items": signing.list_keys(registry, actor)}


@router.post(
    "/keys/{name}/revoke",
    response_model=KeyRead,
    operation_id="keys-revoke",
    tags=["keys"],
)
def revoke_key(name: str, body: KeyRevoke, registry: RegistryDep, actor: ActorDep) -> Any:
    """Revoke a trusted key (admin): its signatures stop counting; the key stays listed."""
    return signing.revoke_key(registry, actor, name, body.reason)
