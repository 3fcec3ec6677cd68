"""Stored secrets are sealed with the server's key (issue 22 §5): a database dump alone is not
enough to read them."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from modelreg.config import SECRET_KEY_FILE, Settings
from modelreg.errors import IntegrityFailure
from modelreg.services.secrets import WEBHOOK_SECRET_PREFIX, Sealer, new_webhook_secret


def test_a_sealed_secret_opens_with_its_key_only(tmp_path: Path) -> None:
    key = Settings(home=tmp_path / "a").sealing_key()
    other = Settings(home=tmp_path / "b").sealing_key()
    assert key != other
    secret = new_webhook_secret()
    sealed = Sealer(key).seal(secret)
    assert secret not in sealed
    assert Sealer(key).open(sealed) == secret
    with pytest.raises(IntegrityFailure, match="MODELREG_SECRET_KEY"):
        Sealer(other).open(sealed)


def test_the_key_file_is_made_once_and_private(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    first = settings.sealing_key()
    assert settings.sealing_key() == first
    mode = stat.S_IMODE((tmp_path / SECRET_KEY_FILE).stat().st_mode)
    assert mode == 0o600


def test_a_configured_key_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = Settings(home=tmp_path / "elsewhere").sealing_key()
    monkeypatch.setenv("MODELREG_SECRET_KEY", key)
    (tmp_path / "reg").mkdir()
    settings = Settings.for_home(tmp_path / "reg")
    assert settings.sealing_key() == key
    assert not (tmp_path / "reg" / SECRET_KEY_FILE).exists()


def test_webhook_secrets_follow_standard_webhooks() -> None:
    secret = new_webhook_secret()
    assert secret.startswith(WEBHOOK_SECRET_PREFIX)
    assert len(secret) > len(WEBHOOK_SECRET_PREFIX) + 30
    assert new_webhook_secret() != secret
