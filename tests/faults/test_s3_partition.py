"""The bucket unreachable for a while, mid multipart upload (issue 25, fault runs): a server
whose network to S3 is cut while a 40 MiB upload is half sent answers ``storage_failure``,
stores nothing under ``PREFIX/sha256/`` and makes no version; once the network is back the
same server (no restart) stores again, and the multipart upload it could not abort during the
cut is aborted then, not left in the bucket for as long as the server lives.

The cut is real: the server reaches moto through a TCP relay that drops every connection and
refuses new ones while cut; moto itself (and what it holds) stays up. (The outage where the
endpoint itself goes away is tests/storage/test_s3_servers.py.)
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import modelreg
from modelreg.errors import StorageFailure
from modelreg.storage.s3 import MIN_PART_SIZE, S3BlobStore, parse_s3_url
from s3_faults import MiB, Relay, held_body, multipart_uploads, parts, temp_keys, wait_for
from server_process import DEADLINE, ServerProcess


@pytest.fixture
def relay(moto_server: Any) -> Iterator[Relay]:
    with Relay(moto_server.port) as running:
        yield running


def test_an_abort_the_cut_refused_is_retried_once_the_bucket_answers(
    relay: Relay, s3_artifacts: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: a live writer's failed abort used to stay in the bucket while it lived
    (``clean_temporary`` never touches the uploads of a live process)."""
    direct = S3BlobStore(*parse_s3_url(s3_artifacts))
    monkeypatch.setenv("AWS_ENDPOINT_URL", relay.url)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    store = S3BlobStore(*parse_s3_url(s3_artifacts), part_size=MIN_PART_SIZE)
    for retried_by in ("clean_temporary", "the next blob"):
        writer = store.writer()
        writer.write(os.urandom(MIN_PART_SIZE + 1))  # one part on its way
        wait_for(lambda: any(parts(direct, u) for u in multipart_uploads(direct)), "a part")
        relay.cut()
        writer.abort()  # cannot reach the bucket: remembered, not raised
        relay.heal()
        assert len(multipart_uploads(direct)) == 1
        if retried_by == "clean_temporary":
            assert store.clean_temporary(older_than=0) == 1
        else:
            store.put(io.BytesIO(b"the bucket is back"))
        assert multipart_uploads(direct) == []
    assert temp_keys(direct) == []


@pytest.mark.slow
def test_a_cut_mid_multipart_fails_cleanly_and_heals_without_a_restart(
    tmp_path: Path, sqlite_db_url: str, s3_artifacts: str, relay: Relay
) -> None:
    home = tmp_path / "registry"
    home.mkdir()
    shutil.copyfile(sqlite_db_url.removeprefix("sqlite:///"), home / "registry.db")
    store = S3BlobStore(*parse_s3_url(s3_artifacts))  # the test's own view: moto, direct
    source = tmp_path / "weights.bin"
    data = os.urandom(40 * MiB + 5)
    source.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()

    env = {"AWS_ENDPOINT_URL": relay.url, "AWS_MAX_ATTEMPTS": "2"}
    with ServerProcess(home, "--artifacts", s3_artifacts, env=env) as server:
        release = threading.Event()
        outcome: list[Any] = []

        def upload() -> None:
            url = f"{server.url}/api/v1/blobs/sha256:{digest}"
            try:
                outcome.append(httpx.put(url, content=held_body(data, release, 20 * MiB)))
            except httpx.HTTPError as exc:  # answered while the body was still going
                outcome.append(exc)

        sender = threading.Thread(target=upload)
        sender.start()
        try:
            wait_for(
                lambda: [parts(store, u) for u in multipart_uploads(store)] not in ([], [[]]),
                "a multipart upload with a part in it",
            )
            relay.cut()
        finally:
            release.set()
            sender.join(DEADLINE)
        answer = outcome[0]
        if isinstance(answer, httpx.Response):
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"]["code"] == "storage_failure"
        assert not store.exists(digest)

        with modelreg.Registry(server.url) as reg:
            with pytest.raises(StorageFailure):
                reg.register("fraud", source, capture=False)
            assert reg.list_models().items == []
            relay.heal()
            assert reg.register("fraud", source, capture=False).version == 1
        assert [d for d, _ in store.iter_blobs()] == [digest]
        # What the cut kept the server from aborting is aborted once the bucket is back.
        assert multipart_uploads(store) == []
        assert temp_keys(store) == []
