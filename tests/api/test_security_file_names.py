"""Look-alike and reserved file names on every door (issue 18, finding 14; SECURITY.md rule 2).

The class: a new file name that reads as another name ("modеl.bin" with a Cyrillic "е",
"ｍodel.bin"), that Windows turns into a device (``CON``, ``sub/aux.txt``) or into another name
("model.bin." is "model.bin" there) is refused wherever a name is written: a version's manifest
on ``/api/v1`` and an artifact path on the MLflow door. Names already stored before the rule
stay readable, downloadable and deletable.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import modelreg
from server_process import ThreadedServer

API = "/api/v1"
MLF = "/api/2.0/mlflow"
ART = "/api/2.0/mlflow-artifacts/artifacts"
DATA = b"weights"
DIGEST = hashlib.sha256(DATA).hexdigest()

AMBIGUOUS = [
    pytest.param("mod\u0435l.bin", id="cyrillic-e"),
    pytest.param("\u0440\u0430y/model.bin", id="latin-in-cyrillic-folder"),
    pytest.param("\uff4dodel.bin", id="fullwidth-m"),
    pytest.param("\u2126.bin", id="not-nfc"),
    pytest.param("CON", id="con"),
    pytest.param("sub/aux.txt", id="aux-in-folder"),
    pytest.param("Lpt1.log", id="lpt1"),
    pytest.param("model.bin.", id="trailing-dot"),
]
PORTABLE = ["model.bin", "données/модель.bin", "数据/权重v2.bin", "console.txt", "com10.log"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Path]]:
    from modelreg.api.app import create_app
    from modelreg.config import Settings

    home = tmp_path_factory.mktemp("names")
    with (
        ThreadedServer(create_app(Settings.for_home(home))) as running,
        httpx.Client(base_url=running.url, timeout=120) as client,
    ):
        assert client.put(f"{API}/blobs/sha256:{DIGEST}", content=DATA).status_code == 200
        yield client, home


def register(client: httpx.Client, model: str, path: str) -> httpx.Response:
    manifest = [{"path": path, "sha256": DIGEST, "size": len(DATA)}]
    return client.post(f"{API}/models/{model}/versions", json={"files": manifest})


def new_run(client: httpx.Client) -> str:
    run = client.post(f"{MLF}/runs/create", json={"experiment_id": "0"})
    run_id: str = run.json()["run"]["info"]["run_id"]
    return f"0/{run_id}/artifacts"


@pytest.mark.parametrize("path", AMBIGUOUS)
def test_manifests_with_ambiguous_names_are_refused(server, path: str) -> None:  # type: ignore[no-untyped-def]
    client, _ = server

    response = register(client, "names-refused", path)

    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_path"
    assert client.get(f"{API}/models/names-refused").status_code == 404


@pytest.mark.parametrize("path", AMBIGUOUS)
def test_mlflow_artifacts_with_ambiguous_names_are_refused(server, path: str) -> None:  # type: ignore[no-untyped-def]
    client, _ = server
    folder = new_run(client)

    response = client.put(f"{ART}/{folder}/{path}", content=DATA)

    assert response.status_code == 400, response.text
    listing = client.get(f"{ART}", params={"path": folder}).json()
    assert listing.get("files", []) == []


@pytest.mark.parametrize("path", PORTABLE)
def test_portable_names_still_register_on_both_doors(server, path: str) -> None:  # type: ignore[no-untyped-def]
    client, _ = server
    folder = new_run(client)

    assert register(client, "names-ok", path).status_code == 201
    assert client.put(f"{ART}/{folder}/{path}", content=DATA).status_code == 200


def test_names_stored_before_the_rule_stay_reachable(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client, home = server
    created = register(client, "legacy", "placeholder.bin").json()
    folder = new_run(client)
    assert client.put(f"{ART}/{folder}/placeholder.bin", content=DATA).status_code == 200
    # What an older release accepted, written where it would have been.
    with sqlite3.connect(home / "registry.db") as db:
        db.execute("UPDATE version_files SET path = 'sub/aux.txt' WHERE path = 'placeholder.bin'")
        db.execute(
            "UPDATE mlflow_artifacts SET path = ? WHERE path = ?",
            (f"{folder}/CON", f"{folder}/placeholder.bin"),
        )

    url = f"{API}/models/legacy/versions/{created['version']}/files/sub/aux.txt"
    assert client.get(url).content == DATA
    with modelreg.Registry(str(client.base_url)) as remote:
        [written] = remote.download(f"legacy:{created['version']}", tmp_path / "out")
    assert written.read_bytes() == DATA
    assert client.get(f"{ART}/{folder}/CON").content == DATA
    assert client.delete(f"{ART}/{folder}/CON").status_code == 200
