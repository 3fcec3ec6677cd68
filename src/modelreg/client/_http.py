"""The remote backend: the same use-cases as the embedded one, over REST ``/api/v1`` (httpx)."""

from __future__ import annotations

import contextlib
import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from modelreg.client._digest_cache import DigestCache, FileDigest, default_path
from modelreg.client._files import LocalFile, write_verified
from modelreg.client._http_deployments import HttpDeployments
from modelreg.client._http_direct import HttpDirect, transfer_mode
from modelreg.client._http_notify import HttpNotifications
from modelreg.client._http_signing import HttpSigning
from modelreg.client._http_sources import HttpSources
from modelreg.digest import CHUNK, Progress
from modelreg.errors import (
    BlobNotFound,
    DigestMismatch,
    IntegrityFailure,
    InvalidInput,
    RegistryError,
    TooManyUploads,
    Unavailable,
    applied_or_raise,
    rebuild,
)
from modelreg.names import parse_ref, parse_target, validate_alias, validate_model_name
from modelreg.types import (
    AuditAnchor,
    AuditEvent,
    AuditVerification,
    Comparison,
    Deleted,
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
    Token,
    User,
    Version,
)

API = "/api/v1"
# Before the one retry of a registration whose connection failed: a restarting server or a
# flapping link gets a moment.
RETRY_PAUSE = 0.5
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_SCOPE = "*"
# How long an upload keeps retrying while the server says the user has too many running.
BUSY_PATIENCE = 600.0


def _after_body(size: int) -> httpx.Timeout:
    """Timeouts of an upload: the answer comes once the store holds the blob.

    On S3 that includes a server-side copy to the final key, which for a large blob can take
    longer than a minute (moto: about 90 s per GiB on a busy machine): wait by size.
    """
    return httpx.Timeout(60.0, read=max(60.0, size / 5e6))


def _model_path(name: str) -> str:
    # Validated first, so a name can never smuggle "..", "?" or "#" into the URL.
    return f"{API}/models/{quote(validate_model_name(name), safe='/')}"


def _manifest(files: list[LocalFile], found: list[FileDigest]) -> list[dict[str, Any]]:
    return [
        {"path": item.path, "sha256": digest.sha256, "size": digest.size}
        for item, digest in zip(files, found, strict=True)
    ]


def _target(text: str) -> str:
    """A stage or ``@alias`` as a path segment, validated as the server will."""
    return quote(parse_target(text), safe="@")


def _policy_path(scope: str) -> str:
    """``/policy`` for the registry default (``*``), ``/models/NAME/policy`` for a model."""
    return f"{API}/policy" if scope == DEFAULT_SCOPE else f"{_model_path(scope)}/policy"


def _request_id(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput("a promotion id is a whole number", detail={"id": value})
    return value


def _expect(body: dict[str, Any], expect_current: int | None) -> dict[str, Any]:
    if expect_current is not None:
        body["expect_current"] = expect_current
    return body


class _Body:
    """A file as an upload body, read in large chunks, reporting progress."""

    def __init__(self, path: Path, progress: Progress | None) -> None:
        self.path = path
        self.progress = progress

    def __iter__(self) -> Iterator[bytes]:
        with open(self.path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                if self.progress is not None:
                    self.progress(len(chunk))
                yield chunk


class _Stream:
    """``read()`` over a streamed HTTP response, for the verified copy.

    Hands on each piece as it arrives (64 KiB from httpx): gathering them into larger chunks
    only copied every byte once more before it was hashed and written.
    """

    def __init__(self, response: httpx.Response) -> None:
        self._pieces = response.iter_bytes()
        self._rest = b""

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            data = self._rest + b"".join(self._pieces)
            self._rest = b""
            return data
        piece = self._rest or next(self._pieces, b"")
        self._rest = piece[size:]
        return piece[:size] if self._rest else piece


class HttpBackend(HttpNotifications, HttpDeployments, HttpSigning, HttpSources, HttpDirect):
    """Talks to a modelreg server; errors come back as the classes the server raised.

    Each answer's body is the JSON shape the typed result is built from (``from_dict``), as
    ``LocalBackend`` builds it from the same use-case's dict: the two backends cannot drift.
    """

    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 60.0) -> None:
        headers = {"user-agent": "modelreg-client"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, follow_redirects=False
        )

    def close(self) -> None:
        """Close connections."""
        self._http.close()
        self._close_bucket()

    # -- plumbing ------------------------------------------------------------------------

    def _raise_for(self, response: httpx.Response) -> None:
        if response.is_success:
            return
        try:
            error = response.json()["error"]
            raise rebuild(
                str(error["code"]), str(error["message"]), dict(error.get("detail") or {})
            )
        except (ValueError, KeyError, TypeError):
            raise RegistryError(
                f"{self.base_url} answered HTTP {response.status_code}",
                detail={"status": response.status_code},
            ) from None

    def _call(self, method: str, url: str, **kwargs: Any) -> Any:
        return self._answer(method, url, **kwargs)[1]

    def _answer(self, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
        """The answer's status and JSON body (``None`` when empty); errors raised."""
        if method in WRITE_METHODS and "content" not in kwargs and "json" not in kwargs:
            # The server takes writes declared as JSON only (its cross-site defence), a
            # bodiless one included.
            kwargs["headers"] = {"content-type": "application/json", **kwargs.get("headers", {})}
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise Unavailable(
                f"cannot reach the registry at {self.base_url}: {exc}",
                detail={"url": self.base_url},
            ) from None
        self._raise_for(response)
        return response.status_code, response.json() if response.content else None

    def _obj(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call(method, url, **kwargs)
        return result

    def _page(self, url: str, params: dict[str, Any]) -> dict[str, Any]:
        return self._obj("GET", url, params={k: v for k, v in params.items() if v is not None})

    def _items(self, url: str, **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self._call("GET", url, **kwargs)["items"]
        return items

    def _version_url(self, ref: str) -> tuple[str, str]:
        """The URL of the version ``ref`` names (resolving aliases and stages first)."""
        parsed = parse_ref(ref, allow_model=False)
        number = parsed.version
        if number is None:
            number = self.get_version(ref).version
        return parsed.name, f"{_model_path(parsed.name)}/versions/{number}"

    # -- models and versions -------------------------------------------------------------

    def register(
        self, name: str, files: list[LocalFile], meta: dict[str, Any], progress: Progress | None
    ) -> Version:
        """Hash each file, send the manifest, upload only the blobs the server lacks, register.

        The manifest goes first: when the server already has every blob (an unchanged file
        registered again, or a shared one) that single request registers the version, and
        otherwise the server's answer names each missing blob, which is then uploaded before
        the manifest is sent again. Digests come from the client's digest cache when a file is
        unchanged since it was last hashed (``_digest_cache``), so re-registering a large file
        reads none of it.
        """
        url = f"{_model_path(name)}/versions"
        body = {k: v for k, v in meta.items() if v is not None}
        body["lineage"] = {k: v for k, v in (meta.get("lineage") or {}).items() if v is not None}
        # A client cut off before the answer cannot tell whether its version was made: with
        # a key of its own (one per call unless the caller gave one), sending it again is
        # safe, and returns the version made the first time (``_post_retried``).
        body.setdefault("idempotency_key", f"modelreg-client-{uuid.uuid4().hex}")
        with DigestCache(default_path()) as cache:
            found = [cache.digest(item.source) for item in files]
            body["files"] = _manifest(files, found)
            try:
                created = self._post_retried(url, body)
            except BlobNotFound as exc:
                listed = exc.detail.get("missing")
                # A server that does not list what it lacks is asked blob by blob.
                missing = {m.get("sha256") for m in listed} if isinstance(listed, list) else None
                for i, item in enumerate(files):
                    if missing is not None and found[i].sha256 not in missing:
                        if progress is not None:
                            progress(found[i].size)
                        continue
                    found[i] = self._upload_checked(cache, item, found[i], progress, missing)
                    if missing is not None:
                        # Sent once: another file with the same bytes now finds it stored.
                        missing.discard(found[i].sha256)
                body["files"] = _manifest(files, found)
                return Version.from_dict(self._post_retried(url, body))
        if progress is not None:
            for entry in found:
                progress(entry.size)
        return Version.from_dict(created)

    def _post_retried(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST an idempotent registration; once more if the connection failed on the way."""
        try:
            return self._obj("POST", url, json=body)
        except Unavailable:
            # The request may or may not have reached the server; its key makes the second
            # one either create the version or return the one the first made.
            time.sleep(RETRY_PAUSE)
            return self._obj("POST", url, json=body)

    def _upload_checked(
        self,
        cache: DigestCache,
        item: LocalFile,
        found: FileDigest,
        progress: Progress | None,
        missing: set[Any] | None,
    ) -> FileDigest:
        """Upload ``item``; a cached digest the server's hash disproves is recomputed first."""
        try:
            self._upload(item, found.sha256, found.size, progress, ask=missing is None)
        except DigestMismatch:
            if not found.cached:
                raise
            # The file changed in a way its stat did not show: hash it and retry.
            cache.forget(item.source)
            found = cache.digest(item.source)
            self._upload(item, found.sha256, found.size, progress, ask=True)
        return found

    def _upload(
        self, item: LocalFile, digest: str, size: int, progress: Progress | None, *, ask: bool
    ) -> None:
        """Send ``item``'s bytes; with ``ask``, only if a HEAD shows the server lacks the blob."""
        blob = f"{API}/blobs/sha256:{digest}"
        if ask:
            try:
                have = self._http.head(blob).status_code == 200
            except httpx.HTTPError as exc:
                raise Unavailable(
                    f"cannot reach the registry at {self.base_url}: {exc}",
                    detail={"url": self.base_url},
                ) from None
            if have:
                if progress is not None:
                    progress(size)
                return
        if self._upload_direct(item.source, digest, size, progress):
            return
        headers = {"content-type": "application/octet-stream", "content-length": str(size)}
        give_up = time.monotonic() + BUSY_PATIENCE
        while True:
            try:
                self._call(
                    "PUT",
                    blob,
                    content=_Body(item.source, progress),
                    headers=headers,
                    timeout=_after_body(size),
                )
                return
            except TooManyUploads as exc:
                # Parallel jobs of one user (CI runners sharing a token) queue rather than fail;
                # the jitter keeps them from coming back all at once.
                wait = max(exc.retry_after, 1) * (1 + random.random())  # noqa: S311 - not secret
                if time.monotonic() + wait > give_up:
                    raise
                time.sleep(wait)
                # The refused attempt already sent (and counted) every byte.
                progress = None

    def create_model(self, name: str, description: str, tags: dict[str, str]) -> Model:
        """Register an empty model."""
        body = {"name": name, "description": description, "tags": tags}
        return Model.from_dict(self._obj("POST", f"{API}/models", json=body))

    def get_model(self, name: str) -> Model:
        """One model."""
        return Model.from_dict(self._obj("GET", _model_path(name)))

    def _resolve(self, ref: str, **params: str) -> dict[str, Any]:
        # One round trip whatever the reference: the server resolves it.
        parse_ref(ref, allow_model=False)
        return self._obj("GET", f"{API}/resolve", params={"uri": ref, **params})

    def get_version(self, ref: str) -> Version:
        """One version by any reference."""
        return Version.from_dict(self._resolve(ref))

    def list_models(
        self, filter: str | None, page_size: int, page_token: str | None
    ) -> Page[Model]:
        """A page of models."""
        params = {"filter": filter, "page_size": page_size, "page_token": page_token}
        data = self._page(f"{API}/models", params)
        return Page.from_dict(data, Model.from_dict)

    def list_versions(
        self, name: str, filter: str | None, page_size: int, page_token: str | None
    ) -> Page[Version]:
        """A page of one model's versions."""
        params = {"filter": filter, "page_size": page_size, "page_token": page_token}
        data = self._page(f"{_model_path(name)}/versions", params)
        return Page.from_dict(data, Version.from_dict)

    def search(self, query: str | None, page_size: int, page_token: str | None) -> Page[Version]:
        """A page of versions across models."""
        params = {"filter": query, "page_size": page_size, "page_token": page_token}
        data = self._page(f"{API}/versions", params)
        return Page.from_dict(data, Version.from_dict)

    @contextlib.contextmanager
    def _open_blob(self, entry: dict[str, Any]) -> Iterator[Any]:
        """The blob's bytes: from the bucket when direct, else through the server."""
        with self._open_direct(entry) as direct:
            if direct is not None:
                yield direct
                return
        with self._open_proxied(entry) as proxied:
            yield proxied

    @contextlib.contextmanager
    def _open_proxied(self, entry: dict[str, Any]) -> Iterator[_Stream]:
        blob = f"{API}/blobs/sha256:{entry['sha256']}"
        started = False
        try:
            with self._http.stream("GET", blob) as response:
                if not response.is_success:
                    response.read()
                    self._raise_for(response)
                started = True
                yield _Stream(response)
        except httpx.HTTPError as exc:
            if started and self._set_aside(blob):
                # The server cuts a download off when the bytes it reads do not hash right,
                # and sets its copy aside: say so, not "cannot reach".
                raise IntegrityFailure(
                    f"the registry's stored bytes of {entry.get('path', blob)} do not match "
                    f"their digest sha256:{entry['sha256']}: the server stopped sending them and "
                    "set its copy aside as damaged; register the file again or ask an admin to "
                    "run `modelreg fsck --repair`",
                    detail={"sha256": entry["sha256"]},
                ) from None
            raise Unavailable(
                f"download from {self.base_url} failed: {exc}", detail={"url": self.base_url}
            ) from None

    def _set_aside(self, blob: str) -> bool:
        """Whether the server no longer serves ``blob`` just after a cut-off download of it."""
        try:
            return self._http.head(blob).status_code == 404
        except httpx.HTTPError:
            return False

    def download(self, ref: str, out_dir: Path, progress: Progress | None) -> list[Path]:
        """Stream a version's files into ``out_dir``, each verified against the manifest."""
        version = self._resolve(ref)
        label = f"{version['name']}:{version['version']}"
        try:
            return write_verified(
                version["files"], out_dir, self._open_blob, label=label, progress=progress
            )
        except IntegrityFailure:
            if transfer_mode() == "proxy" or not self._direct_offer:
                raise
            # Bytes read from the bucket did not verify: read them through the server, which
            # checks its copy as it sends (and sets a damaged one aside).
            return write_verified(
                version["files"], out_dir, self._open_proxied, label=label, progress=progress
            )

    def get_version_at(self, ref: str, at: str) -> Version:
        """The version that held a stage or alias reference at moment ``at``."""
        return Version.from_dict(self._resolve(ref, at=at))

    def set_alias(
        self, name: str, alias: str, version: int, reason: str, expect_current: int | None
    ) -> Version:
        """Create or move an alias; answers the version (200).

        A protected alias's move that waits for approvals answers 202 with the request,
        raised as ``ApprovalRequired``; one its gates refuse answers 422, ``PolicyViolation``.
        """
        url = f"{_model_path(name)}/aliases/{validate_alias(alias)}"
        body = _expect({"version": version, "reason": reason}, expect_current)
        status, data = self._answer("PUT", url, json=body)
        applied_or_raise(status, data)
        return Version.from_dict(data)

    def delete_alias(self, name: str, alias: str, reason: str, expect_current: int | None) -> int:
        """Remove an alias; returns the version it pointed at."""
        url = f"{_model_path(name)}/aliases/{validate_alias(alias)}"
        params = _expect({"reason": reason}, expect_current)
        return int(self._call("DELETE", url, params=params)["version"])

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
        """Request a move; a refusal the server stored comes back as ``PolicyViolation``."""
        body = {"version": version, "to": target, "reason": reason, "dry_run": dry_run}
        url = f"{_model_path(name)}/promotions"
        return Promotion.from_dict(self._obj("POST", url, json=_expect(body, expect_current)))

    def approve(self, request_id: int, reason: str) -> Promotion:
        """Approve a request (applying it when the count is reached)."""
        url = f"{API}/promotions/{_request_id(request_id)}/approve"
        return Promotion.from_dict(self._obj("POST", url, json={"reason": reason}))

    def reject(self, request_id: int, reason: str) -> Promotion:
        """Reject a pending request."""
        url = f"{API}/promotions/{_request_id(request_id)}/reject"
        return Promotion.from_dict(self._obj("POST", url, json={"reason": reason}))

    def get_promotion(self, request_id: int) -> Promotion:
        """One request."""
        return Promotion.from_dict(self._obj("GET", f"{API}/promotions/{_request_id(request_id)}"))

    def list_promotions(
        self, name: str | None, state: str | None, page_size: int, page_token: str | None
    ) -> Page[Promotion]:
        """One page of requests, newest first."""
        params: dict[str, Any] = {"page_size": page_size, "page_token": page_token, "state": state}
        if name is not None:
            params["model"] = validate_model_name(name)
        data = self._page(f"{API}/promotions", params)
        return Page.from_dict(data, Promotion.from_dict)

    def rollback(
        self, name: str, target: str, to: int | None, reason: str, expect_current: int | None
    ) -> Rollback:
        """Put back the previous holder of a stage or alias."""
        body: dict[str, Any] = {"stage": target, "reason": reason}
        if to is not None:
            body["to"] = to
        url = f"{_model_path(name)}/rollback"
        return Rollback.from_dict(self._obj("POST", url, json=_expect(body, expect_current)))

    def get_policy(self, name: str) -> Policy:
        """The rules governing a model (or ``*``)."""
        return Policy.from_dict(self._obj("GET", _policy_path(name)))

    def list_policies(self) -> Policies:
        """Every written rule by scope."""
        return Policies.from_dict(self._obj("GET", f"{API}/policies"))

    def set_policy_rule(self, scope: str, target: str, rule: dict[str, Any]) -> PolicyRule:
        """Write one rule."""
        url = f"{_policy_path(scope)}/{_target(target)}"
        return PolicyRule.from_dict(self._obj("PUT", url, json=rule))

    def delete_policy_rule(self, scope: str, target: str) -> None:
        """Remove one rule."""
        self._call("DELETE", f"{_policy_path(scope)}/{_target(target)}")

    def apply_policies(self, scopes: dict[str, dict[str, Any]]) -> PolicyApplyReport:
        """Replace the listed scopes' rules in one transaction (on the server)."""
        data = self._obj("PUT", f"{API}/policies", json={"scopes": scopes})
        return PolicyApplyReport.from_dict(data)

    def set_tags(self, ref: str, tags: dict[str, str], delete: list[str]) -> Model | Version:
        """Tag a model (``NAME``) or a version."""
        body = {"set": tags, "delete": delete}
        if parse_ref(ref).is_model:
            return Model.from_dict(self._obj("PATCH", f"{_model_path(ref)}/tags", json=body))
        _, url = self._version_url(ref)
        return Version.from_dict(self._obj("PATCH", f"{url}/tags", json=body))

    def set_description(self, ref: str, description: str) -> Model | Version:
        """Describe a model or a version."""
        body = {"description": description}
        if parse_ref(ref).is_model:
            return Model.from_dict(self._obj("PATCH", _model_path(ref), json=body))
        _, url = self._version_url(ref)
        return Version.from_dict(self._obj("PATCH", url, json=body))

    def delete(self, ref: str, reason: str) -> Deleted:
        """Delete a model or one version."""
        parsed = parse_ref(ref)
        url = _model_path(parsed.name) if parsed.is_model else self._version_url(ref)[1]
        return Deleted.from_dict(self._obj("DELETE", url, params={"reason": reason}))

    # -- insight -------------------------------------------------------------------------

    def compare(self, name: str, a: int, b: int) -> Comparison:
        """Differences between two versions."""
        url = f"{_model_path(name)}/compare"
        return Comparison.from_dict(self._obj("GET", url, params={"a": a, "b": b}))

    def lineage(self, ref: str) -> LineageGraph:
        """Lineage graph around one version."""
        parse_ref(ref, allow_model=False)
        return LineageGraph.from_dict(self._obj("GET", f"{API}/lineage", params={"ref": ref}))

    def history(self, name: str) -> list[HistoryEntry]:
        """Stage and alias moves of a model."""
        return [HistoryEntry.from_dict(h) for h in self._items(f"{_model_path(name)}/history")]

    def audit(self, model: str | None, limit: int, after: int) -> list[AuditEvent]:
        """Audit events, optionally for one model."""
        params: dict[str, Any] = {"limit": limit, "after": after}
        if model is not None:
            params["model"] = validate_model_name(model)
        return [AuditEvent.from_dict(e) for e in self._items(f"{API}/audit", params=params)]

    def events(
        self, after: int | None, model: str | None, wait: float, limit: int
    ) -> tuple[list[Event], int]:
        """One page of the event stream: a long-poll of up to ``wait`` seconds."""
        params: dict[str, Any] = {"after": after, "model": model, "wait": wait, "limit": limit}
        limits = self._http.timeout
        data = self._obj(
            "GET",
            f"{API}/events",
            params={k: v for k, v in params.items() if v is not None},
            # The server holds the answer up to ``wait`` seconds before it starts sending.
            timeout=httpx.Timeout(
                connect=limits.connect,
                read=None if limits.read is None else limits.read + wait,
                write=limits.write,
                pool=limits.pool,
            ),
        )
        return [Event.from_dict(e) for e in data["items"]], int(data["next_after"])

    def verify_audit(self, anchors: list[str]) -> AuditVerification:
        """Check the audit chain (on the server), and that it still holds each anchor."""
        data = self._obj("GET", f"{API}/audit/verify", params={"anchor": anchors})
        return AuditVerification.from_dict(data)

    def audit_anchor(self) -> AuditAnchor:
        """The audit chain's head."""
        return AuditAnchor.from_dict(self._obj("GET", f"{API}/audit/head"))

    def create_user(self, name: str, kind: str, role: str | None, model: str | None) -> User:
        """Create a user or service account (needs an admin token)."""
        body = {"name": name, "kind": kind, "role": role, "model": model}
        return User.from_dict(self._obj("POST", f"{API}/principals", json=body))

    def list_users(self) -> list[User]:
        """Every principal with its roles."""
        return [User.from_dict(u) for u in self._items(f"{API}/principals")]

    def grant(self, name: str, role: str, model: str | None) -> User:
        """Give a principal a role."""
        body = {"principal": name, "role": role, "model": model}
        return User.from_dict(self._obj("POST", f"{API}/grants", json=body))

    def revoke(self, name: str, role: str, model: str | None) -> User:
        """Take a role away from a principal."""
        params = {"model": model} if model is not None else {}
        path = f"{API}/principals/{quote(name, safe='')}/grants/{quote(role, safe='')}"
        return User.from_dict(self._obj("DELETE", path, params=params))

    def set_disabled(self, name: str, disabled: bool) -> User:
        """Disable or enable a principal."""
        path = f"{API}/principals/{quote(name, safe='')}"
        return User.from_dict(self._obj("PATCH", path, json={"disabled": disabled}))

    def create_token(self, name: str, label: str, expires_days: int | None) -> Token:
        """Issue a token (the secret is returned once)."""
        body = {"principal": name, "name": label, "expires_days": expires_days}
        return Token.from_dict(self._obj("POST", f"{API}/tokens", json=body))

    def list_tokens(self, name: str | None) -> list[Token]:
        """Tokens without secrets."""
        params = {"principal": name} if name else {}
        return [Token.from_dict(t) for t in self._items(f"{API}/tokens", params=params)]

    def revoke_token(self, token_id: str) -> Token:
        """Revoke a token."""
        return Token.from_dict(self._obj("DELETE", f"{API}/tokens/{quote(token_id, safe='')}"))

    def rescan(self, ref: str, force: bool) -> dict[str, Any]:
        """Rescan one version on the server."""
        # A stage or alias names a version only for now: scan the one it names.
        version = self.get_version(ref)
        url = f"{_model_path(version.name)}/versions/{version.version}/scan"
        return self._obj("POST", url, params={"force": str(force).lower()})

    def rescan_all(self, force: bool) -> list[dict[str, Any]]:
        """Rescan every version on the server (admin)."""
        data = self._obj("POST", f"{API}/scans", params={"force": str(force).lower()})
        items: list[dict[str, Any]] = data["items"]
        return items

    def gc(self, grace_seconds: float, dry_run: bool) -> GcReport:
        """Collect unreferenced blobs on the server."""
        body = {"grace_seconds": grace_seconds, "dry_run": dry_run}
        return GcReport.from_dict(self._obj("POST", f"{API}/gc", json=body))
