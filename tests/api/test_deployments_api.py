"""``/api/v1/deployments`` between two teams (issue 23 §5): who may report, read and end.

A serve process's token needs only the viewer role on its model; a deployment belongs to the
principal that first reported it, so nobody else (not even an admin) can overwrite its row; a
model the caller may not read answers 404 like one that does not exist; ending is the
reporter's, or a contributor's of the model. Real server, SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from registry_folders import DATABASES, module_registry_folder
from two_teams import API, Teams, two_teams

BODY: dict[str, Any] = {
    "ref": "models:/beta/production",
    "live_version": 1,
    "address": "http://10.0.3.7:9000",
    "hostname": "web-7",
    "pid": 4242,
    "started_at": "2026-12-01T09:30:00+00:00",
}


@pytest.fixture(scope="module", params=DATABASES)
def teams(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Teams]:
    with two_teams(module_registry_folder(request, tmp_path_factory, "deployments")) as world:
        yield world


def put(teams: Teams, who: str, dep: str, **changes: Any) -> httpx.Response:
    return teams[who].put(f"{API}/deployments/{dep}", json={**BODY, **changes})


def listed(teams: Teams, who: str, **params: str) -> dict[str, dict[str, Any]]:
    answer = teams[who].get(f"{API}/deployments", params=params)
    assert answer.status_code == 200, answer.text
    return {d["id"]: d for d in answer.json()["items"]}


def started(teams: Teams, who: str = "vic", **changes: Any) -> str:
    dep = str(uuid.uuid4())
    answer = put(teams, who, dep, **changes)
    assert answer.status_code == 201, answer.text
    return dep


def code(answer: httpx.Response) -> str:
    return str(answer.json()["error"]["code"])


class TestReport:
    def test_a_viewer_reports_and_beats(self, teams: Teams) -> None:
        dep = str(uuid.uuid4())
        first = put(teams, "vic", dep)
        assert first.status_code == 201, first.text
        body = first.json()
        assert (body["id"], body["model"], body["status"]) == (dep, "beta", "live")
        assert body["reported_by"] == "vic"
        beat = put(teams, "vic", dep, live_version=2)
        assert beat.status_code == 200, beat.text
        assert beat.json()["live_version"] == 2
        assert beat.json()["created_at"] == body["created_at"]

    @pytest.mark.parametrize("other", ["bob", "cy", "root"])
    def test_nobody_else_may_overwrite_it(self, teams: Teams, other: str) -> None:
        dep = started(teams)
        answer = put(teams, other, dep, address="http://evil.example:80", live_version=9)
        assert answer.status_code == 403, answer.text
        assert code(answer) == "permission_denied"
        row = listed(teams, "vic", model="beta")[dep]
        assert (row["address"], row["live_version"], row["reported_by"]) == (
            BODY["address"],
            1,
            "vic",
        )

    def test_an_unreadable_model_is_refused_like_a_missing_one(self, teams: Teams) -> None:
        before = listed(teams, "root")
        hidden = put(teams, "ann", str(uuid.uuid4()))
        missing = put(teams, "ann", str(uuid.uuid4()), ref="models:/nosuch/production")
        assert hidden.status_code == missing.status_code == 404
        assert json.dumps(hidden.json()).replace("beta", "NAME") == json.dumps(
            missing.json()
        ).replace("nosuch", "NAME")
        assert set(listed(teams, "root")) == set(before)

    def test_an_id_keeps_its_model(self, teams: Teams) -> None:
        dep = started(teams, "cy")
        answer = put(teams, "cy", dep, ref="alpha@champion")
        assert answer.status_code == 409, answer.text
        assert listed(teams, "cy")[dep]["model"] == "beta"

    def test_without_a_token(self, teams: Teams) -> None:
        with httpx.Client(base_url=teams.url) as anonymous:
            answer = anonymous.put(f"{API}/deployments/{uuid.uuid4()}", json=BODY)
        assert answer.status_code == 401

    @pytest.mark.parametrize(
        ("path_id", "changes", "status", "message"),
        [
            ("not-a-uuid", {}, 400, "invalid deployment id"),
            (None, {"info": ["a", "list"]}, 400, "info"),
            (None, {"info": {"x": "y" * 20_000}}, 400, "info is larger than"),
            (None, {"started_at": "2026-12-01T09:30:00"}, 400, "time zone"),
            (None, {"started_at": None}, 400, "started_at"),
            (None, {"pid": -5}, 400, "pid"),
            (None, {"ref": "beta@"}, 400, "invalid alias"),
            (None, {"last_error": "e" * 4001}, 400, "last_error is longer than 4000"),
            (None, {"hostname": "h" * 300}, 400, "hostname is longer than 255"),
            (None, {"surprise": 1}, 400, "surprise"),
        ],
    )
    def test_bad_reports_change_nothing(
        self,
        teams: Teams,
        path_id: str | None,
        changes: dict[str, Any],
        status: int,
        message: str,
    ) -> None:
        before = set(listed(teams, "root"))
        dep = path_id or str(uuid.uuid4())
        answer = put(teams, "vic", dep, **changes)
        assert answer.status_code == status, answer.text
        assert message in answer.json()["error"]["message"] + json.dumps(
            answer.json()["error"]["detail"]
        )
        assert set(listed(teams, "root")) == before

    def test_writes_must_be_json(self, teams: Teams) -> None:
        answer = teams["vic"].put(
            f"{API}/deployments/{uuid.uuid4()}",
            content=json.dumps(BODY),
            headers={"content-type": "text/plain"},
        )
        assert answer.status_code == 415


class TestList:
    def test_each_sees_the_models_they_may_read(self, teams: Teams) -> None:
        beta = started(teams, "vic")
        alpha = started(teams, "ann", ref="alpha@champion")
        assert beta in listed(teams, "vic")
        assert alpha not in listed(teams, "vic")
        assert alpha in listed(teams, "ann")
        assert beta not in listed(teams, "ann")
        assert {alpha, beta} <= set(listed(teams, "root"))
        assert {alpha, beta} <= set(listed(teams, "cy"))

    def test_an_unreadable_model_filter_is_404(self, teams: Teams) -> None:
        hidden = teams["ann"].get(f"{API}/deployments", params={"model": "beta"})
        missing = teams["ann"].get(f"{API}/deployments", params={"model": "nosuch"})
        assert hidden.status_code == missing.status_code == 404
        assert code(hidden) == code(missing) == "model_not_found"

    @pytest.mark.parametrize(
        "params", [{"page_size": "0"}, {"page_size": "1001"}, {"page_token": "garbage"}]
    )
    def test_bad_paging(self, teams: Teams, params: dict[str, str]) -> None:
        answer = teams["vic"].get(f"{API}/deployments", params=params)
        assert answer.status_code == 400, answer.text


class TestEnd:
    def test_the_reporter_ends_it_and_both_ends_are_audited(self, teams: Teams) -> None:
        dep = started(teams)
        put(teams, "vic", dep, live_version=2)  # a heartbeat: not audited
        answer = teams["vic"].delete(f"{API}/deployments/{dep}")
        assert answer.status_code == 200, answer.text
        assert answer.json()["id"] == dep
        assert dep not in listed(teams, "vic")
        events = teams["root"].get(f"{API}/audit", params={"model": "beta", "limit": 1000})
        mine = [e for e in events.json()["items"] if e["target"] == f"deployment:{dep}"]
        assert [(e["action"], e["actor"]) for e in mine] == [
            ("registry:deployment:report", "vic"),
            ("registry:deployment:end", "vic"),
        ]

    def test_a_contributor_clears_a_dead_one(self, teams: Teams) -> None:
        dep = started(teams)
        assert teams["bob"].delete(f"{API}/deployments/{dep}").status_code == 200
        assert dep not in listed(teams, "root")

    def test_another_viewer_may_not(self, teams: Teams) -> None:
        dep = started(teams, "cy")
        answer = teams["vic"].delete(f"{API}/deployments/{dep}")
        assert answer.status_code == 403, answer.text
        assert dep in listed(teams, "root")

    def test_an_unreadable_one_is_404(self, teams: Teams) -> None:
        dep = started(teams)
        hidden = teams["ann"].delete(f"{API}/deployments/{dep}")
        missing = teams["ann"].delete(f"{API}/deployments/{uuid.uuid4()}")
        assert hidden.status_code == missing.status_code == 404
        assert dep in listed(teams, "root")

    def test_a_bad_id_is_400(self, teams: Teams) -> None:
        answer = teams["vic"].delete(f"{API}/deployments/nope")
        assert answer.status_code == 400
        assert code(answer) == "invalid_input"
