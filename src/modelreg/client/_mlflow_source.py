"""Read an MLflow model registry over its REST API (httpx; the ``mlflow`` package is not needed).

Only the server given with ``--from`` is ever contacted, and only through its registry, run and
artifact endpoints: a version whose files live anywhere else (``s3://``, ``file://``, another
host) is reported, never fetched (SECURITY.md rule 1).

The server is not trusted either (SECURITY.md rule 18): no redirect is followed, every JSON
answer is read up to ``SourceLimits.max_json_bytes``, a listing stops after
``SourceLimits.max_pages`` pages or on a page token it has seen before, a file is read only up
to the size its listing gave, and the whole import stops after ``SourceLimits.max_seconds``.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from modelreg.errors import ImportStopped, InvalidInput, Unauthenticated, Unavailable
from modelreg.paths import validate_manifest_path

REGISTRY = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
ARTIFACT_SCHEME = "mlflow-artifacts"
MAX_FILES = 100_000
MAX_DEPTH = 64
_DIGITS = re.compile(r"[0-9]{1,20}\Z")


class SourceError(Exception):
    """One answer of the MLflow server was not what the import needs (that item fails)."""


@dataclass(frozen=True, slots=True)
class SourceLimits:
    """How much an import accepts from its MLflow server before it stops (SECURITY.md rule 18).

    Attributes:
        max_pages: pages of one listing (models, or one model's versions); MLflow's pages hold
            100 models or 200 versions, so the default allows 100,000 models.
        max_seconds: the whole import; past it the import stops, and running it again goes on
            where it stopped.
        max_json_bytes: one JSON answer (a listing page, a run, an error).
    """

    max_pages: int = 1000
    max_seconds: float = 24 * 3600.0
    max_json_bytes: int = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class _Answer:
    """A response whose body was read within the limits."""

    status: int
    body: bytes = field(repr=False)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        """The body as JSON, or ``None`` when it is not JSON."""
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than Python's stack
            return None

    def why(self) -> str:
        """MLflow's error message, if the answer carries one."""
        data = self.json()
        message = data.get("message") if isinstance(data, dict) else None
        return f" ({str(message)[:300]})" if message else ""


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file of a version as the MLflow server lists it."""

    path: str  # relative to the version's artifact root
    remote: str  # the artifact path to fetch
    size: int


def _credentials(url: str) -> tuple[str, httpx.Auth | None, dict[str, str]]:
    """The URL without credentials, and the credentials from it or MLflow's variables."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(
            f"--from must be an http(s):// URL of an MLflow server, not {url!r}",
            detail={"from": url},
        )
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if parts.port is not None:
        netloc += f":{parts.port}"
    clean = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    headers: dict[str, str] = {}
    auth: httpx.Auth | None = None
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    user = parts.username or os.environ.get("MLFLOW_TRACKING_USERNAME")
    password = parts.password or os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if token:
        headers["authorization"] = f"Bearer {token}"
    elif user:
        auth = httpx.BasicAuth(user, password or "")
    return clean, auth, headers


class MlflowSource:
    """An MLflow tracking server's model registry, read page by page.

    Args:
        url: the server (``http://host:5000``; a path prefix is kept). Credentials in the URL,
            ``MLFLOW_TRACKING_TOKEN`` (Bearer) or ``MLFLOW_TRACKING_USERNAME`` /
            ``MLFLOW_TRACKING_PASSWORD`` (Basic) are sent as MLflow's own client sends them.
        timeout: seconds per request.
        limits: how much to accept from the server; the time limit counts from here.
        transport: an httpx transport (tests).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 60.0,
        limits: SourceLimits | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url, auth, headers = _credentials(url)
        self.limits = limits or SourceLimits()
        self._deadline = time.monotonic() + self.limits.max_seconds
        self._parts = urlsplit(self.url)
        self._http = httpx.Client(
            base_url=self.url,
            auth=auth,
            headers={"user-agent": "modelreg-import", **headers},
            timeout=timeout,
            # Never follow a redirect: only the --from server is fetched from.
            follow_redirects=False,
            transport=transport,
        )

    def close(self) -> None:
        """Close connections."""
        self._http.close()

    def __enter__(self) -> MlflowSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------

    def _check_time(self) -> None:
        if time.monotonic() > self._deadline:
            # Fatal to the import (an Unavailable): every later request would stop here too.
            raise ImportStopped(
                f"the import from {self.url} ran longer than its limit of "
                f"{self.limits.max_seconds:g} seconds (--max-time) and stopped; what it "
                "imported is complete, and running it again goes on from there",
                detail={"from": self.url, "max_seconds": self.limits.max_seconds},
            )

    def _get(self, path: str, params: dict[str, Any] | None = None) -> _Answer:
        self._check_time()
        limit = self.limits.max_json_bytes
        try:
            with self._http.stream("GET", path, params=params) as response:
                return _Answer(response.status_code, self._read(response, path, limit))
        except httpx.TransportError as exc:
            raise Unavailable(
                f"cannot reach the MLflow server at {self.url}: {exc}", detail={"from": self.url}
            ) from None
        except httpx.DecodingError as exc:
            raise SourceError(f"GET {path}: the answer cannot be decoded: {exc}") from None

    def _read(self, response: httpx.Response, path: str, limit: int) -> bytes:
        """The body of ``response``, refused as soon as it grows past ``limit`` bytes."""
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise SourceError(
                f"GET {path}: the answer is {int(declared):,} bytes, more than the "
                f"{limit:,} an import accepts"
            )
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > limit:
                raise SourceError(
                    f"GET {path}: the answer is larger than the {limit:,} bytes an import accepts"
                )
            self._check_time()
        return bytes(body)

    def _json(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = self._get(path, params)
        if not answer.ok:
            raise SourceError(f"GET {path} answered HTTP {answer.status}{answer.why()}")
        data = answer.json()
        if data is None:
            raise SourceError(f"GET {path} did not answer JSON")
        if not isinstance(data, dict):
            raise SourceError(f"GET {path} did not answer a JSON object")
        return data

    def _pages(self, path: str, key: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        token: str | None = None
        seen: set[str] = set()
        for _ in range(self.limits.max_pages):
            data = self._json(path, {**params, **({"page_token": token} if token else {})})
            items = data.get(key) or []
            if not isinstance(items, list):
                raise SourceError(f"GET {path}: {key!r} is not a list")
            yield from (item for item in items if isinstance(item, dict))
            token = data.get("next_page_token") or None
            if token is None:
                return
            if not isinstance(token, str):
                raise SourceError(f"GET {path}: next_page_token is not a string")
            if token in seen:
                raise SourceError(
                    f"GET {path}: the server sent page token {token[:60]!r} a second time; "
                    "stopped (the listing would never end)"
                )
            seen.add(token)
        raise SourceError(
            f"GET {path}: more than {self.limits.max_pages:,} pages; stopped (raise --max-pages "
            "for a registry this large)"
        )

    # -- the registry --------------------------------------------------------------------

    def check(self) -> None:
        """Make sure the URL answers as an MLflow server with a model registry."""
        path = f"{REGISTRY}/registered-models/search"
        try:
            answer = self._get(path, {"max_results": 1})
        except SourceError as exc:
            raise InvalidInput(
                f"{self.url} does not answer as an MLflow server: {exc}", detail={"from": self.url}
            ) from None
        if answer.status in (401, 403):
            raise Unauthenticated(
                f"the MLflow server at {self.url} refused the request (HTTP "
                f"{answer.status}); set MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME "
                "and MLFLOW_TRACKING_PASSWORD",
                detail={"from": self.url, "status": answer.status},
            )
        data = answer.json() if answer.ok else None
        if not isinstance(data, dict) or not set(data) <= {
            "registered_models",
            "next_page_token",
        }:
            raise InvalidInput(
                f"{self.url} does not answer as an MLflow server: GET {path} gave HTTP "
                f"{answer.status}{answer.why()}",
                detail={"from": self.url, "status": answer.status},
            )

    def registered_models(self) -> Iterator[dict[str, Any]]:
        """Every registered model: name, description, tags, aliases."""
        return self._pages(
            f"{REGISTRY}/registered-models/search", "registered_models", {"max_results": 100}
        )

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Every version of model ``name``, oldest first."""
        # MLflow's filter grammar takes a name in single or double quotes; names holding both
        # are not valid modelreg names and never get here.
        quoted = f'"{name}"' if "'" in name else f"'{name}'"
        found = self._pages(
            f"{REGISTRY}/model-versions/search",
            "model_versions",
            {"filter": f"name={quoted}", "max_results": 200},
        )
        out = [v for v in found if v.get("name") == name and str(v.get("version", "")).isdigit()]
        return sorted(out, key=lambda v: int(v["version"]))

    def download_uri(self, name: str, version: int) -> str:
        """Where the files of a version are, as the server names it."""
        data = self._json(
            f"{REGISTRY}/model-versions/get-download-uri", {"name": name, "version": str(version)}
        )
        uri = data.get("artifact_uri")
        if not isinstance(uri, str) or not uri:
            raise SourceError(f"{name}:{version}: the server named no artifact location")
        return uri

    def run(self, run_id: str) -> dict[str, Any] | None:
        """A run's data (metrics, params), or ``None`` when the server does not know it."""
        answer = self._get(f"{REGISTRY}/runs/get", {"run_id": run_id})
        if answer.status in (400, 404):
            return None
        if not answer.ok:
            raise SourceError(f"runs/get answered HTTP {answer.status}{answer.why()}")
        try:
            data = answer.json().get("run", {}).get("data", {})
        except AttributeError:
            return None
        return data if isinstance(data, dict) else None

    # -- artifacts -----------------------------------------------------------------------

    def artifact_root(self, uri: str) -> str | None:
        """The artifact path inside this server for ``uri``, or ``None`` if it lives elsewhere.

        ``mlflow-artifacts:/path`` is this server's; ``mlflow-artifacts://host:port/path``
        only when it names this same server.
        """
        parts = urlsplit(uri)
        if parts.scheme != ARTIFACT_SCHEME or parts.query or parts.fragment:
            return None
        if parts.netloc and parts.netloc != self._parts.netloc:
            return None
        path = parts.path.strip("/")
        if not path or any(p in ("", ".", "..") for p in path.split("/")):
            return None
        return path

    def files(self, root: str) -> list[SourceFile]:
        """Every file under the artifact path ``root``, with its path relative to it."""
        found: list[SourceFile] = []
        seen: set[str] = set()
        pending: list[tuple[str, str, int]] = [(root, "", 0)]
        while pending:
            remote_dir, rel_dir, depth = pending.pop()
            if depth > MAX_DEPTH:
                raise SourceError(f"{root}: folders nest deeper than {MAX_DEPTH} levels")
            listing = self._json(ARTIFACTS, {"path": remote_dir}).get("files") or []
            for entry in listing:
                if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
                    raise SourceError(f"{remote_dir}: the listing has an entry without a path")
                # Entries name the file relative to the folder listed; some servers give more.
                name = posixpath.basename(entry["path"].rstrip("/"))
                rel = f"{rel_dir}{name}"
                try:
                    validate_manifest_path(rel)
                except InvalidInput as exc:
                    raise SourceError(f"{rel!r} cannot be stored: {exc.message}") from None
                # Folders count too: each is one more request, and a server can list many.
                if rel in seen or len(seen) >= MAX_FILES:
                    why = "listed twice" if rel in seen else f"more than {MAX_FILES:,} entries"
                    raise SourceError(f"{root}: {why} ({rel!r}); not read")
                seen.add(rel)
                remote = f"{remote_dir}/{name}"
                if entry.get("is_dir"):
                    pending.append((remote, f"{rel}/", depth + 1))
                    continue
                found.append(SourceFile(rel, remote, _size(entry.get("file_size"), rel)))
        return sorted(found, key=lambda f: f.path)

    def fetch(
        self, item: SourceFile, dest: Path, progress: Callable[[int], None] | None
    ) -> tuple[int, str]:
        """Stream one file into ``dest``; its size and SHA-256.

        Raises ``SourceError`` as soon as the server sends more bytes than the listing gave
        (before they are written), or when it ends short.
        """
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(dest, "wb") as out:
            return self._stream(item, out.write, progress)

    def sha256(self, item: SourceFile) -> str:
        """The SHA-256 of one file, read within its listed size and not kept."""
        return self._stream(item, None, None)[1]

    def _stream(
        self,
        item: SourceFile,
        write: Callable[[bytes], Any] | None,
        progress: Callable[[int], None] | None,
    ) -> tuple[int, str]:
        url = f"{ARTIFACTS}/{quote(item.remote, safe='/')}"
        written = 0
        digest = hashlib.sha256()
        self._check_time()
        try:
            # identity: the bytes counted are the bytes listed, not a compressed form of them.
            with self._http.stream("GET", url, headers={"accept-encoding": "identity"}) as response:
                if not response.is_success:
                    why = _Answer(
                        response.status_code,
                        self._read(response, item.path, self.limits.max_json_bytes),
                    ).why()
                    raise SourceError(f"{item.path}: GET answered HTTP {response.status_code}{why}")
                declared = response.headers.get("content-length", "")
                if (
                    declared.isdigit()
                    and "content-encoding" not in response.headers
                    and int(declared) > item.size
                ):
                    raise SourceError(
                        f"{item.path}: the server announced {int(declared):,} bytes, more than "
                        f"the {item.size:,} bytes the listing said; not read"
                    )
                for chunk in response.iter_bytes():
                    if written + len(chunk) > item.size:
                        raise SourceError(
                            f"{item.path}: the server sent more than the {item.size:,} bytes "
                            "the listing said; stopped reading"
                        )
                    if write is not None:
                        write(chunk)
                    digest.update(chunk)
                    written += len(chunk)
                    if progress is not None:
                        progress(len(chunk))
                    self._check_time()
        except httpx.TransportError as exc:
            raise Unavailable(
                f"lost the MLflow server at {self.url} while fetching {item.path}: {exc}",
                detail={"from": self.url},
            ) from None
        except httpx.DecodingError as exc:
            raise SourceError(f"{item.path}: the answer cannot be decoded: {exc}") from None
        if written != item.size:
            raise SourceError(
                f"{item.path}: received {written} bytes, the listing said {item.size}"
            )
        return written, digest.hexdigest()


def _size(value: Any, path: str) -> int:
    """A listing's ``file_size``: a whole number of bytes, or the file is not read at all."""
    # Without a size a read has no bound; MLflow always lists one.
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, str))
        or not _DIGITS.match(str(value))
    ):
        raise SourceError(f"{path!r}: the listing gives no valid size ({value!r}); not read")
    return int(value)
