"""A registration's ``flavor`` and ``signature``: bounded and checked for every door (400)."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest

from modelreg.errors import InvalidInput
from modelreg.services.registration import RegistrationSpec
from modelreg.services.versions import FileSpec

DIGEST = "ab" * 32
FILES = [FileSpec("model.skops", DIGEST, 7), FileSpec("input_example.json", DIGEST, 7)]
FLAVOR = {
    "name": "sklearn",
    "format": "skops",
    "files": ["model.skops"],
    "libraries": {"scikit-learn": "1.5.0"},
    "python": "3.11.9",
}
SIGNATURE = {
    "type": "dataframe",
    "inputs": [{"name": "age", "dtype": "float64"}],
    "outputs": [{"name": None, "dtype": "int64", "shape": [-1]}],
}


def _spec(**kwargs: Any) -> RegistrationSpec:
    return RegistrationSpec(name="m", files=FILES, **kwargs)


def test_a_good_flavor_and_signature_are_kept_as_given() -> None:
    spec = _spec(flavor=FLAVOR, signature=SIGNATURE)
    assert spec.flavor == FLAVOR
    assert spec.signature == SIGNATURE
    assert (_spec().flavor, _spec().signature) == (None, None)


@pytest.mark.parametrize(
    ("flavor", "words"),
    [
        ("sklearn", "flavor must be an object"),
        ({**FLAVOR, "name": "Not A Name"}, "flavor.name must be"),
        ({**FLAVOR, "name": None}, "flavor.name must be"),
        ({**FLAVOR, "format": 3}, "flavor.format must be text"),
        ({**FLAVOR, "format": "x" * 65}, "flavor.format must be text"),
        ({**FLAVOR, "libraries": {"numpy": 2}}, "flavor.libraries must map"),
        ({**FLAVOR, "libraries": ["numpy"]}, "flavor.libraries must map"),
        ({**FLAVOR, "files": "model.skops"}, "flavor.files must be a list"),
        ({**FLAVOR, "files": ["elsewhere.bin"]}, "not a file of the version"),
        ({**FLAVOR, "extra": "x" * 20_000}, "more than 16384"),
        ({**FLAVOR, "nan": float("nan")}, "must be JSON"),
    ],
)
def test_a_bad_flavor_is_refused(flavor: Any, words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        _spec(flavor=flavor)


@pytest.mark.parametrize(
    ("signature", "words"),
    [
        ([], "signature must be an object"),
        ({**SIGNATURE, "other": 1}, "signature must be an object"),
        ({**SIGNATURE, "type": "image"}, "signature.type must be"),
        ({**SIGNATURE, "inputs": "age"}, "signature.inputs must be a list"),
        ({**SIGNATURE, "inputs": [{"name": "a"} for _ in range(2001)]}, "at most 2000"),
        ({**SIGNATURE, "inputs": [{"name": "a", "dtype": "f", "x": 1}]}, "an object with name"),
        ({**SIGNATURE, "inputs": [{"name": 3, "dtype": "f"}]}, r"inputs\[\].name must be text"),
        ({**SIGNATURE, "outputs": [{"dtype": None}]}, r"outputs\[\].dtype must be text"),
        ({**SIGNATURE, "inputs": [{"dtype": "f", "shape": [-2]}]}, "shape must be"),
        ({**SIGNATURE, "inputs": [{"dtype": "f", "shape": [True]}]}, "shape must be"),
        (
            {**SIGNATURE, "inputs": [{"name": "c" * 200, "dtype": "f"} for _ in range(1500)]},
            "more than 262144",
        ),
    ],
)
def test_a_bad_signature_is_refused(signature: Any, words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        _spec(signature=signature)


def test_the_rest_door_answers_400_and_creates_nothing(live_server: Any) -> None:
    data = b"weights"
    digest = hashlib.sha256(data).hexdigest()
    base = f"{live_server.url}/api/v1"
    assert httpx.put(f"{base}/blobs/sha256:{digest}", content=data).is_success
    files = [{"path": "model.skops", "sha256": digest, "size": len(data)}]
    bad_flavor = {**FLAVOR, "files": ["nowhere.bin"]}
    bad_signature = {**SIGNATURE, "type": "image"}
    for body in ({"flavor": bad_flavor}, {"signature": bad_signature}, {"flavor": [1]}):
        answer = httpx.post(f"{base}/models/m/versions", json={"files": files, **body})
        assert answer.status_code in (400, 422), answer.text
        assert answer.json()["error"]["code"] in ("invalid_input", "validation_error")
    assert httpx.get(f"{base}/models").json()["items"] == []
    good = {"files": files, "flavor": FLAVOR, "signature": SIGNATURE}
    created = httpx.post(f"{base}/models/m/versions", json=good)
    assert created.status_code == 201, created.text
    assert created.json()["flavor"] == FLAVOR
    assert created.json()["signature"] == SIGNATURE
