"""``HttpBackend``'s verbs for allowed sources (``/api/v1/sources``) and copies from them."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from modelreg.names import validate_model_name
from modelreg.types import Version

API = "/api/v1"


class HttpSources:
    """A mixin of ``HttpBackend``: each verb is one REST call."""

    def _obj(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError

    def _items(self, url: str, **kwargs: Any) -> list[dict[str, Any]]:  # pragma: no cover
        raise NotImplementedError

    def _post_retried(self, url: str, body: dict[str, Any]) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError

    def allow_source(self, uri: str) -> dict[str, Any]:
        """Allow copying from an S3 bucket or prefix (admin)."""
        return self._obj("POST", f"{API}/sources", json={"uri": uri})

    def list_sources(self) -> list[dict[str, Any]]:
        """Every allowed source (admin)."""
        return self._items(f"{API}/sources")

    def remove_source(self, uri: str) -> dict[str, Any]:
        """Stop allowing a source (admin)."""
        return self._obj("DELETE", f"{API}/sources", params={"uri": uri})

    def copy_source(self, uri: str) -> dict[str, Any]:
        """Have the server copy the objects of an allowed source into its store."""
        return self._obj("POST", f"{API}/sources/copy", json={"uri": uri})

    def register_stored(
        self, name: str, files: list[dict[str, Any]], meta: dict[str, Any]
    ) -> Version:
        """Register a version whose blobs the server holds for the caller already."""
        url = f"{API}/models/{quote(validate_model_name(name), safe='/')}/versions"
        body = {k: v for k, v in meta.items() if v is not None}
        body["lineage"] = {k: v for k, v in (meta.get("lineage") or {}).items() if v is not None}
        body.setdefault("idempotency_key", f"modelreg-client-{uuid.uuid4().hex}")
        body["files"] = [
            {"path": f["path"], "sha256": f["sha256"], "size": f["size"]} for f in files
        ]
        return Version.from_dict(self._post_retried(url, body))
