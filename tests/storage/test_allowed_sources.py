"""Copies from allowed S3 sources (services.allowed_sources) on moto: what is read, and bounds.

The embedded backend's ``copy_source`` is the same use-case the REST route and the MLflow door
call; the MLflow end to end runs are in tests/e2e/test_import_mlflow_s3.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from modelreg import errors
from modelreg.config import Settings
from modelreg.db.tables import Role
from modelreg.local import LocalBackend
from modelreg.services import models
from modelreg.services.actor import Actor
from modelreg.services.allowed_sources import S3Location, check_apart_from_store, parse_source
from modelreg.services.usecases import sources as source_cases
from s3_endpoint import MotoServer


@pytest.fixture
def bucket(s3_artifacts: str, moto_server: MotoServer) -> str:
    """A fresh bucket with a few objects (AWS_* point boto3 at moto)."""
    name = s3_artifacts.removeprefix("s3://").split("/")[0]
    client = boto3.session.Session().client("s3", endpoint_url=moto_server.url)
    for key, body in {
        "runs/1/model/weights.bin": b"w" * 5000,
        "runs/1/model/sub/conf.json": b"{}",
        "runs/1/model-old/weights.bin": b"old",
        "runs/2/model.pkl": b"pickle-bytes",
        "big/blob.bin": b"b" * 4096,
    }.items():
        client.put_object(Bucket=name, Key=key, Body=body)
    return name


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[LocalBackend]:
    be = LocalBackend(Settings.for_home(tmp_path / "reg"))
    try:
        yield be
    finally:
        be.close()


def test_a_prefix_is_copied_by_content_and_matches_on_path_boundaries(backend, bucket):
    backend.allow_source(f"s3://{bucket}/runs/1/model")
    copied = backend.copy_source(f"s3://{bucket}/runs/1/model")
    files = {f["path"]: f["sha256"] for f in copied["files"]}
    assert files == {
        "sub/conf.json": hashlib.sha256(b"{}").hexdigest(),
        "weights.bin": hashlib.sha256(b"w" * 5000).hexdigest(),
    }
    for digest in files.values():
        assert backend.store.exists(digest)
    # model-old shares the string prefix "model", not the path.
    with pytest.raises(errors.InvalidInput, match="not under an allowed source"):
        backend.copy_source(f"s3://{bucket}/runs/1/model-old")


def test_one_object_is_a_version_of_one_file(backend, bucket):
    backend.allow_source(f"s3://{bucket}/runs/2")
    copied = backend.copy_source(f"s3://{bucket}/runs/2/model.pkl")
    assert [(f["path"], f["size"]) for f in copied["files"]] == [("model.pkl", 12)]


@pytest.mark.parametrize(
    "uri",
    ["s3://{b}/runs/1/../2", "s3://{b}/runs//1", "s3://other-{b}/runs/1", "S3://{b}/runs/1"],
)
def test_climbing_or_another_bucket_is_refused(backend, bucket, uri):
    backend.allow_source(f"s3://{bucket}/runs")
    with pytest.raises(errors.InvalidInput):
        backend.copy_source(uri.format(b=bucket))


def test_an_empty_prefix_is_refused(backend, bucket):
    backend.allow_source(f"s3://{bucket}")
    with pytest.raises(errors.InvalidInput, match="holds no objects"):
        backend.copy_source(f"s3://{bucket}/nothing-here")


def test_a_source_larger_than_the_upload_limit_is_refused(tmp_path, bucket, monkeypatch):
    monkeypatch.setenv("MODELREG_MAX_UPLOAD_BYTES", "1000")
    backend = LocalBackend(Settings.for_home(tmp_path / "small"))
    try:
        backend.allow_source(f"s3://{bucket}/big")
        with pytest.raises(errors.InvalidInput, match="1,000 bytes"):
            backend.copy_source(f"s3://{bucket}/big")
        assert list(backend.store.iter_blobs()) == []
    finally:
        backend.close()


def test_only_an_admin_sets_the_allowlist_and_a_viewer_cannot_copy(backend, bucket):
    viewer = Actor("vic", superuser=False, grants={None: Role.VIEWER})
    contributor = Actor("cora", superuser=False, grants={None: Role.CONTRIBUTOR})
    for who in (viewer, contributor):
        backend.actor = who
        with pytest.raises(errors.PermissionDenied):
            backend.allow_source(f"s3://{bucket}/runs")
        with pytest.raises(errors.PermissionDenied):
            backend.list_sources()
    backend.actor = Actor("root")
    backend.allow_source(f"s3://{bucket}/runs")
    # Copying for the import needs the admin role: the server reads with its own credentials.
    for who in (viewer, contributor):
        backend.actor = who
        with pytest.raises(errors.PermissionDenied):
            backend.copy_source(f"s3://{bucket}/runs/2")
    assert list(backend.store.iter_blobs()) == []
    backend.actor = Actor("root")
    backend.copy_source(f"s3://{bucket}/runs/2")
    copies = [e for e in backend.audit(None, 50, 0) if e.action == "registry:source:copy"]
    assert [(e.actor, e.after) for e in copies] == [
        ("root", {"uri": f"s3://{bucket}/runs/2", "files": 1, "bytes": 12})
    ]


def test_the_door_copies_only_for_who_may_register_the_model(backend, bucket):
    """The MLflow door's copy checks the model named in the request before reading a byte."""
    backend.allow_source(f"s3://{bucket}/runs")
    backend.create_model("mine", "", {})
    backend.create_model("theirs", "", {})
    with backend.read() as session:
        mine = models.find_model(session, "mine")
        assert mine is not None
    author = Actor("ann", superuser=False, grants={mine.id: Role.CONTRIBUTOR})
    uri = f"s3://{bucket}/runs/2"
    for model in ("theirs", "new-model"):
        with pytest.raises(errors.PermissionDenied):
            source_cases.copy_source(backend, author, uri, max_bytes=10**6, model=model)
    assert list(backend.store.iter_blobs()) == []
    copied = source_cases.copy_source(backend, author, uri, max_bytes=10**6, model="mine")
    assert [f["path"] for f in copied["files"]] == ["model.pkl"]


def test_the_registrys_own_store_is_never_a_source(tmp_path, bucket, s3_artifacts, monkeypatch):
    """Copying out of the store would hand any caller every blob, whoever's model it is."""
    monkeypatch.setenv("MODELREG_ARTIFACTS", s3_artifacts)  # s3://BUCKET/registry
    backend = LocalBackend(Settings.for_home(tmp_path / "on-s3"))
    try:
        for uri in (f"s3://{bucket}", f"s3://{bucket}/registry", f"s3://{bucket}/registry/sha256"):
            with pytest.raises(errors.InvalidInput, match="overlaps the registry's own store"):
                backend.allow_source(uri)
        backend.allow_source(f"s3://{bucket}/runs")  # beside the store: fine
        # An allowlist written before the store moved is checked again at each copy.
        with pytest.raises(errors.InvalidInput, match="overlaps") as caught:
            check_apart_from_store(backend.store, parse_source(f"s3://{bucket}/registry/sha256"))
        assert caught.value.detail["reason"] == "source_is_store"
    finally:
        backend.close()


def test_locations_cover_on_path_boundaries():
    allowed = parse_source("s3://bucket/a/b")
    assert allowed.covers(S3Location("bucket", "a/b"))
    assert allowed.covers(S3Location("bucket", "a/b/c"))
    assert not allowed.covers(S3Location("bucket", "a/bc"))
    assert not allowed.covers(S3Location("bucket", "a"))
    assert not allowed.covers(S3Location("bucket2", "a/b/c"))
    assert parse_source("s3://bucket").covers(S3Location("bucket", "x/y"))


def test_a_missing_bucket_fails_the_request_and_not_the_storage(backend, bucket):
    backend.allow_source(f"s3://{bucket}-gone")
    with pytest.raises(errors.InvalidInput, match="S3 answered 404") as caught:
        backend.copy_source(f"s3://{bucket}-gone/x")
    assert caught.value.detail["reason"] == "source_unreadable"
