"""``HttpBackend``'s verbs for deployments (``/api/v1/deployments``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from modelreg.types import Deployment, Page

API = "/api/v1"


class HttpDeployments:
    """A mixin of ``HttpBackend``: each verb is one REST call, its answer the typed result.

    Ids come checked by ``client._deployments.parse_deployment_id`` (a UUID's text), so
    nothing else reaches the URL.
    """

    def _obj(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError

    def report_deployment(self, deployment_id: str, fields: dict[str, Any]) -> Deployment:
        """``PUT /deployments/{id}``: create (201) or refresh (200)."""
        body = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in fields.items()}
        url = f"{API}/deployments/{deployment_id}"
        return Deployment.from_dict(self._obj("PUT", url, json=body))

    def list_deployments(
        self, name: str | None, page_size: int, page_token: str | None
    ) -> Page[Deployment]:
        """One page of deployments, newest first."""
        params: dict[str, Any] = {"page_size": page_size}
        if name is not None:
            params["model"] = name
        if page_token is not None:
            params["page_token"] = page_token
        data = self._obj("GET", f"{API}/deployments", params=params)
        return Page.from_dict(data, Deployment.from_dict)

    def end_deployment(self, deployment_id: str) -> Deployment:
        """``DELETE /deployments/{id}``."""
        return Deployment.from_dict(self._obj("DELETE", f"{API}/deployments/{deployment_id}"))
