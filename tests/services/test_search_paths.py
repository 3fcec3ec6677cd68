"""Every way a page is read gives the same rows, order and tokens (issue #6, scale).

A search across models filtering on a metric walks that metric's index newest first
(``search.versions_query``); any other search walks the versions. Both must find the same
versions in the same order with interchangeable page tokens, on SQLite and PostgreSQL, with
ties in ``created_at``, with per-model readers, and whatever the page size. The bulk
serializers must read exactly like the one-object ones.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, update

from modelreg.db import schema
from modelreg.db.session import make_engine, transaction
from modelreg.db.tables import Model, Role, Version, VersionMetric, VersionStatus
from modelreg.names import Ref
from modelreg.services import lifecycle, models, registration, search, serialize, versions
from modelreg.services.actor import Actor
from modelreg.storage.memory import MemoryBlobStore
from service_db import ServiceRegistry, engine_for, migrated_template

OWNER = Actor("ann")
OTHER_OWNER = Actor("bob")
TIE = datetime(2030, 1, 1, tzinfo=UTC)

# (model, metrics, tags, first stage); registered in this order, oldest first.
VERSIONS: list[tuple[str, dict[str, float], dict[str, str], str | None]] = [
    ("alpha", {"acc": 0.25, "loss": 0.9}, {"team": "risk"}, None),
    ("alpha", {"acc": 0.75, "loss": 0.4}, {"team": "risk"}, None),
    ("beta", {"acc": 0.5}, {"team": "growth"}, None),
    ("alpha", {"acc": 0.95, "loss": 0.1}, {"team": "risk"}, "production"),
    ("beta", {"loss": 0.3}, {"team": "risk"}, None),
    ("gamma", {"acc": 0.75, "loss": 0.2}, {}, "staging"),
    ("beta", {"acc": 0.99, "loss": 0.05}, {"team": "risk"}, "staging"),
    ("gamma", {"acc": 0.1}, {"team": "risk"}, None),
    ("alpha", {"acc": 0.6, "loss": 0.5}, {"team": "growth"}, None),
    ("gamma", {"acc": 0.8, "loss": 0.3}, {"team": "risk"}, None),
    ("beta", {"acc": 0.7}, {"team": "risk"}, None),
    ("alpha", {"acc": 0.6, "loss": 0.6}, {"team": "risk"}, None),
]

DRIVEN = [
    "metrics.acc > 0.5",
    "metrics.acc > 0.5 AND tags.team = 'risk'",
    "tags.team = 'risk' AND metrics.acc >= 0.6",
    "metrics.acc >= 0.2 AND metrics.loss < 0.7",
    "metrics.acc IN (0.25, 0.75, 0.6)",
    "metrics.acc != 0.6",
    "metrics.acc = 0.75",
    "metrics.acc > 0 AND stage = 'staging'",
    "metrics.acc > 0 AND owner = 'bob'",
    "metrics.acc > 0 AND alias = 'champion'",
    "metrics.acc > 0.3 AND NOT tags.team = 'risk'",
    "metrics.acc > 0 AND version >= 3",
    "metrics.acc > 0 AND (tags.team = 'growth' OR metrics.loss < 0.25)",
    "metrics.loss <= 0.5 AND name LIKE 'a%'",
    "metrics.acc > 2",
]
WALKED = [
    None,
    "tags.team = 'risk'",
    "name = 'alpha' AND metrics.acc > 0.5",
    "metrics.acc > 0.5 ORDER BY metrics.loss",
    "NOT metrics.acc > 0.5",
    "metrics.acc > 0.5 OR tags.team = 'growth'",
]


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return migrated_template(tmp_path_factory.mktemp("search-paths-template"))


@pytest.fixture
def reg(db_url: str, sqlite_template: Any) -> Any:
    engine = engine_for(db_url, sqlite_template)
    registry = ServiceRegistry(engine)
    registry.run(lambda s: models.create_model(s, "gamma", actor=OTHER_OWNER))
    registry.run(lambda s: models.create_model(s, "empty", actor=OWNER))
    for name, metrics, tags, stage in VERSIONS:
        registry.register(name, metrics=metrics, tags=tags, stage=stage)
    registry.run(lambda s: lifecycle.set_alias(s, "alpha", "champion", 3, actor=OWNER))
    registry.run(lambda s: lifecycle.set_alias(s, "beta", "champion", 4, actor=OWNER))
    registry.run(lambda s: lifecycle.set_alias(s, "beta", "backup", 4, actor=OWNER))
    yield registry
    engine.dispose()


def _all_pages(reg: Any, text: str | None, page_size: int, actor: Actor = OWNER) -> list[Any]:
    """Every version id the search finds, page by page."""
    found: list[Any] = []
    token = None
    while True:
        with transaction(reg.engine, write=False) as session:
            page = versions.search_versions(
                session, text, actor=actor, page_size=page_size, page_token=token
            )
            found.extend(v.id for v in page)
        token = page.next_page_token
        if token is None:
            return found


def _walking(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every search walk the versions, as before metrics could drive one."""
    monkeypatch.setattr(search, "_is_metric_driver", lambda node: False)


def _newest_first(reg: Any, keep: Any) -> list[Any]:
    with transaction(reg.engine, write=False) as session:
        rows = session.execute(
            select(Version.id, Version.created_at).order_by(
                Version.created_at.desc(), Version.id.desc()
            )
        ).all()
        return [row.id for row in rows if keep(session, row.id)]


def _tie(reg: Any, model: str) -> None:
    """Give every version of ``model`` the same creation time (and its metrics the copy)."""
    with transaction(reg.engine, write=True) as session:
        model_id = models.get_model(session, model, actor=None).id
        ids = list(session.scalars(select(Version.id).where(Version.model_id == model_id)))
        session.execute(update(Version).where(Version.id.in_(ids)).values(created_at=TIE))
        session.execute(
            update(VersionMetric)
            .where(VersionMetric.version_id.in_(ids))
            .values(version_created_at=TIE)
        )


class TestDrivenSearch:
    @pytest.mark.parametrize("text", DRIVEN)
    def test_a_metric_drives_the_search(self, text: str) -> None:
        query, order = search.versions_query(text, readable=None)
        assert "driver" in str(query)
        assert str(order[0][0]).endswith("version_created_at")

    @pytest.mark.parametrize("text", WALKED)
    def test_other_searches_walk_the_versions(self, text: str | None) -> None:
        query, _ = search.versions_query(text, readable=None)
        assert "driver" not in str(query)

    @pytest.mark.parametrize("text", DRIVEN + WALKED)
    def test_same_versions_in_the_same_order(
        self, reg: Any, monkeypatch: pytest.MonkeyPatch, text: str | None
    ) -> None:
        # Every page size on one registry: filling it costs far more than the searches.
        _tie(reg, "beta")
        with monkeypatch.context() as patch:
            _walking(patch)
            walked = _all_pages(reg, text, 1000)
        for page_size in (1, 3, 1000):
            driven = _all_pages(reg, text, page_size)
            assert driven == walked, page_size
            assert len(set(driven)) == len(driven)

    def test_matches_what_the_filter_says(self, reg: Any) -> None:
        def keep(session: Any, version_id: Any) -> bool:
            version = session.get(Version, version_id)
            metrics = {m.key: m.value for m in version.metrics}
            tags = {t.key: t.value for t in version.tags}
            return metrics.get("acc", 0) > 0.5 and tags.get("team") == "risk"

        expected = _newest_first(reg, keep)
        assert len(expected) == 6
        assert _all_pages(reg, "metrics.acc > 0.5 AND tags.team = 'risk'", 2) == expected

    @pytest.mark.parametrize("text", ["metrics.acc > 0.5", "metrics.acc > 0 AND stage = 'none'"])
    def test_tokens_carry_over_between_the_two_walks(
        self, reg: Any, monkeypatch: pytest.MonkeyPatch, text: str
    ) -> None:
        everything = _all_pages(reg, text, 1000)
        with transaction(reg.engine, write=False) as session:
            first = versions.search_versions(session, text, actor=OWNER, page_size=2)
        with monkeypatch.context() as patch:
            _walking(patch)
            with transaction(reg.engine, write=False) as session:
                rest = versions.search_versions(
                    session, text, actor=OWNER, page_size=1000, page_token=first.next_page_token
                )
        assert [v.id for v in first] + [v.id for v in rest] == everything

    def test_a_reader_of_one_model_walks_and_sees_only_that_model(self, reg: Any) -> None:
        beta = reg.model_id("beta")
        reader = Actor("carol", superuser=False, grants={beta: Role.VIEWER})
        text = "metrics.acc > 0.5"
        query, _ = search.versions_query(text, readable=reader.readable_models())
        assert "driver" not in str(query)
        found = _all_pages(reg, text, 1, actor=reader)
        assert found == _all_pages(reg, text, 1000, actor=reader)
        with transaction(reg.engine, write=False) as session:
            assert {session.get(Version, v).model_id for v in found} == {beta}
        assert len(found) == 2

    def test_a_reader_of_every_model_is_driven(self, reg: Any) -> None:
        reader = Actor("dan", superuser=False, grants={None: Role.VIEWER})
        assert reader.readable_models() is None
        assert _all_pages(reg, "metrics.acc > 0.5", 2, actor=reader) == _all_pages(
            reg, "metrics.acc > 0.5", 1000
        )

    def test_ties_page_by_id_within_one_model(self, reg: Any) -> None:
        _tie(reg, "alpha")
        pages: list[Any] = []
        token = None
        while True:
            with transaction(reg.engine, write=False) as session:
                page = versions.list_versions(
                    session, "alpha", actor=OWNER, page_size=1, page_token=token
                )
                pages.extend(v.number for v in page)
            token = page.next_page_token
            if token is None:
                break
        assert pages == [5, 4, 3, 2, 1]
        assert _all_pages(reg, "name = 'alpha'", 1) == _all_pages(reg, "name = 'alpha'", 1000)


class TestCopiedCreationTime:
    def test_a_new_metric_carries_its_versions_created_at(self, reg: Any) -> None:
        with transaction(reg.engine, write=False) as session:
            rows = session.execute(
                select(VersionMetric.version_created_at, Version.created_at).join(
                    Version, Version.id == VersionMetric.version_id
                )
            ).all()
        assert len(rows) == sum(len(m) for _, m, _, _ in VERSIONS)
        assert all(copy == original for copy, original in rows)

    def test_a_metric_written_apart_from_its_version_copies_it_too(self, reg: Any) -> None:
        with transaction(reg.engine, write=False) as session:
            version_id, created = session.execute(
                select(Version.id, Version.created_at).order_by(Version.number).limit(1)
            ).one()
        with transaction(reg.engine, write=True) as session:
            # The version is not loaded in this session, and the time given is wrong.
            session.add(
                VersionMetric(version_id=version_id, key="late", value=1.0, version_created_at=TIE)
            )
        with transaction(reg.engine, write=False) as session:
            copy = session.scalar(
                select(VersionMetric.version_created_at).where(
                    VersionMetric.version_id == version_id, VersionMetric.key == "late"
                )
            )
        assert copy == created

    def test_the_migration_fills_it_in_for_existing_metrics(self, db_url: str) -> None:
        engine = make_engine(db_url)
        try:
            schema.ensure_schema(engine)
            registry = ServiceRegistry(engine)
            registry.register("m", metrics={"acc": 0.5, "loss": 0.1})
            registry.register("m", metrics={"acc": 0.7})
            schema.downgrade(engine, "0005")
            schema.upgrade(engine)
            with transaction(engine, write=False) as session:
                rows = session.execute(
                    select(VersionMetric.version_created_at, Version.created_at).join(
                        Version, Version.id == VersionMetric.version_id
                    )
                ).all()
                page = versions.search_versions(session, "metrics.acc > 0", actor=OWNER)
                assert [v.number for v in page] == [2, 1]
        finally:
            engine.dispose()
        assert len(rows) == 3
        assert all(copy == original for copy, original in rows)


class TestBulkSerializers:
    def test_a_searched_page_reads_like_each_version_alone(self, reg: Any) -> None:
        with transaction(reg.engine, write=True) as session:
            store: MemoryBlobStore = reg.store
            extra = store.put(io.BytesIO(b"more weights"))
            spec = registration.RegistrationSpec(
                name="gamma",
                files=[reg.blob, versions.FileSpec("a/config.json", extra.sha256, extra.size)],
                metrics={"acc": 0.9},
                params={"lr": "0.1", "depth": "3"},
                tags={"b": "2", "a": "1"},
                lineage=versions.Lineage(datasets=["train@v3"], parents=["alpha:1", "beta:2"]),
            )
            registration.register_version(session, store, spec, actor=OWNER)
        with transaction(reg.engine, write=False) as session:
            page = versions.search_versions(session, None, actor=OWNER, page_size=1000)
            bulk = serialize.versions_to_dicts(session, list(page))
        for data in bulk:
            with transaction(reg.engine, write=False) as session:
                one = versions.resolve(session, Ref(data["name"], version=data["version"]))
                assert data == serialize.version_to_dict(one)
        assert bulk[0]["lineage"]["parents"] == ["alpha:1", "beta:2"]
        assert [f["path"] for f in bulk[0]["files"]] == ["a/config.json", "model.bin"]
        assert serialize.versions_to_dicts(session, []) == []

    def test_a_listed_model_page_reads_like_the_models_rows(self, reg: Any) -> None:
        with transaction(reg.engine, write=True) as session:
            models.set_model_tags(session, "beta", actor=OWNER, set_tags={"b": "2", "a": "1"})
            # Not ready: the latest *ready* version is the one before it.
            alpha = models.get_model(session, "alpha", actor=None)
            session.execute(
                update(Version)
                .where(Version.model_id == alpha.id, Version.number == 5)
                .values(status=VersionStatus.PENDING)
            )
        with transaction(reg.engine, write=False) as session:
            listed = serialize.models_to_dicts(
                session, list(models.list_models(session, actor=OWNER))
            )
            expected = [_model_by_hand(session, m) for m in session.scalars(select(Model))]
        assert listed == sorted(expected, key=lambda m: m["name"])
        by_name = {m["name"]: m for m in listed}
        assert by_name["alpha"]["latest_version"] == 4
        assert by_name["alpha"]["stages"] == {"production": 3}
        assert by_name["beta"]["aliases"] == {"backup": 4, "champion": 4}
        assert by_name["beta"]["tags"] == {"a": "1", "b": "2"}
        assert by_name["empty"]["latest_version"] is None
        assert serialize.models_to_dicts(session, []) == []


def _model_by_hand(session: Any, model: Model) -> dict[str, Any]:
    rows = list(session.scalars(select(Version).where(Version.model_id == model.id)))
    ready = [v.number for v in rows if v.status is VersionStatus.READY]
    stages: dict[str, int] = {}
    for v in rows:
        if v.stage.value in ("staging", "production"):
            stages[v.stage.value] = max(stages.get(v.stage.value, 0), v.number)
    return {
        "name": model.name,
        "description": model.description,
        "tags": {t.key: t.value for t in model.tags},
        "owner": model.owner,
        "created_at": serialize.iso(model.created_at),
        "updated_at": serialize.iso(model.updated_at),
        "latest_version": max(ready) if ready else None,
        "stages": stages,
        "aliases": {a.name: a.version.number for a in model.aliases},
    }
