"""Version signatures and trusted keys (``services.signatures``), once for every door."""

from __future__ import annotations

from typing import Any

from modelreg.names import Ref
from modelreg.services import signatures
from modelreg.services.actor import Actor
from modelreg.services.usecases._handles import Handles


def add_signature(
    h: Handles, actor: Actor, ref: Ref | str, bundle: str, public_key: str | None
) -> dict[str, Any]:
    """Check and store a signature of a version's manifest: it, with its bundle."""
    with h.write() as session:
        row = signatures.add_signature(session, ref, bundle, actor=actor, public_key=public_key)
        return signatures.signature_dicts(session, [row], bundles=True)[0]


def list_signatures(h: Handles, actor: Actor, ref: Ref | str) -> dict[str, Any]:
    """A version's signatures with their bundles: ``{items}``."""
    with h.read() as session:
        _, rows = signatures.list_signatures(session, ref, actor=actor)
        return {"items": signatures.signature_dicts(session, rows, bundles=True)}


def get_signature(h: Handles, actor: Actor, ref: Ref | str, signature_id: str) -> dict[str, Any]:
    """One signature of a version, with its bundle."""
    with h.read() as session:
        row = signatures.get_signature(session, ref, signature_id, actor=actor)
        return signatures.signature_dicts(session, [row], bundles=True)[0]


def add_key(h: Handles, actor: Actor, name: str, public_key: str) -> dict[str, Any]:
    """Trust a public key (admin)."""
    with h.write() as session:
        return signatures.key_to_dict(signatures.add_key(session, name, public_key, actor=actor))


def list_keys(h: Handles, actor: Actor) -> list[dict[str, Any]]:
    """Every trusted key, revoked ones included."""
    with h.read() as session:
        return [signatures.key_to_dict(k) for k in signatures.list_keys(session, actor=actor)]


def revoke_key(h: Handles, actor: Actor, name: str, reason: str) -> dict[str, Any]:
    """Revoke a trusted key (admin): its signatures stop counting."""
    with h.write() as session:
        key = signatures.revoke_key(session, name, actor=actor, reason=reason)
        return signatures.key_to_dict(key)
