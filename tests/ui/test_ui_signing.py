"""The version page shows the signature state (issue 24 §6): signed or not, and each signature's
key with whether it counts (trusted, untrusted, revoked)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from ui_support import client_for

import modelreg
from modelreg.api.app import create_app
from modelreg.config import Settings

pytestmark = pytest.mark.anyio


def _pair(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    private, public = folder / "ci.pem", folder / "ci.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


async def _page(home: Path) -> str:
    app = create_app(Settings.for_home(home))
    try:
        async with client_for(app) as http:
            answer = await http.get("/models/fraud/versions/1")
            assert answer.status_code == 200
            return answer.text
    finally:
        app.state.registry.engine.dispose()


async def test_the_version_page_shows_its_signatures(tmp_path: Path, files: Path) -> None:
    home = tmp_path / "registry"
    home.mkdir()
    private, public = _pair(tmp_path)
    with modelreg.Registry(home) as reg:
        reg.register("fraud", files / "model.pkl", capture=False)
    assert "Not signed." in await _page(home)

    with modelreg.Registry(home) as reg:
        sig = reg.sign("fraud:1", key=private)
    text = await _page(home)
    assert "not signed by a trusted key" in text
    assert "untrusted key" in text
    assert sig.key_fingerprint[:16] in text

    with modelreg.Registry(home) as reg:
        reg.add_trusted_key("ci-signer", public)
    text = await _page(home)
    assert "<strong>signed</strong> by a trusted key" in text
    assert "ci-signer" in text

    with modelreg.Registry(home) as reg:
        reg.revoke_trusted_key("ci-signer", reason="rotated")
    assert "key revoked" in await _page(home)
