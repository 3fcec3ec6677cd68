"""Typed settings of a registry folder, from ``modelreg.toml`` and ``MODELREG_*``.

A folder holds ``registry.db`` (SQLite) and ``blobs/`` unless its ``modelreg.toml`` (or
``MODELREG_DB`` / ``MODELREG_ARTIFACTS``) points elsewhere, e.g. at PostgreSQL.
"""

from __future__ import annotations

import base64
import getpass
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from modelreg.errors import InvalidInput
from modelreg.location import check_folder, default_home, is_remote, resolve_uri

__all__ = ["CONFIG_FILE", "Settings", "default_home", "is_remote", "os_user", "resolve_uri"]

CONFIG_FILE = "modelreg.toml"


def os_user() -> str:
    """The OS user: the actor of embedded mode, and a server's owner when no actor is set."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # pragma: no cover - containers without a passwd entry
        return f"uid:{os.getuid()}"


SECRET_KEY_FILE = "secret.key"  # noqa: S105 (a file name)


class Settings(BaseModel):
    """Settings of a folder registry; every field is documented in docs/configuration.md.

    Attributes:
        home: the registry folder.
        db: SQLAlchemy URL of the metadata database (default ``sqlite:///HOME/registry.db``).
        artifacts: the content-addressed blob store: a folder (default ``HOME/blobs``) or
            ``s3://BUCKET/PREFIX`` (docs/operations.md, "S3-compatible storage").
        actor: the name recorded in the audit log (default: the OS user).
        public_url: the web UI's address as users reach it, for the links events carry.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    home: Path
    db: str = ""
    artifacts: str = ""
    actor: str = ""
    create: bool = Field(default=True, description="create the schema in an empty database")
    max_upload_bytes: int = Field(default=100 * 2**30, gt=0)
    max_json_bytes: int = Field(default=16 * 2**20, gt=0)
    body_idle_timeout: float = Field(default=30.0, gt=0)
    max_uploads_per_principal: int = Field(default=8, gt=0)
    # Direct transfers (docs/operations.md): with a store that can presign (S3), clients move
    # bytes to and from the bucket themselves through URLs valid this many seconds.
    direct_transfers: bool = True
    presign_seconds: int = Field(default=900, ge=60, le=7 * 24 * 3600)
    # The bucket's address as clients reach it, when it differs from the server's own.
    presign_endpoint: str = Field(default="", pattern=r"^(https?://[^\s/?#@]+/?)?$")
    allowed_hosts: list[str] = Field(default_factory=list)
    ui_session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    secret_key: str = ""
    webhook_allow_private: bool = False
    # Safety (docs/safety.md): code files up to this many bytes per registration are scanned
    # before it returns, bigger ones after it; unsafe versions stay out of production unless
    # the operator sets allow_unsafe_production.
    scan_inline_bytes: int = Field(default=64 * 2**20, ge=0)
    allow_unsafe_production: bool = False
    smtp_url: str = ""
    smtp_from: str = ""
    public_url: str = Field(default="", pattern=r"^(https?://[^\s/?#@]+(/[^\s?#]*)?)?$")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"

    @classmethod
    def for_home(cls, home: str | os.PathLike[str]) -> Settings:
        """Settings for ``home``: its ``modelreg.toml``, then ``MODELREG_*`` overrides.

        A ``home`` given as text follows ``location.check_folder``: a bare word names an
        existing folder, and only the default location or a path may be created.
        """
        if isinstance(home, str):
            check_folder(home)
        path = Path(home).expanduser().absolute()
        values: dict[str, Any] = {}
        file = path / CONFIG_FILE
        if file.is_file():
            try:
                values.update(tomllib.loads(file.read_text()))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise InvalidInput(f"{file}: {exc}", detail={"file": str(file)}) from None
        for key in (
            "db",
            "artifacts",
            "actor",
            "max_upload_bytes",
            "max_json_bytes",
            "body_idle_timeout",
            "max_uploads_per_principal",
            "direct_transfers",
            "presign_seconds",
            "presign_endpoint",
            "ui_session_hours",
            "secret_key",
            "webhook_allow_private",
            "scan_inline_bytes",
            "allow_unsafe_production",
            "smtp_url",
            "smtp_from",
            "public_url",
            "log_level",
            "log_format",
        ):
            env = os.environ.get(f"MODELREG_{key.upper()}")
            if env:
                values[key] = env
        hosts = os.environ.get("MODELREG_ALLOWED_HOSTS")
        if hosts:
            values["allowed_hosts"] = [h.strip() for h in hosts.split(",") if h.strip()]
        values["home"] = path
        try:
            settings = cls(**values)
        except ValueError as exc:
            raise InvalidInput(f"{file}: {exc}", detail={"file": str(file)}) from None
        return settings

    @property
    def db_url(self) -> str:
        """The metadata database URL."""
        return self.db or f"sqlite:///{self.home / 'registry.db'}"

    def sealing_key(self) -> str:
        """The key that encrypts stored secrets (webhook secrets).

        It is ``secret_key``, else the registry folder's ``secret.key``, created (readable by
        its owner only) on first use. Servers sharing one database must share the key: set
        ``MODELREG_SECRET_KEY`` on each.
        """
        if self.secret_key:
            return self.secret_key
        path = self.home / SECRET_KEY_FILE
        if not path.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                # A Fernet key (``services.secrets``): url-safe base64 of 32 random bytes.
                out.write(base64.urlsafe_b64encode(os.urandom(32)).decode() + "\n")
        return path.read_text().strip()

    @property
    def artifacts_location(self) -> str:
        """The blob store location."""
        return self.artifacts or str(self.home / "blobs")
