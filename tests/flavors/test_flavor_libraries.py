"""Each library flavor's round trip: PyTorch, ONNX, XGBoost and LightGBM, saved and loaded back.

A flavor is skipped only when its library cannot be imported (the reason says which extra
installs it). The register/load path is the same for every flavor and runs embedded and
remote in test_register_objects.py; here the remote run covers one flavor per library.
"""

from __future__ import annotations

from typing import Any

import pytest

import modelreg
from modelreg.flavors import open_version

np = pytest.importorskip("numpy", reason="numpy is needed by every flavor test")
pd = pytest.importorskip("pandas", reason="pandas is in the serve extra")


def _frame(n: int = 60, seed: int = 1) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"a": rng.random(n), "b": rng.random(n)})
    return x, (x["a"] + x["b"] > 1).astype(int)


def test_pytorch_weights_as_safetensors_with_the_class_path(reg: modelreg.Registry) -> None:
    torch = pytest.importorskip("torch", reason="torch is in the torch extra")
    pytest.importorskip("safetensors", reason="safetensors is in the torch extra")
    from flavor_nets import TinyNet

    net = TinyNet()
    example = np.random.default_rng(0).random((4, 2)).astype(np.float32)
    v = reg.register("net", model=net, input_example=example)
    assert v.flavor is not None
    assert (v.flavor["name"], v.flavor["format"]) == ("pytorch", "safetensors")
    assert v.flavor["module"] == "flavor_nets:TinyNet"
    assert "torch" in v.flavor["libraries"]
    assert v.signature is not None
    assert v.signature["type"] == "tensor"
    assert v.signature["inputs"] == [{"name": None, "dtype": "float32", "shape": [-1, 2]}]
    loaded = reg.load("net:1")
    assert isinstance(loaded, TinyNet)
    assert not loaded.training
    for mine, theirs in zip(net.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(mine, theirs)
    served = open_version(reg, "net:1")
    expected = net(torch.as_tensor(example)).detach().numpy()
    assert np.allclose(served.warm(), expected)
    assert np.allclose(served.predict(example.tolist()), expected)
    with pytest.raises(modelreg.InvalidInput, match="shape"):
        served.check_input(np.zeros((2, 3)))


def test_pytorch_without_a_rebuildable_class_is_torchscript(
    sqlite_reg: modelreg.Registry,
) -> None:
    torch = pytest.importorskip("torch", reason="torch is in the torch extra")
    from flavor_nets import SizedNet

    net = SizedNet(3)
    v = sqlite_reg.register("sized", model=net)
    assert v.flavor is not None
    assert v.flavor["format"] == "torchscript"
    loaded = sqlite_reg.load("sized:1")
    x = torch.ones((2, 3))
    assert torch.allclose(loaded(x), net(x))
    assert sqlite_reg.load("sized:1", trust=False) is not None  # no pickle: no trust needed


def test_onnx_model_runs_in_onnxruntime(reg: modelreg.Registry) -> None:
    pytest.importorskip("onnx", reason="onnx is in the onnx extra")
    pytest.importorskip("onnxruntime", reason="onnxruntime is in the onnx extra")
    skl2onnx = pytest.importorskip("skl2onnx", reason="skl2onnx converts the test's model")
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LinearRegression

    x, _ = _frame()
    y = 3 * x["a"] - x["b"]
    fitted = LinearRegression().fit(x.to_numpy(dtype=np.float32), y)
    proto = skl2onnx.convert_sklearn(fitted, initial_types=[("x", FloatTensorType([None, 2]))])
    example = x.head(3).to_numpy(dtype=np.float32)
    v = reg.register("onnx-lr", model=proto, input_example=example)
    assert v.flavor is not None
    assert (v.flavor["name"], v.flavor["format"]) == ("onnx", "onnx")
    served = open_version(reg, "onnx-lr:1")
    assert type(served.model).__name__ == "InferenceSession"
    got = served.predict(example).ravel()
    assert np.allclose(got, fitted.predict(example), atol=1e-4)


def test_xgboost_booster_and_classifier_as_json(reg: modelreg.Registry) -> None:
    xgboost = pytest.importorskip("xgboost", reason="xgboost is in the xgboost extra")
    x, y = _frame()
    classifier = xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(x, y)
    v = reg.register("xgb", model=classifier, input_example=x.head(3))
    assert v.flavor is not None
    assert (v.flavor["name"], v.flavor["format"], v.flavor["class"]) == (
        "xgboost",
        "xgboost-json",
        "XGBClassifier",
    )
    loaded = reg.load("xgb:1")
    assert isinstance(loaded, xgboost.XGBClassifier)
    assert list(loaded.predict(x)) == list(classifier.predict(x))
    booster = classifier.get_booster()
    reg.register("xgb-booster", model=booster)
    served = open_version(reg, "xgb-booster:1")
    assert isinstance(served.model, xgboost.Booster)
    assert np.allclose(served.predict(x), booster.predict(xgboost.DMatrix(x)))


def test_lightgbm_as_text_answers_a_classifiers_labels(reg: modelreg.Registry) -> None:
    lightgbm = pytest.importorskip("lightgbm", reason="lightgbm is in the lightgbm extra")
    x, y = _frame(200)
    labels = np.where(y == 1, "churn", "stay")
    classifier = lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(x, labels)
    v = reg.register("lgbm", model=classifier, input_example=x.head(3))
    assert v.flavor is not None
    assert (v.flavor["name"], v.flavor["format"]) == ("lightgbm", "lightgbm-text")
    assert v.flavor["classes"] == ["churn", "stay"]
    served = open_version(reg, "lgbm:1")
    assert isinstance(served.model, lightgbm.Booster)
    assert list(served.predict(x)) == list(classifier.predict(x))
    regressor = lightgbm.LGBMRegressor(n_estimators=5, verbose=-1).fit(x, x["a"])
    reg.register("lgbm-reg", model=regressor.booster_)
    assert np.allclose(open_version(reg, "lgbm-reg:1").predict(x), regressor.predict(x))
