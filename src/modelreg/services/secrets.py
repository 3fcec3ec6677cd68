"""Secrets the registry must send but must not keep readable: webhook signing secrets.

They are stored encrypted (Fernet: AES-128-CBC with HMAC-SHA256) under the server's key
(``Settings.sealing_key``: ``MODELREG_SECRET_KEY``, or the registry folder's ``secret.key``), so
a dump of the database alone reveals none of them. A secret is shown once, when it is made.
"""

from __future__ import annotations

import base64
import secrets

from cryptography.fernet import Fernet, InvalidToken

from modelreg.errors import IntegrityFailure

WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 (Standard Webhooks' marker, not a secret)


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and base64 of 24 random bytes."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


class Sealer:
    """Encrypts and decrypts stored secrets with one key."""

    def __init__(self, key: str) -> None:
        self._fernet = Fernet(key.encode())

    def seal(self, secret: str) -> str:
        """``secret`` encrypted, as text for a column."""
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        """The secret ``sealed`` holds.

        Raises:
            IntegrityFailure: it was sealed with another key (the server's key changed).
        """
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise IntegrityFailure(
                "a stored secret cannot be decrypted with this server's key: servers sharing a "
                "database must share MODELREG_SECRET_KEY (or the registry's secret.key)",
                detail={},
            ) from None
