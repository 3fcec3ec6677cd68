"""Edge cases found in review: each was accepted or crashed before it was fixed."""

from __future__ import annotations

import io

import pytest

from modelreg import errors
from modelreg.names import (
    parse_parent,
    parse_ref,
    validate_alias,
    validate_key,
    validate_model_name,
)
from modelreg.services import search
from modelreg.storage.base import check_digest
from modelreg.storage.local import LocalBlobStore


@pytest.mark.parametrize(
    ("func", "value"),
    [
        (validate_model_name, "model\n"),
        (validate_alias, "champion\n"),
        (validate_key, "k\n"),
        (check_digest, "a" * 64 + "\n"),
    ],
)
def test_a_trailing_newline_is_refused(func, value):
    with pytest.raises(errors.InvalidInput):
        func(value)


@pytest.mark.parametrize("ref", ["m:²", "m/²", "m:１"])
def test_non_ascii_digits_are_not_versions(ref):
    with pytest.raises(errors.InvalidReference):
        parse_ref(ref)
    with pytest.raises(errors.InvalidReference):
        parse_parent(ref)


def test_numeric_keys_after_a_dot():
    where = search.parse("tags.2024 = 'x'").where
    assert isinstance(where, search.Compare)
    assert where.field.parts == ("tags", "2024")


def test_big_integers_keep_their_value():
    where = search.parse("version = 9007199254740993").where
    assert isinstance(where, search.Compare)
    assert where.value == 9007199254740993


def test_infinite_numbers_are_refused():
    with pytest.raises(errors.InvalidQuery) as info:
        search.parse("metrics.x < 1e999")
    assert info.value.position == 12


def test_like_keeps_its_escapes():
    where = search.parse(r"name LIKE 'a\_b'").where
    assert isinstance(where, search.Compare)
    assert where.value == r"a\_b"


def test_a_planted_symlink_is_not_a_blob(tmp_path):
    store = LocalBlobStore(tmp_path / "store")
    real = store.put(io.BytesIO(b"real"))
    fake = "f" * 64
    link = tmp_path / "store" / "sha256" / "ff" / "ff" / fake
    link.parent.mkdir(parents=True)
    link.symlink_to(
        tmp_path / "store" / "sha256" / real.sha256[:2] / real.sha256[2:4] / real.sha256
    )
    assert store.exists(fake) is False
    with pytest.raises(errors.BlobNotFound):
        store.size(fake)
