"""The MLflow door's service layer: tracking state, the artifact tree, sources, filters, rename.

Behaviour runs on SQLite and PostgreSQL (``db_url``); the filter parser, which never reaches
the rows, runs once.
"""

from __future__ import annotations

import io
import threading

import pytest

from modelreg import errors
from modelreg.db.session import transaction
from modelreg.db.tables import Role
from modelreg.services import (
    gc,
    lifecycle,
    mlflow_filter,
    models,
    policies,
    registration,
    tracking,
    versions,
)
from modelreg.services.actor import Actor
from modelreg.services.policies import RuleSpec
from service_db import ServiceRegistry, engine_for, migrated_template

OWNER = Actor("admin")
CONTRIB = Actor("carol", superuser=False, grants={None: Role.CONTRIBUTOR})
VIEWER = Actor("vic", superuser=False, grants={None: Role.VIEWER})


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory):
    return migrated_template(tmp_path_factory.mktemp("tracking-template"))


@pytest.fixture
def reg(db_url, sqlite_template):
    engine = engine_for(db_url, sqlite_template)
    yield Tracker(engine)
    engine.dispose()


class Tracker(ServiceRegistry):
    """Shortcuts: a run with a logged model whose files are in the tree."""

    def put(self, path: str, data: bytes, actor: Actor = OWNER) -> str:
        info = self.store.put(io.BytesIO(data))
        self.run(tracking.tree.put_artifact, path, info.sha256, info.size, actor=actor)
        return info.sha256

    def logged_model(self, files: dict[str, bytes] | None = None) -> tuple[str, str, str]:
        """(experiment id, run id, model id) of a run that logged a model with ``files``."""

        def make(session):
            run = tracking.runs.create_run(session, actor=OWNER, experiment="0")
            point = tracking.run_logging.metric_point({"key": "accuracy", "value": 0.9, "step": 1})
            tracking.run_logging.log_batch(
                session, run.id, actor=OWNER, metrics=[point], params={"C": "1.0"}
            )
            model = tracking.logged_models.create_logged_model(
                session, actor=OWNER, experiment="0", name="model", source_run_id=run.id
            )
            return str(run.experiment_id), run.id, model.id

        exp, run_id, model_id = self.run(make)
        for rel, data in (files or {"MLmodel": b"flavors: {}\n", "model.skops": b"w"}).items():
            self.put(f"{exp}/models/{model_id}/artifacts/{rel}", data)
        return exp, run_id, model_id

    def register_from(self, source: str, name: str = "m", actor: Actor = OWNER) -> int:
        def call(session):
            found = tracking.sources.resolve_source(session, source, actor=actor)
            metrics, params = tracking.sources.registration_lineage(found)
            run_id = found.run.id if found.run is not None else None
            spec = registration.RegistrationSpec(
                name=name,
                files=found.files,
                metrics=metrics,
                params=params,
                lineage=versions.Lineage(run_id=run_id, source=source),
            )
            return registration.register_version(session, self.store, spec, actor=actor).number

        return self.run(call)


# --------------------------------------------------------------------------------------------
# Runs


def test_default_experiment_appears_on_first_use(reg):
    experiment = reg.run(tracking.experiments.get_experiment, "0", actor=OWNER)
    assert (experiment.id, experiment.name) == (0, "Default")
    made = reg.run(lambda s: tracking.experiments.create_experiment(s, "churn", actor=OWNER).id)
    assert made >= 1
    with pytest.raises(errors.AlreadyExists):
        reg.run(lambda s: tracking.experiments.create_experiment(s, "churn", actor=OWNER))
    with pytest.raises(errors.NotFound):
        reg.run(tracking.experiments.get_experiment, "999", actor=OWNER)
    with pytest.raises(errors.InvalidInput):
        reg.run(tracking.experiments.get_experiment, "../1", actor=OWNER)


def test_security_experiments_belong_to_their_creator(reg):
    """Issue 18, finding 7: per-model principals see and change only their own experiments."""
    reg.register("a")
    reg.register("b")
    ann = Actor("ann", superuser=False, grants={reg.model_id("a"): Role.CONTRIBUTOR})
    ben = Actor("ben", superuser=False, grants={reg.model_id("b"): Role.CONTRIBUTOR})
    mine = reg.run(lambda s: tracking.experiments.create_experiment(s, "ann-exp", actor=ann).id)
    theirs = reg.run(lambda s: tracking.experiments.create_experiment(s, "ben-exp", actor=ben).id)
    assert reg.run(tracking.experiments.get_experiment, str(mine), actor=ann).name == "ann-exp"
    for call in (
        lambda s: tracking.experiments.get_experiment(s, str(theirs), actor=ann),
        lambda s: tracking.experiments.get_experiment_by_name(s, "ben-exp", actor=ann),
        lambda s: tracking.experiments.set_experiment_tag(s, str(theirs), "k", "v", actor=ann),
        lambda s: tracking.runs.create_run(s, actor=ann, experiment=str(theirs)),
        lambda s: tracking.logged_models.create_logged_model(s, actor=ann, experiment=str(theirs)),
    ):
        with pytest.raises(errors.NotFound, match="no experiment"):
            reg.run(call)
    seen = reg.run(lambda s: [e.id for e in tracking.experiments.search_experiments(s, actor=ann)])
    assert sorted(seen) == [0, mine]
    assert sorted(
        reg.run(lambda s: [e.id for e in tracking.experiments.search_experiments(s, actor=VIEWER)])
    ) == [0, mine, theirs]
    # The shared Default: everyone logs into it, only an admin changes it.
    reg.run(lambda s: tracking.runs.create_run(s, actor=ann, experiment="0"))
    for actor in (ann, CONTRIB):
        with pytest.raises(errors.PermissionDenied):
            reg.run(
                lambda s, a=actor: tracking.experiments.set_experiment_tag(
                    s, "0", "k", "v", actor=a
                )
            )
    # Another's experiment: a registry-wide contributor logs into it but may not change it.
    reg.run(lambda s: tracking.runs.create_run(s, actor=CONTRIB, experiment=str(theirs)))
    with pytest.raises(errors.PermissionDenied):
        reg.run(
            lambda s: tracking.experiments.set_experiment_tag(
                s, str(theirs), "k", "v", actor=CONTRIB
            )
        )
    reg.run(
        lambda s: tracking.experiments.set_experiment_tag(s, str(theirs), "k", "ben", actor=ben)
    )
    reg.run(lambda s: tracking.experiments.set_experiment_tag(s, "0", "k", "admin", actor=OWNER))
    tags = reg.run(
        lambda s: dict(tracking.experiments.get_experiment(s, str(theirs), actor=OWNER).tags)
    )
    assert tags == {"k": "ben"}


def test_latest_metric_is_the_highest_step_and_params_are_immutable(reg):
    run_id = reg.run(lambda s: tracking.runs.create_run(s, actor=OWNER, experiment="0").id)
    points = [
        tracking.run_logging.metric_point(
            {"key": "loss", "value": v, "step": step, "timestamp": 1000 + step}
        )
        for v, step in ((0.9, 0), (0.3, 2), (0.5, 1))
    ]
    reg.run(
        lambda s: tracking.run_logging.log_batch(
            s, run_id, actor=OWNER, metrics=points, params={"lr": 1}
        )
    )
    run = reg.run(lambda s: tracking.runs.get_run(s, run_id, actor=OWNER))
    assert run.metrics["loss"][0] == 0.3
    assert [
        p["value"]
        for p in reg.run(
            lambda s: tracking.run_logging.metric_history(s, run_id, "loss", actor=OWNER)
        )
    ] == [0.9, 0.3, 0.5]
    # Same value again: fine. A different value: refused, and nothing of that batch applies.
    reg.run(lambda s: tracking.run_logging.log_batch(s, run_id, actor=OWNER, params={"lr": "1"}))
    with pytest.raises(errors.InvalidInput, match="immutable"):
        reg.run(
            lambda s: tracking.run_logging.log_batch(
                s, run_id, actor=OWNER, params={"lr": "2"}, tags={"late": "x"}
            )
        )
    assert "late" not in reg.run(lambda s: tracking.runs.get_run(s, run_id, actor=OWNER)).tags


def test_nan_metrics_are_kept_as_mlflow_spells_them(reg):
    run_id = reg.run(lambda s: tracking.runs.create_run(s, actor=OWNER, experiment="0").id)
    points = [tracking.run_logging.metric_point({"key": "x", "value": "NaN"})]
    reg.run(lambda s: tracking.run_logging.log_batch(s, run_id, actor=OWNER, metrics=points))
    assert reg.run(lambda s: tracking.runs.get_run(s, run_id, actor=OWNER)).metrics["x"][0] == "NaN"
    with pytest.raises(errors.InvalidInput):
        tracking.run_logging.metric_point({"key": "x", "value": True})


def test_viewers_cannot_log(reg):
    with pytest.raises(errors.PermissionDenied):
        reg.run(lambda s: tracking.runs.create_run(s, actor=VIEWER, experiment="0"))


def test_concurrent_log_batches_lose_nothing(reg):
    run_id = reg.run(lambda s: tracking.runs.create_run(s, actor=OWNER, experiment="0").id)
    failures: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for step in range(5):
                point = tracking.run_logging.metric_point(
                    {"key": f"m{n}", "value": step, "step": step}
                )
                reg.run(
                    lambda s, p=point: tracking.run_logging.log_batch(
                        s, run_id, actor=OWNER, metrics=[p]
                    )
                )
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    for n in range(6):
        points = reg.run(
            lambda s, k=f"m{n}": tracking.run_logging.metric_history(s, run_id, k, actor=OWNER)
        )
        assert [p["step"] for p in points] == list(range(5))


# --------------------------------------------------------------------------------------------
# The artifact tree and sources


def test_a_logged_model_registers_with_its_runs_lineage(reg):
    _exp, run_id, model_id = reg.logged_model()
    number = reg.register_from(f"models:/{model_id}")

    def facts(session, n):
        version = versions.resolve(session, f"m:{n}")
        return {
            "run_id": version.run_id,
            "source": version.source_uri,
            "files": sorted((f.path, f.sha256) for f in version.files),
            "metrics": {m.key: m.value for m in version.metrics},
            "params": {p.key: p.value for p in version.params},
        }

    first = reg.run(facts, number)
    assert first["run_id"] == run_id
    assert first["source"] == f"models:/{model_id}"
    assert [path for path, _ in first["files"]] == ["MLmodel", "model.skops"]
    assert first["metrics"] == {"accuracy": 0.9}
    assert first["params"] == {"C": "1.0"}
    # MLflow 3's runs:/RUN/NAME means the run's logged model NAME.
    again = reg.run(facts, reg.register_from(f"runs:/{run_id}/model"))
    assert again["files"] == first["files"]


def test_a_source_may_name_one_file(reg):
    exp, run_id, _model = reg.logged_model()
    reg.put(f"{exp}/{run_id}/artifacts/weights/model.pkl", b"pickled")
    for source in (
        f"runs:/{run_id}/weights/model.pkl",
        f"mlflow-artifacts:/{exp}/{run_id}/artifacts/weights/model.pkl",
    ):
        number = reg.register_from(source)
        files = reg.run(lambda s, n=number: [f.path for f in versions.resolve(s, f"m:{n}").files])
        assert files == ["model.pkl"]


def test_a_registered_version_never_changes_when_the_tree_does(reg):
    exp, _run, model_id = reg.logged_model({"model.bin": b"first"})
    number = reg.register_from(f"mlflow-artifacts:/{exp}/models/{model_id}/artifacts")
    reg.put(f"{exp}/models/{model_id}/artifacts/model.bin", b"second")
    view = tracking.tree.version_view_path("m", number)
    digest, size, _name = reg.run(
        lambda s: tracking.tree.open_artifact(s, f"{view}/model.bin", actor=OWNER)
    )
    assert reg.store.open(digest).read() == b"first"
    listing = reg.run(lambda s: tracking.tree.list_artifacts(s, view, actor=OWNER))
    assert listing == [{"path": "model.bin", "is_dir": False, "file_size": size}]
    with pytest.raises(errors.PermissionDenied):
        reg.put(f"{view}/model.bin", b"forged")


@pytest.mark.parametrize(
    "source",
    [
        "file:///etc/passwd",
        "s3://someone-else/model",
        "http://169.254.169.254/latest/meta-data",
        "https://example.com/model",
        "mlflow-artifacts://evil.example/0/x",
        "dbfs:/models/x",
        "/etc/passwd",
        "models:/m-00000000000000000000000000000000/../x",
        "runs:/0123/../../etc",
        "mlflow-artifacts:/0/../../etc/passwd",
        "mlflow-artifacts:/0/%2e%2e/x",
        "runs:/abc\\..\\x",
        "",
        "x" * 3000,
    ],
)
def test_sources_outside_the_registry_are_refused(reg, source):
    reg.logged_model()
    with pytest.raises((errors.InvalidInput, errors.NotFound)):
        reg.register_from(source)
    assert reg.run(lambda s: models.find_model(s, "m")) is None


def test_tree_paths_stay_inside_runs_and_logged_models(reg):
    exp, run_id, model_id = reg.logged_model()
    for path in (
        "../x",
        f"{exp}/{run_id}/artifacts/../../x",
        f"{exp}/{run_id}/x",  # not under artifacts/
        f"{exp}/{'0' * 32}/artifacts/x",  # no such run
        f"9/{run_id}/artifacts/x",  # the run is in another experiment
        f"{exp}/models/{model_id}/artifacts",  # the folder itself
        "/abs/path",
        "a\\b",
    ):
        with pytest.raises((errors.InvalidInput, errors.NotFound)):
            reg.put(path, b"x")
    # A file cannot become a folder, nor a folder a file.
    reg.put(f"{exp}/{run_id}/artifacts/a/b", b"x")
    with pytest.raises(errors.InvalidPath, match="clashes"):
        reg.put(f"{exp}/{run_id}/artifacts/a", b"x")
    with pytest.raises(errors.InvalidPath, match="clashes"):
        reg.put(f"{exp}/{run_id}/artifacts/a/b/c", b"x")
    with pytest.raises(errors.PermissionDenied):
        reg.put(f"{exp}/{run_id}/artifacts/v.txt", b"x", actor=VIEWER)


def test_listing_is_one_level_with_folders(reg):
    exp, run_id, _model = reg.logged_model()
    for rel in ("model/MLmodel", "model/data/w.bin", "notes.txt"):
        reg.put(f"{exp}/{run_id}/artifacts/{rel}", b"abc")
    root = f"{exp}/{run_id}/artifacts"
    listing = reg.run(lambda s: tracking.tree.list_artifacts(s, root, actor=OWNER))
    assert listing == [
        {"path": "model", "is_dir": True},
        {"path": "notes.txt", "is_dir": False, "file_size": 3},
    ]
    inner = reg.run(lambda s: tracking.tree.list_artifacts(s, f"{root}/model", actor=OWNER))
    assert [e["path"] for e in inner] == ["MLmodel", "data"]
    removed = reg.run(lambda s: tracking.tree.delete_artifacts(s, f"{root}/model", actor=OWNER))
    assert removed == 2


def test_a_version_view_needs_read_on_its_model(reg):
    reg.register("secret")
    other = reg.run(lambda s: models.get_model(s, "secret", actor=None).id)
    reg.register("open")
    readable = reg.run(lambda s: models.get_model(s, "open", actor=None).id)
    outsider = Actor("eve", superuser=False, grants={readable: Role.VIEWER})
    assert other is not None
    # An unreadable model is absent to eve (issue 18, finding 10).
    with pytest.raises(errors.ModelNotFound):
        reg.run(lambda s: tracking.tree.list_artifacts(s, "_registry/secret/1", actor=outsider))
    with pytest.raises(errors.ModelNotFound):
        reg.run(
            lambda s: tracking.tree.open_artifact(s, "_registry/secret/1/model.bin", actor=outsider)
        )
    with pytest.raises(errors.ModelNotFound):
        reg.register_from("models:/secret/1", name="open", actor=outsider)
    files = reg.run(lambda s: tracking.tree.list_artifacts(s, "_registry/open/1", actor=outsider))
    assert [f["path"] for f in files] == ["model.bin"]


def test_gc_keeps_blobs_the_tree_names(reg):
    exp, _run, model_id = reg.logged_model({"only-here.bin": b"unregistered bytes"})
    digest = reg.run(
        lambda s: tracking.tree.open_artifact(
            s, f"{exp}/models/{model_id}/artifacts/only-here.bin", actor=OWNER
        )[0]
    )
    reg.run(lambda s: gc.collect(s, reg.store, actor=OWNER, grace_seconds=-1))
    assert reg.store.exists(digest)


# --------------------------------------------------------------------------------------------
# Rename


def test_rename_keeps_numbers_and_policies(reg):
    for _ in range(3):
        reg.register("old")
    reg.run(
        lambda s: policies.set_rule(
            s, "old", "production", RuleSpec(requires=["metrics.auc >= 0.9"]), actor=OWNER
        )
    )
    reg.run(lambda s: models.rename_model(s, "old", "new", actor=OWNER))
    assert reg.run(lambda s: versions.resolve(s, "new:3").number) == 3
    # The gate moved with the model: a rename is no way around it.
    outcome = reg.run(lambda s: lifecycle.promote(s, "new", 3, "production", actor=OWNER).state)
    assert outcome.value == "refused"
    # The old name, re-created, never hands out 1-3 again.
    assert reg.register("old") == 4
    with pytest.raises(errors.PermissionDenied):
        reg.run(lambda s: models.rename_model(s, "new", "newer", actor=CONTRIB))
    with pytest.raises(errors.AlreadyExists):
        reg.run(lambda s: models.rename_model(s, "new", "old", actor=OWNER))


def test_rename_onto_a_deleted_name_skips_its_numbers(reg):
    for _ in range(5):
        reg.register("gone")
    reg.run(lambda s: models.delete_model(s, "gone", actor=OWNER))
    reg.register("fresh")
    reg.run(lambda s: models.rename_model(s, "fresh", "gone", actor=OWNER))
    assert reg.register("gone") == 6


# --------------------------------------------------------------------------------------------
# MLflow filters (no rows involved)


def test_filter_parser_reads_mlflow_syntax():
    clauses = mlflow_filter.parse(
        "name LIKE 'fraud%' AND tags.`team name` = \"risk\" AND version_number IN (1, 2) "
        "AND tag.`mlflow.prompt.is_prompt` != 'true' AND attributes.run_id NOT IN ('a')"
    )
    assert [(c.field, c.tag, c.op, c.value) for c in clauses] == [
        ("name", None, "LIKE", "fraud%"),
        ("tags", "team name", "=", "risk"),
        ("version_number", None, "IN", ["1", "2"]),
        ("tags", "mlflow.prompt.is_prompt", "!=", "true"),
        ("run_id", None, "NOT IN", ["a"]),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "name = 'x' OR 1=1",
        "name = 'x",
        "name 'x'",
        "name = x",
        "= 'x'",
        "name IN 'x'",
        "name IN ('x'",
        "name = 'a' AND",
        " AND ".join(["name = 'a'"] * 100),
        "name; DROP TABLE models",
    ],
)
def test_filter_parser_refuses_what_it_cannot_read(text):
    with pytest.raises(errors.InvalidQuery):
        mlflow_filter.parse(text)


def test_filters_select_the_right_rows(reg):
    for name, team in (("fraud-a", "risk"), ("fraud-b", None), ("churn", "growth")):
        reg.register(name)
        if team:
            reg.run(
                lambda s, n=name, t=team: models.set_model_tags(
                    s, n, actor=OWNER, set_tags={"team": t}
                )
            )

    def names(text):
        from sqlalchemy import select

        from modelreg.db.tables import Model

        with transaction(reg.engine, write=False) as session:
            condition = mlflow_filter.models_condition(text)
            query = select(Model.name).order_by(Model.name)
            if condition is not None:
                query = query.where(condition)
            return list(session.scalars(query))

    assert names("name LIKE 'fraud%'") == ["fraud-a", "fraud-b"]
    assert names("tags.team = 'risk'") == ["fraud-a"]
    assert names("tags.team != 'risk'") == ["churn", "fraud-b"]
    assert names("name ILIKE 'CHURN'") == ["churn"]
    with pytest.raises(errors.InvalidQuery):
        names("run_id = 'x'")
