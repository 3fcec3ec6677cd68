"""Read an MLflow model registry over its REST API (httpx; the ``mlflow`` package is not needed).

Only the server given with ``--from`` is ever contacted, and only through its registry, run and
artifact endpoints: a version whose files live anywhere else (``s3://``, ``file://``, another
host) is reported, never fetched (SECURITY.md rule 1).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from modelreg.digest import CHUNK
from modelreg.errors import InvalidInput, Unauthenticated, Unavailable
from modelreg.names import validate_manifest_path

REGISTRY = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
ARTIFACT_SCHEME = "mlflow-artifacts"
MAX_FILES = 100_000
MAX_DEPTH = 64


class SourceError(Exception):
    """One answer of the MLflow server was not what the import needs (that item fails)."""


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file of a version as the MLflow server lists it."""

    path: str  # relative to the version's artifact root
    remote: str  # the artifact path to fetch
    size: int | None


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
        transport: an httpx transport (tests).
    """

    def __init__(
        self, url: str, *, timeout: float = 60.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.url, auth, headers = _credentials(url)
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

    def _get(self, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        try:
            return self._http.get(path, params=params)
        except httpx.TransportError as exc:
            raise Unavailable(
                f"cannot reach the MLflow server at {self.url}: {exc}", detail={"from": self.url}
            ) from None

    def _json(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self._get(path, params)
        if not response.is_success:
            raise SourceError(f"GET {path} answered HTTP {response.status_code}{_why(response)}")
        try:
            data = response.json()
        except ValueError:
            raise SourceError(f"GET {path} did not answer JSON") from None
        if not isinstance(data, dict):
            raise SourceError(f"GET {path} did not answer a JSON object")
        return data

    def _pages(self, path: str, key: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            data = self._json(path, {**params, **({"page_token": token} if token else {})})
            items = data.get(key) or []
            if not isinstance(items, list):
                raise SourceError(f"GET {path}: {key!r} is not a list")
            yield from (item for item in items if isinstance(item, dict))
            token = data.get("next_page_token") or None
            if token is None:
                return

    # -- the registry --------------------------------------------------------------------

    def check(self) -> None:
        """Make sure the URL answers as an MLflow server with a model registry."""
        path = f"{REGISTRY}/registered-models/search"
        response = self._get(path, {"max_results": 1})
        if response.status_code in (401, 403):
            raise Unauthenticated(
                f"the MLflow server at {self.url} refused the request (HTTP "
                f"{response.status_code}); set MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME "
                "and MLFLOW_TRACKING_PASSWORD",
                detail={"from": self.url, "status": response.status_code},
            )
        try:
            data = response.json() if response.is_success else None
        except ValueError:
            data = None
        if not isinstance(data, dict) or not set(data) <= {
            "registered_models",
            "next_page_token",
        }:
            raise InvalidInput(
                f"{self.url} does not answer as an MLflow server: GET {path} gave HTTP "
                f"{response.status_code}{_why(response)}",
                detail={"from": self.url, "status": response.status_code},
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
        response = self._get(f"{REGISTRY}/runs/get", {"run_id": run_id})
        if response.status_code in (400, 404):
            return None
        if not response.is_success:
            raise SourceError(f"runs/get answered HTTP {response.status_code}{_why(response)}")
        try:
            data = response.json().get("run", {}).get("data", {})
        except (ValueError, AttributeError):
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
                remote = f"{remote_dir}/{name}"
                if entry.get("is_dir"):
                    pending.append((remote, f"{rel}/", depth + 1))
                    continue
                size = entry.get("file_size")
                found.append(SourceFile(rel, remote, int(size) if size is not None else None))
                if len(found) > MAX_FILES:
                    raise SourceError(f"{root}: more than {MAX_FILES} files")
        return sorted(found, key=lambda f: f.path)

    def fetch(self, item: SourceFile, dest: Path, progress: Callable[[int], None] | None) -> int:
        """Stream one file into ``dest`` and check its size against the listing's."""
        url = f"{ARTIFACTS}/{quote(item.remote, safe='/')}"
        written = 0
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._http.stream("GET", url) as response:
                if not response.is_success:
                    raise SourceError(
                        f"{item.path}: GET answered HTTP {response.status_code}{_why(response)}"
                    )
                with open(dest, "wb") as out:
                    for chunk in response.iter_bytes(CHUNK):
                        out.write(chunk)
                        written += len(chunk)
                        if progress is not None:
                            progress(len(chunk))
        except httpx.TransportError as exc:
            raise Unavailable(
                f"lost the MLflow server at {self.url} while fetching {item.path}: {exc}",
                detail={"from": self.url},
            ) from None
        if item.size is not None and written != item.size:
            raise SourceError(
                f"{item.path}: received {written} bytes, the listing said {item.size}"
            )
        return written


def _why(response: httpx.Response) -> str:
    """MLflow's error message, if the answer carries one."""
    try:
        response.read()
        data = response.json()
    except (ValueError, httpx.HTTPError):
        return ""
    message = data.get("message") if isinstance(data, dict) else None
    return f" ({str(message)[:300]})" if message else ""
