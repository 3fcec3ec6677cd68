"""The MLflow door's searches at the service level, on SQLite and PostgreSQL (``db_url``).

``runs/search`` (issue 19, item 13): MLflow's run filter grammar on metrics, params, tags and
attributes, its order and paging, and who sees which runs. ``LIKE`` keeps case on the door as
in MLflow (item 14), on both databases, without changing /api/v1's search.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from modelreg import errors
from modelreg.db.session import transaction
from modelreg.db.tables import Model, Role
from modelreg.db.tables.tracking import MlflowRun
from modelreg.services import mlflow_filter, models, tracking
from modelreg.services.actor import Actor
from service_db import ServiceRegistry, engine_for, migrated_template

OWNER = Actor("admin")
VIEWER = Actor("vic", superuser=False, grants={None: Role.VIEWER})


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory):
    return migrated_template(tmp_path_factory.mktemp("mlflow-search-template"))


@pytest.fixture
def reg(db_url, sqlite_template):
    engine = engine_for(db_url, sqlite_template)
    yield ServiceRegistry(engine)
    engine.dispose()


def make_run(reg, name, *, actor=OWNER, experiment="0", metrics=None, params=None, tags=None):
    def make(session):
        run = tracking.runs.create_run(session, actor=actor, experiment=experiment, run_name=name)
        points = [
            tracking.run_logging.metric_point({"key": k, "value": v, "step": 0})
            for k, v in (metrics or {}).items()
        ]
        tracking.run_logging.log_batch(
            session, run.id, actor=actor, metrics=points, params=params or {}, tags=tags or {}
        )
        return run.id

    return reg.run(make)


def names(reg, filter=None, *, actor=OWNER, experiments=("0",), order_by=(), **kwargs):
    def call(session):
        found, _more = tracking.runs.search_runs(
            session,
            actor=actor,
            experiment_ids=list(experiments),
            filter=filter,
            order_by=list(order_by),
            **kwargs,
        )
        return [r.name for r in found]

    return reg.run(call)


def ids_by_name(reg):
    return reg.run(
        lambda s: {
            r.name: r.id for r in tracking.runs.search_runs(s, actor=OWNER, experiment_ids=["0"])[0]
        }
    )


@pytest.fixture
def runs(reg):
    make_run(
        reg,
        "a",
        metrics={"acc": 0.95, "val loss": 0.1},
        params={"C": "1.0"},
        tags={"team": "Risk", "another key": "x"},
    )
    make_run(reg, "b", metrics={"acc": 0.80}, params={"C": "0.5"}, tags={"team": "risk"})
    make_run(reg, "c", metrics={"acc": float("nan")}, params={"C": "2"})
    make_run(reg, "d")
    return reg


def test_search_runs_filters_metrics_params_tags_and_attributes(runs):
    assert names(runs, "metrics.acc > 0.9") == ["a"]
    assert names(runs, "metrics.acc <= 0.95", order_by=["metrics.acc ASC"]) == ["b", "a"]
    # NaN compares with nothing; a run without the metric matches no comparison either.
    assert names(runs, "metrics.acc != 0.8") == ["a"]
    assert names(runs, "metrics.`val loss` < 1e-0") == ["a"]
    assert names(runs, "params.C = '0.5'") == ["b"]
    assert names(runs, "params.C IS NULL") == ["d"]
    assert sorted(names(runs, "tags.team IS NOT NULL")) == ["a", "b"]
    ids = {name: i for name, i in ids_by_name(runs).items() if name in ("a", "c")}
    assert sorted(names(runs, f"run_id IN ('{ids['a']}', '{ids['c']}')")) == ["a", "c"]
    assert sorted(names(runs, f"attributes.run_id NOT IN ('{ids['a']}')")) == ["b", "c", "d"]
    assert sorted(names(runs, "params.C != '1.0'")) == ["b", "c"]  # d has no C
    assert names(runs, "tags.`another key` = 'x'") == ["a"]
    assert names(runs, "tags.team = 'risk' AND metrics.acc < 0.9") == ["b"]
    assert names(runs, "attributes.run_name = 'c'") == ["c"]
    assert sorted(names(runs, "status = 'RUNNING'")) == ["a", "b", "c", "d"]
    assert len(names(runs, "attributes.start_time > 0")) == 4


def test_search_runs_like_keeps_case_as_mlflow_does(runs):
    assert names(runs, "tags.team LIKE 'R%'") == ["a"]
    assert names(runs, "tags.team LIKE 'r%'") == ["b"]
    assert sorted(names(runs, "tags.team ILIKE 'r%'")) == ["a", "b"]
    assert names(runs, "tags.team LIKE 'Ris_'") == ["a"]


def test_search_runs_orders_pages_and_views(runs):
    order = names(runs, order_by=["metrics.acc DESC"])
    # Runs without the metric (or with NaN) come last either way, as in MLflow.
    assert order[:2] == ["a", "b"]
    assert sorted(order[2:]) == ["c", "d"]
    assert names(runs, order_by=["params.C"])[:3] == ["b", "a", "c"]
    assert names(runs, order_by=["metrics.`val loss` DESC"])[0] == "a"
    assert names(runs, order_by=["attributes.run_name DESC"]) == ["d", "c", "b", "a"]

    def page(offset):
        def call(session):
            found, more = tracking.runs.search_runs(
                session,
                actor=OWNER,
                experiment_ids=["0"],
                max_results=3,
                offset=offset,
                order_by=["run_name"],
            )
            return [r.name for r in found], more

        return runs.run(call)

    assert page(0) == (["a", "b", "c"], True)
    assert page(3) == (["d"], False)
    run_id = runs.run(
        lambda s: (
            tracking.runs.search_runs(
                s, actor=OWNER, experiment_ids=["0"], filter="run_name = 'd'"
            )[0][0].id
        )
    )
    runs.run(tracking.runs.set_run_lifecycle, run_id, actor=OWNER, deleted=True)
    assert "d" not in names(runs)
    assert names(runs, run_view_type="DELETED_ONLY") == ["d"]
    assert len(names(runs, run_view_type="ALL")) == 4
    assert names(runs, experiments=()) == []  # as MLflow: no experiment, no runs


@pytest.mark.parametrize(
    "text",
    [
        "metrics.acc > 'high'",  # a metric compares with numbers
        "metrics.acc LIKE '0.9%'",
        "params.C > '1'",  # params are strings: no ordering comparisons
        "params.C IN ('1', '2')",  # as in MLflow: IN is for attributes
        "params.C IS 'x'",
        "attributes.run_name IN ('a')",
        "metrics.acc IS NULL",
        "lifecycle_stage = 'deleted'",  # not a searchable attribute
        "metrics.acc > 0.9 OR params.C = '1'",  # MLflow has no OR
        "params.C = '1'; DROP TABLE mlflow_runs",
    ],
)
def test_search_runs_refuses_what_it_cannot_read(runs, text):
    with pytest.raises(errors.InvalidQuery):
        names(runs, text)
    assert len(names(runs)) == 4  # nothing changed


@pytest.mark.parametrize(
    "order_by", [["metrics.acc SIDEWAYS"], ["lifecycle_stage"], ["metrics.acc"] * 11, [7]]
)
def test_search_runs_refuses_orders_it_cannot_read(runs, order_by):
    with pytest.raises(errors.InvalidQuery):
        names(runs, order_by=order_by)


def test_search_runs_binds_values_never_pastes_them(runs):
    """Keys and values are bound parameters: quotes in them are data, not SQL."""
    make_run(runs, "q", params={"it's": "a'); DROP TABLE mlflow_runs; --"})
    assert names(runs, """params.`it's` = "a'); DROP TABLE mlflow_runs; --\"""") == ["q"]
    condition = mlflow_filter.runs_condition(
        "params.`evil key` = 'evil value' AND metrics.m > 1 AND tags.t LIKE 'evil%'"
    )
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        sql = str(select(MlflowRun.id).where(condition).compile(dialect=dialect))
        assert "evil" not in sql, sql
    assert len(names(runs)) == 5


def test_security_search_runs_shows_only_runs_the_caller_may_read(reg):
    """A per-model user sees its own runs, in its own experiments and Default; never others'."""
    reg.register("a")
    reg.register("b")
    ann = Actor("ann", superuser=False, grants={reg.model_id("a"): Role.CONTRIBUTOR})
    ben = Actor("ben", superuser=False, grants={reg.model_id("b"): Role.CONTRIBUTOR})
    ann_exp = str(
        reg.run(lambda s: tracking.experiments.create_experiment(s, "ann-exp", actor=ann).id)
    )
    ben_exp = str(
        reg.run(lambda s: tracking.experiments.create_experiment(s, "ben-exp", actor=ben).id)
    )
    make_run(reg, "ann-default", actor=ann, metrics={"acc": 1.0})
    make_run(reg, "ann-own", actor=ann, experiment=ann_exp, metrics={"acc": 1.0})
    make_run(reg, "ben-default", actor=ben, metrics={"acc": 1.0})
    make_run(reg, "ben-own", actor=ben, experiment=ben_exp, metrics={"acc": 1.0})
    every = ("0", ann_exp, ben_exp)
    assert sorted(names(reg, "metrics.acc > 0", actor=ann, experiments=every)) == [
        "ann-default",
        "ann-own",
    ]
    assert names(reg, actor=ann, experiments=(ben_exp,)) == []  # unseen is absent
    assert sorted(names(reg, actor=VIEWER, experiments=every)) == [
        "ann-default",
        "ann-own",
        "ben-default",
        "ben-own",
    ]


def test_door_like_keeps_case_and_api_v1_search_is_unchanged(reg):
    """Item 14: on the MLflow door LIKE keeps case (SQLite's LIKE does not by default)."""
    for name in ("Fraud-rm", "churn-RM", "churn"):
        reg.register(name)

    def door(text):
        with transaction(reg.engine, write=False) as session:
            query = select(Model.name).where(mlflow_filter.models_condition(text))
            return sorted(session.scalars(query))

    assert door("name LIKE '%rm%'") == ["Fraud-rm"]
    assert door("name LIKE '%RM%'") == ["churn-RM"]
    assert door("name LIKE 'F%'") == ["Fraud-rm"]
    assert door("name ILIKE '%rm%'") == ["Fraud-rm", "churn-RM"]
    assert door("name LIKE '%r_'") == ["Fraud-rm", "churn"]
    assert door("name LIKE '%R_'") == ["churn-RM"]
    assert door("name = 'churn'") == ["churn"]
    # No connection-wide switch: plain LIKE (what /api/v1 compiles to) is the database's own,
    # case-blind on SQLite, on the same connection right after the door's.
    with transaction(reg.engine, write=False) as session:
        door_hits = list(
            session.scalars(
                select(Model.name).where(mlflow_filter.models_condition("name LIKE '%rm%'"))
            )
        )
        plain = sorted(session.scalars(select(Model.name).where(Model.name.like("%rm%"))))
        sqlite = session.get_bind().dialect.name == "sqlite"
    assert door_hits == ["Fraud-rm"]
    assert plain == (["Fraud-rm", "churn-RM"] if sqlite else ["Fraud-rm"])


def test_door_like_on_models_uses_one_case_sensitive_rule(reg):
    reg.register("Risk-model")
    reg.run(
        lambda s: models.set_model_tags(s, "Risk-model", actor=OWNER, set_tags={"team": "Risk"})
    )

    def door(text):
        with transaction(reg.engine, write=False) as session:
            query = select(Model.name).where(mlflow_filter.models_condition(text))
            return list(session.scalars(query))

    assert door("tags.team LIKE 'R%'") == ["Risk-model"]
    assert door("tags.team LIKE 'r%'") == []
