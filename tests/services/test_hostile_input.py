"""Hostile and edge input found in review: each gets a RegistryError and changes nothing."""

from __future__ import annotations

import base64
import io
import json
import os
import time

import pytest

from modelreg import errors
from modelreg.cli.main import main
from modelreg.storage.local import LocalBlobStore

# Hostile input reaches the database: a dialect's own error must not cross HTTP as a 500.
pytestmark = pytest.mark.full_matrix


class TestSearchInputs:
    @pytest.fixture
    def two(self, reg, files):
        reg.register("m", files / "model.pkl", semver="1.0.0", capture=False)
        reg.register("m", files / "model.pkl", capture=False)
        return reg

    @pytest.mark.parametrize(
        "query",
        [
            "status = 'bogus'",
            "stage LIKE 'prod%'",
            "status LIKE 'r%'",
            "created_at LIKE '20%'",
            "version LIKE '1%'",
            "metrics.x ILIKE '1%'",
            "created_at > '0001-01-01T00:00:00+01:00'",
            "created_at > '9999-12-31T23:00-05:00'",
            "metrics.a > 1" + "0" * 400,
            "version = 1099511627776",
            "version = 99999999999999999999",
            "name = 'a\x00b'",
        ],
    )
    def test_bad_queries_are_invalid_query(self, two, query):
        with pytest.raises(errors.InvalidQuery):
            two.search(query)

    def test_not_includes_versions_without_the_field(self, two):
        assert [v.version for v in two.search("NOT semver = '1.0.0'")] == [2]
        both = two.search("semver = '1.0.0' OR NOT semver = '1.0.0' ORDER BY version")
        assert [v.version for v in both] == [1, 2]
        assert [v.version for v in two.search("semver != '1.0.0'")] == []
        assert [v.version for v in two.search("status = 'ready' ORDER BY version")] == [1, 2]

    @pytest.mark.parametrize(
        "token",
        [
            base64.urlsafe_b64encode(json.dumps({"o": 1e20, "q": "x"}).encode()).decode(),
            base64.urlsafe_b64encode(json.dumps({"k": ["x", "y"], "q": "x"}).encode()).decode(),
            base64.urlsafe_b64encode(json.dumps({"k": [1, 2, 3], "q": "x"}).encode()).decode(),
            "not-base64!!",
            "",
        ],
    )
    def test_forged_page_tokens(self, two, token):
        if not token:
            assert len(two.search(page_token=token)) == 2
            return
        with pytest.raises(errors.InvalidInput):
            two.search(page_token=token)

    def test_pages_are_stable_while_versions_arrive(self, two, files):
        first = two.list_versions("m", page_size=1)
        assert [v.version for v in first] == [2]
        two.register("m", files / "model.pkl", capture=False)
        second = two.list_versions("m", page_size=1, page_token=first.next_page_token)
        assert [v.version for v in second] == [1]
        assert second.next_page_token is None

    def test_pages_by_metric_with_missing_values(self, reg, files):
        for value in (0.5, None, 0.9, None, 0.7):
            metrics = {} if value is None else {"auc": value}
            reg.register("m", files / "model.pkl", metrics=metrics, capture=False)
        seen, token = [], None
        while True:
            page = reg.search("ORDER BY metrics.auc DESC", page_size=2, page_token=token)
            seen += [v.version for v in page]
            token = page.next_page_token
            if token is None:
                break
        assert seen == [3, 5, 1, 4, 2]


class TestReferencesAndNames:
    @pytest.mark.parametrize("ref", ["m:99999999999", "m:2147483648", "models:/m/99999999999999"])
    def test_huge_version_numbers(self, reg, files, ref):
        reg.register("m", files / "model.pkl", capture=False)
        with pytest.raises(errors.InvalidReference):
            reg.get_version(ref)

    def test_huge_numbers_in_alias_and_compare(self, reg, files):
        reg.register("m", files / "model.pkl", capture=False)
        with pytest.raises(errors.InvalidInput):
            reg.set_alias("m", "champion", 2**40)
        with pytest.raises(errors.InvalidInput):
            reg.compare("m", 1, 2**40)

    @pytest.mark.parametrize("name", ["team/1", "team/production", "team/latest", "team/Staging"])
    def test_namespaced_names_that_read_as_refs(self, reg, files, name):
        with pytest.raises(errors.InvalidName):
            reg.register(name, files / "model.pkl", capture=False)

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"idempotency_key": "k\x00"},
            {"semver": "1.0.0-" + "a" * 300},
            {"semver": "99999999999.0.0"},
            {"metrics": {"a": 10**400}},
        ],
    )
    def test_values_the_database_would_choke_on(self, reg, files, kwargs):
        with pytest.raises(errors.InvalidInput):
            reg.register("m", files / "model.pkl", capture=False, **kwargs)
        assert list(reg.list_models()) == []

    def test_nul_in_a_reason(self, reg, files):
        reg.register("m", files / "model.pkl", capture=False)
        with pytest.raises(errors.InvalidInput):
            reg.delete("m:1", reason="x\x00")
        with pytest.raises(errors.InvalidInput):
            reg.delete("m", reason="x\x00")
        assert reg.get_version("m:1").version == 1

    def test_deleting_twice(self, reg, files):
        reg.register("m", files / "model.pkl", capture=False)
        reg.delete("m:1", reason="once")
        with pytest.raises(errors.VersionNotFound):
            reg.delete("m:1", reason="twice")
        assert [e.action for e in reg.audit()].count("registry:version:delete") == 1

    def test_idempotent_replay_with_other_metrics_conflicts(self, reg, files):
        reg.register("m", files / "model.pkl", metrics={"a": 1}, idempotency_key="k", capture=False)
        with pytest.raises(errors.Conflict):
            reg.register(
                "m", files / "model.pkl", metrics={"a": 2}, idempotency_key="k", capture=False
            )


class TestFiles:
    def test_a_symlink_out_of_the_folder_is_refused(self, reg, tmp_path):
        folder = tmp_path / "model"
        folder.mkdir()
        (tmp_path / "secret.txt").write_text("api-key")
        (folder / "weights.bin").write_bytes(b"w")
        (folder / "config.json").symlink_to(tmp_path / "secret.txt")
        with pytest.raises(errors.InvalidPath, match="outside"):
            reg.register("m", folder, capture=False)
        assert list(reg.list_models()) == []

    def test_a_symlink_inside_the_folder_is_stored_as_its_file(self, reg, tmp_path):
        folder = tmp_path / "model"
        folder.mkdir()
        (folder / "weights.bin").write_bytes(b"w")
        (folder / "latest.bin").symlink_to(folder / "weights.bin")
        v = reg.register("m", folder, capture=False)
        assert {f.path: f.size for f in v.files} == {"latest.bin": 1, "weights.bin": 1}

    def test_a_fifo_is_refused_without_blocking(self, reg, tmp_path):
        folder = tmp_path / "model"
        folder.mkdir()
        os.mkfifo(folder / "pipe")
        with pytest.raises(errors.InvalidInput, match="not a regular file"):
            reg.register("m", folder, capture=False)

    def test_unicode_forms_of_one_path_collide(self, reg, tmp_path):
        folder = tmp_path / "model"
        folder.mkdir()
        (folder / "\u1112\u1161\u11ab.bin").write_bytes(b"nfd")
        (folder / "\ud55c.bin").write_bytes(b"nfc")
        # The client keeps names in NFC (docs/storage.md), so both are the same name.
        with pytest.raises(errors.InvalidPath, match="Unicode"):
            reg.register("m", folder, capture=False)

    def test_download_onto_a_file(self, reg, files, tmp_path):
        reg.register("m", files / "model.pkl", capture=False)
        target = tmp_path / "afile"
        target.write_text("keep")
        with pytest.raises(errors.InvalidPath):
            reg.download("m:1", target)
        assert target.read_text() == "keep"

    def test_download_with_a_file_in_the_way_writes_nothing(self, reg, files, tmp_path):
        reg.register("m", [files / "model.pkl", files / "model_dir"], capture=False)
        out = tmp_path / "out"
        out.mkdir()
        (out / "model.pkl").write_text("old")
        (out / "model_dir").write_text("a file where a folder goes")
        with pytest.raises(errors.InvalidPath, match="in the way"):
            reg.download("m:1", out)
        assert (out / "model.pkl").read_text() == "old"


def test_reput_refreshes_a_blobs_age_so_gc_spares_it(tmp_path):
    store = LocalBlobStore(tmp_path)
    info = store.put(io.BytesIO(b"weights"))
    blob = tmp_path / "sha256" / info.sha256[:2] / info.sha256[2:4] / info.sha256
    old = time.time() - 7200
    os.utime(blob, (old, old))
    assert store.put(io.BytesIO(b"weights")).created is False
    assert blob.stat().st_mtime > time.time() - 60


def test_gc_spares_a_blob_registered_again_after_its_version_was_deleted(reg, home, files):
    v = reg.register("m", files / "model.pkl", capture=False)
    reg.delete("m:1", reason="x")
    blob = home / "blobs" / "sha256" / v.files[0].sha256[:2] / v.files[0].sha256[2:4]
    blob = blob / v.files[0].sha256
    old = time.time() - 7200
    os.utime(blob, (old, old))
    reg.register("m", files / "model.pkl", capture=False)
    assert reg.gc(grace_seconds=3600)["removed"] == 0
    assert reg.download("m:2", home.parent / "o")[0].read_bytes() == b"pickle-bytes" * 100


def test_registry_path_that_is_a_file(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["--registry", str(target), "models"]) == 1
    assert "is a file" in capsys.readouterr().err


def test_usage_errors_with_json_print_an_envelope(tmp_path, capsys):
    assert main(["--registry", str(tmp_path), "versions", "--json"]) == 1
    out = capsys.readouterr().out
    assert json.loads(out)["error"]["code"] == "usage_error"


def test_an_unwritable_store_is_a_storage_failure(tmp_path, files, monkeypatch):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the store's folder should be")
    with pytest.raises(errors.StorageFailure):
        LocalBlobStore(blocker / "blobs").put(io.BytesIO(b"x"))
    monkeypatch.setenv("MODELREG_ARTIFACTS", str(blocker / "blobs"))
    from modelreg import Registry

    reg = Registry(tmp_path / "reg")
    with pytest.raises(errors.StorageFailure):
        reg.register("m", files / "model.pkl", capture=False)
    assert list(reg.list_models()) == []
    reg.close()
