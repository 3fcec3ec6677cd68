"""Identity and access: tokens, roles per registry and per model, deny by default, on both DBs."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import text

import modelreg
from modelreg import errors
from modelreg.cli.main import main

# The docs page and its files (Swagger UI, vendored) are public, like the document itself.
# Open to all: health, the API's document and docs page, and the web UI's sign-in, sign-out
# and style sheets (sign-out ends only the session its cookie names).
PUBLIC = {
    "/healthz",
    "/readyz",
    "/openapi.json",
    "/api/docs",
    "/api/docs/assets/{path:path}",
    "/login",
    "/logout",
    "/static/{release}/{name}",
}


@pytest.fixture
def team(home, files):
    """A registry with models and four principals, administered locally (folder authority)."""
    local = modelreg.Registry(home)
    local.register("fraud", files / "model.pkl", capture=False)
    local.register("churn", files / "model_dir", capture=False)
    local.create_user("alice", role="admin")
    local.create_user("bob", role="viewer")
    local.create_user("carol", role="contributor", model="fraud")
    local.create_user("ci", service=True, role="contributor")
    tokens = {
        n: local.create_token(n, label="test")["token"] for n in ("alice", "bob", "carol", "ci")
    }
    local.close()
    return tokens


@pytest.fixture
def as_user(live_server, team):
    """A remote Registry acting as one of the team (or with no/garbage tokens)."""
    opened = []

    def connect(name: str | None = None, *, token: str | None = None) -> modelreg.Registry:
        registry = modelreg.Registry(live_server.url, token=team[name] if name else token)
        opened.append(registry)
        return registry

    yield connect
    for registry in opened:
        registry.close()


class TestAuthentication:
    @pytest.mark.parametrize(
        "token", [None, "", "mr_forged-token-value", "not-even-a-prefix", "x" * 500]
    )
    def test_missing_and_forged_tokens_are_401(self, as_user, token):
        with pytest.raises(errors.Unauthenticated):
            as_user(token=token).list_models()

    def test_revoked_token(self, as_user, home, team):
        alice = as_user("alice")
        listed = [t for t in alice.list_tokens("bob") if not t["revoked"]]
        alice.revoke_token(listed[0]["id"])
        with pytest.raises(errors.Unauthenticated):
            as_user("bob").list_models()

    def test_expired_token(self, as_user, home, team):
        from modelreg.config import Settings
        from modelreg.db.session import make_engine

        engine = make_engine(Settings.for_home(home).db_url)
        with engine.begin() as conn:
            conn.execute(text("UPDATE api_tokens SET expires_at = '2001-01-01 00:00:00'"))
        engine.dispose()
        with pytest.raises(errors.Unauthenticated):
            as_user("bob").list_models()

    def test_tokens_are_stored_hashed(self, home, team):
        from modelreg.config import Settings
        from modelreg.db.session import make_engine

        engine = make_engine(Settings.for_home(home).db_url)
        with engine.connect() as conn:
            hashes = [row[0] for row in conn.execute(text("SELECT secret_hash FROM api_tokens"))]
            dumped = json.dumps(
                [list(r) for r in conn.execute(text("SELECT * FROM audit_events"))], default=str
            )
        engine.dispose()
        for secret in team.values():
            assert secret not in hashes
            assert secret not in dumped


class TestAuthorization:
    def test_viewer_reads_but_cannot_write(self, as_user, files):
        bob = as_user("bob")
        assert {m.name for m in bob.list_models()} == {"fraud", "churn"}
        assert bob.get_version("fraud:1").version == 1
        with pytest.raises(errors.PermissionDenied) as info:
            bob.register("fraud", files / "model.pkl", capture=False)
        assert not isinstance(info.value, errors.Unauthenticated)
        with pytest.raises(errors.PermissionDenied):
            bob.set_alias("fraud", "champion", 1)
        with pytest.raises(errors.PermissionDenied):
            bob.create_user("mallory", role="admin")

    def test_model_scoped_contributor(self, as_user, files, tmp_path):
        carol = as_user("carol")
        assert carol.register("fraud", files / "model.pkl", capture=False).version == 2
        assert [m.name for m in carol.list_models()] == ["fraud"]
        assert {v.name for v in carol.search()} == {"fraud"}
        with pytest.raises(errors.PermissionDenied):
            carol.register("churn", files / "model.pkl", capture=False)
        with pytest.raises(errors.PermissionDenied):
            carol.register("brand-new", files / "model.pkl", capture=False)
        # A model carol may not read answers as absent (issue 18, finding 10).
        with pytest.raises(errors.ModelNotFound):
            carol.get_version("churn:1")
        with pytest.raises(errors.PermissionDenied):
            carol.audit()
        assert carol.audit("fraud")
        with pytest.raises(errors.PermissionDenied):
            carol.delete("fraud:1", reason="contributors cannot delete")

    def test_blobs_of_unreadable_models_are_invisible(self, as_user, live_server, team):
        churn_blob = as_user("alice").get_version("churn:1").files[0].sha256
        headers = {"authorization": f"Bearer {team['carol']}"}
        response = httpx.get(f"{live_server.url}/api/v1/blobs/sha256:{churn_blob}", headers=headers)
        assert response.status_code == 404
        headers = {"authorization": f"Bearer {team['bob']}"}
        assert (
            httpx.get(
                f"{live_server.url}/api/v1/blobs/sha256:{churn_blob}", headers=headers
            ).status_code
            == 200
        )
        assert (
            httpx.head(
                f"{live_server.url}/api/v1/blobs/sha256:{churn_blob}", headers=headers
            ).status_code
            == 403
        )

    def test_admin_manages_users_remotely(self, as_user):
        alice = as_user("alice")
        alice.create_user("dave")
        alice.grant("dave", "approver", model="churn")
        token = alice.create_token("dave", expires_days=1)["token"]
        dave = as_user(token=token)
        assert [m.name for m in dave.list_models()] == ["churn"]
        names = {u["name"]: u["roles"] for u in alice.list_users()}
        assert names["dave"] == [{"role": "approver", "model": "churn"}]
        assert "auth:role:grant" in [e.action for e in alice.audit(limit=1000)]

    def test_service_account_registers_anywhere(self, as_user, files):
        ci = as_user("ci")
        assert ci.register("new-model", files / "model.pkl", capture=False).version == 1


class TestCli:
    def test_exit_code_5_without_or_with_a_weak_token(
        self, live_server, team, monkeypatch, capsys, files
    ):
        monkeypatch.chdir(files)
        monkeypatch.setenv("MODELREG_URI", live_server.url)
        assert main(["models"]) == 5
        monkeypatch.setenv("MODELREG_TOKEN", team["bob"])
        assert main(["models", "--json"]) == 0
        assert main(["register", "fraud", "model.pkl", "--no-capture"]) == 5
        monkeypatch.setenv("MODELREG_TOKEN", team["alice"])
        capsys.readouterr()
        assert main(["tokens", "create", "bob", "--expires", "30", "--json"]) == 0
        issued = json.loads(capsys.readouterr().out)
        assert issued["token"].startswith("mr_")
        assert issued["expires_at"] is not None

    def test_local_administration(self, home, capsys):
        args = ["--registry", str(home)]
        assert main([*args, "users", "create", "erin", "--role", "viewer", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["roles"] == [{"role": "viewer", "model": None}]
        assert main([*args, "users", "create", "erin"]) == 6
        assert main([*args, "users", "create", "Not Valid"]) == 1
        assert main([*args, "grant", "erin", "wizard"]) == 1
        assert main([*args, "grant", "nobody", "viewer"]) == 2
        assert main([*args, "tokens", "create", "erin"]) == 0
        out = capsys.readouterr()
        assert out.out.strip().startswith("mr_")
        assert "not shown again" in out.err
        assert main([*args, "tokens", "revoke", "not-a-uuid"]) == 1
        assert main([*args, "users", "list"]) == 0
        assert "erin" in capsys.readouterr().out


def test_every_route_requires_an_actor(home):
    """Deny by default: a route without the authentication dependency fails this test."""
    from modelreg.api.app import create_app, iter_routes
    from modelreg.api.deps import _actor
    from modelreg.api.ui.auth import ui_actor
    from modelreg.config import Settings

    app = create_app(Settings.for_home(home))
    app.state.registry.engine.dispose()

    def calls(dependant) -> set:
        found = {dependant.call}
        for sub in dependant.dependencies:
            found |= calls(sub)
        return found

    routes = list(iter_routes(app))
    unguarded = [
        r.path
        for r in routes
        if r.path not in PUBLIC and not {_actor, ui_actor} & calls(r.dependant)
    ]
    assert unguarded == []
    assert len(routes) > 20


@pytest.mark.anyio
async def test_no_users_means_loopback_only(home):
    from modelreg.api.app import create_app
    from modelreg.config import Settings

    app = create_app(Settings.for_home(home))
    remote = httpx.ASGITransport(app=app, client=("10.1.2.3", 5000))
    async with httpx.AsyncClient(transport=remote, base_url="http://localhost") as client:
        response = await client.get("/api/v1/models")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthenticated"
        assert (await client.get("/healthz")).status_code == 200
    local = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    # A loopback name: with no users, the Host must be one too (test_security_dns_rebinding).
    async with httpx.AsyncClient(transport=local, base_url="http://localhost") as client:
        assert (await client.get("/api/v1/models")).status_code == 200
    app.state.registry.engine.dispose()


@pytest.mark.anyio
async def test_json_bodies_are_limited_even_when_chunked(home):
    from modelreg.api.app import create_app
    from modelreg.config import Settings

    settings = Settings.for_home(home).model_copy(update={"max_json_bytes": 1000})
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))

    async def chunks():
        for _ in range(10):
            yield b'{"name": "' + b"x" * 500 + b'"}'

    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        response = await client.post(
            "/api/v1/models", content=chunks(), headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "too_large"
        assert (await client.get("/api/v1/models")).json()["items"] == []
    app.state.registry.engine.dispose()


@pytest.mark.anyio
async def test_allowed_hosts_pin_the_host_header(home):
    from modelreg.api.app import create_app
    from modelreg.config import Settings

    settings = Settings.for_home(home).model_copy(update={"allowed_hosts": ["registry.internal"]})
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://registry.internal") as ok:
        assert (await ok.get("/api/v1/models")).status_code == 200
    async with httpx.AsyncClient(transport=transport, base_url="http://evil.example") as bad:
        response = await bad.get("/api/v1/models")
        assert response.status_code == 400
        assert response.headers["x-content-type-options"] == "nosniff"
    app.state.registry.engine.dispose()


@pytest.mark.parametrize(
    ("cls", "status"),
    [
        (errors.InvalidQuery, 400),
        (errors.DigestMismatch, 400),
        (errors.ModelNotFound, 404),
        (errors.Unauthenticated, 401),
        (errors.PermissionDenied, 403),
        (errors.Immutable, 409),
        (errors.PolicyViolation, 422),
        (errors.ApprovalRequired, 202),
        (errors.StorageFailure, 503),
        (errors.IntegrityFailure, 500),
        (errors.Unavailable, 500),
    ],
)
def test_the_one_status_map(cls, status):
    from modelreg.api.errors import status_for

    exc = cls.__new__(cls)
    errors.RegistryError.__init__(exc, "x")
    assert status_for(exc) == status
