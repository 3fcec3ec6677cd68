"""The embedded backend: the service layer in-process, on a folder's SQLite and blob store.

Loaded lazily by ``modelreg.Registry`` so that importing the client stays light.
"""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from modelreg.client._files import LocalFile, write_verified
from modelreg.config import Settings, os_user
from modelreg.db.changes import ChangeFeed
from modelreg.db.schema import ensure_schema
from modelreg.db.session import make_engine, transaction
from modelreg.db.tables import PrincipalKind, Role
from modelreg.errors import IntegrityFailure, InvalidInput, applied_or_raise
from modelreg.names import Ref, parse_instant, parse_ref, validate_model_name
from modelreg.services import deployments, registration, versions, webhooks
from modelreg.services.actor import Actor
from modelreg.services.scanning import gate as scan_gate
from modelreg.services.usecases import admin, catalog, governance, notify, scans, signing
from modelreg.services.usecases import deployments as serving
from modelreg.services.usecases import sources as source_cases
from modelreg.services.usecases.events import event_page
from modelreg.storage import BlobStore, open_blob_store
from modelreg.storage.base import verify_blob
from modelreg.types import (
    AuditAnchor,
    AuditEvent,
    AuditVerification,
    Comparison,
    Deleted,
    Delivery,
    Deployment,
    Event,
    GcReport,
    HistoryEntry,
    LineageGraph,
    Model,
    Page,
    Policies,
    Policy,
    PolicyApplyReport,
    PolicyRule,
    Promotion,
    Rollback,
    Signature,
    Token,
    TrustedKey,
    User,
    Version,
    Webhook,
)

Progress = Callable[[int], None] | None


class LocalBackend:
    """Runs every use-case against the folder registry described by ``settings``.

    Each verb calls the same use-case function as its REST route
    (``modelreg.services.usecases``) and builds the typed result from the dict it answers,
    as ``HttpBackend`` builds it from the route's body.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.actor = Actor(settings.actor or os_user(), source="embedded")
        self._engine: Engine | None = None
        self._store: BlobStore | None = None
        self._changes: ChangeFeed | None = None

    # -- plumbing ------------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        """The database engine, opened (and the schema checked) on first use."""
        if self._engine is None:
            home = self.settings.home
            if home.exists() and not home.is_dir():
                raise InvalidInput(
                    f"{home} is a file; a registry is a folder", detail={"home": str(home)}
                )
            if not self.settings.db:
                home.mkdir(parents=True, exist_ok=True)
            engine = make_engine(self.settings.db_url)
            try:
                with self._init_lock():
                    ensure_schema(engine, create=self.settings.create)
            except BaseException:
                engine.dispose()
                raise
            scan_gate.configure(str(engine.url), allow_unsafe=self.settings.allow_unsafe_production)
            self._engine = engine
        return self._engine

    @contextlib.contextmanager
    def _init_lock(self) -> Iterator[None]:
        # Thirty processes opening a brand-new registry at once must not all create it.
        if not self.settings.home.is_dir():
            yield
            return
        with open(self.settings.home / ".init.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @property
    def store(self) -> BlobStore:
        """The blob store."""
        if self._store is None:
            self._store = open_blob_store(self.settings.artifacts_location)
        return self._store

    def read(self) -> contextlib.AbstractContextManager[Session]:
        """A read-only transaction (``usecases.Handles``)."""
        return transaction(self.engine, write=False)

    def write(self) -> contextlib.AbstractContextManager[Session]:
        """A write transaction (``usecases.Handles``)."""
        return transaction(self.engine, write=True)

    def close(self) -> None:
        """Release database connections."""
        if self._changes is not None:
            self._changes.close()
            self._changes = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # -- models and versions -------------------------------------------------------------

    def register(
        self, name: str, files: list[LocalFile], meta: dict[str, Any], progress: Progress
    ) -> Version:
        """Store every file's bytes (hashed on the way in), then create the version."""
        validate_model_name(name)
        specs: list[versions.FileSpec] = []
        for item in files:
            try:
                with open(item.source, "rb") as fh:
                    info = self.store.put(fh, progress=progress)
            except OSError as exc:
                raise InvalidInput(
                    f"cannot read {item.source}: {exc.strerror}", detail={"path": str(item.source)}
                ) from None
            specs.append(versions.FileSpec(item.path, info.sha256, info.size))
        return self._register_specs(name, specs, meta)

    def _register_specs(
        self, name: str, specs: list[versions.FileSpec], meta: dict[str, Any]
    ) -> Version:
        spec = registration.RegistrationSpec(
            name=name,
            files=specs,
            metrics=meta.get("metrics", {}),
            params=meta.get("params", {}),
            tags=meta.get("tags", {}),
            description=meta.get("description") or "",
            semver=meta.get("semver"),
            bump=meta.get("bump"),
            lineage=versions.Lineage.from_dict(meta.get("lineage")),
            environment=meta.get("environment", {}),
            framework=meta.get("framework"),
            flavor=meta.get("flavor"),
            signature=meta.get("signature"),
            idempotency_key=meta.get("idempotency_key"),
            number=meta.get("number"),
            stage=meta.get("stage"),
        )
        return Version.from_dict(catalog.register(self, self.actor, spec))

    def create_model(self, name: str, description: str, tags: dict[str, str]) -> Model:
        """Register an empty model."""
        return Model.from_dict(catalog.create_model(self, self.actor, name, description, tags))

    def get_model(self, name: str) -> Model:
        """One model."""
        return Model.from_dict(catalog.get_model(self, self.actor, name))

    def get_version(self, ref: str) -> Version:
        """One version by any reference."""
        return Version.from_dict(catalog.get_version(self, self.actor, ref))

    def list_models(
        self, filter: str | None, page_size: int, page_token: str | None
    ) -> Page[Model]:
        """A page of models."""
        data = catalog.list_models(self, self.actor, filter, page_size, page_token)
        return Page.from_dict(data, Model.from_dict)

    def list_versions(
        self, name: str, filter: str | None, page_size: int, page_token: str | None
    ) -> Page[Version]:
        """A page of one model's versions."""
        data = catalog.list_versions(self, self.actor, name, filter, page_size, page_token)
        return Page.from_dict(data, Version.from_dict)

    def search(self, query: str | None, page_size: int, page_token: str | None) -> Page[Version]:
        """A page of versions across models."""
        data = catalog.search(self, self.actor, query, page_size, page_token)
        return Page.from_dict(data, Version.from_dict)

    def download(self, ref: str, out_dir: Path, progress: Progress) -> list[Path]:
        """Copy a version's files into ``out_dir``, each verified against the manifest."""
        version = catalog.get_version(self, self.actor, ref)
        try:
            return write_verified(
                version["files"],
                out_dir,
                lambda entry: self.store.open(entry["sha256"]),
                label=f"{version['name']}:{version['version']}",
                progress=progress,
            )
        except IntegrityFailure as exc:
            # As a server does (api.blob_send): the damaged copy is set aside, so the next
            # registration of the right bytes stores them again and fsck reports it.
            # Hashed once more first: a copy repaired meanwhile must stay.
            expected = exc.detail.get("expected")
            damaged = (
                isinstance(expected, str)
                and self.store.exists(expected)
                and not verify_blob(self.store, expected)
            )
            if damaged:
                self.store.quarantine(str(expected))
            raise

    def get_version_at(self, ref: str, at: str) -> Version:
        """The version that held a stage or alias reference at moment ``at``."""
        return Version.from_dict(catalog.version_at(self, self.actor, ref, parse_instant(at)))

    def set_alias(
        self, name: str, alias: str, version: int, reason: str, expect_current: int | None
    ) -> Version:
        """Create or move an alias: the version; ``ApprovalRequired`` when it now waits."""
        status, data = governance.set_alias(
            self, self.actor, name, alias, version, reason, expect_current
        )
        applied_or_raise(status, data)
        return Version.from_dict(data)

    def delete_alias(self, name: str, alias: str, reason: str, expect_current: int | None) -> int:
        """Remove an alias; returns the version it pointed at."""
        data = governance.delete_alias(self, self.actor, name, alias, reason, expect_current)
        return int(data["version"])

    # -- lifecycle -----------------------------------------------------------------------

    def promote(
        self,
        name: str,
        version: int,
        target: str,
        reason: str,
        dry_run: bool,
        expect_current: int | None,
    ) -> Promotion:
        """Request a move; committed even when refused, so the attempt stays on record."""
        data = governance.promote(
            self, self.actor, name, version, target, reason, dry_run, expect_current
        )
        return Promotion.from_dict(data)

    def approve(self, request_id: int, reason: str) -> Promotion:
        """Approve a request (applying it when the count is reached)."""
        return Promotion.from_dict(governance.approve(self, self.actor, request_id, reason))

    def reject(self, request_id: int, reason: str) -> Promotion:
        """Reject a pending request."""
        return Promotion.from_dict(governance.reject(self, self.actor, request_id, reason))

    def get_promotion(self, request_id: int) -> Promotion:
        """One request."""
        return Promotion.from_dict(governance.get_promotion(self, self.actor, request_id))

    def list_promotions(
        self, name: str | None, state: str | None, page_size: int, page_token: str | None
    ) -> Page[Promotion]:
        """One page of requests, newest first."""
        data = governance.list_promotions(self, self.actor, name, state, page_size, page_token)
        return Page.from_dict(data, Promotion.from_dict)

    def rollback(
        self, name: str, target: str, to: int | None, reason: str, expect_current: int | None
    ) -> Rollback:
        """Put back the previous holder of a stage or alias."""
        data = governance.rollback(self, self.actor, name, target, to, reason, expect_current)
        return Rollback.from_dict(data)

    def get_policy(self, name: str) -> Policy:
        """The rules governing a model (or ``*``)."""
        return Policy.from_dict(governance.get_policy(self, self.actor, name))

    def list_policies(self) -> Policies:
        """Every written rule by scope."""
        return Policies.from_dict(governance.list_policies(self, self.actor))

    def set_policy_rule(self, scope: str, target: str, rule: dict[str, Any]) -> PolicyRule:
        """Write one rule."""
        return PolicyRule.from_dict(governance.set_rule(self, self.actor, scope, target, rule))

    def delete_policy_rule(self, scope: str, target: str) -> None:
        """Remove one rule."""
        governance.delete_rule(self, self.actor, scope, target)

    def apply_policies(self, scopes: dict[str, dict[str, Any]]) -> PolicyApplyReport:
        """Replace the listed scopes' rules in one transaction."""
        return PolicyApplyReport.from_dict(governance.apply_policies(self, self.actor, scopes))

    def set_tags(self, ref: str, tags: dict[str, str], delete: list[str]) -> Model | Version:
        """Tag a model (``NAME``) or a version (any version reference)."""
        parsed = parse_ref(ref)
        data = catalog.set_tags(self, self.actor, parsed, tags, delete)
        return Model.from_dict(data) if parsed.is_model else Version.from_dict(data)

    def set_description(self, ref: str, description: str) -> Model | Version:
        """Describe a model or a version."""
        parsed = parse_ref(ref)
        data = catalog.set_description(self, self.actor, parsed, description)
        return Model.from_dict(data) if parsed.is_model else Version.from_dict(data)

    def delete(self, ref: str, reason: str) -> Deleted:
        """Delete a model or one version (numbers are never reused)."""
        return Deleted.from_dict(catalog.delete(self, self.actor, parse_ref(ref), reason))

    # -- insight -------------------------------------------------------------------------

    def compare(self, name: str, a: int, b: int) -> Comparison:
        """Differences between two versions."""
        return Comparison.from_dict(catalog.compare(self, self.actor, name, a, b))

    def lineage(self, ref: str) -> LineageGraph:
        """Lineage graph around one version."""
        return LineageGraph.from_dict(catalog.lineage(self, self.actor, ref))

    def history(self, name: str) -> list[HistoryEntry]:
        """Stage and alias moves of a model."""
        return [HistoryEntry.from_dict(h) for h in governance.history(self, self.actor, name)]

    def audit(self, model: str | None, limit: int, after: int) -> list[AuditEvent]:
        """Audit events, optionally for one model."""
        events = admin.audit_events(self, self.actor, model, after, limit)
        return [AuditEvent.from_dict(e) for e in events]

    def events(
        self, after: int | None, model: str | None, wait: float, limit: int
    ) -> tuple[list[Event], int]:
        """One page of the event stream, waiting up to ``wait`` seconds for its first event.

        Waits on the engine's ``ChangeFeed``: this process's commits wake it at once, other
        processes' within the feed's poll of the stamp.
        """
        deadline = time.monotonic() + wait
        public_url = self.settings.public_url or None
        while True:
            page, seen = event_page(
                self, self.actor, after=after, model=model, limit=limit, public_url=public_url
            )
            remaining = deadline - time.monotonic()
            if page["items"] or remaining <= 0:
                return [Event.from_dict(e) for e in page["items"]], page["next_after"]
            after = page["next_after"]
            if self._changes is None:
                self._changes = ChangeFeed(self.engine)
            if not self._changes.wait(seen, remaining):
                return [], page["next_after"]  # nothing changed in all that time

    def verify_audit(self, anchors: list[str]) -> AuditVerification:
        """Check the audit chain, and that it still holds each ``SEQ:HASH`` anchor."""
        return AuditVerification.from_dict(admin.verify_audit(self, self.actor, anchors))

    def audit_anchor(self) -> AuditAnchor:
        """The audit chain's head."""
        return AuditAnchor.from_dict(admin.audit_head(self, self.actor))

    def rescan(self, ref: str, force: bool) -> dict[str, Any]:
        """Rescan one version's files with the current scanner."""
        return scans.rescan(self, self.actor, ref, force=force)

    def rescan_all(self, force: bool) -> list[dict[str, Any]]:
        """Rescan every version (each blob read once)."""
        return scans.rescan_all(self, self.actor, force=force)

    def gc(self, grace_seconds: float, dry_run: bool) -> GcReport:
        """Collect unreferenced blobs and abandoned uploads."""
        data = admin.collect_garbage(self, self.actor, grace_seconds, dry_run)
        return GcReport.from_dict(data)

    # -- identity ------------------------------------------------------------------------

    def create_user(self, name: str, kind: str, role: str | None, model: str | None) -> User:
        """Create a user or service account (local admin authority)."""
        data = admin.create_principal(
            self, self.actor, name, PrincipalKind(kind), Role(role) if role else None, model
        )
        return User.from_dict(data)

    def list_users(self) -> list[User]:
        """Every principal with its roles."""
        return [User.from_dict(u) for u in admin.list_principals(self, self.actor)]

    def grant(self, name: str, role: str, model: str | None) -> User:
        """Give a principal a role."""
        return User.from_dict(admin.grant(self, self.actor, name, Role(role), model))

    def revoke(self, name: str, role: str, model: str | None) -> User:
        """Take a role away from a principal."""
        return User.from_dict(admin.revoke(self, self.actor, name, Role(role), model))

    def set_disabled(self, name: str, disabled: bool) -> User:
        """Disable or enable a principal."""
        return User.from_dict(admin.set_disabled(self, self.actor, name, disabled))

    def create_token(self, name: str, label: str, expires_days: int | None) -> Token:
        """Issue a token (the secret is returned once)."""
        return Token.from_dict(admin.create_token(self, self.actor, name, label, expires_days))

    def list_tokens(self, name: str | None) -> list[Token]:
        """Tokens without secrets."""
        return [Token.from_dict(t) for t in admin.list_tokens(self, self.actor, name)]

    def revoke_token(self, token_id: str) -> Token:
        """Revoke a token."""
        return Token.from_dict(admin.revoke_token(self, self.actor, token_id))

    # -- subscriptions ---------------------------------------------------------------------

    def create_webhook(
        self, kind: str, url: str, to: str, events: list[str], model: str, description: str
    ) -> Webhook:
        """Create a subscription; the answer holds its secret this once."""
        spec = webhooks.NewWebhook(kind, url, to, tuple(events), model, description)
        sealer = notify.sealer_for(self.settings)
        allow = self.settings.webhook_allow_private
        return Webhook.from_dict(notify.create(self, self.actor, sealer, spec, allow_private=allow))

    def list_webhooks(self) -> list[Webhook]:
        """The subscriptions the caller administers."""
        return [Webhook.from_dict(w) for w in notify.list_webhooks(self, self.actor)]

    def remove_webhook(self, webhook_id: str) -> Webhook:
        """Remove a subscription."""
        return Webhook.from_dict(notify.remove(self, self.actor, webhook_id))

    def rotate_webhook_secret(self, webhook_id: str, overlap_hours: int) -> Webhook:
        """A new signing secret."""
        sealer = notify.sealer_for(self.settings)
        data = notify.rotate(self, self.actor, sealer, webhook_id, overlap_hours)
        return Webhook.from_dict(data)

    def test_webhook(self, webhook_id: str) -> Delivery:
        """Queue a test message."""
        return Delivery.from_dict(notify.test(self, self.actor, webhook_id))

    def list_deliveries(
        self, webhook_id: str | None, failed: bool, page_size: int, page_token: str | None
    ) -> Page[Delivery]:
        """One page of deliveries, newest first."""
        data = notify.deliveries(self, self.actor, webhook_id, failed, page_size, page_token)
        return Page.from_dict(data, Delivery.from_dict)

    def redeliver(self, delivery_id: str) -> Delivery:
        """Send a delivery again."""
        return Delivery.from_dict(notify.redeliver(self, self.actor, delivery_id))

    # -- signatures and trusted keys -------------------------------------------------------

    def add_signature(
        self, name: str, number: int, bundle: str, public_key: str | None
    ) -> Signature:
        """Check and store a signature of a version's manifest."""
        ref = Ref(name, version=number)
        return Signature.from_dict(signing.add_signature(self, self.actor, ref, bundle, public_key))

    def list_signatures(self, name: str, number: int) -> list[Signature]:
        """A version's signatures with their bundles."""
        data = signing.list_signatures(self, self.actor, Ref(name, version=number))
        return [Signature.from_dict(s) for s in data["items"]]

    def add_trusted_key(self, name: str, public_key: str) -> TrustedKey:
        """Trust a public key (local admin authority)."""
        return TrustedKey.from_dict(signing.add_key(self, self.actor, name, public_key))

    def list_trusted_keys(self) -> list[TrustedKey]:
        """Every trusted key."""
        return [TrustedKey.from_dict(k) for k in signing.list_keys(self, self.actor)]

    def revoke_trusted_key(self, name: str, reason: str) -> TrustedKey:
        """Revoke a trusted key."""
        return TrustedKey.from_dict(signing.revoke_key(self, self.actor, name, reason))

    # -- allowed sources -----------------------------------------------------------------

    def allow_source(self, uri: str) -> dict[str, Any]:
        """Allow copying from an S3 bucket or prefix (local admin authority)."""
        return source_cases.allow_source(self, self.actor, uri)

    def list_sources(self) -> list[dict[str, Any]]:
        """Every allowed source."""
        return source_cases.list_sources(self, self.actor)

    def remove_source(self, uri: str) -> dict[str, Any]:
        """Stop allowing a source."""
        return source_cases.remove_source(self, self.actor, uri)

    def copy_source(self, uri: str) -> dict[str, Any]:
        """Copy the objects of an allowed source into the store: ``{uri, files}``."""
        limit = self.settings.max_upload_bytes
        return source_cases.copy_source(self, self.actor, uri, max_bytes=limit)

    def register_stored(
        self, name: str, files: list[dict[str, Any]], meta: dict[str, Any]
    ) -> Version:
        """Register a version whose blobs are stored already (``copy_source``'s manifest)."""
        specs = [versions.FileSpec(f["path"], f["sha256"], int(f["size"])) for f in files]
        return self._register_specs(name, specs, meta)

    # -- deployments -----------------------------------------------------------------------

    def report_deployment(self, deployment_id: str, fields: dict[str, Any]) -> Deployment:
        """Create or refresh a deployment."""
        spec = deployments.Report(**fields)
        return Deployment.from_dict(serving.report(self, self.actor, deployment_id, spec)[0])

    def list_deployments(
        self, name: str | None, page_size: int, page_token: str | None
    ) -> Page[Deployment]:
        """One page of deployments, newest first."""
        data = serving.list_deployments(self, self.actor, name, page_size, page_token)
        return Page.from_dict(data, Deployment.from_dict)

    def end_deployment(self, deployment_id: str) -> Deployment:
        """End a deployment."""
        return Deployment.from_dict(serving.end(self, self.actor, deployment_id))


def open_backend(location: str) -> LocalBackend:
    """The embedded backend for the folder ``location``."""
    return LocalBackend(Settings.for_home(location))
