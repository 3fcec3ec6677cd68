"""XGBoost and LightGBM in their own formats: JSON and text, no pickle.

XGBoost's scikit-learn wrappers save and load themselves (``save_model``/``load_model``);
LightGBM's wrappers are saved as their booster, which ``load`` gives back (a
``lightgbm.Booster``), and ``predict`` turns a classifier's probabilities into its labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelreg.errors import InvalidInput
from modelreg.flavors._base import imported, library_versions, python_version

_XGB_WRAPPERS = frozenset(
    {"XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier", "XGBRFRegressor"}
)


class XGBoostFlavor:
    """``xgboost.Booster`` and the scikit-learn wrappers (``XGBClassifier``…), as JSON."""

    name = "xgboost"

    def handles(self, obj: Any) -> bool:
        """A booster or a scikit-learn wrapper of XGBoost."""
        if not imported("xgboost"):
            return False
        import xgboost

        return isinstance(obj, xgboost.Booster | xgboost.XGBModel)

    def save(self, obj: Any, folder: Path) -> dict[str, Any]:
        """``model.json`` by the library's ``save_model``; the class to rebuild."""
        import xgboost

        cls = "Booster" if isinstance(obj, xgboost.Booster) else type(obj).__name__
        if cls != "Booster" and cls not in _XGB_WRAPPERS:
            raise InvalidInput(f"the xgboost flavor does not know {cls}", detail={"class": cls})
        obj.save_model(folder / "model.json")
        return {
            "format": "xgboost-json",
            "class": cls,
            "files": ["model.json"],
            "libraries": library_versions("xgboost"),
            "python": python_version(),
        }

    def load(self, folder: Path, info: dict[str, Any]) -> Any:
        """The booster, or the wrapper of the recorded class."""
        import xgboost

        cls = info.get("class")
        if info.get("format") != "xgboost-json" or cls not in {"Booster", *_XGB_WRAPPERS}:
            raise InvalidInput(
                f"unknown xgboost format or class: {info.get('format')!r} {cls!r}", detail={}
            )
        model = getattr(xgboost, str(cls))()
        model.load_model(folder / "model.json")
        return model

    def predict(self, native: Any, data: Any) -> Any:
        """The wrapper's ``predict``; a booster predicts on a ``DMatrix`` of ``data``."""
        import xgboost

        if isinstance(native, xgboost.Booster):
            return native.predict(xgboost.DMatrix(data))
        return native.predict(data)


class LightGBMFlavor:
    """``lightgbm.Booster`` and the scikit-learn wrappers, as LightGBM's text model."""

    name = "lightgbm"

    def handles(self, obj: Any) -> bool:
        """A booster or a scikit-learn wrapper of LightGBM."""
        if not imported("lightgbm"):
            return False
        import lightgbm

        return isinstance(obj, lightgbm.Booster | lightgbm.LGBMModel)

    def save(self, obj: Any, folder: Path) -> dict[str, Any]:
        """``model.txt``; a classifier's labels are recorded to map probabilities back."""
        import lightgbm

        info: dict[str, Any] = {
            "format": "lightgbm-text",
            "class": type(obj).__name__,
            "files": ["model.txt"],
            "libraries": library_versions("lightgbm"),
            "python": python_version(),
        }
        booster = obj if isinstance(obj, lightgbm.Booster) else obj.booster_
        if isinstance(obj, lightgbm.LGBMClassifier):
            info["classes"] = [_plain(c) for c in obj.classes_]
        booster.save_model(str(folder / "model.txt"))
        return info

    def load(self, folder: Path, info: dict[str, Any]) -> Any:
        """The booster."""
        import lightgbm

        if info.get("format") != "lightgbm-text":
            raise InvalidInput(f"unknown lightgbm format {info.get('format')!r}", detail={})
        booster = lightgbm.Booster(model_file=str(folder / "model.txt"))
        # A classifier's labels, for ``predict`` (a booster answers probabilities).
        setattr(booster, "modelreg_classes", info.get("classes"))  # noqa: B010 - not an attribute of Booster
        return booster

    def predict(self, native: Any, data: Any) -> Any:
        """Predictions; for a saved classifier, its labels (not probabilities)."""
        import numpy as np

        out = native.predict(data)
        classes = getattr(native, "modelreg_classes", None)
        if classes:
            labels = np.asarray(classes)
            picks = (out > 0.5).astype(int) if out.ndim == 1 else out.argmax(axis=1)
            return labels[picks]
        return out


def _plain(value: Any) -> Any:
    """A NumPy scalar as a JSON-able Python value."""
    return value.item() if hasattr(value, "item") else value
