"""Registering Python objects and loading them back: the model cache and ``modelreg.load``.

A loaded version's files are kept in the user's model cache (``MODELREG_MODEL_CACHE``, else
``~/.cache/modelreg/models``), one folder per version content: the folder's name is the SHA-256
of the version's manifest (every path, digest and size), so a second load of the same
version, or of another version with identical files, reads nothing from the registry's store.
Files are verified against their digests as they are downloaded; a folder becomes visible
(renamed into place) only when every file verified.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelreg.errors import InvalidInput, StorageFailure

if TYPE_CHECKING:
    from modelreg.client import Registry
    from modelreg.client._backend import Backend
    from modelreg.types import Version

__all__ = ["cache_root", "load", "local_files", "saved_object"]

ENV = "MODELREG_MODEL_CACHE"
_MARKER = ".modelreg-complete"


def cache_root() -> Path:
    """The model cache folder: ``MODELREG_MODEL_CACHE``, or the user's cache folder."""
    value = os.environ.get(ENV, "").strip()
    if value:
        return Path(value).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("modelreg", appauthor=False)) / "models"


def manifest_digest(version: Version) -> str:
    """SHA-256 of the version's manifest: what its cache folder is named by."""
    entries = sorted((f.path, f.sha256, f.size) for f in version.files)
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()


def _complete(folder: Path, version: Version) -> bool:
    marker = folder / _MARKER
    try:
        if marker.read_text(encoding="utf-8") != manifest_digest(version):
            return False
        return all((folder / f.path).stat().st_size == f.size for f in version.files)
    except OSError:
        return False


def _require_private(root: Path) -> None:
    """The cache must be this user's alone: files in it are loaded without hashing them again."""
    info = root.stat()
    if hasattr(os, "getuid") and (info.st_uid != os.getuid() or info.st_mode & 0o022):
        raise PermissionError(
            f"{root} is not private to this user (another user could change the models "
            "loaded from it)"
        )


def local_files(backend: Backend, version: Version) -> Path:
    """The folder holding ``version``'s files: from the cache, else downloaded and verified."""
    root = cache_root()
    key = manifest_digest(version)
    folder = root / key[:2] / key
    try:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        _require_private(root)
        if _complete(folder, version):
            return folder
        folder.parent.mkdir(exist_ok=True, mode=0o700)
        staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=folder.parent))
    except OSError as exc:
        raise StorageFailure(
            f"cannot use the model cache {root}: {exc.strerror or exc} (set {ENV} to another "
            "folder)",
            detail={"cache": str(root)},
        ) from None
    try:
        backend.download(version.ref, staging, None)
        (staging / _MARKER).write_text(key, encoding="utf-8")
        if folder.exists():  # an incomplete folder left by a crash: replace it
            shutil.rmtree(folder, ignore_errors=True)
        try:
            staging.rename(folder)
        except OSError:
            # Another process put the same files in place first: theirs are as good.
            if not _complete(folder, version):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


@contextlib.contextmanager
def saved_object(
    obj: Any, *, flavor: str | None, input_example: Any
) -> Iterator[tuple[Path, dict[str, Any], dict[str, Any] | None]]:
    """A temporary folder holding ``obj`` saved with its flavor, its info and its signature."""
    from modelreg.flavors import save_object

    if flavor is not None and (not isinstance(flavor, str) or not flavor):
        raise InvalidInput("flavor must be a flavor name", detail={"flavor": repr(flavor)})
    with tempfile.TemporaryDirectory(prefix="modelreg-save-") as tmp:
        folder = Path(tmp) / "model"
        folder.mkdir()
        info, signature = save_object(obj, folder, flavor=flavor, input_example=input_example)
        yield folder, info, signature


def load(uri: str, *, registry: Registry | str | None = None, trust: bool = False) -> Any:
    """The native object registered as ``uri`` (``models:/NAME/production``, ``NAME:3``, …).

    ``registry`` is a ``Registry``, a registry location, or ``None`` (``MODELREG_URI``, else
    the embedded default). ``trust=True`` loads a pickle-family model that was not scanned
    clean (only for models whose author you trust).

    Usage::

        model = modelreg.load("models:/churn/production")
        model.predict(frame)
    """
    from modelreg.client import Registry

    if isinstance(registry, Registry):
        return registry.load(uri, trust=trust)
    with Registry(registry) as reg:
        return reg.load(uri, trust=trust)
