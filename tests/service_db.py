"""A migrated registry database for tests that call the service layer directly.

Migrating a database costs more than most of those tests; on SQLite a migrated file is made
once per module and copied, on PostgreSQL each test gets a fresh database (``db_url``).
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from modelreg.db.schema import ensure_schema
from modelreg.db.session import make_engine, transaction
from modelreg.db.tables import Principal, PrincipalKind
from modelreg.services import artifacts, models, registration, versions
from modelreg.services.actor import Actor
from modelreg.storage.memory import MemoryBlobStore

OWNER = Actor("admin")  # the registry owner acting locally (superuser)


def migrated_template(folder: Path) -> Path:
    """A migrated, empty SQLite registry in ``folder``, to copy for each test."""
    path = folder / "registry.db"
    engine = make_engine(f"sqlite:///{path}")
    ensure_schema(engine)
    engine.dispose()
    return path


def engine_for(url: str, template: Path) -> Engine:
    """An engine on ``url``, a copy of ``template`` when it is SQLite, migrated."""
    if url.startswith("sqlite:///"):
        shutil.copyfile(template, url.removeprefix("sqlite:///"))
    engine = make_engine(url)
    ensure_schema(engine)
    return engine


class ServiceRegistry:
    """A registry database and shortcuts, each one call in its own transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.store = MemoryBlobStore()
        info = self.store.put(io.BytesIO(b"weights"))
        self.blob = versions.FileSpec("model.bin", info.sha256, info.size)

    def sent_by(self, *actors: Actor) -> None:
        """Record that ``actors`` uploaded the registry's blob (proof of possession), as a PUT
        does; each actor needs a ``principal_id``, made a user here."""
        with transaction(self.engine, write=True) as session:
            for actor in actors:
                assert actor.principal_id is not None
                session.merge(
                    Principal(id=actor.principal_id, name=actor.name, kind=PrincipalKind.USER)
                )
                session.flush()
                artifacts.record_possession(session, actor, self.blob.sha256)

    def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Call ``fn(session, *args, **kwargs)`` in one write transaction."""
        with transaction(self.engine, write=True) as session:
            return fn(session, *args, **kwargs)

    def register(self, name: str = "m", **kwargs: Any) -> int:
        """Register a version of ``name`` (one small file) as the owner; its number."""
        with transaction(self.engine, write=True) as session:
            spec = registration.RegistrationSpec(name=name, files=[self.blob], **kwargs)
            return registration.register_version(session, self.store, spec, actor=OWNER).number

    def model_id(self, name: str = "m") -> Any:
        """The id of model ``name``."""
        return self.run(lambda s: models.get_model(s, name, actor=None).id)
