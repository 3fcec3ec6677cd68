"""The UI's style sheets and script, served from a fixed table under a content-hashed path.

The path carries a hash of every file (``/static/ui-1a2b3c4d/ui.css``), so browsers may keep
them forever (``immutable``) and a new release is fetched at once. Nothing is read from disk
by a request's path: an unknown name is a 404.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

from modelreg import errors

MEDIA_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
FILES = ("ui.css", "browse.css", "govern.css", "ui.js", "favicon.svg")
IMMUTABLE = "public, max-age=31536000, immutable"


@functools.cache
def read(name: str) -> bytes:
    """The bytes of one of ``FILES``."""
    return (resources.files("modelreg.api.ui") / "static" / name).read_bytes()


@functools.cache
def prefix() -> str:
    """``/static/ui-HASH``: the path under which this release's files are served."""
    digest = hashlib.sha256()
    for name in FILES:
        digest.update(name.encode() + b"\0" + read(name))
    return f"/static/ui-{digest.hexdigest()[:10]}"


def url(name: str) -> str:
    """Where a page links one of ``FILES``."""
    return f"{prefix()}/{name}"


router = APIRouter(include_in_schema=False)


@router.get("/static/{release}/{name}")
def asset(release: str, name: str) -> Response:
    """One of the UI's files; only the current release's path is served."""
    if f"/static/{release}" != prefix() or name not in FILES:
        raise errors.NotFound(f"no UI asset {name!r}", detail={"path": f"{release}/{name}"})
    media_type = MEDIA_TYPES["." + name.rpartition(".")[2]]
    return Response(read(name), media_type=media_type, headers={"cache-control": IMMUTABLE})
