"""Two teams on one real server: the world the issue 18 cross-team tests attack.

Team alpha (``ann``) and team beta (``bob``) each contribute to their own model; ``cy``
contributes to alpha and may read beta; ``vic`` only reads beta; ``root`` is a registry-wide
admin. Built on SQLite or PostgreSQL, served by uvicorn on loopback.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

import modelreg
from server_process import ThreadedServer

API = "/api/v1"
# name -> [(role, model or None for registry-wide), …]
PEOPLE: dict[str, list[tuple[str, str | None]]] = {
    "root": [("admin", None)],
    "ann": [("contributor", "alpha")],
    "bob": [("contributor", "beta")],
    "cy": [("contributor", "alpha"), ("viewer", "beta")],
    "vic": [("viewer", "beta")],
}


def sha(data: bytes) -> str:
    """The hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


@dataclass
class Teams:
    """The running server, its folder and one HTTP client per person."""

    url: str
    home: Path
    tokens: dict[str, str]
    clients: dict[str, httpx.Client] = field(default_factory=dict)

    def __getitem__(self, who: str) -> httpx.Client:
        """An HTTP client acting as ``who`` with a bearer token."""
        if who not in self.clients:
            self.clients[who] = httpx.Client(
                base_url=self.url,
                headers={"authorization": f"Bearer {self.tokens[who]}"},
                timeout=120,
            )
        return self.clients[who]

    def upload(self, who: str, data: bytes) -> httpx.Response:
        """``PUT /blobs/sha256:…`` of ``data`` as ``who``."""
        return self[who].put(
            f"{API}/blobs/sha256:{sha(data)}",
            content=data,
            headers={"content-type": "application/octet-stream"},
        )

    def register(
        self, who: str, model: str, files: dict[str, bytes], **body: Any
    ) -> httpx.Response:
        """``POST /models/MODEL/versions`` naming ``files`` by digest (no bytes sent)."""
        manifest = [{"path": p, "sha256": sha(d), "size": len(d)} for p, d in files.items()]
        return self[who].post(f"{API}/models/{model}/versions", json={"files": manifest, **body})

    def publish(self, who: str, model: str, files: dict[str, bytes]) -> dict[str, Any]:
        """Upload ``files`` and register them as a new version, as the client does."""
        for data in files.values():
            assert self.upload(who, data).status_code == 200
        response = self.register(who, model, files)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    def copies(self, data: bytes) -> int:
        """How many files in the blob store hold ``data`` (dedup: at most one)."""
        return sum(1 for p in (self.home / "blobs").rglob(sha(data) + "*") if p.is_file())

    def versions(self, model: str) -> list[int]:
        """The numbers of ``model``'s versions (as the admin sees them)."""
        page = self["root"].get(f"{API}/models/{model}/versions").json()
        return sorted(v["version"] for v in page["items"])


@contextmanager
def two_teams(home: Path) -> Iterator[Teams]:
    """Models alpha and beta (one version each), the people of ``PEOPLE`` and a server."""
    from modelreg.api.app import create_app
    from modelreg.config import Settings

    seed = home / "seed"
    seed.mkdir()
    (seed / "alpha.bin").write_bytes(b"alpha seed bytes")
    (seed / "beta.bin").write_bytes(b"beta seed bytes")
    tokens: dict[str, str] = {}
    with modelreg.Registry(home) as local:
        local.register("alpha", seed / "alpha.bin", capture=False)
        local.register("beta", seed / "beta.bin", capture=False)
        for name, roles in PEOPLE.items():
            (role, model), *more = roles
            local.create_user(name, role=role, model=model)
            for role, model in more:
                local.grant(name, role, model=model)
            tokens[name] = local.create_token(name)["token"]
    with ThreadedServer(create_app(Settings.for_home(home))) as server:
        teams = Teams(server.url, home, tokens)
        try:
            yield teams
        finally:
            for client in teams.clients.values():
                client.close()
