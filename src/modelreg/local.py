"""The embedded backend: the service layer in-process, on a folder's SQLite and blob store.

Loaded lazily by ``modelreg.Registry`` so that importing the client stays light.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from modelreg.client._files import LocalFile, write_verified
from modelreg.config import Settings, os_user
from modelreg.db.schema import ensure_schema
from modelreg.db.session import make_engine, transaction
from modelreg.db.tables import PrincipalKind, Promotion, Role
from modelreg.errors import InvalidInput
from modelreg.names import parse_instant, parse_ref, validate_model_name
from modelreg.services import (
    audit,
    auth,
    compare,
    gc,
    lifecycle,
    models,
    policies,
    registration,
    serialize,
    versions,
)
from modelreg.services.actor import Actor
from modelreg.storage import BlobStore, open_blob_store

Progress = Callable[[int], None] | None


class LocalBackend:
    """Runs every use-case against the folder registry described by ``settings``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.actor = Actor(settings.actor or os_user(), source="embedded")
        self._engine: Engine | None = None
        self._store: BlobStore | None = None

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

    def _read(self) -> contextlib.AbstractContextManager[Session]:
        return transaction(self.engine, write=False)

    def _write(self) -> contextlib.AbstractContextManager[Session]:
        return transaction(self.engine, write=True)

    def close(self) -> None:
        """Release database connections."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # -- models and versions -------------------------------------------------------------

    def register(
        self, name: str, files: list[LocalFile], meta: dict[str, Any], progress: Progress
    ) -> dict[str, Any]:
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
        lineage = versions.Lineage.from_dict(meta.get("lineage"))
        with self._write() as session:
            spec = registration.RegistrationSpec(
                name=name,
                files=specs,
                metrics=meta.get("metrics", {}),
                params=meta.get("params", {}),
                tags=meta.get("tags", {}),
                description=meta.get("description") or "",
                semver=meta.get("semver"),
                bump=meta.get("bump"),
                lineage=lineage,
                environment=meta.get("environment", {}),
                framework=meta.get("framework"),
                idempotency_key=meta.get("idempotency_key"),
                number=meta.get("number"),
                stage=meta.get("stage"),
            )
            version = registration.register_version(session, self.store, spec, actor=self.actor)
            return serialize.version_to_dict(version)

    def create_model(self, name: str, description: str, tags: dict[str, str]) -> dict[str, Any]:
        """Register an empty model."""
        with self._write() as session:
            model = models.create_model(
                session, name, actor=self.actor, description=description, tags=tags
            )
            return serialize.model_to_dict(session, model)

    def get_model(self, name: str) -> dict[str, Any]:
        """One model."""
        with self._read() as session:
            model = models.read_model(session, name, actor=self.actor)
            return serialize.model_to_dict(session, model)

    def get_version(self, ref: str) -> dict[str, Any]:
        """One version by any reference."""
        with self._read() as session:
            return serialize.version_to_dict(versions.read_version(session, ref, actor=self.actor))

    def list_models(
        self, filter: str | None, page_size: int, page_token: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of models."""
        with self._read() as session:
            page = models.list_models(
                session, actor=self.actor, filter=filter, page_size=page_size, page_token=page_token
            )
            return serialize.models_to_dicts(session, list(page)), page.next_page_token

    def list_versions(
        self, name: str, filter: str | None, page_size: int, page_token: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of one model's versions."""
        with self._read() as session:
            page = versions.list_versions(
                session,
                name,
                actor=self.actor,
                filter=filter,
                page_size=page_size,
                page_token=page_token,
            )
            return serialize.versions_to_dicts(session, list(page)), page.next_page_token

    def search(
        self, query: str | None, page_size: int, page_token: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of versions across models."""
        with self._read() as session:
            page = versions.search_versions(
                session, query, actor=self.actor, page_size=page_size, page_token=page_token
            )
            return serialize.versions_to_dicts(session, list(page)), page.next_page_token

    def download(self, ref: str, out_dir: Path, progress: Progress) -> list[Path]:
        """Copy a version's files into ``out_dir``, each verified against the manifest."""
        version = self.get_version(ref)
        return write_verified(
            version["files"],
            out_dir,
            lambda entry: self.store.open(entry["sha256"]),
            label=f"{version['name']}:{version['version']}",
            progress=progress,
        )

    def get_version_at(self, ref: str, at: str) -> dict[str, Any]:
        """The version that held a stage or alias reference at moment ``at``."""
        with self._read() as session:
            return serialize.version_to_dict(
                lifecycle.version_at(session, ref, parse_instant(at), actor=self.actor)
            )

    def set_alias(
        self, name: str, alias: str, version: int, reason: str, expect_current: int | None
    ) -> dict[str, Any]:
        """Create or move an alias; the version, or the request when the alias is protected."""
        with self._write() as session:
            row = lifecycle.set_alias(
                session,
                name,
                alias,
                version,
                actor=self.actor,
                reason=reason,
                expect_current=expect_current,
            )
            if isinstance(row, Promotion):
                return serialize.promotion_to_dict(row)
            session.refresh(row.version)
            return serialize.version_to_dict(row.version)

    def delete_alias(self, name: str, alias: str, reason: str, expect_current: int | None) -> int:
        """Remove an alias; returns the version it pointed at."""
        with self._write() as session:
            return lifecycle.delete_alias(
                session, name, alias, actor=self.actor, reason=reason, expect_current=expect_current
            )

    # -- lifecycle -----------------------------------------------------------------------

    def promote(
        self,
        name: str,
        version: int,
        target: str,
        reason: str,
        dry_run: bool,
        expect_current: int | None,
    ) -> dict[str, Any]:
        """Request a move; committed even when refused, so the attempt stays on record."""
        with self._write() as session:
            promotion = lifecycle.promote(
                session,
                name,
                version,
                target,
                actor=self.actor,
                reason=reason,
                dry_run=dry_run,
                expect_current=expect_current,
            )
            return serialize.promotion_to_dict(promotion, dry_run=dry_run)

    def approve(self, request_id: int, reason: str) -> dict[str, Any]:
        """Approve a request (applying it when the count is reached)."""
        with self._write() as session:
            promotion = lifecycle.approve(session, request_id, actor=self.actor, reason=reason)
            return serialize.promotion_to_dict(promotion)

    def reject(self, request_id: int, reason: str) -> dict[str, Any]:
        """Reject a pending request."""
        with self._write() as session:
            promotion = lifecycle.reject(session, request_id, actor=self.actor, reason=reason)
            return serialize.promotion_to_dict(promotion)

    def get_promotion(self, request_id: int) -> dict[str, Any]:
        """One request."""
        with self._read() as session:
            promotion = lifecycle.get_promotion(session, request_id, actor=self.actor)
            return serialize.promotion_to_dict(promotion)

    def list_promotions(
        self, name: str | None, state: str | None, page_size: int, page_token: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of requests, newest first."""
        with self._read() as session:
            page = lifecycle.list_promotions(
                session,
                actor=self.actor,
                name=name,
                state=state,
                page_size=page_size,
                page_token=page_token,
            )
            return [serialize.promotion_to_dict(p) for p in page], page.next_page_token

    def rollback(
        self, name: str, target: str, to: int | None, reason: str, expect_current: int | None
    ) -> dict[str, Any]:
        """Put back the previous holder of a stage or alias."""
        with self._write() as session:
            return lifecycle.rollback(
                session,
                name,
                actor=self.actor,
                reason=reason,
                target=target,
                to=to,
                expect_current=expect_current,
            )

    def get_policy(self, name: str) -> dict[str, Any]:
        """The rules governing a model (or ``*``)."""
        with self._read() as session:
            return policies.effective_policy(session, name, actor=self.actor)

    def list_policies(self) -> dict[str, Any]:
        """Every written rule by scope."""
        with self._read() as session:
            return {"scopes": policies.list_scopes(session, actor=self.actor)}

    def set_policy_rule(self, scope: str, target: str, rule: dict[str, Any]) -> dict[str, Any]:
        """Write one rule."""
        spec = policies.RuleSpec.from_dict(rule)
        with self._write() as session:
            row = policies.set_rule(session, scope, target, spec, actor=self.actor)
            return {"scope": row.scope, "target": row.target, **policies.rule_to_dict(row)}

    def delete_policy_rule(self, scope: str, target: str) -> None:
        """Remove one rule."""
        with self._write() as session:
            policies.delete_rule(session, scope, target, actor=self.actor)

    def apply_policies(self, scopes: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """Replace the listed scopes' rules in one transaction."""
        specs = policies.parse_policy_document(scopes)
        with self._write() as session:
            return {"changes": policies.apply_policies(session, specs, actor=self.actor)}

    def set_tags(self, ref: str, tags: dict[str, str], delete: list[str]) -> dict[str, Any]:
        """Tag a model (``NAME``) or a version (any version reference)."""
        parsed = parse_ref(ref)
        with self._write() as session:
            if parsed.is_model:
                model = models.set_model_tags(
                    session, parsed.name, actor=self.actor, set_tags=tags, delete=delete
                )
                return serialize.model_to_dict(session, model)
            version = versions.set_version_tags(
                session, parsed, actor=self.actor, set_tags=tags, delete=delete
            )
            return serialize.version_to_dict(version)

    def set_description(self, ref: str, description: str) -> dict[str, Any]:
        """Describe a model or a version."""
        parsed = parse_ref(ref)
        with self._write() as session:
            if parsed.is_model:
                model = models.update_model(
                    session, parsed.name, actor=self.actor, description=description
                )
                return serialize.model_to_dict(session, model)
            version = versions.update_version(
                session, parsed, actor=self.actor, description=description
            )
            return serialize.version_to_dict(version)

    def delete(self, ref: str, reason: str) -> dict[str, Any]:
        """Delete a model or one version (numbers are never reused)."""
        parsed = parse_ref(ref)
        with self._write() as session:
            if parsed.is_model:
                models.delete_model(session, parsed.name, actor=self.actor, reason=reason)
                return {"deleted": parsed.name}
            number = versions.delete_version(session, parsed, actor=self.actor, reason=reason)
            return {"deleted": f"{parsed.name}:{number}"}

    # -- insight -------------------------------------------------------------------------

    def compare(self, name: str, a: int, b: int) -> dict[str, Any]:
        """Differences between two versions."""
        with self._read() as session:
            return compare.compare(session, name, a, b, actor=self.actor)

    def lineage(self, ref: str) -> dict[str, Any]:
        """Lineage graph around one version."""
        with self._read() as session:
            return compare.lineage(session, ref, actor=self.actor)

    def history(self, name: str) -> list[dict[str, Any]]:
        """Stage and alias moves of a model."""
        with self._read() as session:
            return [
                serialize.history_to_dict(h)
                for h in lifecycle.history(session, name, actor=self.actor)
            ]

    def audit(self, model: str | None, limit: int, after: int) -> list[dict[str, Any]]:
        """Audit events, optionally for one model."""
        with self._read() as session:
            target = (
                models.get_model(session, model, actor=self.actor) if model is not None else None
            )
            events = audit.list_events(
                session,
                actor=self.actor,
                model=target,
                after_seq=after,
                limit=limit,
            )
            return [audit.event_to_dict(e) for e in events]

    def verify_audit(self, anchors: list[str]) -> dict[str, Any]:
        """Check the audit chain, and that it still holds each ``SEQ:HASH`` anchor."""
        parsed = [audit.Anchor.parse(a) for a in anchors]
        with self._read() as session:
            return audit.verify(session, actor=self.actor, anchors=parsed).to_dict()

    def audit_anchor(self) -> dict[str, Any]:
        """The audit chain's head."""
        with self._read() as session:
            return audit.head(session, actor=self.actor).to_dict()

    # -- identity ------------------------------------------------------------------------

    def create_user(
        self, name: str, kind: str, role: str | None, model: str | None
    ) -> dict[str, Any]:
        """Create a user or service account (local admin authority)."""
        with self._write() as session:
            principal = auth.create_principal(
                session,
                name,
                actor=self.actor,
                kind=PrincipalKind(kind),
                role=Role(role) if role else None,
                model=model,
            )
            rows = auth.list_principals(session, actor=self.actor)
            grants = next(g for p, g in rows if p.id == principal.id)
            return auth.principal_to_dict(principal, grants)

    def list_users(self) -> list[dict[str, Any]]:
        """Every principal with its roles."""
        with self._read() as session:
            rows = auth.list_principals(session, actor=self.actor)
            return [auth.principal_to_dict(p, g) for p, g in rows]

    def grant(self, name: str, role: str, model: str | None) -> dict[str, Any]:
        """Give a principal a role."""
        with self._write() as session:
            auth.grant_role(session, name, Role(role), actor=self.actor, model=model)
            rows = auth.list_principals(session, actor=self.actor)
            principal, grants = next((p, g) for p, g in rows if p.name == name)
            return auth.principal_to_dict(principal, grants)

    def revoke(self, name: str, role: str, model: str | None) -> dict[str, Any]:
        """Take a role away from a principal."""
        with self._write() as session:
            principal = auth.revoke_role(session, name, Role(role), actor=self.actor, model=model)
            return auth.principal_to_dict(principal, auth.grants_of(session, principal))

    def set_disabled(self, name: str, disabled: bool) -> dict[str, Any]:
        """Disable or enable a principal."""
        with self._write() as session:
            principal = auth.set_disabled(session, name, actor=self.actor, disabled=disabled)
            return auth.principal_to_dict(principal, auth.grants_of(session, principal))

    def create_token(self, name: str, label: str, expires_days: int | None) -> dict[str, Any]:
        """Issue a token (the secret is returned once)."""
        with self._write() as session:
            token, secret = auth.create_token(
                session, name, actor=self.actor, label=label, expires_days=expires_days
            )
            return auth.token_to_dict(token, secret)

    def list_tokens(self, name: str | None) -> list[dict[str, Any]]:
        """Tokens without secrets."""
        with self._read() as session:
            return [
                auth.token_to_dict(t)
                for t in auth.list_tokens(session, actor=self.actor, name=name)
            ]

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        """Revoke a token."""
        with self._write() as session:
            return auth.token_to_dict(auth.revoke_token(session, token_id, actor=self.actor))

    def gc(self, grace_seconds: float, dry_run: bool) -> dict[str, Any]:
        """Collect unreferenced blobs and abandoned uploads."""
        with self._write() as session:
            result = gc.collect(
                session, self.store, actor=self.actor, grace_seconds=grace_seconds, dry_run=dry_run
            )
            return {
                "unreferenced": len(result.unreferenced),
                "removed": result.removed,
                "bytes_freed": result.bytes_freed,
                "temporary_removed": result.temporary_removed,
                "dry_run": result.dry_run,
            }


def open_backend(location: str) -> LocalBackend:
    """The embedded backend for the folder ``location``."""
    return LocalBackend(Settings.for_home(location))
