"""The seeds' flow end to end: train two scikit-learn models, register them as objects, serve
``models:/churn/production`` with the real loader, promote v2 under load (every request
succeeds, predictions change), promote a broken v3 (v2 keeps serving); the server lists itself
among the deployments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from serving_harness import Clients, ServeProcess, serving, wait_for

import modelreg
from signing_keys import make_key

COLUMNS = ["tenure", "spend"]


def trained(flip: bool, c: float = 1.0) -> tuple[Any, Any]:
    """A small classifier and its input example; ``flip`` learns the opposite labels."""
    pd = pytest.importorskip("pandas")
    linear_model = pytest.importorskip("sklearn.linear_model")
    frame = pd.DataFrame({"tenure": [1.0, 2.0, 30.0, 40.0], "spend": [5.0, 4.0, 50.0, 60.0]})
    labels = [1, 1, 0, 0] if not flip else [0, 0, 1, 1]
    return linear_model.LogisticRegression(C=c).fit(frame, labels), frame.head(2)


BODY = {"dataframe_split": {"columns": COLUMNS, "data": [[1.0, 5.0], [40.0, 60.0]]}}


def predictions(url: str) -> tuple[str, list[int]]:
    answer = httpx.post(url + "/invocations", json=BODY)
    assert answer.status_code == 200, answer.text
    return answer.headers["modelreg-version"], answer.json()["predictions"]


def test_train_register_serve_promote_under_load_and_survive_a_broken_version(
    reg: modelreg.Registry, registry_url: str, tmp_path: Path
) -> None:
    for flip in (False, True):
        model, example = trained(flip)
        reg.register("churn", model=model, input_example=example)
    reg.promote("churn", 1, "production")
    with serving(registry_url, "models:/churn/production", loader=None) as server:
        wait_for("v1 served", lambda: httpx.get(server.url + "/ping").status_code == 200)
        assert predictions(server.url) == ("churn:1", [1, 0])
        answer = httpx.post(
            server.url + "/invocations", json={"dataframe_records": [{"tenure": 1.0}]}
        )
        assert answer.status_code == 400
        assert "spend" in answer.json()["error"]["message"]
        with Clients(server.url, body=BODY) as clients:
            reg.promote("churn", 2, "production")
            wait_for("v2 served", lambda: predictions(server.url) == ("churn:2", [0, 1]))
        assert clients.failures == []
        assert {status for status, _, _ in clients.answers} == {200}
        assert {h for _, h, _ in clients.answers} <= {"churn:1", "churn:2"}
        for _, header, body in clients.answers:  # each answer whole from the version it names
            assert body == {"predictions": [1, 0] if header == "churn:1" else [0, 1]}

        # v3: registered as an object, then its stored file is corrupted on disk.
        model, example = trained(False, c=0.5)  # other bytes than v1's
        v3 = reg.register("churn", model=model, input_example=example)
        _corrupt_blobs(registry_url, tmp_path, v3)
        reg.promote("churn", 3, "production")
        wait_for(
            "v3 refused",
            lambda: httpx.get(server.url + "/version").json()["last_error"].startswith("churn:3"),
        )
        assert predictions(server.url) == ("churn:2", [0, 1])
        deployments = getattr(reg, "deployments", None)
        if deployments is not None:
            listed = wait_for(
                "the failure reported",
                lambda: [d for d in deployments("churn").items if d.last_error],
            )
            assert listed[0].live_version == 2
            assert listed[0].ref == "models:/churn/production"


def _corrupt_blobs(registry_url: str, tmp_path: Path, version: Any) -> None:
    """Overwrite v3's blobs in the registry folder (the server verifies nothing on read)."""
    blobs = tmp_path / "registry" / "blobs"
    for info in version.files:
        digest = info.sha256
        for path in blobs.rglob(f"*{digest}*"):
            path.chmod(0o644)
            path.write_bytes(b"not a model")


def test_the_command_serves_an_object_with_the_real_loader(
    reg: modelreg.Registry, registry_url: str, tmp_path: Path
) -> None:
    model, example = trained(False)
    reg.register("churn", model=model, input_example=example)
    reg.set_alias("churn", "champion", 1)
    serve = ServeProcess(registry_url, "churn@champion", log=tmp_path / "serve.log")
    try:
        serve.wait_ready()
        assert predictions(serve.url) == ("churn:1", [1, 0])
        assert httpx.get(serve.url + "/version").json()["flavor"] == "sklearn"
    finally:
        # uvicorn re-raises SIGTERM after its graceful stop: a single process ends by it.
        assert serve.stop() in (0, -15), serve.output()


def test_with_require_signature_only_a_version_signed_by_a_trusted_key_is_served(
    reg: modelreg.Registry, registry_url: str, tmp_path: Path
) -> None:
    model, example = trained(False)
    reg.register("churn", model=model, input_example=example)
    reg.promote("churn", 1, to="production")
    with serving(registry_url, "churn/production", loader=None, require_signature=True) as srv:
        refused = wait_for("the load refused", lambda: httpx.get(srv.url + "/version").json())
        wait_for(
            "the refusal reported",
            lambda: "sign" in httpx.get(srv.url + "/version").json().get("last_error", ""),
        )
        assert httpx.post(srv.url + "/invocations", json=BODY).status_code == 503, refused
    private, public = make_key(tmp_path, "ci")
    reg.add_trusted_key("ci", public)
    reg.sign("churn:1", key=private)
    with serving(registry_url, "churn/production", loader=None, require_signature=True) as srv:
        assert wait_for("the signed version served", lambda: _served(srv.url)) == (
            "churn:1",
            [1, 0],
        )


def _served(url: str) -> tuple[str, list[int]] | None:
    answer = httpx.post(url + "/invocations", json=BODY)
    if answer.status_code != 200:
        return None
    return answer.headers["modelreg-version"], answer.json()["predictions"]
