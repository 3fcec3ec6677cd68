"""The MLflow door's tracking state: experiments, runs, logged models and their artifact tree.

MLflow clients log a model into a run (or an MLflow 3 "logged model") before registering it, so a
drop-in server must keep that state. modelreg keeps just enough of it: what the client reads
back, and what a registration turns into a version. The bytes are ordinary content-addressed
blobs; ``mlflow_artifacts`` maps the client's relative paths to them (the client names a path in
MLflow's tree, never a storage location: SECURITY.md rule 1).

Tracking writes are scratch state, not registry changes, so they are not in the audit log; the
registration that turns them into a version is, with every file digest, metric and param.

One module per concept, each an attribute of this package (``tracking.runs.get_run``):
``experiments``, ``runs``, ``run_logging`` (metrics, params and tags logged into a run, and a
metric's history), ``logged_models``, ``tree`` (the artifact tree) and ``sources`` (what an
MLflow ``source`` URI registers); ``_access`` holds who may read and write what. Names and
values are checked with ``modelreg.names``, whose MLflow rules are looser than the registry's.
"""

from __future__ import annotations

from modelreg.services.tracking import (
    experiments,
    logged_models,
    run_logging,
    runs,
    sources,
    tree,
)

__all__ = ["experiments", "logged_models", "run_logging", "runs", "sources", "tree"]
