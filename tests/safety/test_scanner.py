"""The scanner on real files the tests make: every malicious case is found, the common
libraries' models are clean, and nothing is ever loaded (the payloads' marker never appears).

The scanner is called directly here (no registry); test_scan_registry.py covers the doors.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import pytest
import safety_files

from modelreg.services.scanning import HEAD, code_kind, scan_file


def scan(path: Path) -> tuple[str | None, str, list[str]]:
    with path.open("rb") as stream:
        kind = code_kind(path.name, stream.read(HEAD))
        stream.seek(0)
        if kind is None:
            return None, "not_applicable", []
        verdict = scan_file(path.name, stream, kind)
    return kind, verdict.status, [f"{f.kind}: {f.detail}" for f in verdict.findings]


@pytest.mark.parametrize("case", sorted(safety_files.MALICIOUS))
def test_each_malicious_file_is_unsafe_and_its_payload_never_runs(case: str, tmp_path: Path):
    if case.startswith("joblib"):
        pytest.importorskip("joblib")
    marker = tmp_path / "PAYLOAD-RAN"
    path = safety_files.write(tmp_path / "files", case, marker)
    kind, status, findings = scan(path)
    assert status == "unsafe", (case, kind, findings)
    assert findings
    assert not marker.exists()


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("os.system", "posix.system"),
        ("subprocess", "subprocess.call"),
        ("builtins.eval", "eval"),
        ("runpy", "runpy.run_path"),
        ("obfuscated STACK_GLOBAL", "os.system"),
        ("getattr chain", "builtins.getattr"),
        ("__import__", "builtins.__import__"),
        ("Keras Lambda (.keras)", "Lambda"),
    ],
)
def test_a_finding_names_what_would_run(case: str, expected: str, tmp_path: Path):
    path = safety_files.write(tmp_path, case, tmp_path / "marker")
    assert any(expected in f for f in scan(path)[2]), scan(path)


def test_the_benign_models_of_the_common_libraries_are_clean(tmp_path: Path):
    pytest.importorskip("sklearn")
    models = safety_files.benign(tmp_path)
    assert "sklearn forest (joblib)" in models
    statuses = {name: scan(path)[1] for name, path in models.items()}
    expected = dict.fromkeys(models, "clean")
    if "xgboost (json)" in models:
        expected["xgboost (json)"] = "not_applicable"  # a text format: cannot carry code
    assert statuses == expected


def test_a_joblib_payload_in_any_compression_is_found(tmp_path: Path):
    joblib = pytest.importorskip("joblib")
    numpy = pytest.importorskip("numpy")
    import os

    for method in ("zlib", "gzip", "bz2", "xz"):
        path = tmp_path / f"model-{method}.joblib"
        payload = safety_files._Reduce(os.system, ("true",))
        joblib.dump({"w": numpy.ones(8), "x": payload}, path, compress=(method, 3))
        assert scan(path)[1] == "unsafe", method


def test_files_that_cannot_carry_code_are_not_applicable_from_their_first_bytes(tmp_path: Path):
    for name, data in {
        "config.json": b'{"layers": 3}',
        "data.csv": b"a,b\n1,2\n",
        "model.onnx": b"\x08\x07\x12\x07pytorch",
        "model.safetensors": b"\x10\x00\x00\x00\x00\x00\x00\x00{}",
        "README.md": b"# a model\n",
    }.items():
        (tmp_path / name).write_bytes(data)
        assert scan(tmp_path / name) == (None, "not_applicable", []), name


def test_a_plain_npy_array_is_not_applicable_and_a_text_file_named_like_data_is_not_code(
    tmp_path: Path,
):
    numpy = pytest.importorskip("numpy")
    numpy.save(tmp_path / "x.npy", numpy.arange(10.0))
    assert scan(tmp_path / "x.npy")[1] == "not_applicable"
    # Starts like a text-protocol pickle, but is not one: no finding, not an error.
    (tmp_path / "notes").write_bytes(b"(draft) notes about the model\n")
    assert scan(tmp_path / "notes")[1] == "not_applicable"
    (tmp_path / "LICENSE").write_bytes(b"(c) 2026 the authors\nall rights reserved\n")
    assert scan(tmp_path / "LICENSE")[1] == "not_applicable"
    # A truncated payload without a telling name still names a real module: unsafe.
    (tmp_path / "blob").write_bytes(b"(cos\nsystem\n(S'true'\ntR")
    assert scan(tmp_path / "blob")[1] == "unsafe"


def test_a_truncated_or_corrupt_pickle_is_an_error_not_clean(tmp_path: Path):
    (tmp_path / "model.pkl").write_bytes(pickle.dumps({"a": 1})[:-3])
    status, findings = scan(tmp_path / "model.pkl")[1:]
    assert status == "error"
    assert findings
    assert findings[0].startswith("unreadable")


def test_a_payload_behind_a_harmless_first_pickle_is_found(tmp_path: Path):
    # Loaders that read several pickles (the legacy PyTorch format) run the second one too.
    second = io.BytesIO()
    second.write(pickle.dumps(1, protocol=2))
    second.write(safety_files.os_system(tmp_path / "marker"))
    (tmp_path / "legacy.pt").write_bytes(second.getvalue())
    assert scan(tmp_path / "legacy.pt")[1] == "unsafe"


def test_a_pytorch_file_inside_a_zip_is_opened_too(tmp_path: Path):
    import zipfile

    inner = safety_files.torch_zip(tmp_path / "marker")
    with zipfile.ZipFile(tmp_path / "bundle.zip", "w") as archive:
        archive.writestr("model/weights.pt", inner)
        archive.writestr("README.md", "a model")
    kind, status, findings = scan(tmp_path / "bundle.zip")
    assert (kind, status) == ("zip", "unsafe")
    assert findings == ["import: model/weights.pt: archive/data.pkl: posix.system"]
