"""``modelreg.Registry``: one Python API for the embedded registry and for a server."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelreg.client._backend import Backend, Progress
from modelreg.client._deployments import Deployments
from modelreg.client._files import capture_environment, capture_git, collect_files
from modelreg.client._identity import Identity
from modelreg.client._notify import Notifications
from modelreg.client._operations import Operations
from modelreg.client._policies import PolicyRules
from modelreg.client._signing import Signing
from modelreg.errors import InvalidInput
from modelreg.location import is_remote, resolve_uri
from modelreg.names import (
    Ref,
    Stage,
    parse_instant,
    parse_ref,
    validate_metric,
    validate_model_name,
)

# Annotations only: the backends build the results, so `import` of the client stays light.
if TYPE_CHECKING:
    from modelreg.client._import_summary import ImportSummary
    from modelreg.types import (
        AuditAnchor,
        AuditEvent,
        AuditVerification,
        Comparison,
        Deleted,
        Event,
        HistoryEntry,
        LineageGraph,
        Model,
        Page,
        Promotion,
        Rollback,
        Version,
    )

__all__ = ["Registry"]

Pathish = str | os.PathLike[str]


def _kv(values: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict(values or {})


class Registry(Notifications, Deployments, Signing, PolicyRules, Identity, Operations):
    """A model registry: the embedded default, a folder, or a server (``http://HOST:PORT``).

    Usage::

        import modelreg

        reg = modelreg.Registry()                       # embedded default (MODELREG_HOME)
        v = reg.register("fraud", "model.pkl", metrics={"accuracy": 0.91})
        reg.set_alias("fraud", "champion", v.version)
        reg.get_version("fraud@champion").files

    Args:
        uri: a registry folder, a server URL, or ``None`` for ``MODELREG_URI`` /
            ``MODELREG_HOME`` / the user data folder.
        token: an API token for a server (unused by folder registries).
    """

    # How ``register`` labels the environment it reads from its own process; the CLI says
    # ``cli-process`` (the CLI's packages, not the training script's).
    process_label = "python-process"

    def __init__(self, uri: Pathish | None = None, *, token: str | None = None) -> None:
        self.uri = resolve_uri(uri)
        self.token = token or os.environ.get("MODELREG_TOKEN")
        self._backend: Backend | None = None

    def __repr__(self) -> str:
        return f"Registry({self.uri!r})"

    @property
    def backend(self) -> Backend:
        """The backend, opened on first use (constructing a ``Registry`` does no I/O)."""
        if self._backend is None:
            if is_remote(self.uri):
                from modelreg.client._http import HttpBackend

                self._backend = HttpBackend(self.uri, token=self.token)
            else:
                # Imported by name so that `import modelreg` never loads SQLAlchemy.
                local = importlib.import_module("modelreg.local")
                self._backend = local.open_backend(self.uri)
        return self._backend

    def close(self) -> None:
        """Release connections; the registry reopens on next use."""
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------

    def register(
        self,
        name: str,
        paths: Pathish | Sequence[Pathish] | None = None,
        *,
        model: Any = None,
        flavor: str | None = None,
        input_example: Any = None,
        metrics: Mapping[str, float] | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        description: str = "",
        semver: str | None = None,
        bump: str | None = None,
        datasets: Sequence[str] = (),
        parents: Sequence[str] = (),
        run_id: str | None = None,
        source: str | None = None,
        imported_from: str | None = None,
        framework: str | None = None,
        idempotency_key: str | None = None,
        number: int | None = None,
        stage: str | None = None,
        capture: bool = True,
        env_from: Pathish | None = None,
        progress: Progress = None,
    ) -> Version:
        """Register a new version of ``name`` from files and/or folders, or a Python object.

        The model is created if needed. With ``capture`` the git commit of the working
        directory and the Python environment are recorded as lineage: called from the training
        script, that is the training environment (``environment.source`` says
        ``python-process``); ``env_from`` reads it from elsewhere instead.

        Args:
            name: model name (``fraud`` or ``team/fraud``).
            paths: a file, a folder (its tree is kept) or a list of them.
            model: instead of ``paths``, a Python object (a fitted estimator, a network…),
                saved with its flavor (docs/serving.md); ``load`` gives it back.
            flavor: the flavor to save ``model`` with (``sklearn``, ``pytorch``, ``onnx``,
                ``xgboost``, ``lightgbm``, ``pickle`` or a plug-in's); detected when omitted.
            input_example: a few rows of input (DataFrame, dict of columns, list or array):
                the signature is inferred from it, and it is stored to warm a server up.
            metrics: numeric metrics, immutable once registered.
            params: training parameters (stored as strings).
            tags: labels; these stay editable.
            description: free text.
            semver: an explicit semantic version, unique per model.
            bump: ``major``, ``minor`` or ``patch`` to derive the semver from the latest one.
            datasets: ``NAME@VERSION_OR_DIGEST`` entries.
            parents: ``NAME:VERSION`` of versions this one derives from.
            run_id: the training run's id.
            source: where the files came from, e.g. an MLflow ``runs:/…`` URI (recorded only).
            imported_from: the version this one copies in another registry (set by imports).
            framework: e.g. ``sklearn``, ``pytorch``.
            idempotency_key: retrying with the same key returns the same version.
            number: for imports (admin only): this version number instead of the next one; it
                must be greater than every number the model ever used.
            stage: for imports (admin only): the version's first stage, e.g. ``production``.
            capture: record git state and installed packages.
            env_from: where the training environment's packages are, when not in this
                process: a ``requirements.txt``, a ``conda.yaml``, a file of ``pip freeze``
                output, or a venv's python (or the venv's folder), which is run to list them.
            progress: called with byte counts as files are stored.

        Raises:
            InvalidInput: bad names, paths or values, or an ``env_from`` that cannot be read;
                nothing is created.
            Conflict: the semver or idempotency key is taken by different content, the
                ``number`` is not above the model's last one, or ``stage`` is production
                while another version holds it.
            PermissionDenied: ``number`` or ``stage`` without the admin role.
        """
        validate_model_name(name)
        clean_metrics = {k: validate_metric(k, v) for k, v in _kv(metrics).items()}
        if model is not None and paths is not None:
            raise InvalidInput("give paths or model, not both", detail={})
        if model is None and paths is None:
            raise InvalidInput("give the paths to register, or model=", detail={})
        if model is None and (flavor is not None or input_example is not None):
            raise InvalidInput("flavor and input_example go with model=", detail={})
        files = None
        if paths is not None:
            files = collect_files([paths] if isinstance(paths, str | os.PathLike) else list(paths))
        lineage: dict[str, Any] = {
            "run_id": run_id,
            "source": source,
            "imported_from": imported_from,
            "datasets": list(datasets),
            "parents": list(parents),
        }
        environment: dict[str, Any] = {}
        if env_from is not None:  # read first: a bad file must stop the registration
            environment = capture_environment(env_from)
        if capture:
            lineage.update(capture_git())
            environment = environment or capture_environment(process=self.process_label)
        meta: dict[str, Any] = {
            "metrics": clean_metrics,
            "params": {k: str(v) for k, v in _kv(params).items()},
            "tags": _kv(tags),
            "description": description,
            "semver": semver,
            "bump": bump,
            "lineage": lineage,
            "environment": environment,
            "framework": framework,
            "idempotency_key": idempotency_key,
            "number": number,
            "stage": Stage.parse(stage).value if stage is not None else None,
        }
        if files is not None:
            return self.backend.register(name, files, meta, progress)
        from modelreg.client._objects import saved_object

        with saved_object(model, flavor=flavor, input_example=input_example) as saved:
            folder, meta["flavor"], meta["signature"] = saved
            meta["framework"] = framework or meta["flavor"]["name"]
            return self.backend.register(name, collect_files([folder]), meta, progress)

    def create_model(
        self, name: str, *, description: str = "", tags: Mapping[str, str] | None = None
    ) -> Model:
        """Create an empty model; raises ``AlreadyExists`` if the name is taken."""
        return self.backend.create_model(name, description, _kv(tags))

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        reason: str = "",
        expect_current: int | None = None,
    ) -> Version:
        """Point ``alias`` at ``version`` (create or move); returns that version.

        ``expect_current`` is the version the alias must point at now (``0``: no version), or
        ``ConcurrentChange`` is raised. A protected alias moves only through its policy:
        ``PolicyViolation`` when a gate fails, ``ApprovalRequired`` (with ``detail["request_id"]``)
        when approvals are needed.
        """
        return self.backend.set_alias(name, alias, int(version), reason, _expected(expect_current))

    def delete_alias(
        self, name: str, alias: str, *, reason: str = "", expect_current: int | None = None
    ) -> int:
        """Remove an alias; returns the version number it pointed at."""
        return self.backend.delete_alias(name, alias, reason, _expected(expect_current))

    # -- lifecycle -----------------------------------------------------------------------

    def promote(
        self,
        name: str,
        version: int,
        to: str,
        *,
        reason: str = "",
        dry_run: bool = False,
        expect_current: int | None = None,
    ) -> Promotion:
        """Move ``version`` into stage ``to`` (or ``@alias``) through the model's policy.

        Returns the request: ``state`` is ``applied``, or ``pending`` when approvals are needed
        (``id`` is what approvers pass to ``approve``). Raises ``PolicyViolation`` (with
        ``failed_criteria``) when a gate refuses it, and ``ConcurrentChange`` when
        ``expect_current`` (``0``: nothing) no longer holds the stage. ``dry_run`` evaluates and
        returns the would-be outcome (refusals included) without changing anything.
        """
        return self.backend.promote(
            name, int(version), to, reason, dry_run, _expected(expect_current)
        )

    def approve(self, request_id: int, *, reason: str = "") -> Promotion:
        """Approve a pending request; the approval completing the count applies it.

        Raises ``PermissionDenied`` for the requester (separation of duties) and for anyone
        without the approver role, and ``PolicyViolation`` when the gates, checked again now,
        refuse it.
        """
        return self.backend.approve(int(request_id), reason)

    def reject(self, request_id: int, *, reason: str) -> Promotion:
        """Reject a pending request (its requester may withdraw it this way)."""
        return self.backend.reject(int(request_id), reason)

    def get_promotion(self, request_id: int) -> Promotion:
        """One promotion request by id."""
        return self.backend.get_promotion(int(request_id))

    def promotions(
        self,
        name: str | None = None,
        *,
        state: str | None = None,
        page_size: int = 100,
        page_token: str | None = None,
    ) -> Page[Promotion]:
        """One page of promotion requests, newest first (``state="pending"``: awaiting approval)."""
        return self.backend.list_promotions(name, state, int(page_size), page_token)

    def rollback(
        self,
        name: str,
        *,
        reason: str,
        stage: str = "production",
        to: int | None = None,
        expect_current: int | None = None,
    ) -> Rollback:
        """Put back the version that held ``stage`` (or ``@alias``) before the current one.

        The emergency brake: approvers need no approval round; the current holder is archived.
        ``to`` picks an earlier holder. Returns what moved (``from_version``, ``to_version``).
        """
        return self.backend.rollback(
            name, stage, None if to is None else int(to), reason, _expected(expect_current)
        )

    def set_tags(
        self, ref: str, tags: Mapping[str, str] | None = None, *, delete: Sequence[str] = ()
    ) -> Model | Version:
        """Set (and/or ``delete``) tags on a model (``NAME``) or a version (``NAME:3``, …)."""
        return self.backend.set_tags(ref, _kv(tags), list(delete))

    def set_description(self, ref: str, description: str) -> Model | Version:
        """Change the description of a model or a version."""
        return self.backend.set_description(ref, description)

    def delete(self, ref: str, *, reason: str = "") -> Deleted:
        """Delete a model or a version; version numbers are never reused."""
        return self.backend.delete(ref, reason)

    # -- reading -------------------------------------------------------------------------

    def get_model(self, name: str) -> Model:
        """A model by name; raises ``ModelNotFound``."""
        return self.backend.get_model(name)

    def get_version(self, ref: str | Ref, *, at: str | datetime | None = None) -> Version:
        """A version by any reference (``NAME:3``, ``NAME@alias``, ``models:/NAME/production``).

        With ``at`` (an ISO time, or an aware ``datetime``), a stage or alias reference answers
        the version that held it at that moment: "which model made this decision?".
        """
        if at is None:
            return self.backend.get_version(str(ref))
        moment = at.isoformat() if isinstance(at, datetime) else at
        parse_instant(moment)
        return self.backend.get_version_at(str(ref), moment)

    def list_models(
        self, filter: str | None = None, *, page_size: int = 100, page_token: str | None = None
    ) -> Page[Model]:
        """One page of models, optionally filtered (``tags.team = 'risk'``)."""
        return self.backend.list_models(filter, page_size, page_token)

    def list_versions(
        self,
        name: str,
        filter: str | None = None,
        *,
        page_size: int = 100,
        page_token: str | None = None,
    ) -> Page[Version]:
        """One page of a model's versions, newest first unless the filter orders them."""
        return self.backend.list_versions(name, filter, page_size, page_token)

    def search(
        self, query: str | None = None, *, page_size: int = 100, page_token: str | None = None
    ) -> Page[Version]:
        """Versions of all models matching ``query`` in the search language."""
        return self.backend.search(query, page_size, page_token)

    def download(self, ref: str, out_dir: Pathish, *, progress: Progress = None) -> list[Path]:
        """Write a version's files under ``out_dir``, each verified against its SHA-256."""
        parse_ref(ref, allow_model=False)
        return self.backend.download(ref, Path(out_dir), progress)

    def load(self, ref: str, *, trust: bool = False, require_signature: bool = False) -> Any:
        """The Python object registered as ``ref`` with ``register(model=…)``.

        Files are fetched once (verified, cached by digest: ``MODELREG_MODEL_CACHE``). A
        model saved in a pickle-family format (pickle, joblib) loads only when its scan is
        clean or with ``trust=True``; a library version that differs from the one it was
        saved with gives a ``LibraryVersionWarning``. With ``require_signature`` the fetched
        files must match a signature by a trusted, unrevoked key before anything is loaded.

        Raises:
            UnsafeModel: a pickle-family model neither trusted nor scanned clean.
            InvalidInput: the version holds files, not an object saved with a flavor.
            SignatureInvalid: ``require_signature`` and no trusted signature holds.
        """
        from modelreg.flavors import open_version

        return open_version(self, ref, trust=trust, require_signature=require_signature).model

    def local_files(self, version: Version) -> Path:
        """``version``'s files in the local model cache (downloaded and verified once)."""
        from modelreg.client._objects import local_files

        return local_files(self.backend, version)

    def compare(self, name: str, a: int, b: int) -> Comparison:
        """Metric, param, tag and file differences between versions ``a`` and ``b``."""
        return self.backend.compare(name, int(a), int(b))

    def lineage(self, ref: str) -> LineageGraph:
        """A version's run, code, data and parents, and the versions derived from it."""
        return self.backend.lineage(ref)

    def history(self, name: str) -> list[HistoryEntry]:
        """Every stage change and alias move of a model."""
        return self.backend.history(name)

    def audit(
        self, model: str | None = None, *, limit: int = 100, after: int = 0
    ) -> list[AuditEvent]:
        """Audit events in order (after sequence number ``after``), optionally for one model."""
        if not 1 <= limit <= 10_000:
            raise InvalidInput("limit must be between 1 and 10000", detail={"limit": limit})
        if not 0 <= after < 2**62:
            raise InvalidInput("after must be a sequence number", detail={"after": after})
        return self.backend.audit(model, limit, after)

    def events(
        self,
        after: int | None = None,
        *,
        model: str | None = None,
        wait: float = 30.0,
        follow: bool = False,
    ) -> Iterator[Event]:
        """Registry events in order, only those you may read (docs/events.md).

        ``after`` is the last ``seq`` seen. Without ``follow``: every event after it (``None``:
        from the start), waiting up to ``wait`` seconds when there is none yet. With
        ``follow``: endlessly, as each is committed (``None``: from now on). ``model`` is a
        name glob (``fraud*``).

        Usage::

            for e in reg.events(follow=True, model="fraud"):
                if e.event == "registry:version:stage" and e.after["stage"] == "production":
                    deploy(e.model, e.version)
        """
        from modelreg.client._events import iterate

        return iterate(self.backend, after, model, wait, follow)

    def verify_audit(self, *, anchors: Sequence[str] = ()) -> AuditVerification:
        """Check the audit log's hash chain: ``ok``, ``events``, ``first_bad_seq``, ``problem``.

        Each of ``anchors`` (``SEQ:HASH``, as ``audit_anchor().anchor`` gave it earlier)
        must still be in the chain: that catches events cut off the end, or a rewritten
        chain, which the chain alone cannot show to whoever can write the database.
        """
        return self.backend.verify_audit(list(anchors))

    def audit_anchor(self) -> AuditAnchor:
        """The audit log's head (``seq``, ``hash``, ``at``, ``anchor``), to keep elsewhere."""
        return self.backend.audit_anchor()

    # -- bundles (client/bundles.py) -----------------------------------------------------

    def export(self, refs: str | Sequence[str], path: Pathish) -> dict[str, Any]:
        """Write the versions ``refs`` name, files and records, into the bundle ``path``.

        Answers the bundle's manifest. ``import_bundle`` on another registry reads it back.
        """
        from modelreg.client.bundles import export

        return export(self, [refs] if isinstance(refs, str) else list(refs), Path(path))

    def import_bundle(self, path: Pathish, *, max_bytes: int | None = None) -> ImportSummary:
        """Register the versions of the bundle at ``path`` here, once every byte is verified.

        Admin only. Importing the same bundle again changes nothing; a number taken here is
        mapped to the next one (``ImportSummary`` lists each version's ``number_here``).

        Raises:
            InvalidInput: a bundle that is damaged, truncated, oversize (``max_bytes``) or
                holds links or paths leaving it; nothing is imported.
        """
        from modelreg.client import _bundle_tar
        from modelreg.client.bundles import import_bundle

        limit = _bundle_tar.DEFAULT_MAX_BYTES if max_bytes is None else max_bytes
        return import_bundle(self, Path(path), max_bytes=limit)


def _expected(value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(
            "expect_current is a version number, or 0 for none", detail={"expect": value}
        )
    return value
