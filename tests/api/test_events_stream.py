"""Issue 22: ``GET /api/v1/events``, the long-polled event stream, on real servers.

A waiting request answers as soon as another process commits a change: a ``modelreg server``
subprocess, and an embedded ``Registry`` writing the same database from the test's process
(SQLite: the server's stamp poller; PostgreSQL: its LISTEN). Whether it woke is shown by the
answer itself, never by a clock: a request waiting 60 s that missed the change would answer
with no items. A per-model grant sees that model's events only; bad parameters answer 400.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import modelreg
from registry_folders import LiveServer
from server_process import ServerProcess


def _events(url: str, token: str | None = None, **params: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=url, timeout=120) as http:
        return http.get("/api/v1/events", params=params, headers=headers)


class _Waiting:
    """A long-poll running in a thread; ``answer()`` joins it."""

    def __init__(self, url: str, token: str | None = None, **params: Any) -> None:
        self.response: httpx.Response | None = None
        self.thread = threading.Thread(target=self._run, args=(url, token, params))
        self.thread.start()

    def _run(self, url: str, token: str | None, params: dict[str, Any]) -> None:
        self.response = _events(url, token, **params)

    def answer(self) -> httpx.Response:
        self.thread.join(timeout=120)
        assert self.response is not None, "the long-poll did not answer"
        return self.response


@pytest.fixture
def server(home: Path) -> Iterator[ServerProcess]:
    """``modelreg server`` as its own process on ``home`` (SQLite or PostgreSQL)."""
    with ServerProcess(home) as proc:
        yield proc


def test_a_waiting_request_wakes_for_a_commit_by_another_process(
    home: Path, server: ServerProcess
) -> None:
    with modelreg.Registry(home) as writer:  # embedded: this process, not the server's
        writer.create_model("fraud")
        head = _events(server.url).json()["next_after"]
        waiting = _Waiting(server.url, after=head, wait=60)
        time.sleep(0.5)  # let it park first (if not, it answers at once: still correct)
        writer.set_tags("fraud", {"team": "risk"})
        answer = waiting.answer()
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    assert [(e["event"], e["model"]) for e in items] == [("registry:model:tag", "fraud")]
    assert answer.json()["next_after"] == items[-1]["seq"] == head + 1


def test_waiting_for_the_next_event_from_now(home: Path, server: ServerProcess) -> None:
    with modelreg.Registry(home) as writer:
        writer.create_model("fraud")
        waiting = _Waiting(server.url, wait=60)  # no ``after``: only what comes next
        created = 0
        while waiting.thread.is_alive():  # until it answers: it may start waiting after a write
            writer.create_model(f"m{created}")
            created += 1
            waiting.thread.join(timeout=0.5)
    items = waiting.answer().json()["items"]
    assert items
    assert all(e["model"].startswith("m") for e in items)  # never ``fraud``, from before


def test_a_wait_that_times_out_answers_an_empty_page(live_server: LiveServer) -> None:
    reg = modelreg.Registry(live_server.url)
    reg.create_model("fraud")
    answer = _events(live_server.url, after=1, wait=0.3)
    assert answer.status_code == 200
    assert answer.json() == {"items": [], "next_after": 1}
    reg.close()


def test_events_waiting_answer_at_once(live_server: LiveServer) -> None:
    reg = modelreg.Registry(live_server.url)
    reg.create_model("fraud")
    reg.create_model("churn")
    answer = _events(live_server.url, after=0, wait=60, limit=1).json()
    assert [e["seq"] for e in answer["items"]] == [1]
    assert answer["next_after"] == 1
    answer = _events(live_server.url, after=1, wait=60).json()
    assert [e["model"] for e in answer["items"]] == ["churn"]
    reg.close()


def test_the_same_process_wakes_its_waiters_on_commit(live_server: LiveServer) -> None:
    """A write through the very server a request waits on (the after-commit hook)."""
    reg = modelreg.Registry(live_server.url)
    reg.create_model("fraud")
    waiting = _Waiting(live_server.url, after=1, wait=60)
    time.sleep(0.5)
    reg.set_description("fraud", "scores card payments")
    assert [e["event"] for e in waiting.answer().json()["items"]] == ["registry:model:describe"]
    reg.close()


@pytest.mark.parametrize(
    "params",
    [
        {"after": -1},
        {"after": "x"},
        {"after": 2**62 + 1},
        {"wait": 61},
        {"wait": -1},
        {"wait": "soon"},
        {"limit": 0},
        {"limit": 1001},
        {"model": "%"},
        {"model": "fraud;drop"},
        {"model": "x" * 201},
    ],
)
def test_bad_parameters_answer_400(live_server: LiveServer, params: dict[str, Any]) -> None:
    answer = _events(live_server.url, **params)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] in ("invalid_input", "invalid_name")


@pytest.fixture
def tokens(home: Path, files: Path, live_server: LiveServer) -> dict[str, str]:
    """``fraud`` and ``churn``; ann views ``fraud`` only, bob holds no role, eve views all."""
    local = modelreg.Registry(home)
    local.register("fraud", files / "model.pkl", capture=False)
    local.register("churn", files / "model.pkl", capture=False)
    local.create_user("ann", role="viewer", model="fraud")
    local.create_user("bob")
    local.create_user("eve", role="viewer")
    local.set_tags("churn", {"secret": "yes"})
    made = {n: local.create_token(n)["token"] for n in ("ann", "bob", "eve")}
    local.close()
    return made


def test_a_per_model_grant_streams_only_that_models_events(
    live_server: LiveServer, tokens: dict[str, str]
) -> None:
    answer = _events(live_server.url, tokens["ann"], after=0, limit=1000)
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    assert items
    assert {e["model"] for e in items} == {"fraud"}
    assert "churn" not in answer.text
    everything = _events(live_server.url, tokens["eve"], after=0, limit=1000).json()
    assert answer.json()["next_after"] == everything["next_after"]
    assert {e["model"] for e in everything["items"]} >= {"fraud", "churn", None}


def test_an_unreadable_change_never_wakes_a_reader_with_items(
    home: Path, live_server: LiveServer, tokens: dict[str, str]
) -> None:
    head = _events(live_server.url, tokens["ann"]).json()["next_after"]
    waiting = _Waiting(live_server.url, tokens["ann"], after=head, wait=1)
    local = modelreg.Registry(home)
    local.set_tags("churn", {"more": "secrets"})
    local.close()
    answer = waiting.answer()
    assert answer.json()["items"] == []
    assert answer.json()["next_after"] >= head + 1  # skipped, never shown


def test_no_role_at_all_is_refused(live_server: LiveServer, tokens: dict[str, str]) -> None:
    answer = _events(live_server.url, tokens["bob"], after=0)
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "permission_denied"


def test_without_a_token_nothing_streams(live_server: LiveServer, tokens: dict[str, str]) -> None:
    assert _events(live_server.url, after=0).status_code == 401
