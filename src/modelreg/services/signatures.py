"""Version signatures and the trusted keys that make them count (``signed = true``).

A signature is stored only after it verifies: its bundle's signature checks with the key (the
one the uploader gives, or the trusted key the bundle names) and the manifest it signs is the
version's, path for path and digest for digest. Stored, it never changes. A version is
``signed`` while one of its signatures is by a trusted key that is not revoked: since every
stored signature verified, that is a join on the key's fingerprint, not a cryptographic check
on every read.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelreg import signing
from modelreg.db.base import utcnow
from modelreg.db.tables import TrustedKey, Version, VersionSignature
from modelreg.errors import AlreadyExists, Conflict, NotFound, SignatureInvalid
from modelreg.names import Ref, validate_key, validate_text
from modelreg.services.actor import Actor, Permission
from modelreg.services.audit import EventTag, record
from modelreg.services.signed import is_signed, trusted_clause
from modelreg.services.versions import read_version


def _iso(value: Any) -> str | None:
    return (
        None if value is None else value.isoformat(timespec="microseconds").replace("+00:00", "Z")
    )


def version_manifest(version: Version) -> signing.Manifest:
    """A version's manifest: path → SHA-256."""
    return {f.path: f.sha256 for f in version.files}


# -- signatures ----------------------------------------------------------------------------


def _key_for(session: Session, bundle: str, public_key: str | None) -> tuple[str, str]:
    """The PEM and fingerprint to check ``bundle`` with: the given key, or the trusted one."""
    if public_key:
        pem = signing.canonical_pem(public_key)
        _, fingerprint = signing.load_public_key(pem)
    else:
        fingerprint = signing.bundle_key_hint(bundle)
        row = session.scalar(select(TrustedKey).where(TrustedKey.fingerprint == fingerprint))
        if not fingerprint or row is None:
            raise SignatureInvalid(
                "the bundle's key is not a trusted key of this registry; send its public key "
                "(modelreg sign … --key gives it) or ask an admin to trust it",
                detail={"key": fingerprint},
            )
        pem = row.public_key
    revoked = session.scalar(
        select(TrustedKey).where(
            TrustedKey.fingerprint == fingerprint, TrustedKey.revoked_at.is_not(None)
        )
    )
    if revoked is not None:
        raise SignatureInvalid(
            f"key {revoked.name} was revoked ({revoked.revoke_reason}); it signs nothing more",
            detail={"key": fingerprint, "name": revoked.name},
        )
    return pem, fingerprint


def add_signature(
    session: Session, ref: Ref | str, bundle: str, *, actor: Actor, public_key: str | None = None
) -> VersionSignature:
    """Store a signature of a version's manifest, after checking it (immutable, audited).

    Raises ``SignatureInvalid`` when the bundle does not verify with the key or signs other
    files, ``Conflict`` when this key already signed the version differently.
    """
    version = read_version(session, ref, actor=actor)
    actor.require(Permission.VERSION_UPDATE, version.model_id)
    pem, fingerprint = _key_for(session, bundle, public_key)
    signed = signing.verify_bundle(bundle, pem)
    signing.check_manifest(
        signed, version_manifest(version), what=f"{version.model.name}:{version.number}"
    )
    existing = session.scalar(
        select(VersionSignature).where(
            VersionSignature.version_id == version.id,
            VersionSignature.key_fingerprint == fingerprint,
        )
    )
    if existing is not None:
        if existing.bundle == bundle:
            return existing  # a retry of the same upload
        raise AlreadyExists(
            f"{version.model.name}:{version.number} is already signed by key "
            f"{fingerprint[:16]}…; signatures are immutable",
            detail={"key": fingerprint, "id": str(existing.id)},
        )
    row = VersionSignature(
        version_id=version.id,
        key_fingerprint=fingerprint,
        manifest_sha256=signing.manifest_digest(signed),
        bundle=bundle,
        signed_by=actor.name,
    )
    session.add(row)
    session.flush()
    record(
        session,
        EventTag.SIGNATURE_SIGN,
        actor=actor,
        target=f"{version.model.name}:{version.number}",
        model=version.model,
        after={"key": fingerprint, "manifest_sha256": row.manifest_sha256, "id": str(row.id)},
    )
    return row


def list_signatures(
    session: Session, ref: Ref | str, *, actor: Actor
) -> tuple[Version, list[VersionSignature]]:
    """A version and its signatures, oldest first."""
    version = read_version(session, ref, actor=actor)
    rows = session.scalars(
        select(VersionSignature)
        .where(VersionSignature.version_id == version.id)
        .order_by(VersionSignature.created_at, VersionSignature.id)
    ).all()
    return version, list(rows)


def get_signature(
    session: Session, ref: Ref | str, signature_id: str, *, actor: Actor
) -> VersionSignature:
    """One signature of a version by id; ``NotFound`` when the version has no such one."""
    _, rows = list_signatures(session, ref, actor=actor)
    for row in rows:
        if str(row.id) == signature_id or row.id.hex == signature_id:
            return row
    raise NotFound(f"no signature {signature_id[:64]!r} on this version", detail={})


def _keys_by_fingerprint(session: Session, fingerprints: set[str]) -> dict[str, TrustedKey]:
    if not fingerprints:
        return {}
    rows = session.scalars(select(TrustedKey).where(TrustedKey.fingerprint.in_(fingerprints)))
    return {k.fingerprint: k for k in rows}


def signature_dicts(
    session: Session, rows: Sequence[VersionSignature], *, bundles: bool = False
) -> list[dict[str, Any]]:
    """Signatures in their JSON shape: who signed, with which key, and whether it counts."""
    keys = _keys_by_fingerprint(session, {r.key_fingerprint for r in rows})
    out = []
    for row in rows:
        key = keys.get(row.key_fingerprint)
        item: dict[str, Any] = {
            "id": str(row.id),
            "key_fingerprint": row.key_fingerprint,
            "key_name": key.name if key is not None else None,
            "trusted": key is not None and key.revoked_at is None,
            "revoked": key is not None and key.revoked_at is not None,
            "manifest_sha256": row.manifest_sha256,
            "signed_by": row.signed_by,
            "created_at": _iso(row.created_at),
        }
        if bundles:
            item["bundle"] = row.bundle
        out.append(item)
    return out


def signatures_by_version(
    session: Session, version_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """Each version's signatures (without bundles), for a page of versions: one query.

    Plain columns, never the bundles (kilobytes each), with their keys joined in.
    """
    if not version_ids:
        return {}
    s, k = VersionSignature, TrustedKey
    rows = session.execute(
        select(
            s.version_id,
            s.id,
            s.key_fingerprint,
            s.manifest_sha256,
            s.signed_by,
            s.created_at,
            k.name,
            k.revoked_at,
        )
        .outerjoin(k, k.fingerprint == s.key_fingerprint)
        .where(s.version_id.in_(list(version_ids)))
        .order_by(s.created_at, s.id)
    ).all()
    out: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for version_id, sid, fingerprint, manifest, signer, at, key_name, revoked_at in rows:
        out.setdefault(version_id, []).append(
            {
                "id": str(sid),
                "key_fingerprint": fingerprint,
                "key_name": key_name,
                "trusted": key_name is not None and revoked_at is None,
                "revoked": revoked_at is not None,
                "manifest_sha256": manifest,
                "signed_by": signer,
                "created_at": _iso(at),
            }
        )
    return out


# -- trusted keys --------------------------------------------------------------------------


def key_to_dict(key: TrustedKey) -> dict[str, Any]:
    """A trusted key in its JSON shape (the public key included: it is public)."""
    return {
        "name": key.name,
        "fingerprint": key.fingerprint,
        "public_key": key.public_key,
        "added_by": key.added_by,
        "added_at": _iso(key.added_at),
        "revoked": key.revoked_at is not None,
        "revoked_at": _iso(key.revoked_at),
        "revoked_by": key.revoked_by or None,
        "revoke_reason": key.revoke_reason or None,
    }


def add_key(session: Session, name: str, public_key: str, *, actor: Actor) -> TrustedKey:
    """Trust a public key (admin): versions it signs become ``signed``."""
    actor.require(Permission.ADMIN)
    name = validate_key(name, kind="key name")
    pem = signing.canonical_pem(public_key)
    _, fingerprint = signing.load_public_key(pem)
    if session.scalar(select(TrustedKey).where(TrustedKey.name == name)) is not None:
        raise AlreadyExists(f"a trusted key is already called {name!r}", detail={"name": name})
    same = session.scalar(select(TrustedKey).where(TrustedKey.fingerprint == fingerprint))
    if same is not None:
        state = "revoked" if same.revoked_at is not None else "trusted"
        raise AlreadyExists(
            f"this key is already {state} as {same.name!r}",
            detail={"name": same.name, "fingerprint": fingerprint},
        )
    key = TrustedKey(name=name, fingerprint=fingerprint, public_key=pem, added_by=actor.name)
    session.add(key)
    session.flush()
    record(
        session,
        EventTag.KEY_ADD,
        actor=actor,
        target=f"key:{name}",
        after={"name": name, "fingerprint": fingerprint},
    )
    return key


def list_keys(session: Session, *, actor: Actor) -> list[TrustedKey]:
    """Every trusted key, revoked ones included (public keys: any authenticated caller)."""
    del actor  # public keys are public; anyone who may call the registry may read them
    return list(session.scalars(select(TrustedKey).order_by(TrustedKey.name)))


def revoke_key(session: Session, name: str, *, actor: Actor, reason: str) -> TrustedKey:
    """Revoke a trusted key (admin): its signatures stop counting, now and for good."""
    actor.require(Permission.ADMIN)
    reason = validate_text(reason, kind="reason", limit=500, blank=False)
    key = session.scalar(select(TrustedKey).where(TrustedKey.name == name).with_for_update())
    if key is None:
        raise NotFound(f"no trusted key called {name[:128]!r}", detail={"name": name[:128]})
    if key.revoked_at is not None:
        raise Conflict(f"key {name!r} is already revoked", detail={"name": name})
    key.revoked_at = utcnow()
    key.revoked_by = actor.name
    key.revoke_reason = reason
    session.flush()
    record(
        session,
        EventTag.KEY_REVOKE,
        actor=actor,
        target=f"key:{name}",
        after={"name": name, "fingerprint": key.fingerprint},
        reason=reason,
    )
    return key


__all__ = [
    "add_key",
    "add_signature",
    "get_signature",
    "is_signed",
    "key_to_dict",
    "list_keys",
    "list_signatures",
    "revoke_key",
    "signature_dicts",
    "signatures_by_version",
    "trusted_clause",
    "version_manifest",
]
