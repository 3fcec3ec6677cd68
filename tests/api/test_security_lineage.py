"""Lineage a caller may not write (issue 18, findings 6 and 8; SECURITY.md rule 14).

Two classes, two teams on a real server (SQLite and PostgreSQL):

- Parents link only to what the caller may read. A parent on a model the caller cannot read is
  refused exactly like a parent that does not exist (same status, code, message and detail),
  whether or not that version exists, so parents cannot probe other teams' models.
- ``lineage.imported_from`` marks a version as a copy made by ``modelreg import``, which
  trusts it to skip the version later; only the admin role (what an import runs with) may
  set it, everyone else gets 403 and nothing is registered.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from registry_folders import DATABASES, module_registry_folder
from two_teams import Teams, two_teams

WEIGHTS = b"alpha fine-tune weights"


@pytest.fixture(scope="module", params=DATABASES)
def teams(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Teams]:
    with two_teams(module_registry_folder(request, tmp_path_factory, "lineage")) as world:
        for who in ("ann", "cy", "root"):
            assert world.upload(who, WEIGHTS).status_code == 200
        yield world


def register(teams: Teams, who: str, **lineage: object) -> httpx.Response:
    return teams.register(who, "alpha", {"model.bin": WEIGHTS}, lineage=lineage)


def shape(response: httpx.Response, name: str) -> tuple[int, str]:
    """Status and error body with the parent's model name blanked out."""
    return response.status_code, json.dumps(response.json()).replace(name, "NAME")


class TestParents:
    def test_an_unreadable_parent_is_refused_like_a_missing_one(self, teams: Teams) -> None:
        before = teams.versions("alpha")

        existing = register(teams, "ann", parents=["beta:1"])
        no_version = register(teams, "ann", parents=["beta:99"])
        no_model = register(teams, "ann", parents=["nosuch:1"])

        assert existing.status_code == 404, existing.text
        assert shape(existing, "beta") == shape(no_version, "beta") == shape(no_model, "nosuch")
        assert teams.versions("alpha") == before

    def test_an_unreadable_parent_among_readable_ones_is_refused(self, teams: Teams) -> None:
        response = register(teams, "ann", parents=["alpha:1", "beta:1"])

        assert shape(response, "beta") == shape(register(teams, "ann", parents=["zz:1"]), "zz")

    def test_a_readable_parent_is_linked(self, teams: Teams) -> None:
        # cy contributes to alpha and may read beta: the fine-tune may name its base.
        response = register(teams, "cy", parents=["beta:1"])

        assert response.status_code == 201, response.text
        assert response.json()["lineage"]["parents"] == ["beta:1"]

    def test_a_reader_learns_only_what_it_may_read(self, teams: Teams) -> None:
        response = register(teams, "cy", parents=["beta:99"])

        assert response.status_code == 404
        assert response.json()["error"]["code"] == "version_not_found"


class TestImportedFrom:
    @pytest.mark.parametrize("who", ["ann", "cy"])
    def test_only_an_admin_may_set_imported_from(self, teams: Teams, who: str) -> None:
        before = teams.versions("alpha")

        response = register(teams, who, imported_from="mlflow:http://mlflow/models/alpha/3")

        assert response.status_code == 403, response.text
        error = response.json()["error"]
        assert error["code"] == "permission_denied"
        assert error["detail"]["field"] == "lineage.imported_from"
        assert teams.versions("alpha") == before

    def test_an_empty_imported_from_is_still_refused(self, teams: Teams) -> None:
        assert register(teams, "ann", imported_from="").status_code == 403

    def test_the_admin_may_set_it(self, teams: Teams) -> None:
        response = register(teams, "root", imported_from="mlflow:http://mlflow/models/alpha/3")

        assert response.status_code == 201, response.text
        assert response.json()["lineage"]["imported_from"] == "mlflow:http://mlflow/models/alpha/3"

    def test_without_it_a_contributor_registers_as_before(self, teams: Teams) -> None:
        assert register(teams, "ann", run_id="r1", source="runs:/r1/model").status_code == 201
