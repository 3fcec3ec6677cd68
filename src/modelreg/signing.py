"""Version signatures with OpenSSF model signing (``model-signing``, key-based): sign, check.

A signature covers a version's manifest: every path and its SHA-256. The registry already
knows both, so signing builds the library's manifest from them (no file is read or
downloaded) and signs it with an elliptic-curve private key into a Sigstore bundle (JSON),
the same bundle ``model_signing verify key`` checks against a folder holding the files.

``model_signing`` is imported inside each function: ``import modelreg`` stays light, and only
registries that sign need the ``safety`` extra.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from modelreg.errors import InvalidInput, SignatureInvalid

# A bundle holds the manifest (about 230 bytes a file once base64-encoded): some 70,000 files
# fit, and so does the server's default JSON body limit (``max_json_bytes``, 16 MiB).
MAX_BUNDLE = 16 * 1024 * 1024
MAX_PUBLIC_KEY = 16 * 1024

Manifest = dict[str, str]
"""A version's manifest: relative POSIX path → hex SHA-256."""


def _library() -> Any:
    try:
        import model_signing  # noqa: F401 (imported for its presence)
    except ImportError:  # pragma: no cover - the safety extra is part of the test environment
        raise InvalidInput(
            "signing needs the model-signing package: pip install 'modelreg[safety]'",
            detail={"missing": "model-signing"},
        ) from None


def load_public_key(pem: bytes | str) -> tuple[Any, str]:
    """A PEM public key and its fingerprint (hex SHA-256 of its canonical PEM).

    The fingerprint is the one ``model-signing`` writes into a bundle as the key's hint.
    Only the elliptic curves model signing supports (P-256, P-384, P-521) are accepted.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    data = pem.encode() if isinstance(pem, str) else pem
    if len(data) > MAX_PUBLIC_KEY:
        raise InvalidInput("a public key is at most 16 KiB of PEM", detail={})
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise InvalidInput(
            "not a PEM public key (-----BEGIN PUBLIC KEY-----)", detail={"key": "unreadable"}
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in (
        "secp256r1",
        "secp384r1",
        "secp521r1",
    ):
        raise InvalidInput(
            "model signing takes elliptic-curve keys (P-256, P-384 or P-521)",
            detail={"key": type(key).__name__},
        )
    canonical = key.public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    return key, hashlib.sha256(canonical).hexdigest()


def canonical_pem(pem: bytes | str) -> str:
    """A public key's canonical PEM text (what is stored and fingerprinted)."""
    from cryptography.hazmat.primitives import serialization

    key, _ = load_public_key(pem)
    raw: bytes = key.public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    return raw.decode()


def manifest_digest(manifest: Mapping[str, str]) -> str:
    """One SHA-256 over a manifest's sorted ``path`` and ``sha256`` pairs (to show, compare)."""
    hasher = hashlib.sha256()
    for path in sorted(manifest):
        hasher.update(f"{path}\0{manifest[path]}\n".encode())
    return hasher.hexdigest()


def _library_manifest(manifest: Mapping[str, str], label: str) -> Any:
    _library()
    from model_signing import manifest as ms_manifest
    from model_signing._hashing import hashing as ms_hashing

    serialization = ms_manifest._FileSerialization("sha256", allow_symlinks=False)
    items = [
        ms_manifest.FileManifestItem(
            path=PurePosixPath(path), digest=ms_hashing.Digest("sha256", bytes.fromhex(digest))
        )
        for path, digest in manifest.items()
    ]
    return ms_manifest.Manifest(label, items, serialization)


def sign_manifest(
    manifest: Mapping[str, str], *, label: str, private_key: Path, password: str | None = None
) -> str:
    """Sign ``manifest`` with the PEM private key at ``private_key``: the bundle's JSON text.

    ``label`` (``NAME:VERSION``) is the statement's subject name; it is informative only, as
    in ``model-signing`` (two manifests with the same files are the same, whatever the name).
    """
    payload_manifest = _library_manifest(manifest, label)
    from model_signing._signing import sign_ec_key, signing

    try:
        signer = sign_ec_key.Signer(Path(private_key), password)
    except OSError as exc:
        raise InvalidInput(
            f"cannot read the private key {private_key}: {exc.strerror}",
            detail={"key": str(private_key)},
        ) from None
    except (ValueError, TypeError) as exc:
        raise InvalidInput(
            f"not a usable private key ({private_key}): {exc}", detail={"key": str(private_key)}
        ) from None
    signature: Any = signer.sign(signing.Payload(payload_manifest))
    text: str = signature.bundle.to_json()
    return text


def _parse_bundle(text: str) -> Any:
    _library()
    from model_signing._signing import sign_sigstore_pb

    if not isinstance(text, str) or len(text) > MAX_BUNDLE:
        raise SignatureInvalid("a signature bundle is JSON text of at most 16 MiB", detail={})
    try:
        parsed = json.loads(text)
        material = parsed["verificationMaterial"]
        material.setdefault("tlogEntries", [])
        from sigstore_models.bundle import v1 as bundle_pb

        return sign_sigstore_pb.Signature(bundle_pb.Bundle.from_dict(parsed))
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise SignatureInvalid(
            f"not a model-signing bundle: {str(exc)[:200]}", detail={"bundle": "unreadable"}
        ) from None


def bundle_key_hint(text: str) -> str:
    """The fingerprint of the key a bundle says signed it ('' when it names none)."""
    bundle = _parse_bundle(text).bundle
    key = bundle.verification_material.public_key
    hint = getattr(key, "hint", None) if key is not None else None
    return str(hint or "")


def verify_bundle(text: str, public_key_pem: bytes | str) -> Manifest:
    """Check the bundle's signature with the public key: the manifest it signs.

    Raises ``SignatureInvalid`` when the bundle does not parse, names another key, or its
    signature does not verify with this key.
    """
    signature = _parse_bundle(text)
    key, fingerprint = load_public_key(public_key_pem)
    from model_signing._signing import sign_ec_key

    class _KeyVerifier(sign_ec_key.Verifier):
        # The library reads the key from a file; the registry holds it as text.
        def __init__(self, public_key: Any) -> None:
            self._public_key = public_key

    hint = bundle_key_hint(text)
    if hint and hint != fingerprint:
        raise SignatureInvalid(
            f"the bundle was signed by key {hint[:16]}…, not by {fingerprint[:16]}…",
            detail={"signed_by_key": hint, "key": fingerprint},
        )
    try:
        signed = _KeyVerifier(key).verify(signature)
    except Exception as exc:
        message = str(exc) or type(exc).__name__
        raise SignatureInvalid(
            f"the signature does not verify with key {fingerprint[:16]}…: {message[:200]}",
            detail={"key": fingerprint},
        ) from None
    return {rd.identifier: rd.digest.digest_hex for rd in signed.resource_descriptors()}


def check_manifest(signed: Mapping[str, str], expected: Mapping[str, str], *, what: str) -> None:
    """Raise ``SignatureInvalid`` naming each path where ``signed`` and ``expected`` differ."""
    problems = []
    for path in sorted(set(signed) | set(expected)):
        if path not in expected:
            problems.append(f"{path}: signed but not in {what}")
        elif path not in signed:
            problems.append(f"{path}: in {what} but not signed")
        elif signed[path] != expected[path]:
            problems.append(
                f"{path}: signed sha256 {signed[path][:12]}…, {what} has {expected[path][:12]}…"
            )
    if problems:
        more = f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        shown = "; ".join(problems[:5]) + more
        raise SignatureInvalid(
            f"the signed manifest does not match {what}: {shown}",
            detail={"differences": problems[:100]},
        )


def hash_folder(folder: Path, *, only: Iterable[str] | None = None) -> Manifest:
    """Every file under ``folder`` (or only the relative paths ``only``), hashed afresh.

    ``model-signing`` does the hashing: its manifest, path → SHA-256.
    """
    _library()
    from model_signing import hashing as ms_hashing

    config = ms_hashing.Config().use_file_serialization(  # type: ignore[no-untyped-call]
        hashing_algorithm="sha256", allow_symlinks=False
    )
    chosen = None if only is None else [folder / p for p in only]
    try:
        found = config.hash(folder, files_to_hash=chosen)
    except (OSError, ValueError) as exc:
        raise SignatureInvalid(
            f"cannot hash the files in {folder}: {exc}", detail={"folder": str(folder)}
        ) from None
    return {rd.identifier: rd.digest.digest_hex for rd in found.resource_descriptors()}


def bundle_payload(text: str) -> dict[str, Any]:
    """The bundle's in-toto statement, unverified (to show what it claims)."""
    bundle = _parse_bundle(text).bundle
    statement: dict[str, Any] = json.loads(base64.b64decode(bundle.dsse_envelope.payload))
    return statement


def manifest_of(files: Iterable[Mapping[str, Any]]) -> Manifest:
    """A version's ``files`` (``{path, sha256, …}``) as a manifest."""
    return {str(f["path"]): str(f["sha256"]) for f in files}
