"""``HttpBackend``'s direct transfers: blob bytes straight to and from the bucket.

When the server offers them (``GET /api/v1/transfers``), a large file is uploaded as parts to
presigned URLs, several at once, and the server joins and verifies them; a download reads a
presigned URL and is checked here as every download is. ``MODELREG_TRANSFER`` chooses:

* ``auto`` (default): direct for files of ``DIRECT_MIN_BYTES`` or more when the server offers
  it, else through the server; a bucket this machine cannot reach, or a download whose bytes
  do not verify, falls back to the server (which checks its own copy);
* ``direct``: direct for every non-empty file, and an error when that cannot be done;
* ``proxy``: always through the server.

Resuming needs no state here: the server finds the unfinished upload of the same digest and
lists the parts the bucket holds, so only missing parts are sent, even after a crash. A part
whose connection drops is retried (with fresh URLs when they expired); a download that drops
continues from where it stopped with a ``Range`` request.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from modelreg.digest import CHUNK, Progress
from modelreg.errors import Conflict, InvalidInput, NotFound, StorageFailure, Unavailable

API = "/api/v1"
MODES = ("auto", "direct", "proxy")
DIRECT_MIN_BYTES = 8 * 1024 * 1024  # below, one proxied request is cheaper (auto mode)
PART_THREADS = 4  # parts in flight at once (each held in memory while it travels)
PART_TRIES = 4  # attempts per part before the upload gives up (it can be resumed)
URLS_AT_ONCE = 100  # the server signs at most this many part URLs per request
RESUME_TRIES = 5  # times a broken download continues with a Range request


def transfer_mode() -> str:
    """``MODELREG_TRANSFER`` (``auto`` when unset); raises ``InvalidInput`` for other values."""
    mode = os.environ.get("MODELREG_TRANSFER", "").strip().lower() or "auto"
    if mode not in MODES:
        raise InvalidInput(
            f"MODELREG_TRANSFER={mode!r}: expected one of {', '.join(MODES)}",
            detail={"MODELREG_TRANSFER": mode},
        )
    return mode


class _Unreachable(Exception):
    """The bucket cannot be reached from here (nothing was sent)."""


class HttpDirect:
    """A mixin of ``HttpBackend``: direct uploads and downloads through presigned URLs."""

    base_url: str
    _direct_offer: bool | None = None
    _bucket_http: httpx.Client | None = None

    def _obj(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError

    def _use_direct(self, size: int) -> bool:
        """Whether to move a blob of ``size`` bytes directly (asks the server once)."""
        mode = transfer_mode()
        if mode == "proxy" or size == 0 or (mode == "auto" and size < DIRECT_MIN_BYTES):
            return False
        if self._direct_offer is None:
            try:
                self._direct_offer = bool(self._obj("GET", f"{API}/transfers").get("direct"))
            except NotFound:  # a server from before direct transfers
                self._direct_offer = False
        if not self._direct_offer and mode == "direct":
            raise Conflict(
                f"MODELREG_TRANSFER=direct, but {self.base_url} does not offer direct "
                "transfers (its store cannot presign, or direct_transfers is off)",
                detail={"direct": False},
            )
        return self._direct_offer

    def _bucket(self) -> httpx.Client:
        # Its own client: the registry's token must never travel to the bucket.
        if self._bucket_http is None:
            self._bucket_http = httpx.Client(
                timeout=httpx.Timeout(120.0, connect=10.0),
                follow_redirects=False,
                limits=httpx.Limits(max_connections=PART_THREADS * 2),
            )
        return self._bucket_http

    def _close_bucket(self) -> None:
        if self._bucket_http is not None:
            self._bucket_http.close()
            self._bucket_http = None

    def _unreachable(self, exc: Exception) -> bool:
        """In auto mode, stop trying direct (True); in direct mode, raise."""
        if transfer_mode() == "direct":
            raise Unavailable(
                f"MODELREG_TRANSFER=direct, but the bucket cannot be reached from here: {exc}",
                detail={"url": self.base_url},
            ) from None
        self._direct_offer = False
        return True

    # -- uploads --------------------------------------------------------------------------

    def _upload_direct(
        self, source: Path, digest: str, size: int, progress: Progress | None
    ) -> bool:
        """Upload ``source`` in parts to the bucket; False when it must go through the server."""
        if not self._use_direct(size):
            return False
        blob = f"{API}/blobs/sha256:{digest}/uploads"
        up = self._obj("POST", blob, json={"size": size})
        url = f"{blob}/{up['upload_id']}"
        part_size, count = int(up["part_size"]), int(up["part_count"])
        held = {int(p["number"]) for p in up["parts"]}
        todo = [n for n in range(1, count + 1) if n not in held]
        if progress is not None and held:
            progress(sum(min(part_size, size - (n - 1) * part_size) for n in held))
        try:
            self._send_parts(source, url, todo, part_size, size, progress, first=not held)
        except _Unreachable as exc:
            return not self._unreachable(exc)
        # The server reads the whole blob back to hash it, then copies it to its final key:
        # allow for that (moto takes about 90 s per GiB on a busy machine).
        self._obj(
            "POST", f"{url}/complete", timeout=httpx.Timeout(60.0, read=max(120.0, size / 5e6))
        )
        return True

    def _send_parts(
        self,
        source: Path,
        url: str,
        todo: list[int],
        part_size: int,
        size: int,
        progress: Progress | None,
        *,
        first: bool,
    ) -> None:
        if first and todo:
            # One part alone first: a bucket that cannot be reached is found before threads.
            self._send_batch(source, url, todo[:1], part_size, size, progress, probe=True)
            todo = todo[1:]
        with ThreadPoolExecutor(PART_THREADS, thread_name_prefix="modelreg-part") as pool:
            for start in range(0, len(todo), URLS_AT_ONCE):
                numbers = todo[start : start + URLS_AT_ONCE]
                urls = self._part_urls(url, numbers)
                futures = [
                    pool.submit(
                        self._send_part, source, url, n, urls, part_size, size, progress, False
                    )
                    for n in numbers
                ]
                for future in futures:
                    future.result()

    def _send_batch(
        self,
        source: Path,
        url: str,
        numbers: list[int],
        part_size: int,
        size: int,
        progress: Progress | None,
        *,
        probe: bool,
    ) -> None:
        urls = self._part_urls(url, numbers)
        for n in numbers:
            self._send_part(source, url, n, urls, part_size, size, progress, probe)

    def _part_urls(self, url: str, numbers: list[int]) -> dict[int, str]:
        answer = self._obj("POST", f"{url}/parts", json={"numbers": numbers})
        return {int(n): str(u) for n, u in answer["urls"].items()}

    def _send_part(
        self,
        source: Path,
        url: str,
        number: int,
        urls: dict[int, str],
        part_size: int,
        size: int,
        progress: Progress | None,
        probe: bool,
    ) -> None:
        """PUT one part, retried; a part's bytes are read from the file only for it."""
        offset = (number - 1) * part_size
        with open(source, "rb") as fh:
            fh.seek(offset)
            data = fh.read(min(part_size, size - offset))
        target = urls[number]
        problem = ""
        for attempt in range(PART_TRIES):
            try:
                answer = self._bucket().put(
                    target, content=data, headers={"content-length": str(len(data))}
                )
            except httpx.ConnectError as exc:
                if probe and attempt == 0:
                    raise _Unreachable(str(exc)) from None
                problem = str(exc)
            except httpx.TransportError as exc:  # a dropped connection, a timeout
                problem = str(exc)
            else:
                if answer.is_success:
                    if progress is not None:
                        progress(len(data))
                    return
                problem = f"HTTP {answer.status_code}: {answer.text[:200]}"
                if answer.status_code == 403:  # expired: sign again
                    target = self._part_urls(url, [number])[number]
            time.sleep(min(0.5 * 2**attempt, 4.0))
        raise StorageFailure(
            f"part {number} of the upload could not be sent to the bucket ({problem}); run the "
            "same command again to resume: parts already sent are not sent again",
            detail={"part": number},
        )

    # -- downloads ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _open_direct(self, entry: dict[str, Any]) -> Iterator[_RangeReader | None]:
        """A reader of the blob straight from the bucket, or None: read it through the server."""
        if not self._use_direct(int(entry["size"])):
            yield None
            return
        reader = _RangeReader(self, str(entry["sha256"]), int(entry["size"]))
        try:
            reader.open()
        except _Unreachable as exc:
            self._unreachable(exc)
            yield None
            return
        try:
            yield reader
        finally:
            reader.close()

    def _download_url(self, digest: str) -> str:
        return str(self._obj("GET", f"{API}/blobs/sha256:{digest}/url")["url"])


class _RangeReader:
    """``read()`` over a presigned GET; a broken connection continues with ``Range``."""

    def __init__(self, owner: HttpDirect, digest: str, size: int) -> None:
        self._owner = owner
        self._digest = digest
        self._size = size
        self._pos = 0
        self._url = ""
        self._response: httpx.Response | None = None
        self._pieces: Iterator[bytes] = iter(())
        self._rest = b""
        self._resumes = 0

    def open(self) -> None:
        if not self._url:
            self._url = self._owner._download_url(self._digest)
        headers = {"range": f"bytes={self._pos}-"} if self._pos else {}
        request = self._owner._bucket().build_request("GET", self._url, headers=headers)
        try:
            response = self._owner._bucket().send(request, stream=True)
        except httpx.ConnectError as exc:
            if self._pos == 0 and self._resumes == 0:
                raise _Unreachable(str(exc)) from None
            raise
        if response.status_code == 403 and self._resumes < RESUME_TRIES:
            response.close()  # the URL expired: ask for a fresh one
            self._url = ""
            self._resumes += 1
            self.open()
            return
        if response.status_code != (206 if self._pos else 200):
            text = response.read()[:200]
            response.close()
            raise StorageFailure(
                f"the bucket answered HTTP {response.status_code} to a download: {text!r}",
                detail={"sha256": self._digest},
            )
        self._response = response
        self._pieces = response.iter_raw(CHUNK)

    def read(self, size: int = -1) -> bytes:
        if not self._rest:
            self._rest = self._next()
        if size < 0 or len(self._rest) <= size:
            piece, self._rest = self._rest, b""
        else:
            piece, self._rest = self._rest[:size], self._rest[size:]
        return piece

    def _next(self) -> bytes:
        while True:
            try:
                piece = next(self._pieces, b"")
            except httpx.TransportError:
                if self._resumes >= RESUME_TRIES or self._pos >= self._size:
                    raise
                self._resumes += 1
                self.close()
                self.open()
                continue
            self._pos += len(piece)
            return piece

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None
