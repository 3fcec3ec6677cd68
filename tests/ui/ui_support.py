"""Helpers for the web UI's tests: in-process clients, forms with their CSRF token, snapshots."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

import modelreg
from modelreg.db.base import Base

ORIGIN = "http://127.0.0.1:8080"
PEER = ("127.0.0.1", 5000)

_CSRF = re.compile(r'name="csrf" value="([^"]*)"')
_ERROR = re.compile(r'<meta name="modelreg-error" content="([^"]*)">')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = _CSRF.search(html)
    assert match, "the page has no form with a CSRF token"
    return match[1]


def error_code(response: httpx.Response) -> str:
    """The error code an error page names (``<meta name="modelreg-error">``)."""
    match = _ERROR.search(response.text)
    return match[1] if match else ""


def snapshot(app: FastAPI) -> dict[str, list[str]]:
    """Every row of every table except sessions: "nothing changed" is this, unchanged."""
    with app.state.registry.read() as session:
        return {
            table.name: sorted(repr(tuple(row)) for row in session.execute(select(table)))
            for table in Base.metadata.sorted_tables
            if table.name != "web_sessions"
        }


def client_for(app: FastAPI, *, base_url: str = ORIGIN) -> httpx.AsyncClient:
    """An in-process client from a loopback peer, under a loopback name."""
    transport = httpx.ASGITransport(app=app, client=PEER)
    return httpx.AsyncClient(transport=transport, base_url=base_url)


async def post_form(
    client: httpx.AsyncClient, page: str, action: str, data: dict[str, Any]
) -> httpx.Response:
    """GET ``page``, then POST ``data`` to ``action`` with the page's CSRF token."""
    shown = await client.get(page)
    assert shown.status_code == 200, shown.text
    return await client.post(action, data={**data, "csrf": csrf_of(shown.text)})


async def sign_in(client: httpx.AsyncClient, token: str) -> httpx.Response:
    """Sign ``client`` in with ``token`` through the form, as a browser does."""
    return await post_form(client, "/login", "/login", {"token": token, "next": "/"})


@dataclass
class World:
    """A registry with users, tokens, a gated model and its app."""

    home: Path
    app: FastAPI
    tokens: dict[str, str] = field(default_factory=dict)

    def registry(self) -> modelreg.Registry:
        """The embedded registry on the same folder (acts as its owner)."""
        return modelreg.Registry(self.home)
