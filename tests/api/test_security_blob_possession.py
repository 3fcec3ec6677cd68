"""A digest is not a credential (SECURITY.md rule 13; issue 18, finding 3).

The class: knowing the SHA-256 of bytes another team stored must not let a caller attach them
to its own version, learn whether (or how big) they are stored, or download them. A stored blob
counts for a caller only when it may read a version that holds it or sent the bytes itself;
everyone else sees it as absent and proves possession by uploading, which stores nothing twice.
Two teams on a real server, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import modelreg
from registry_folders import DATABASES, module_registry_folder
from two_teams import API, Teams, sha, two_teams

MLF = "/api/2.0/mlflow"
ART = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.fixture(scope="module", params=DATABASES)
def teams(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Teams]:
    with two_teams(module_registry_folder(request, tmp_path_factory, "possession")) as world:
        yield world


def secret() -> bytes:
    """Bytes nobody else has: each test's own, so tests do not depend on one another."""
    return b"beta's secret weights " + os.urandom(32)


def missing_digests(response) -> set[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 404, response.text
    error = response.json()["error"]
    assert error["code"] == "blob_not_found"
    return {m["sha256"] for m in error["detail"]["missing"]}


class TestManifestClaims:
    def test_another_teams_digest_is_missing_until_the_bytes_are_sent(self, teams: Teams) -> None:
        data = secret()
        teams.publish("bob", "beta", {"weights.bin": data})
        before = teams.versions("alpha")

        claim = teams.register("ann", "alpha", {"stolen.bin": data})

        assert missing_digests(claim) == {sha(data)}
        assert teams.versions("alpha") == before
        # Proof of possession: the upload is verified, then dropped (the blob is kept once).
        upload = teams.upload("ann", data)
        assert upload.status_code == 200, upload.text
        assert upload.json()["created"] is False
        assert teams.register("ann", "alpha", {"mine.bin": data}).status_code == 201
        assert teams.copies(data) == 1

    def test_the_answer_does_not_depend_on_whether_or_how_big_the_blob_is(
        self, teams: Teams
    ) -> None:
        stored = secret()
        teams.publish("bob", "beta", {"weights.bin": stored})
        never = secret()

        answers = [
            teams.register("ann", "alpha", {"x.bin": stored}),
            teams.register("ann", "alpha", {"x.bin": never}),
        ]
        wrong_size = teams["ann"].post(
            f"{API}/models/alpha/versions",
            json={"files": [{"path": "x.bin", "sha256": sha(stored), "size": 1}]},
        )

        shapes = [
            (
                r.status_code,
                r.json()["error"]["code"],
                r.json()["error"]["message"].replace(sha(stored), "D").replace(sha(never), "D"),
            )
            for r in (*answers, wrong_size)
        ]
        assert len(set(shapes)) == 1, shapes

    def test_a_mismatched_upload_proves_nothing(self, teams: Teams) -> None:
        data = secret()
        teams.publish("bob", "beta", {"weights.bin": data})

        forged = teams["ann"].put(
            f"{API}/blobs/sha256:{sha(data)}",
            content=b"not the bytes",
            headers={"content-type": "application/octet-stream"},
        )

        assert forged.status_code == 400
        assert forged.json()["error"]["code"] == "digest_mismatch"
        assert missing_digests(teams.register("ann", "alpha", {"x.bin": data})) == {sha(data)}

    def test_possession_is_the_uploaders_not_its_teams(self, teams: Teams) -> None:
        data = secret()
        assert teams.upload("ann", data).status_code == 200

        # cy contributes to alpha too, but did not send these bytes and reads no version of them.
        assert missing_digests(teams.register("cy", "alpha", {"x.bin": data})) == {sha(data)}
        assert teams.register("ann", "alpha", {"x.bin": data}).status_code == 201
        # Now a version cy may read holds them: that is enough.
        assert teams.register("cy", "alpha", {"again.bin": data}).status_code == 201

    def test_readers_of_a_version_need_not_upload_again(self, teams: Teams) -> None:
        data = secret()
        teams.publish("bob", "beta", {"weights.bin": data})

        # cy may read beta (a fine-tune of beta's weights), root reads everything.
        assert teams.register("cy", "alpha", {"base.bin": data}).status_code == 201
        assert teams.register("root", "alpha", {"base.bin": data}).status_code == 201

    def test_one_manifest_mixes_owned_foreign_and_new_blobs(self, teams: Teams) -> None:
        own, foreign, new = secret(), secret(), secret()
        assert teams.upload("ann", own).status_code == 200
        teams.publish("bob", "beta", {"weights.bin": foreign})

        claim = teams.register("ann", "alpha", {"a.bin": own, "b.bin": foreign, "c.bin": new})

        assert missing_digests(claim) == {sha(foreign), sha(new)}


class TestBlobRoutes:
    def test_head_and_get_answer_404_for_a_blob_only_another_team_holds(self, teams: Teams) -> None:
        data = secret()
        teams.publish("bob", "beta", {"weights.bin": data})
        url = f"{API}/blobs/sha256:{sha(data)}"
        never = f"{API}/blobs/sha256:{sha(secret())}"

        assert teams["ann"].head(url).status_code == 404
        foreign, absent = teams["ann"].get(url), teams["ann"].get(never)
        assert foreign.status_code == absent.status_code == 404
        assert foreign.json()["error"]["code"] == absent.json()["error"]["code"]
        assert data not in foreign.content
        # Its owners and readers see it.
        head = teams["bob"].head(url)
        assert head.status_code == 200
        assert head.headers["content-length"] == str(len(data))
        assert teams["vic"].get(url).content == data
        assert teams["root"].get(url).content == data

    def test_an_upload_makes_the_blob_the_uploaders(self, teams: Teams) -> None:
        data = secret()
        teams.publish("bob", "beta", {"weights.bin": data})
        url = f"{API}/blobs/sha256:{sha(data)}"

        assert teams.upload("ann", data).status_code == 200

        assert teams["ann"].head(url).status_code == 200
        assert teams["ann"].get(url).content == data
        assert teams.copies(data) == 1

    def test_an_orphan_upload_is_only_its_uploaders(self, teams: Teams) -> None:
        # Uploaded, not yet registered: no version holds it, so only its uploader sees it.
        data = secret()
        assert teams.upload("bob", data).status_code == 200
        url = f"{API}/blobs/sha256:{sha(data)}"

        assert teams["bob"].head(url).status_code == 200
        assert teams["ann"].head(url).status_code == 404
        assert teams["root"].get(url).status_code == 404


class TestOtherDoors:
    def test_the_client_uploads_what_the_server_will_not_take_on_trust(
        self, teams: Teams, tmp_path: Path
    ) -> None:
        data = secret()
        teams.publish("bob", "beta", {"weights.bin": data})
        (tmp_path / "weights.bin").write_bytes(data)

        with modelreg.Registry(teams.url, token=teams.tokens["ann"]) as ann:
            version = ann.register("alpha", tmp_path / "weights.bin", capture=False)

        assert version.files[0].sha256 == sha(data)
        assert teams.copies(data) == 1

    def test_mlflow_artifact_uploads_prove_possession(self, teams: Teams) -> None:
        data = secret()
        teams.publish("bob", "beta", {"weights.bin": data})
        ann = teams["ann"]
        run = ann.post(f"{MLF}/runs/create", json={"experiment_id": "0"}).json()["run"]["info"]

        put = ann.put(f"{ART}/0/{run['run_id']}/artifacts/model/weights.bin", content=data)

        assert put.status_code == 200, put.text
        assert teams.register("ann", "alpha", {"w.bin": data}).status_code == 201

    def test_mlflow_registration_from_a_readable_source_needs_no_upload(self, teams: Teams) -> None:
        # root may read bob's run, so it registers the run's files without sending them.
        data = secret()
        bob = teams["bob"]
        run = bob.post(f"{MLF}/runs/create", json={"experiment_id": "0"}).json()["run"]["info"]
        folder = f"0/{run['run_id']}/artifacts/model"
        assert bob.put(f"{ART}/{folder}/weights.bin", content=data).status_code == 200

        created = teams["root"].post(
            f"{MLF}/model-versions/create",
            json={"name": "alpha", "source": f"runs:/{run['run_id']}/model"},
        )

        assert created.status_code == 200, created.text
        # ann cannot read bob's run: the source is refused before any file is looked at.
        refused = teams["ann"].post(
            f"{MLF}/model-versions/create",
            json={"name": "alpha", "source": f"runs:/{run['run_id']}/model"},
        )
        assert refused.status_code in (403, 404), refused.text
