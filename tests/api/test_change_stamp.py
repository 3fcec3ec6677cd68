"""The change stamp moves on every committed registry write, whatever the code path (``db.stamp``).

Cached answers and actors are right only while that holds. So: every write route of both doors
(enumerated from the app, as the cross-site suite does) is performed for real, and after each
the stamp has moved exactly when a registry table's rows changed; a write route missing from
the walk fails the test. Raw SQL through a session, with no audit event, moves it too and ends
a served answer; a rolled-back write, a read and the MLflow door's tracking scratch state leave
it alone.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

import modelreg
from modelreg.api.app import create_app, iter_routes
from modelreg.api.ui import is_ui_path
from modelreg.config import Settings
from modelreg.db.base import Base
from modelreg.db.session import make_engine, transaction
from modelreg.db.stamp import current, is_stamped

API = "/api/v1"
MLFLOW = "/api/2.0/mlflow"
ART = "/api/2.0/mlflow-artifacts/artifacts"


def write_routes() -> set[tuple[str, str]]:
    """``(method, path template)`` of every write route of the app, both doors.

    The web UI's forms are left out: each calls one of the use-cases these routes call, and
    tests/ui checks their effects.
    """
    app = create_app(Settings(home=Path("/nonexistent"), db="sqlite://"))
    routes = {
        (method, route.path)
        for route in iter_routes(app)
        for method in route.methods - {"GET", "HEAD"}
        if not is_ui_path(route.path)
    }
    app.state.registry.engine.dispose()
    return routes


# -- the hook itself, on both databases ------------------------------------------------------


@pytest.fixture
def engine(db_url: str, home: Path) -> Iterator[Any]:
    """An engine on a registry that holds model ``m`` version 1."""
    local = modelreg.Registry(home)
    (home.parent / "w.bin").write_bytes(b"w")
    local.register("m", home.parent / "w.bin", capture=False)
    local.close()
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def _stamp(engine: Any) -> int:
    with transaction(engine, write=False) as session:
        return current(session)


def test_raw_sql_through_a_session_moves_the_stamp(engine: Any) -> None:
    before = _stamp(engine)
    with transaction(engine, write=True) as session:  # no service, no audit event
        session.execute(text("UPDATE model_versions SET description = 'raw'"))
    assert _stamp(engine) == before + 1
    with engine.begin() as conn:  # nor a session: a bare connection of the engine
        conn.exec_driver_sql("DELETE FROM model_tags")
    assert _stamp(engine) == before + 2


def test_reads_rollbacks_and_tracking_writes_leave_the_stamp_alone(engine: Any) -> None:
    before = _stamp(engine)
    with transaction(engine, write=True) as session:
        session.execute(text("SELECT count(*) FROM model_versions")).scalar()

    def write_then_fail() -> None:
        with transaction(engine, write=True) as session:
            session.execute(text("UPDATE model_versions SET description = 'undone'"))
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError, match="rolled back"):
        write_then_fail()
    with transaction(engine, write=True) as session:
        # The MLflow door's scratch state: no cached answer reads it (db.stamp docstring).
        session.execute(text("UPDATE mlflow_experiments SET name = name"))
    assert _stamp(engine) == before


def test_every_table_is_stamped_but_tracking_scratch_and_bookkeeping() -> None:
    unstamped = {t.name for t in Base.metadata.sorted_tables if not is_stamped(t.name)}
    assert unstamped == {
        "change_stamp",
        "web_sessions",
        "webhooks",
        "webhook_deliveries",
        "delivery_attempts",
        "worker_leases",
        "deployments",
        "blob_scans",
    } | {t.name for t in Base.metadata.sorted_tables if t.name.startswith("mlflow_")}
    assert {"model_versions", "aliases", "principals", "api_tokens", "grants"} <= {
        t.name for t in Base.metadata.sorted_tables if is_stamped(t.name)
    }


def test_a_raw_write_elsewhere_ends_a_served_answer(home: Path, db_url: str, live_server: Any):
    local = modelreg.Registry(home)
    (home.parent / "w.bin").write_bytes(b"w")
    local.register("m", home.parent / "w.bin", capture=False, description="before")
    local.close()
    params = {"uri": "m:1"}
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        for _ in range(2):  # the second is answered from memory
            assert http.get(f"{API}/resolve", params=params).json()["description"] == "before"
        eng = make_engine(db_url)  # another process's engine, raw SQL, no audit event
        with transaction(eng, write=True) as session:
            session.execute(text("UPDATE model_versions SET description = 'after'"))
        eng.dispose()
        assert http.get(f"{API}/resolve", params=params).json()["description"] == "after"


# -- every write route of both doors ---------------------------------------------------------


class Walk:
    """Performs write requests and checks the stamp against what each changed."""

    def __init__(self, http: httpx.AsyncClient, registry: Any) -> None:
        self.http = http
        self.registry = registry
        self.done: set[tuple[str, str]] = set()

    def _rows(self) -> tuple[int, dict[str, list[str]], dict[str, list[str]]]:
        with self.registry.read() as session:
            stamp = current(session)
            rows = {
                table.name: sorted(repr(tuple(r)) for r in session.execute(select(table)))
                for table in Base.metadata.sorted_tables
                if table.name != "change_stamp"
            }
        stamped = {k: v for k, v in rows.items() if is_stamped(k)}
        return stamp, stamped, {k: v for k, v in rows.items() if k not in stamped}

    async def __call__(
        self, method: str, route: str, path: str | None = None, *, each: bool = False, **kwargs: Any
    ) -> Any:
        """One request; ``each``: it commits once per item (a bulk rescan), so it may bump more."""
        stamp, stamped, _ = self._rows()
        response = await self.http.request(method, path or route, **kwargs)
        assert response.status_code < 300, (method, path or route, response.text)
        after, changed, _ = self._rows()
        wrote = [t for t in stamped if stamped[t] != changed[t]]
        if wrote and each:
            assert after > stamp, f"{method} {route} changed {wrote}, the stamp stayed"
        elif wrote:
            assert after == stamp + 1, f"{method} {route} changed {wrote}, the stamp stayed"
        else:  # a read by POST, or tracking scratch: served answers stay cached
            assert after == stamp, f"{method} {route} changed no registry row, the stamp moved"
        self.done.add((method, route))
        return response.json() if response.content else None


@pytest.fixture
async def walk(home: Path, files: Path) -> AsyncIterator[tuple[Walk, dict[str, str]]]:
    """The app in process on a registry with ``m`` v1, v2 and two admins' tokens."""
    local = modelreg.Registry(home)
    for _ in range(2):
        local.register("m", files / "model.pkl", capture=False)
    tokens = {}
    for name in ("root", "ann"):
        local.create_user(name, role="admin")
        tokens[name] = f"Bearer {local.create_token(name)['token']}"
    local.close()
    app = create_app(Settings.for_home(home))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    headers = {"authorization": tokens["root"]}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://127.0.0.1:8080", headers=headers
    ) as http:
        yield Walk(http, app.state.registry), tokens
    app.state.registry.engine.dispose()


@pytest.mark.anyio
async def test_every_write_route_moves_the_stamp_exactly_when_it_writes(
    walk: tuple[Walk, dict[str, str]], tmp_path: Path
) -> None:
    step, tokens = walk
    await _walk_v1(step, tokens)
    await _walk_signing(step, tmp_path)
    await _walk_webhooks(step)
    await _walk_deployments(step)
    await _walk_scans(step)
    await _walk_mlflow(step)
    await _walk_sources(step)
    # Direct transfers need a store that presigns (S3): tests/storage/test_s3_direct.py; a
    # copy from an allowed source needs a bucket: tests/storage/test_allowed_sources.py.
    needs_s3 = ("/uploads", "/sources/copy")
    missing = {r for r in write_routes() - step.done if not any(p in r[1] for p in needs_s3)}
    assert not missing, f"write routes this walk does not perform: {sorted(missing)}"


async def _walk_v1(step: Walk, tokens: dict[str, str]) -> None:
    m = f"{API}/models/{{name:model}}"
    await step("POST", f"{API}/models", json={"name": "fresh"})
    await step("PATCH", m, f"{API}/models/fresh", json={"description": "d"})
    await step("PATCH", f"{m}/tags", f"{API}/models/fresh/tags", json={"set": {"a": "b"}})
    data = b"weights of fresh"
    digest = hashlib.sha256(data).hexdigest()
    await step(
        "PUT",
        f"{API}/blobs/sha256:{{digest}}",
        f"{API}/blobs/sha256:{digest}",
        content=data,
        headers={"content-type": "application/octet-stream"},
    )
    manifest = {"files": [{"path": "w.bin", "sha256": digest, "size": len(data)}]}
    await step("POST", f"{m}/versions", f"{API}/models/fresh/versions", json=manifest)
    v = f"{m}/versions/{{version}}"
    await step("PATCH", v, f"{API}/models/fresh/versions/1", json={"description": "x"})
    await step(
        "PATCH", f"{v}/tags", f"{API}/models/fresh/versions/1/tags", json={"set": {"k": "v"}}
    )
    alias = f"{m}/aliases/{{alias}}"
    await step("PUT", alias, f"{API}/models/fresh/aliases/champion", json={"version": 1})
    await step("DELETE", alias, f"{API}/models/fresh/aliases/champion")
    promote = f"{m}/promotions"
    for number in (1, 2):  # rollback needs an earlier holder
        body = {"version": number, "to": "staging"}
        await step("POST", promote, f"{API}/models/m/promotions", json=body)
    body = {"stage": "staging", "reason": "r"}
    await step("POST", f"{m}/rollback", f"{API}/models/m/rollback", json=body)
    rule = f"{m}/policy/{{target}}"
    await step("PUT", rule, f"{API}/models/m/policy/production", json={"approvals": 1})
    pending = []
    for number in (1, 2):
        body = {"version": number, "to": "production"}
        asked = await step("POST", promote, f"{API}/models/m/promotions", json=body)
        assert asked["state"] == "pending", asked
        pending.append(asked["id"])
    ann = {"authorization": tokens["ann"]}  # not the requester: four eyes
    approve, reject = (
        f"{API}/promotions/{{promotion_id}}/approve",
        f"{API}/promotions/{{promotion_id}}/reject",
    )
    await step("POST", approve, f"{API}/promotions/{pending[0]}/approve", json={}, headers=ann)
    body = {"reason": "no"}
    await step("POST", reject, f"{API}/promotions/{pending[1]}/reject", json=body, headers=ann)
    await step("DELETE", rule, f"{API}/models/m/policy/production")
    default = f"{API}/policy/{{target}}"
    await step("PUT", default, f"{API}/policy/staging", json={"required_tags": ["ok"]})
    await step("DELETE", default, f"{API}/policy/staging")
    scopes = {"scopes": {"m": {"archived": {"approvals": 0}}}}
    await step("PUT", f"{API}/policies", json=scopes)
    await step("DELETE", v, f"{API}/models/fresh/versions/1", params={"reason": "r"})
    await step("DELETE", m, f"{API}/models/fresh", params={"reason": "r"})
    await step("POST", f"{API}/gc", json={"grace_seconds": 0})
    await step("POST", f"{API}/principals", json={"name": "bob", "role": "viewer"})
    body = {"principal": "bob", "role": "contributor", "model": "m"}
    await step("POST", f"{API}/grants", json=body)
    grant = f"{API}/principals/{{name}}/grants/{{role}}"
    await step("DELETE", grant, f"{API}/principals/bob/grants/contributor", params={"model": "m"})
    token = await step("POST", f"{API}/tokens", json={"principal": "bob"})
    await step("DELETE", f"{API}/tokens/{{token_id}}", f"{API}/tokens/{token['id']}")
    body = {"disabled": True}
    await step("PATCH", f"{API}/principals/{{name}}", f"{API}/principals/bob", json=body)


async def _walk_signing(step: Walk, folder: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from modelreg import signing

    key = ec.generate_private_key(ec.SECP256R1())
    private = folder / "signer.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    files = (await step.http.get(f"{API}/models/m/versions/1")).json()["files"]
    manifest = {f["path"]: f["sha256"] for f in files}
    bundle = signing.sign_manifest(manifest, label="m:1", private_key=private)
    sigs = f"{API}/models/{{name:model}}/versions/{{version}}/signatures"
    body = {"bundle": bundle, "public_key": public}
    await step("POST", sigs, f"{API}/models/m/versions/1/signatures", json=body)
    await step("POST", f"{API}/keys", json={"name": "ci", "public_key": public})
    await step("POST", f"{API}/keys/{{name}}/revoke", f"{API}/keys/ci/revoke", json={"reason": "r"})


async def _walk_sources(step: Walk) -> None:
    # An allowed source is a registry setting: allowing and removing it move the stamp.
    await step("POST", f"{API}/sources", json={"uri": "s3://mlflow-artifacts/prod"})
    await step("DELETE", f"{API}/sources", params={"uri": "s3://mlflow-artifacts/prod"})


async def _walk_webhooks(step: Walk) -> None:
    # Subscriptions and deliveries are unstamped; their audit events move the stamp, and a
    # test message (no event) leaves it alone.
    hook = await step("POST", f"{API}/webhooks", json={"url": "https://e.com/h"})
    one = f"{API}/webhooks/{{webhook_id}}"
    path = f"{API}/webhooks/{hook['id']}"
    await step("POST", f"{one}/rotate", f"{path}/rotate", json={})
    sent = await step("POST", f"{one}/test", f"{path}/test", json={})
    redeliver = f"{API}/deliveries/{{delivery_id}}/redeliver"
    await step("POST", redeliver, f"{API}/deliveries/{sent['id']}/redeliver", json={})
    await step("DELETE", one, path)


async def _walk_deployments(step: Walk) -> None:
    # Deployments are unstamped: the first report and the end move the stamp by their audit
    # events, a heartbeat (a report of a known id) leaves it alone.
    one = f"{API}/deployments/{{deployment_id}}"
    path = f"{API}/deployments/{uuid.uuid4()}"
    report = {
        "ref": "models:/m/latest",
        "live_version": 2,
        "address": "http://10.0.0.5:9000",
        "hostname": "serve-1",
        "pid": 4242,
        "started_at": "2026-12-07T12:00:00Z",
    }
    for _ in range(2):
        await step("PUT", one, path, json=report)
    await step("DELETE", one, path)


async def _walk_scans(step: Walk) -> None:
    # A rescan writes the version's scan only when the verdict or the scanner changed; forced,
    # it rescans and records a new time, which moves the stamp.
    route = f"{API}/models/{{name:model}}/versions/{{version}}/scan"
    path = f"{API}/models/m/versions/1/scan"
    await step("POST", route, path, json={})
    await step("POST", route, path, params={"force": "true"}, json={})
    await step("POST", f"{API}/scans", json={}, params={"force": "true"}, each=True)


async def _walk_mlflow(step: Walk) -> None:
    async def call(method: str, route: str, body: dict[str, Any] | None = None) -> Any:
        return await step(method, f"{MLFLOW}{route}", json=body or {})

    made = await call("POST", "/experiments/create", {"name": "e"})
    await call("POST", "/experiments/search", {})
    tag = {"experiment_id": made["experiment_id"], "key": "k", "value": "v"}
    await call("POST", "/experiments/set-experiment-tag", tag)
    run_id = (await call("POST", "/runs/create", {"experiment_id": "0"}))["run"]["info"]["run_id"]
    run = {"run_id": run_id}
    await call("POST", "/runs/log-parameter", {**run, "key": "C", "value": "1"})
    point = {"key": "acc", "value": 0.9, "timestamp": 5, "step": 0}
    await call("POST", "/runs/log-metric", {**run, **point})
    await call("POST", "/runs/log-batch", {**run, "metrics": [{**point, "step": 1}]})
    await call("POST", "/runs/set-tag", {**run, "key": "t", "value": "1"})
    await call("POST", "/runs/delete-tag", {**run, "key": "t"})
    await call("POST", "/runs/log-inputs", {**run, "datasets": [{"a": 1}]})
    await call("POST", "/runs/search", {"experiment_ids": ["0"]})
    body = {"experiment_id": "0", "name": "model", "source_run_id": run_id}
    model = (await call("POST", "/logged-models", body))["model"]["info"]
    model_id = model["model_id"]
    root = model["artifact_uri"].removeprefix("mlflow-artifacts:/")
    artifact = f"{ART}/{{path:path}}"
    for rel in ("MLmodel", "data/w.bin"):
        await step("PUT", artifact, f"{ART}/{root}/{rel}", content=b"flavors: {}\n" + rel.encode())
    await step("DELETE", artifact, f"{ART}/{root}/data")
    logged = f"{MLFLOW}/logged-models/{{model_id}}"
    await step(
        "PATCH", logged, f"{MLFLOW}/logged-models/{model_id}", json={"status": "LOGGED_MODEL_READY"}
    )
    tags = {"tags": [{"key": "t", "value": "1"}]}
    await step("PATCH", f"{logged}/tags", f"{MLFLOW}/logged-models/{model_id}/tags", json=tags)
    await step("DELETE", f"{logged}/tags/{{tag_key}}", f"{MLFLOW}/logged-models/{model_id}/tags/t")
    await call("POST", "/logged-models/search", {"experiment_ids": ["0"]})
    await call("POST", "/runs/outputs", {**run, "models": [{"model_id": model_id}]})
    await call("POST", "/runs/update", {**run, "status": "FINISHED", "end_time": 9})
    await call("POST", "/runs/delete", run)
    await call("POST", "/runs/restore", run)
    await _walk_mlflow_registry(step, model_id)


async def _walk_mlflow_registry(step: Walk, model_id: str) -> None:
    async def call(method: str, route: str, body: dict[str, Any] | None = None) -> Any:
        return await step(method, f"{MLFLOW}{route}", json=body or {})

    name = {"name": "mm"}
    await call("POST", "/registered-models/create", name)
    await call("PATCH", "/registered-models/update", {**name, "description": "d"})
    await call("POST", "/registered-models/set-tag", {**name, "key": "k", "value": "v"})
    await call("DELETE", "/registered-models/delete-tag", {**name, "key": "k"})
    body = {**name, "source": f"models:/{model_id}", "model_id": model_id}
    await call("POST", "/model-versions/create", body)
    version = {**name, "version": "1"}
    await call("PATCH", "/model-versions/update", {**version, "description": "d"})
    await call("POST", "/model-versions/set-tag", {**version, "key": "k", "value": "v"})
    await call("DELETE", "/model-versions/delete-tag", {**version, "key": "k"})
    move = {**version, "stage": "Staging", "archive_existing_versions": False}
    await call("POST", "/model-versions/transition-stage", move)
    await call("POST", "/registered-models/alias", {**version, "alias": "champion"})
    await call("DELETE", "/registered-models/alias", {**name, "alias": "champion"})
    await call("POST", "/registered-models/get-latest-versions", name)
    await call("POST", "/registered-models/rename", {**name, "new_name": "mm2"})
    await call("DELETE", "/model-versions/delete", {"name": "mm2", "version": "1"})
    await call("DELETE", "/registered-models/delete", {"name": "mm2"})
