"""Signing (issue 24 §4, §5 signing cases, §6): sign a version's manifest, verify it by
re-hashing its files, trusted and revoked keys, ``signed`` in search and as a policy gate.

Through both backends: tampering with a stored blob or with the registry's manifest or the
stored bundle is caught by ``verify``; a forged or mismatched upload is refused by the server
and changes nothing; an untrusted key's signature is stored but does not make the version
``signed``; a revoked key's signatures stop counting and it signs nothing more.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select, update

import modelreg
from modelreg import errors, signing
from modelreg.cli.main import main
from modelreg.config import Settings
from modelreg.db.session import make_engine, transaction
from modelreg.db.tables import AuditEvent, VersionFile, VersionSignature
from signing_keys import make_key


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, tuple[Path, Path]]:
    folder = tmp_path / "keys"
    folder.mkdir()
    return {name: make_key(folder, name) for name in ("ci", "other")}


def run_sql(home: Path, statement: object) -> None:
    engine = make_engine(Settings.for_home(home).db_url)
    try:
        with transaction(engine, write=True) as session:
            session.execute(statement)  # type: ignore[call-overload]
    finally:
        engine.dispose()


def counts(home: Path) -> tuple[int, int]:
    """(signatures, audit events): "nothing changed" is these, unchanged."""
    engine = make_engine(Settings.for_home(home).db_url)
    try:
        with transaction(engine, write=False) as session:
            return (
                session.scalar(select(func.count()).select_from(VersionSignature)) or 0,
                session.scalar(select(func.count()).select_from(AuditEvent)) or 0,
            )
    finally:
        engine.dispose()


def blob_path(home: Path, digest: str) -> Path:
    return home / "blobs" / "sha256" / digest[:2] / digest[2:4] / digest


# -- sign, trust, verify -----------------------------------------------------------------------


def test_sign_then_trust_then_verify(reg: modelreg.Registry, files: Path, keys: dict) -> None:
    private, public = keys["ci"]
    v = reg.register("fraud", files, capture=False)
    assert (v.signed, v.signatures) == (False, [])

    sig = reg.sign("fraud:1", key=private)
    assert (sig.trusted, sig.key_name) == (False, None)
    assert sig.manifest_sha256 == signing.manifest_digest({f.path: f.sha256 for f in v.files})
    # Stored, but an untrusted key does not make the version signed.
    assert reg.get_version("fraud:1").signed is False

    key = reg.add_trusted_key("ci", public)
    assert key.fingerprint == sig.key_fingerprint
    got = reg.get_version("fraud:1")
    assert got.signed is True
    assert [(s["key_name"], s["trusted"]) for s in got.signatures] == [("ci", True)]
    assert "bundle" not in got.signatures[0]

    check = reg.verify("fraud:1")
    assert check.verified == [key.fingerprint]
    assert check.files == 3
    # The stored bundle is model-signing's own: its CLI-level API checks a folder with it.
    (stored,) = reg.signatures("fraud:1")
    assert stored.bundle is not None
    assert json.loads(stored.bundle)["mediaType"].startswith("application/vnd.dev.sigstore")

    assert [x.ref for x in reg.search("signed = true")] == ["fraud:1"]
    assert list(reg.search("signed = false")) == []
    actions = [e.action for e in reg.audit(limit=100)]
    assert "registry:signature:sign" in actions
    assert "registry:key:add" in actions


def test_verify_with_a_given_key_and_files_on_disk(
    reg: modelreg.Registry, files: Path, keys: dict, tmp_path: Path
) -> None:
    private, public = keys["other"]
    reg.register("fraud", files, capture=False)
    reg.sign("fraud:1", key=private)
    # Not trusted by the registry: verify against the trusted keys finds none.
    with pytest.raises(errors.SignatureInvalid, match="not a trusted key"):
        reg.verify("fraud:1")
    assert reg.verify("fraud:1", key=public).verified
    # With --files, what is on disk is checked: a changed file is caught.
    out = tmp_path / "deployed"
    reg.download("fraud:1", out)
    assert reg.verify("fraud:1", key=public, files=out).files == 3
    (out / "model.pkl").write_bytes(b"patched")
    with pytest.raises(errors.SignatureInvalid, match=r"model\.pkl"):
        reg.verify("fraud:1", key=public, files=out)
    (out / "model.pkl").unlink()
    (out / "extra.py").write_text("import os")
    with pytest.raises(errors.SignatureInvalid, match=r"extra\.py: in the files but not signed"):
        reg.verify("fraud:1", key=public, files=out)


def test_a_version_without_signatures_does_not_verify(reg: modelreg.Registry, files: Path) -> None:
    reg.register("fraud", files, capture=False)
    with pytest.raises(errors.SignatureInvalid, match="has no signature"):
        reg.verify("fraud:1")


# -- revoked keys ----------------------------------------------------------------------------


def test_a_revoked_key_stops_counting_and_signs_nothing_more(
    reg: modelreg.Registry, files: Path, keys: dict
) -> None:
    private, public = keys["ci"]
    reg.register("fraud", files, capture=False)
    reg.register("fraud", files / "model_dir", capture=False)
    reg.add_trusted_key("ci", public)
    reg.sign("fraud:1", key=private)
    assert reg.get_version("fraud:1").signed

    key = reg.revoke_trusted_key("ci", reason="laptop stolen")
    assert (key.revoked, key.revoke_reason) == (True, "laptop stolen")
    v = reg.get_version("fraud:1")
    assert v.signed is False
    assert v.signatures[0]["revoked"] is True
    assert list(reg.search("signed = true")) == []
    with pytest.raises(errors.SignatureInvalid, match="revoked"):
        reg.verify("fraud:1")
    with pytest.raises(errors.SignatureInvalid, match="revoked"):
        reg.verify("fraud:1", key=public)  # the registry knows better than the caller's file
    with pytest.raises(errors.SignatureInvalid, match="revoked"):
        reg.sign("fraud:2", key=private)
    with pytest.raises(errors.Conflict):
        reg.revoke_trusted_key("ci", reason="again")
    with pytest.raises(errors.AlreadyExists):
        reg.add_trusted_key("ci-again", public)  # a revoked key is not trusted back by a rename


# -- tampering ---------------------------------------------------------------------------------


def test_a_blob_tampered_on_disk_fails_verify(
    reg: modelreg.Registry, home: Path, files: Path, keys: dict
) -> None:
    private, public = keys["ci"]
    v = reg.register("fraud", files, capture=False)
    reg.add_trusted_key("ci", public)
    reg.sign("fraud:1", key=private)
    target = next(f for f in v.files if f.path == "model.pkl")
    path = blob_path(home, target.sha256)
    path.chmod(0o644)
    path.write_bytes(b"pickle-bytes" * 99 + b"evil-bytes!!")
    with pytest.raises(errors.SignatureInvalid, match=r"not the signed ones"):
        reg.verify("fraud:1")


def test_a_tampered_manifest_fails_verify(
    reg: modelreg.Registry, home: Path, files: Path, keys: dict
) -> None:
    private, public = keys["ci"]
    v = reg.register("fraud", files, capture=False)
    other = reg.register("other", files / "model_dir" / "weights.bin", capture=False)
    reg.add_trusted_key("ci", public)
    reg.sign("fraud:1", key=private)
    # Someone with the database points fraud:1's model.pkl at another (real, stored) blob.
    run_sql(
        home,
        update(VersionFile)
        .where(VersionFile.path == "model.pkl", VersionFile.sha256 == v.files[0].sha256)
        .values(sha256=other.files[0].sha256, size=other.files[0].size),
    )
    with pytest.raises(errors.SignatureInvalid, match=r"model\.pkl: signed sha256"):
        reg.verify("fraud:1")


def test_a_tampered_bundle_fails_verify(
    reg: modelreg.Registry, home: Path, files: Path, keys: dict
) -> None:
    private, public = keys["ci"]
    reg.register("fraud", files, capture=False)
    reg.add_trusted_key("ci", public)
    sig = reg.sign("fraud:1", key=private)
    bundle = json.loads(sig.bundle or "")
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["predicate"]["resources"][0]["digest"] = "0" * 64
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    run_sql(home, update(VersionSignature).values(bundle=json.dumps(bundle)))
    with pytest.raises(errors.SignatureInvalid, match="does not verify"):
        reg.verify("fraud:1")


# -- forged uploads are refused, and change nothing ------------------------------------------


def _bundle_for(manifest: dict[str, str], private: Path) -> str:
    return signing.sign_manifest(manifest, label="fraud:1", private_key=private)


def test_forged_uploads_are_refused(
    reg: modelreg.Registry, home: Path, files: Path, keys: dict
) -> None:
    private, public = keys["ci"]
    other_private, other_public = keys["other"]
    v = reg.register("fraud", files, capture=False)
    manifest = {f.path: f.sha256 for f in v.files}
    before = counts(home)
    cases = [
        # Other files than the version's: one digest changed, one file left out, one added.
        (_bundle_for({**manifest, "model.pkl": "1" * 64}, private), public.read_text()),
        (_bundle_for(dict(list(manifest.items())[1:]), private), public.read_text()),
        (_bundle_for({**manifest, "x.py": "2" * 64}, private), public.read_text()),
        # Signed by one key, presented with another.
        (_bundle_for(manifest, private), other_public.read_text()),
        # A bundle naming a key the registry does not trust, without its public key.
        (_bundle_for(manifest, other_private), None),
        # Not a bundle at all.
        ('{"mediaType": "x"}', public.read_text()),
        ("not json", public.read_text()),
        ("[" * 100_000 + "]" * 100_000, public.read_text()),
    ]
    for bundle, pem in cases:
        with pytest.raises(errors.SignatureInvalid):
            reg.backend.add_signature("fraud", 1, bundle, pem)
    assert counts(home) == before


@pytest.mark.parametrize(
    "pem",
    [
        "not a key",
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode(),
    ],
    ids=["garbage", "rsa"],
)
def test_bad_public_keys_are_refused(
    reg: modelreg.Registry, home: Path, tmp_path: Path, pem: str
) -> None:
    path = tmp_path / "bad.pub"
    path.write_text(pem)
    before = counts(home)
    with pytest.raises(errors.InvalidInput):
        reg.add_trusted_key("bad", path)
    assert counts(home) == before


def test_signatures_are_immutable(reg: modelreg.Registry, files: Path, keys: dict) -> None:
    private, public = keys["ci"]
    reg.register("fraud", files, capture=False)
    first = reg.sign("fraud:1", key=private)
    with pytest.raises(errors.AlreadyExists):
        reg.sign("fraud:1", key=private)  # a new signature by the same key: refused
    # Sending the very same bundle again (a retry) answers the stored one.
    again = reg.backend.add_signature("fraud", 1, first.bundle or "", public.read_text())
    assert again.id == first.id


def test_key_names_and_unknown_keys(reg: modelreg.Registry, keys: dict) -> None:
    _, public = keys["ci"]
    reg.add_trusted_key("ci", public)
    with pytest.raises(errors.AlreadyExists):
        reg.add_trusted_key("ci", keys["other"][1])
    with pytest.raises(errors.InvalidName):
        reg.add_trusted_key("bad name!", keys["other"][1])
    with pytest.raises(errors.NotFound):
        reg.revoke_trusted_key("nobody", reason="x")
    with pytest.raises(errors.InvalidInput):
        reg.revoke_trusted_key("ci", reason="")
    assert [k.name for k in reg.trusted_keys()] == ["ci"]


# -- the policy gate -------------------------------------------------------------------------


def test_signed_is_a_policy_gate(reg: modelreg.Registry, files: Path, keys: dict) -> None:
    private, public = keys["ci"]
    reg.register("fraud", files, capture=False)
    reg.set_policy_rule("fraud", "production", requires=["signed = true"])
    with pytest.raises(errors.PolicyViolation) as refused:
        reg.promote("fraud", 1, "production")
    assert refused.value.failed_criteria[0]["actual"] == {"signed": False}
    reg.add_trusted_key("ci", public)
    reg.sign("fraud:1", key=private)
    assert reg.promote("fraud", 1, "production").state == "applied"


def test_signed_compares_only_with_booleans(reg: modelreg.Registry) -> None:
    with pytest.raises(errors.InvalidQuery):
        list(reg.search("signed = 'yes'"))
    with pytest.raises(errors.InvalidQuery):
        list(reg.search("signed > true"))


# -- the CLI ---------------------------------------------------------------------------------


def test_cli_sign_verify_keys_and_show(
    home: Path, files: Path, keys: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    private, public = keys["ci"]
    with modelreg.Registry(home) as reg:
        reg.register("fraud", files, capture=False)
    base = ["--registry", str(home)]
    assert main([*base, "verify", "fraud:1"]) == 1
    assert main([*base, "sign", "fraud:1", "--key", str(private)]) == 0
    assert main([*base, "keys", "add", "ci", str(public)]) == 0
    capsys.readouterr()
    assert main([*base, "show", "fraud:1"]) == 0
    assert "signature: signed; ci" in capsys.readouterr().out
    assert main([*base, "verify", "fraud:1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verified"]
    assert main([*base, "keys", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["items"][0]["name"] == "ci"
    assert main([*base, "keys", "revoke", "nobody", "--reason", "x"]) == 2
    assert main([*base, "keys", "revoke", "ci", "--reason", "rotated"]) == 0
    assert main([*base, "verify", "fraud:1"]) == 1
    assert main([*base, "sign", "fraud:1", "--key", str(public)]) == 1  # not a private key


# -- who may sign and trust --------------------------------------------------------------------


def test_who_may_sign_and_trust_keys(home: Path, files: Path, keys: dict, tmp_path: Path) -> None:
    """Admins trust and revoke keys; contributors sign; viewers read keys and verify only."""
    from registry_folders import LiveServer

    private, public = keys["ci"]
    with modelreg.Registry(home) as folder:
        folder.register("fraud", files, capture=False)
        folder.create_user("root", role="admin")
        folder.create_user("mia", role="admin", model="fraud")
        folder.create_user("ann", role="contributor")
        folder.create_user("vic", role="viewer")
        tokens = {n: str(folder.create_token(n).token) for n in ("root", "mia", "ann", "vic")}
    with LiveServer(home) as server:
        as_ = {n: modelreg.Registry(server.url, token=t) for n, t in tokens.items()}
        try:
            before = counts(home)
            for name in ("mia", "ann", "vic"):  # a model's admin is no registry admin
                with pytest.raises(errors.PermissionDenied):
                    as_[name].add_trusted_key("ci", public)
            with pytest.raises(errors.PermissionDenied):
                as_["vic"].sign("fraud:1", key=private)
            with modelreg.Registry(server.url) as nobody, pytest.raises(errors.Unauthenticated):
                nobody.trusted_keys()
            assert counts(home) == before

            as_["root"].add_trusted_key("ci", public)
            assert [k.name for k in as_["vic"].trusted_keys()] == ["ci"]
            assert as_["ann"].sign("fraud:1", key=private).signed_by == "ann"
            assert as_["vic"].verify("fraud:1").verified
            with pytest.raises(errors.PermissionDenied):
                as_["mia"].revoke_trusted_key("ci", reason="not mine to revoke")
            assert as_["root"].revoke_trusted_key("ci", reason="rotated").revoked_by == "root"
        finally:
            for reg in as_.values():
                reg.close()


def test_deleting_a_signed_version_takes_its_signatures(
    reg: modelreg.Registry, home: Path, files: Path, keys: dict
) -> None:
    private, public = keys["ci"]
    reg.register("fraud", files, capture=False)
    reg.register("fraud", files, capture=False)
    reg.add_trusted_key("ci", public)
    reg.sign("fraud:1", key=private)
    reg.sign("fraud:2", key=private)
    reg.delete("fraud:1", reason="superseded")
    assert counts(home)[0] == 1
    assert [v.ref for v in reg.search("signed = true")] == ["fraud:2"]


def test_sign_checks_the_files_you_hold_when_given(
    reg: modelreg.Registry, home: Path, files: Path, keys: dict, tmp_path: Path
) -> None:
    private, _ = keys["ci"]
    reg.register("fraud", files, capture=False)
    held = tmp_path / "built"
    reg.download("fraud:1", held)
    (held / "model.pkl").write_bytes(b"not what was registered")
    before = counts(home)
    with pytest.raises(errors.SignatureInvalid, match=r"model\.pkl"):
        reg.sign("fraud:1", key=private, files=held)
    assert counts(home) == before
    assert reg.sign("fraud:1", key=private, files=files).key_fingerprint


# -- load(require_signature=True) ------------------------------------------------------------


def test_load_with_require_signature_verifies_before_loading(
    reg: modelreg.Registry, home: Path, keys: dict
) -> None:
    """Nothing is loaded unless the fetched files match a trusted key's signature."""
    from sklearn.linear_model import LogisticRegression

    private, public = keys["ci"]
    model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    v = reg.register("churn", model=model)
    assert reg.load("churn:1") is not None  # unsigned: loads without the requirement
    with pytest.raises(errors.SignatureInvalid, match="has no signature"):
        reg.load("churn:1", require_signature=True)
    reg.sign("churn:1", key=private)
    with pytest.raises(errors.SignatureInvalid, match="not a trusted key"):
        reg.load("churn:1", require_signature=True)
    reg.add_trusted_key("ci", public)
    loaded = reg.load("churn:1", require_signature=True)
    assert list(loaded.predict([[0.0], [3.0]])) == [0, 1]
    assert modelreg.load("churn:1", registry=reg, require_signature=True) is not None

    # The cached copy is what gets loaded (the cache does not hash it again): a byte changed
    # in it is caught before loading.
    cached = reg.local_files(v)
    target = next(
        p for p in cached.rglob("*") if p.is_file() and p.name in {f.path for f in v.files}
    )
    target.chmod(0o644)
    data = target.read_bytes()  # same size: the cache takes it as complete
    target.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(errors.SignatureInvalid):
        reg.load("churn:1", require_signature=True)
    reg.revoke_trusted_key("ci", reason="rotated")
