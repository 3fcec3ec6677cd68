"""Deployments (``services.deployments``), once for every door: report, list, end."""

from __future__ import annotations

from typing import Any

from modelreg.services import deployments
from modelreg.services.actor import Actor
from modelreg.services.usecases._handles import Handles, Page, page


def report(
    h: Handles, actor: Actor, deployment_id: str, spec: deployments.Report
) -> tuple[dict[str, Any], bool]:
    """A serve process's report (its first) or heartbeat: the row, and whether it is new."""
    with h.write() as session:
        row, model, created = deployments.report(session, deployment_id, spec, actor=actor)
        return deployments.to_dict(row, model.name), created


def list_deployments(
    h: Handles, actor: Actor, name: str | None, page_size: int, page_token: str | None
) -> Page:
    """Deployments the caller may see (of model ``name`` only), newest first."""
    with h.read() as session:
        found = deployments.list_deployments(
            session, actor=actor, name=name, page_size=page_size, page_token=page_token
        )
        return page([deployments.to_dict(d, m) for d, m in found], found.next_page_token)


def end(h: Handles, actor: Actor, deployment_id: str) -> dict[str, Any]:
    """Remove a deployment (its process stopped): what it was."""
    with h.write() as session:
        row, model = deployments.end(session, deployment_id, actor=actor)
        return deployments.to_dict(row, model.name)
