"""Issue 22: the event stream's reads (``services.events``), on SQLite and PostgreSQL.

Events are the audit log's, in order, only those the reader may read (a per-model grant sees
that model's events and nothing else); ``next_after`` pages through them without repeats or
gaps and skips what the reader does not see. Each event names its model and version and links
to its UI page.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

import modelreg
from modelreg.config import Settings
from modelreg.db import stamp
from modelreg.db.changes import ChangeFeed
from modelreg.db.session import make_engine, transaction
from modelreg.db.tables import AuditEvent, Model, Role
from modelreg.errors import InvalidInput, PermissionDenied
from modelreg.services import events
from modelreg.services.actor import Actor

OWNER = Actor("owner")


@pytest.fixture
def filled(home: Path, files: Path) -> Iterator[tuple[modelreg.Registry, Engine]]:
    """``fraud`` (2 versions, an alias, a promotion), ``team/churn_model``, ``other``, a user."""
    reg = modelreg.Registry(home)
    reg.register("fraud", files / "model.pkl", capture=False)
    reg.register("team/churn_model", files / "model.pkl", capture=False)
    reg.register("fraud", files / "model_dir", capture=False)
    reg.set_alias("fraud", "champion", 2, reason="better recall")
    reg.promote("fraud", 1, "staging", reason="try it")
    reg.create_model("other")
    reg.create_user("ann", role="viewer", model="fraud")
    engine = make_engine(f"{_db_url(home)}")
    yield reg, engine
    engine.dispose()
    reg.close()


def _db_url(home: Path) -> str:
    return Settings.for_home(home).db_url


def _read(engine: Engine, actor: Actor = OWNER, **kwargs: Any) -> tuple[list[AuditEvent], int]:
    kwargs.setdefault("after", 0)
    with transaction(engine, write=False) as session:
        return events.read_events(session, actor=actor, **kwargs)


def _model_id(engine: Engine, name: str) -> Any:
    with transaction(engine, write=False) as session:
        return session.scalar(select(Model.id).where(Model.name == name))


def _dicts(engine: Engine, public_url: str | None = "https://reg.example.com/") -> list[Any]:
    rows, _ = _read(engine, limit=1000)
    return [events.event_to_dict(row, public_url) for row in rows]


class TestShape:
    def test_each_event_names_its_model_version_and_page(self, filled: Any) -> None:
        _, engine = filled
        by_target = {e["target"]: e for e in _dicts(engine)}
        register = by_target["fraud:2"]
        assert register["event"] == "registry:version:register"
        assert (register["model"], register["version"]) == ("fraud", 2)
        assert register["url"] == "https://reg.example.com/models/fraud/versions/2"
        alias = by_target["fraud@champion"]
        assert (alias["model"], alias["version"], alias["reason"]) == ("fraud", 2, "better recall")
        nested = by_target["team/churn_model:1"]
        assert nested["model"] == "team/churn_model"
        assert nested["url"] == "https://reg.example.com/models/team/churn_model/versions/1"
        assert by_target["other"]["url"] == "https://reg.example.com/models/other"

    def test_a_promotion_links_to_its_request_and_an_identity_event_to_admin(
        self, filled: Any
    ) -> None:
        _, engine = filled
        items = _dicts(engine)
        promote = next(e for e in items if e["event"] == "registry:promotion:promote")
        assert promote["model"] == "fraud"
        assert promote["version"] == 1
        assert (
            promote["url"] == f"https://reg.example.com/promotions/{promote['after']['request_id']}"
        )
        user = next(e for e in items if e["event"] == "auth:user:create")
        assert (user["model"], user["version"]) == (None, None)
        assert user["url"] == "https://reg.example.com/admin"

    def test_without_public_url_no_event_has_a_url(self, filled: Any) -> None:
        _, engine = filled
        assert {e["url"] for e in _dicts(engine, None)} == {None}

    def test_the_fields_are_the_documented_ones(self, filled: Any) -> None:
        _, engine = filled
        assert list(_dicts(engine)[0]) == [
            "seq", "event", "at", "actor", "model", "version",
            "target", "reason", "before", "after", "url",
        ]  # fmt: skip


class TestOrderAndPaging:
    def test_pages_follow_next_after_without_repeats_or_gaps(self, filled: Any) -> None:
        _, engine = filled
        everything, head = _read(engine, limit=1000)
        assert [e.seq for e in everything] == list(range(1, head + 1))
        seen: list[int] = []
        after = 0
        while True:
            rows, after = _read(engine, after=after, limit=3)
            if not rows:
                break
            seen += [e.seq for e in rows]
        assert seen == list(range(1, head + 1))
        assert after == head

    def test_no_after_starts_at_the_end(self, filled: Any) -> None:
        _, engine = filled
        _, head = _read(engine, limit=1000)
        assert _read(engine, after=None) == ([], head)

    def test_a_cursor_past_the_end_stays_where_it_is(self, filled: Any) -> None:
        _, engine = filled
        assert _read(engine, after=10_000) == ([], 10_000)


class TestVisibility:
    def test_a_per_model_grant_sees_only_that_models_events(self, filled: Any) -> None:
        _, engine = filled
        fraud = _model_id(engine, "fraud")
        ann = Actor("ann", superuser=False, grants={fraud: Role.VIEWER})
        rows, next_after = _read(engine, ann, limit=1000)
        assert rows
        assert {row.model_id for row in rows} == {fraud}
        _, head = _read(engine, limit=1000)
        assert next_after == head  # the others' events are skipped, not waited on

    def test_paging_a_per_model_grant_skips_what_it_cannot_see(self, filled: Any) -> None:
        _, engine = filled
        fraud = _model_id(engine, "fraud")
        ann = Actor("ann", superuser=False, grants={fraud: Role.VIEWER})
        mine = [e.seq for e in _read(engine, ann, limit=1000)[0]]
        seen: list[int] = []
        after = 0
        while rows_and_next := _read(engine, ann, after=after, limit=2):
            rows, after = rows_and_next
            if not rows:
                break
            seen += [e.seq for e in rows]
        assert seen == mine

    def test_a_registry_wide_viewer_sees_everything(self, filled: Any) -> None:
        _, engine = filled
        viewer = Actor("vic", superuser=False, grants={None: Role.VIEWER})
        rows, head = _read(engine, viewer, limit=1000)
        assert [e.seq for e in rows] == list(range(1, head + 1))

    def test_no_role_at_all_is_refused(self, filled: Any) -> None:
        _, engine = filled
        with pytest.raises(PermissionDenied):
            _read(engine, Actor("nobody", superuser=False))


class TestModelGlob:
    @pytest.mark.parametrize(
        ("glob", "models"),
        [
            ("fraud", {"fraud"}),
            ("FRAUD", {"fraud"}),
            ("fr*", {"fraud"}),
            ("team/*", {"team/churn-model"}),
            ("team/churn.model", {"team/churn-model"}),
            ("[fo]*", {"fraud", "other"}),
            ("?ther", {"other"}),
            ("*", {"fraud", "team/churn-model", "other"}),
        ],
    )
    def test_matches_normalized_names(self, filled: Any, glob: str, models: set[str]) -> None:
        _, engine = filled
        rows, _ = _read(engine, model_glob=glob, limit=1000)
        assert {row.model_key for row in rows} == models

    @pytest.mark.parametrize("glob", ["", "%", "fraud;", "a b", "x" * 201, "fraud\n"])
    def test_refuses_what_is_no_name_pattern(self, filled: Any, glob: str) -> None:
        _, engine = filled
        with pytest.raises(InvalidInput):
            _read(engine, model_glob=glob)


def test_the_feed_hears_of_this_process_commits_once_they_are_done(home: Path) -> None:
    """The in-process source: the engine tells the feed after commit, no poller involved."""
    reg = modelreg.Registry(home)
    reg.create_model("first")
    engine = make_engine(_db_url(home))
    feed = ChangeFeed(engine)
    try:
        with transaction(engine, write=True) as session:
            before = stamp.current(session)
            session.add(Model(name="second", normalized_name="second", owner="t"))
            assert feed.latest == 0  # not committed yet
        assert feed.latest == before + 1
        assert feed.wait(before, timeout=0)
    finally:
        feed.close()
        engine.dispose()
        reg.close()


def test_a_ctrl_c_inside_the_feed_thread_start_leaves_close_working(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C landing in ``Thread.start`` (a CLI following events) must not break ``close``.

    CI once saw ``close`` fail with "cannot join thread before it is started" and the CLI
    exit 1 instead of 0.
    """
    modelreg.Registry(home).close()
    engine = make_engine(_db_url(home))
    feed = ChangeFeed(engine)

    def interrupted(self: threading.Thread) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(threading.Thread, "start", interrupted)
    try:
        with pytest.raises(KeyboardInterrupt), feed.watching():
            pass
    finally:
        monkeypatch.undo()
        feed.close()  # must not raise
        engine.dispose()
    assert feed.wait(0, timeout=0) is False  # closed: waits end at once


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("https://registry.example.com", True),
        ("http://10.0.0.5:8080/registry/", True),
        ("", True),
        ("ftp://registry.example.com", False),
        ("https://user:pw@registry.example.com", False),
        ("registry.example.com", False),
        ("https://registry.example.com/?next=evil", False),
    ],
)
def test_public_url_is_an_http_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, ok: bool
) -> None:
    monkeypatch.setenv("MODELREG_PUBLIC_URL", value)
    if ok:
        assert Settings.for_home(tmp_path).public_url == value
    else:
        with pytest.raises(InvalidInput):
            Settings.for_home(tmp_path)
