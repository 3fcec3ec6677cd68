"""``Registry``'s verbs for version signatures and trusted keys (a mixin of ``Registry``)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelreg.errors import IntegrityFailure, InvalidInput, SignatureInvalid

if TYPE_CHECKING:
    from modelreg.client._backend import Backend
    from modelreg.types import Signature, SignatureCheck, TrustedKey, Version

Pathish = str | os.PathLike[str]


def _read_key(path: Pathish, what: str) -> str:
    try:
        return Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not a PEM file"
        raise InvalidInput(
            f"cannot read the {what} {path}: {reason}", detail={"key": str(path)}
        ) from None


def _public_pem_of(private_key: Pathish, password: str | None) -> str:
    """The PEM public key of a PEM private key file (sent so the server can check the bundle)."""
    from cryptography.hazmat.primitives import serialization

    data = _read_key(private_key, "private key").encode()
    try:
        key = serialization.load_pem_private_key(data, password.encode() if password else None)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(
            f"not a usable private key ({private_key}): {exc}", detail={"key": str(private_key)}
        ) from None
    raw: bytes = key.public_key().public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    return raw.decode()


class Signing:
    """Sign versions with a private key, verify them, and manage the registry's trusted keys."""

    @property
    def backend(self) -> Backend:  # pragma: no cover - ``Registry`` defines it
        raise NotImplementedError

    def sign(
        self,
        ref: str,
        *,
        key: Pathish,
        password: str | None = None,
        files: Pathish | None = None,
    ) -> Signature:
        """Sign version ``ref``'s manifest (every path and SHA-256) and store the signature.

        The manifest comes from the registry, so no file is downloaded: the signature says
        "these exact bytes, under these paths", and ``verify`` re-hashes the files to check it.
        ``key`` is a PEM elliptic-curve private key (``openssl ecparam -name prime256v1
        -genkey``); the version counts as ``signed`` once its public key is a trusted key.
        With ``files`` (the folder the version was registered from, e.g. in the CI job that
        built it), those files are hashed first and must be exactly the registry's manifest:
        then the signature vouches for what you hold, not only for what the registry says.

        Raises:
            SignatureInvalid: the server found the signature does not verify (it stores none).
            AlreadyExists: this key already signed the version.
        """
        from modelreg import signing

        version = self.backend.get_version(ref)
        public_pem = _public_pem_of(key, password)
        manifest = signing.manifest_of(_file(f) for f in version.files)
        if files is not None:
            held = signing.hash_folder(Path(files))
            signing.check_manifest(manifest, held, what=f"the files in {files}")
        bundle = signing.sign_manifest(
            manifest,
            label=version.ref,
            private_key=Path(key),
            password=password,
        )
        return self.backend.add_signature(version.name, version.version, bundle, public_pem)

    def signatures(self, ref: str) -> list[Signature]:
        """A version's stored signatures, each with its bundle (``.bundle``)."""
        version = self.backend.get_version(ref)
        return self.backend.list_signatures(version.name, version.version)

    def verify(
        self, ref: str, *, key: Pathish | None = None, files: Pathish | None = None
    ) -> SignatureCheck:
        """Check version ``ref``'s signatures against its files, re-hashed here.

        The files are downloaded (verified against the registry's manifest) into a temporary
        folder, or, with ``files``, read from that folder (e.g. what is about to be deployed).
        A signature counts when it is by ``key`` (a PEM public key file), or without ``key``
        by a trusted, unrevoked key of the registry, and its signed manifest is exactly the
        files: same paths, same SHA-256, nothing more, nothing less.

        Raises:
            SignatureInvalid: no signature counts; the message says why for each.
        """
        version = self.backend.get_version(ref)
        keys = self._verifying_keys(key)
        sigs = self.backend.list_signatures(version.name, version.version)
        if not sigs:
            raise SignatureInvalid(f"{version.ref} has no signature", detail={"ref": version.ref})
        if files is not None:
            return _check(version, sigs, keys, Path(files))
        with tempfile.TemporaryDirectory(prefix="modelreg-verify-") as tmp:
            try:
                self.backend.download(version.ref, Path(tmp), None)
            except IntegrityFailure as exc:
                raise SignatureInvalid(
                    f"{version.ref}: the stored files are not the signed ones: {exc.message}",
                    detail=exc.detail,
                ) from None
            return _check(version, sigs, keys, Path(tmp))

    def _verify_loaded(self, version: Version, folder: Path) -> SignatureCheck:
        """Check the files ``load`` is about to read against a trusted key's signature.

        The model cache's folder holds a marker of its own beside them: only the manifest's
        paths are hashed.
        """
        sigs = self.backend.list_signatures(version.name, version.version)
        if not sigs:
            raise SignatureInvalid(
                f"{version.ref} has no signature, and one was required",
                detail={"ref": version.ref},
            )
        return _check(version, sigs, self._verifying_keys(None), folder, exact=False)

    def _verifying_keys(self, key: Pathish | None) -> dict[str, tuple[str, str | None]]:
        """Fingerprint → (PEM, trusted key name) of the keys whose signatures count."""
        from modelreg import signing

        trusted = self.backend.list_trusted_keys()
        if key is None:
            return {k.fingerprint: (k.public_key, k.name) for k in trusted if not k.revoked}
        pem = _read_key(key, "public key")
        _, fingerprint = signing.load_public_key(pem)
        revoked = next((k for k in trusted if k.fingerprint == fingerprint and k.revoked), None)
        if revoked is not None:
            # The registry knows this key is compromised or retired: it vouches for nothing.
            raise SignatureInvalid(
                f"key {revoked.name} was revoked on {revoked.revoked_at} by "
                f"{revoked.revoked_by}: {revoked.revoke_reason}",
                detail={"key": fingerprint, "name": revoked.name},
            )
        return {fingerprint: (pem, None)}

    def add_trusted_key(self, name: str, public_key: Pathish) -> TrustedKey:
        """Trust the PEM public key in file ``public_key`` as ``name`` (admin; audited)."""
        return self.backend.add_trusted_key(name, _read_key(public_key, "public key"))

    def trusted_keys(self) -> list[TrustedKey]:
        """Every trusted key, revoked ones included (with who revoked them and why)."""
        return self.backend.list_trusted_keys()

    def revoke_trusted_key(self, name: str, *, reason: str) -> TrustedKey:
        """Revoke a trusted key (admin; audited): its signatures stop counting, for good."""
        return self.backend.revoke_trusted_key(name, reason)


def _file(f: Any) -> dict[str, Any]:
    return {"path": f.path, "sha256": f.sha256}


def _check(
    version: Version,
    sigs: list[Signature],
    keys: dict[str, tuple[str, str | None]],
    folder: Path,
    *,
    exact: bool = True,
) -> SignatureCheck:
    from modelreg import signing
    from modelreg.types import SignatureCheck

    given = any(name is None for _, name in keys.values())
    expected = signing.manifest_of(_file(f) for f in version.files)
    on_disk = signing.hash_folder(folder, only=None if exact else list(expected))
    verdicts: list[dict[str, Any]] = []
    for sig in sigs:
        verdict: dict[str, Any] = {
            "id": sig.id,
            "key_fingerprint": sig.key_fingerprint,
            "key_name": sig.key_name,
            "ok": False,
            "problem": "",
        }
        verdicts.append(verdict)
        if sig.key_fingerprint not in keys:
            verdict["problem"] = (
                "not the given key"
                if given
                else f"key revoked ({sig.key_name})"
                if sig.revoked
                else "not a trusted key"
            )
            continue
        try:
            signed = signing.verify_bundle(sig.bundle or "", keys[sig.key_fingerprint][0])
            signing.check_manifest(signed, expected, what=f"the manifest of {version.ref}")
            signing.check_manifest(signed, on_disk, what="the files")
        except SignatureInvalid as exc:
            verdict["problem"] = exc.message
            continue
        verdict["ok"] = True
    verified = [v["key_fingerprint"] for v in verdicts if v["ok"]]
    if not verified:
        shown = "; ".join(
            f"{v['key_name'] or v['key_fingerprint'][:16]}: {v['problem']}" for v in verdicts
        )
        raise SignatureInvalid(
            f"{version.ref}: no signature verifies ({shown})",
            detail={"signatures": verdicts},
        )
    return SignatureCheck(
        name=version.name,
        version=version.version,
        files=len(on_disk),
        verified=verified,
        signatures=verdicts,
    )
