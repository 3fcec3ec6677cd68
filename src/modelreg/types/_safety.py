"""Safety results: version signatures, trusted keys, and what ``verify`` checked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelreg.types._wire import Result


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Signature(Result):
    """One stored signature of a version's manifest (every path and SHA-256).

    ``trusted``: its key is a trusted key of the registry and not revoked (then the version is
    ``signed``). ``bundle`` is the OpenSSF model-signing bundle (Sigstore JSON), set where it
    was downloaded (``signatures``), not in a version's ``signatures`` list.
    """

    _optional = frozenset({"bundle"})

    id: str
    key_fingerprint: str
    key_name: str | None
    trusted: bool
    revoked: bool
    manifest_sha256: str
    signed_by: str
    created_at: str
    bundle: str | None = None

    def __repr__(self) -> str:
        # The bundle is kilobytes of base64: its size says enough in a log or a traceback.
        held = f", bundle=<{len(self.bundle)} chars>" if self.bundle is not None else ""
        return (
            f"Signature(id={self.id!r}, key_fingerprint={self.key_fingerprint[:16]!r}…, "
            f"key_name={self.key_name!r}, trusted={self.trusted!r}{held})"
        )


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class TrustedKey(Result):
    """A public key whose signatures count (a registry setting, admin); revoked keys stay."""

    name: str
    fingerprint: str
    public_key: str
    added_by: str
    added_at: str
    revoked: bool
    revoked_at: str | None
    revoked_by: str | None
    revoke_reason: str | None


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class SignatureCheck(Result):
    """What ``Registry.verify`` checked: the files re-hashed, and each signature's verdict.

    ``verified`` holds the fingerprints whose signatures verified against the files; each of
    ``signatures`` is ``{id, key_fingerprint, key_name, ok, problem}``.
    """

    name: str
    version: int
    files: int
    verified: list[str]
    signatures: list[dict[str, Any]]
