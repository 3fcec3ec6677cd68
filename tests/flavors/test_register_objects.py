"""``register(model=…)`` and ``load``: scikit-learn and pickle, embedded and through a server.

Real registries (a folder, and a live server on loopback), real scikit-learn models, the real
skops and joblib files; the only thing counted is what the server was asked.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import modelreg
from modelreg.client._files import collect_files
from modelreg.flavors import LibraryVersionWarning, check_safe, open_version
from server_process import log_requests

np = pytest.importorskip("numpy", reason="numpy is needed by every flavor test")
pd = pytest.importorskip("pandas", reason="pandas is in the serve extra")
sklearn_linear = pytest.importorskip(
    "sklearn.linear_model", reason="scikit-learn is in the sklearn extra"
)
pytest.importorskip("skops", reason="skops is in the sklearn extra")

from sklearn.base import BaseEstimator, TransformerMixin  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402


def _data(seed: int = 0) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"age": rng.random(40) * 80, "spend": rng.random(40) * 100})
    return frame, (frame["age"] > 40).astype(int)


def _churn() -> tuple[Any, Any]:
    x, y = _data()
    return sklearn_linear.LogisticRegression().fit(x, y), x


class Doubler(BaseEstimator, TransformerMixin):
    """A custom transformer: skops cannot load it safely, so joblib writes it."""

    def fit(self, x: Any, y: Any = None) -> Doubler:
        return self

    def transform(self, x: Any) -> Any:
        return np.asarray(x) * 2


@pytest.mark.full_matrix
def test_a_fitted_estimator_round_trips_with_skops_and_a_signature(
    reg: modelreg.Registry,
) -> None:
    model, x = _churn()
    v = reg.register("churn", model=model, input_example=x.head(5), metrics={"auc": 0.9})
    assert v.framework == "sklearn"
    assert v.flavor is not None
    assert v.flavor["name"] == "sklearn"
    assert v.flavor["format"] == "skops"
    assert v.flavor["libraries"]["scikit-learn"]
    assert sorted(f.path for f in v.files) == ["input_example.json", "model.skops"]
    assert v.signature == {
        "type": "dataframe",
        "inputs": [{"name": "age", "dtype": "float64"}, {"name": "spend", "dtype": "float64"}],
        "outputs": [{"name": None, "dtype": "int64", "shape": [-1]}],
    }
    loaded = reg.load("churn:1")
    assert type(loaded) is type(model)
    assert list(loaded.predict(x)) == list(model.predict(x))
    assert reg.get_version("churn:1").flavor == v.flavor


def test_open_version_predicts_warms_and_checks_input(reg: modelreg.Registry) -> None:
    model, x = _churn()
    reg.register("churn", model=model, input_example=x.head(3))
    reg.promote("churn", 1, "production")
    served = open_version(reg, "models:/churn/production")
    assert served.flavor == "sklearn"
    assert served.version.version == 1
    assert list(served.example.columns) == ["age", "spend"]
    assert len(served.warm()) == 3
    # Rows as lists, rows as dicts, and columns in another order all predict the same.
    rows = x.head(4)
    expected = list(model.predict(rows))
    assert list(served.predict(rows[["spend", "age"]])) == expected
    assert list(served.predict(rows.to_dict(orient="records"))) == expected
    assert list(served.predict(rows.to_numpy().tolist())) == expected
    with pytest.raises(modelreg.InvalidInput, match="missing column 'spend'") as missing:
        served.check_input(pd.DataFrame({"age": [1.0]}))
    assert missing.value.detail["column"] == "spend"
    with pytest.raises(modelreg.InvalidInput, match="column 'age' must be float64") as bad:
        served.check_input(pd.DataFrame({"age": ["old"], "spend": [1.0]}))
    assert bad.value.detail["column"] == "age"
    # Numbers sent as text (CSV) are converted; extra columns are dropped.
    checked = served.check_input(pd.DataFrame({"spend": ["3"], "age": ["40"], "x": [1]}))
    assert list(checked.columns) == ["age", "spend"]
    assert checked["age"].dtype == "float64"


def test_the_example_file_is_in_the_scoring_protocols_shape(
    sqlite_reg: modelreg.Registry, tmp_path: Path
) -> None:
    model, x = _churn()
    sqlite_reg.register("churn", model=model, input_example=x.head(2))
    out = sqlite_reg.download("churn:1", tmp_path / "out")
    example = json.loads(next(p for p in out if p.name == "input_example.json").read_text())
    assert example["dataframe_split"]["columns"] == ["age", "spend"]
    assert len(example["dataframe_split"]["data"]) == 2


def test_an_estimator_skops_cannot_load_safely_is_written_with_joblib_and_refused(
    reg: modelreg.Registry,
) -> None:
    x, y = _data()
    model = make_pipeline(Doubler(), sklearn_linear.LogisticRegression()).fit(x, y)
    v = reg.register("custom", model=model)
    assert v.flavor is not None
    assert v.flavor["format"] == "joblib"
    # The scanner finds the test's own class, which no allowlist knows: code to run on load.
    assert v.scan is not None
    assert v.scan["status"] == "unsafe"
    with pytest.raises(modelreg.UnsafeModel, match="found code") as refused:
        reg.load("custom:1")
    assert refused.value.exit_code == 5
    assert refused.value.detail["format"] == "joblib"
    loaded = reg.load("custom:1", trust=True)
    assert list(loaded.predict(x)) == list(model.predict(x))


def test_anything_else_is_pickled_and_loads_when_scanned_clean_or_trusted(
    reg: modelreg.Registry,
) -> None:
    v = reg.register("rule", model={"threshold": 0.5})
    assert v.flavor is not None
    assert (v.flavor["name"], v.flavor["format"]) == ("pickle", "pickle")
    assert v.framework == "pickle"
    # Plain data names no global at all: the scan is clean, so it loads without trust.
    assert v.scan is not None
    assert v.scan["status"] == "clean"
    assert modelreg.load("rule:1", registry=reg) == {"threshold": 0.5}
    # A lambda needs cloudpickle: it rebuilds a function from code, which the scanner flags.
    fn = reg.register("fn", model=lambda rows: [1] * len(rows))
    assert fn.flavor is not None
    assert fn.flavor["format"] in ("cloudpickle", "pickle")
    assert fn.scan is not None
    assert fn.scan["status"] == "unsafe"
    with pytest.raises(modelreg.UnsafeModel, match="found code"):
        reg.load("fn:1")
    assert reg.load("fn:1", trust=True)([1, 2]) == [1, 1]


def test_the_scan_decides_for_pickle_family_versions(sqlite_reg: modelreg.Registry) -> None:
    v = sqlite_reg.register("rule", model={"a": 1})
    check_safe(replace(v, scan={"status": "clean"}), trust=False)
    for status, words in (("pending", "scan is pending"), ("unsafe", "found code")):
        with pytest.raises(modelreg.UnsafeModel, match=words):
            check_safe(replace(v, scan={"status": status}), trust=False)
    check_safe(replace(v, scan={"status": "unsafe"}), trust=True)
    # skops needs no scan at all.
    model, _ = _churn()
    check_safe(sqlite_reg.register("churn", model=model), trust=False)


def test_a_second_load_reads_no_blob_from_the_server(live_server: Any) -> None:
    seen = log_requests(live_server.app)
    model, x = _churn()
    with modelreg.Registry(live_server.url) as reg:
        reg.register("churn", model=model, input_example=x.head(2))
        seen.seen.clear()
        reg.load("churn:1")
        first = [p for p in seen.paths if "/blobs/" in p]
        assert len(first) == 2
        seen.seen.clear()
        served = open_version(reg, "churn:1")
    # Another client of the same user: the cache is shared.
    with modelreg.Registry(live_server.url) as other:
        again = open_version(other, "churn:1")
    assert [p for p in seen.paths if "/blobs/" in p] == []
    assert again.folder == served.folder
    assert list(again.predict(x)) == list(model.predict(x))


def test_a_damaged_cache_folder_is_fetched_again(sqlite_reg: modelreg.Registry) -> None:
    model, x = _churn()
    sqlite_reg.register("churn", model=model)
    folder = open_version(sqlite_reg, "churn:1").folder
    (folder / "model.skops").write_bytes(b"")
    assert list(sqlite_reg.load("churn:1").predict(x)) == list(model.predict(x))


def test_a_library_version_that_differs_is_warned_about(
    sqlite_reg: modelreg.Registry, tmp_path: Path
) -> None:
    model, _ = _churn()
    v = sqlite_reg.register("churn", model=model)
    folder = sqlite_reg.local_files(v)
    assert v.flavor is not None
    info = {**v.flavor, "libraries": {"scikit-learn": "0.0.1", "no-such-dist": "1.0"}}
    # As an older client would have sent it: the same file, other library versions.
    files = collect_files([folder / "model.skops"])
    sqlite_reg.backend.register("old", files, {"flavor": info, "framework": "sklearn"}, None)
    with pytest.warns(LibraryVersionWarning) as caught:
        sqlite_reg.load("old:1")
    messages = sorted(str(w.message) for w in caught)
    assert "saved with no-such-dist 1.0, which is not installed" in messages[0]
    assert "saved with scikit-learn 0.0.1;" in messages[1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sqlite_reg.load("churn:1")


def test_bad_calls_change_nothing(sqlite_reg: modelreg.Registry, files: Path) -> None:
    model, _ = _churn()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"paths": files / "model.pkl", "model": model}, "not both"),
        ({}, "give the paths"),
        ({"paths": files / "model.pkl", "flavor": "sklearn"}, "go with model="),
        ({"model": model, "flavor": "nope"}, "unknown flavor 'nope'"),
        ({"model": {"a": 1}, "flavor": "sklearn"}, "does not handle a dict"),
        ({"model": model, "input_example": 3}, "input_example must be"),
    ]
    for kwargs, words in cases:
        with pytest.raises(modelreg.InvalidInput, match=words):
            sqlite_reg.register("m", **kwargs)
    assert sqlite_reg.list_models().items == []


def test_loading_a_version_of_plain_files_says_so(reg: modelreg.Registry, files: Path) -> None:
    reg.register("files", files / "model.pkl")
    with pytest.raises(modelreg.InvalidInput, match="holds files, not a Python object"):
        reg.load("files:1")


def test_importing_modelreg_and_its_flavors_loads_no_ml_library() -> None:
    code = (
        "import sys, modelreg, modelreg.flavors; modelreg.Registry; modelreg.load; "
        "heavy = ('numpy', 'pandas', 'sklearn', 'skops', 'joblib', 'torch', 'onnx', "
        "'onnxruntime', 'xgboost', 'lightgbm', 'safetensors'); "
        "print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_input_of_every_shape_is_turned_into_the_signatures_columns(
    sqlite_reg: modelreg.Registry,
) -> None:
    model, x = _churn()
    sqlite_reg.register("churn", model=model, input_example=x.head(2))
    served = open_version(sqlite_reg, "churn:1")
    rows = x.head(3)
    expected = list(model.predict(rows))
    assert list(served.predict(rows.to_numpy())) == expected
    assert list(served.predict({"age": list(rows["age"]), "spend": list(rows["spend"])})) == (
        expected
    )
    assert list(served.predict(rows.iloc[0].tolist())) == expected[:1]
    for bad, words in (
        ([[1.0, 2.0, 3.0]], "must have 2 values"),
        (np.zeros((2, 3)), "must have 2 values"),
        ([[1.0], [2.0, 3.0]], "must have 2 values"),
        ({"age": [1, 2], "spend": [1]}, "not a table"),
        ([["a", 1.0]], "column 'age' must be float64"),
    ):
        with pytest.raises(modelreg.InvalidInput, match=words):
            served.predict(bad)


def test_a_cache_others_can_write_is_not_used(
    sqlite_reg: modelreg.Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, _ = _churn()
    sqlite_reg.register("churn", model=model)
    shared = tmp_path / "shared-cache"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("MODELREG_MODEL_CACHE", str(shared))
    with pytest.raises(modelreg.StorageFailure, match="not private to this user"):
        sqlite_reg.load("churn:1")
    shared.chmod(0o700)
    assert sqlite_reg.load("churn:1") is not None


def test_show_prints_the_flavor_and_the_signature(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from modelreg.cli.main import main

    home = tmp_path / "cli-home"
    model, x = _churn()
    with modelreg.Registry(home) as reg:
        reg.register("churn", model=model, input_example=x.head(2))
    assert main(["--registry", str(home), "show", "churn:1"]) == 0
    out = capsys.readouterr().out
    assert "flavor: sklearn (skops)" in out
    assert "inputs: age: float64, spend: float64" in out
    assert "outputs: int64" in out
