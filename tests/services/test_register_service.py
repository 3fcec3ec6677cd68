"""register_version called directly, as the REST layer will: every bad manifest changes nothing."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from modelreg import errors
from modelreg.db.schema import ensure_schema
from modelreg.db.session import make_engine, transaction
from modelreg.db.tables import AuditEvent, Model, Version
from modelreg.services import models, registration, search, versions
from modelreg.services.audit import Actor
from modelreg.storage.memory import MemoryBlobStore

ACTOR = Actor("tester")


@pytest.fixture
def engine(db_url):
    eng = make_engine(db_url)
    ensure_schema(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def store():
    return MemoryBlobStore()


@pytest.fixture
def blob(store):
    info = store.put(io.BytesIO(b"weights"))
    return versions.FileSpec("model.bin", info.sha256, info.size)


def register(engine, store, files, **kwargs):
    with transaction(engine, write=True) as session:
        spec = registration.RegistrationSpec(name="m", files=files, **kwargs)
        return registration.register_version(session, store, spec, actor=ACTOR).number


def counts(engine):
    with transaction(engine, write=False) as session:
        return tuple(
            session.scalar(select(func.count()).select_from(t))
            for t in (Model, Version, AuditEvent)
        )


BAD = [
    ("no files", lambda b: [], {}, errors.InvalidInput),
    ("not uploaded", lambda b: [versions.FileSpec("a", "e" * 64, 1)], {}, errors.BlobNotFound),
    (
        "wrong size",
        lambda b: [versions.FileSpec("a", b.sha256, b.size + 1)],
        {},
        errors.InvalidInput,
    ),
    ("negative size", lambda b: [versions.FileSpec("a", b.sha256, -1)], {}, errors.InvalidInput),
    ("bad digest", lambda b: [versions.FileSpec("a", "../../x", 1)], {}, errors.InvalidInput),
    ("traversal", lambda b: [versions.FileSpec("../a", b.sha256, b.size)], {}, errors.InvalidPath),
    ("absolute", lambda b: [versions.FileSpec("/etc/x", b.sha256, b.size)], {}, errors.InvalidPath),
    ("backslash", lambda b: [versions.FileSpec("a\\b", b.sha256, b.size)], {}, errors.InvalidPath),
    ("twice", lambda b: [b, b], {}, errors.InvalidPath),
    (
        "case clash",
        lambda b: [
            versions.FileSpec("A.bin", b.sha256, b.size),
            versions.FileSpec("a.bin", b.sha256, b.size),
        ],
        {},
        errors.InvalidPath,
    ),
    ("semver and bump", lambda b: [b], {"semver": "1.0.0", "bump": "minor"}, errors.InvalidInput),
    ("bad semver", lambda b: [b], {"semver": "1.0"}, errors.InvalidInput),
    ("bad bump", lambda b: [b], {"bump": "huge"}, errors.InvalidInput),
    ("env packages", lambda b: [b], {"environment": {"packages": "numpy"}}, errors.InvalidInput),
    ("env python", lambda b: [b], {"environment": {"python": 3.11}}, errors.InvalidInput),
    (
        "long run id",
        lambda b: [b],
        {"lineage": versions.Lineage(run_id="x" * 300)},
        errors.InvalidInput,
    ),
    (
        "bad dataset",
        lambda b: [b],
        {"lineage": versions.Lineage(datasets=["nover"])},
        errors.InvalidInput,
    ),
    ("bad key", lambda b: [b], {"idempotency_key": ""}, errors.InvalidInput),
    ("param NUL", lambda b: [b], {"params": {"a": "x\x00"}}, errors.InvalidInput),
    ("tag key", lambda b: [b], {"tags": {"bad key": "x"}}, errors.InvalidInput),
]


@pytest.mark.parametrize(("label", "files", "kwargs", "error"), BAD, ids=[b[0] for b in BAD])
def test_bad_registrations_change_nothing(engine, store, blob, label, files, kwargs, error):
    with pytest.raises(error):
        register(engine, store, files(blob), **kwargs)
    assert counts(engine) == (0, 0, 0)


def test_lineage_from_the_json_shape(engine, store, blob):
    lineage = versions.Lineage.from_dict(
        {"run_id": "r", "datasets": [{"name": "tx", "ref": "v1"}, "feat@sha256:ab"]}
    )
    assert lineage.datasets == ["tx@v1", "feat@sha256:ab"]
    assert register(engine, store, [blob], lineage=lineage) == 1


def test_model_filters(engine, store, blob):
    with transaction(engine, write=True) as session:
        models.create_model(session, "alpha", actor=ACTOR, description="fraud scorer")
        spec = registration.RegistrationSpec(name="alpha", files=[blob])
        registration.register_version(session, store, spec, actor=ACTOR)
    with transaction(engine, write=False) as session:

        def names(query):
            return [m.name for m in models.list_models(session, actor=ACTOR, filter=query)]

        assert names("owner = 'tester' AND description LIKE '%fraud%'") == ["alpha"]
        assert names("created_at > '2000-01-01T00:00:00Z' ORDER BY updated_at DESC") == ["alpha"]
        assert names("stage = 'none'") == ["alpha"]
        assert names("stage != 'none'") == []
        assert names("alias IS NULL") == ["alpha"]
        with pytest.raises(errors.InvalidQuery):
            names("metrics.auc > 1")
        with pytest.raises(errors.InvalidQuery):
            names("ORDER BY metrics.auc")


@pytest.mark.parametrize(
    "query",
    [
        "stage = 'everywhere'",
        "created_at > 5",
        "created_at > 'yesterday'",
        "semver > 'x'",
        "tags.a.b = 'x'",
        "metrics = 1",
        "ORDER BY colour",
        "name.first = 'x'",
    ],
)
def test_version_query_field_errors(engine, query):
    with transaction(engine, write=False) as session, pytest.raises(errors.InvalidQuery):
        versions.search_versions(session, query, actor=ACTOR)


def test_semver_ordering_and_search(engine, store, blob):
    for semver in ("1.0.0-rc1", "1.0.0", "1.10.0", "1.2.0"):
        register(engine, store, [blob], semver=semver)
    with transaction(engine, write=False) as session:
        found = versions.search_versions(session, "semver >= '1.0.0' ORDER BY semver", actor=ACTOR)
        assert [v.semver for v in found] == ["1.0.0", "1.2.0", "1.10.0"]
        assert search.parse("ORDER BY semver DESC").order_by[0].descending


def test_a_new_version_and_its_model_share_one_timestamp_and_no_alias_query(engine, store, blob):
    # The counter's UPDATE stamps the model, and a new version is known to have no aliases:
    # registering writes each row once and reads nothing back to answer.
    from sqlalchemy import event

    from modelreg.services import serialize

    register(engine, store, [blob])
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with transaction(engine, write=True) as session:
        spec = registration.RegistrationSpec(name="m", files=[blob])
        version = registration.register_version(session, store, spec, actor=ACTOR)
        answer = serialize.version_to_dict(version)
    assert answer["aliases"] == []
    assert answer["version"] == 2
    assert not any("FROM aliases" in s for s in statements)
    assert sum(s.lstrip().upper().startswith("UPDATE MODELS") for s in statements) == 1
    with transaction(engine, write=False) as session:
        model = session.scalars(select(Model)).one()
        stored = session.scalars(select(Version).where(Version.number == 2)).one()
        assert model.updated_at == stored.created_at == stored.updated_at
        assert model.last_version == 2
