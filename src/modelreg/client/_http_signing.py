"""``HttpBackend``'s verbs for version signatures and trusted keys (``…/signatures``, ``/keys``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from modelreg.names import validate_model_name
from modelreg.types import Signature, TrustedKey

API = "/api/v1"


def _signatures_url(name: str, number: int) -> str:
    # Validated first, so a name can never smuggle "..", "?" or "#" into the URL.
    model = quote(validate_model_name(name), safe="/")
    return f"{API}/models/{model}/versions/{int(number)}/signatures"


class HttpSigning:
    """A mixin of ``HttpBackend``: each verb is one REST call, its answer the typed result."""

    def _obj(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError

    def _items(self, url: str, **kwargs: Any) -> list[dict[str, Any]]:  # pragma: no cover
        raise NotImplementedError

    def add_signature(
        self, name: str, number: int, bundle: str, public_key: str | None
    ) -> Signature:
        """Upload a signature; the server checks it before storing it."""
        body = {"bundle": bundle, "public_key": public_key}
        return Signature.from_dict(self._obj("POST", _signatures_url(name, number), json=body))

    def list_signatures(self, name: str, number: int) -> list[Signature]:
        """A version's signatures with their bundles."""
        return [Signature.from_dict(s) for s in self._items(_signatures_url(name, number))]

    def add_trusted_key(self, name: str, public_key: str) -> TrustedKey:
        """Trust a public key."""
        body = {"name": name, "public_key": public_key}
        return TrustedKey.from_dict(self._obj("POST", f"{API}/keys", json=body))

    def list_trusted_keys(self) -> list[TrustedKey]:
        """Every trusted key."""
        return [TrustedKey.from_dict(k) for k in self._items(f"{API}/keys")]

    def revoke_trusted_key(self, name: str, reason: str) -> TrustedKey:
        """Revoke a trusted key."""
        url = f"{API}/keys/{quote(name, safe='')}/revoke"
        return TrustedKey.from_dict(self._obj("POST", url, json={"reason": reason}))
