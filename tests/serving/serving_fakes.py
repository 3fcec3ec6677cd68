"""A small loader with ``modelreg.flavors.open_version``'s contract, for serving tests.

Its "model" is a real registered file, ``model.json`` (``{"factor": F}``, predicting
``x * F`` for column ``x``), downloaded and verified through the registry like any version.
A version whose file says ``{"broken": "load"}`` fails to load, ``"warm"`` fails warming and
``"predict"`` raises on every prediction (a 500). ``serve --loader serving_fakes:load``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from modelreg.errors import InvalidInput
from modelreg.types import Version


def write_model(folder: Path, factor: float = 1.0, broken: str = "") -> Path:
    """A model file to register."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.json"
    path.write_text(json.dumps({"factor": factor, "broken": broken}))
    return path


class Scaled:
    """``x * factor``: a LoadedModel with a signature of one float column ``x``."""

    flavor = "test-scaled"

    def __init__(self, version: Version, factor: float, broken: str) -> None:
        self.version = version
        self.factor = factor
        self.broken = broken
        self.warmed = 0

    @property
    def example(self) -> Any:
        import pandas as pd

        return pd.DataFrame({"x": [1.0]})

    def check_input(self, df: Any) -> None:
        if "x" not in df.columns:
            raise InvalidInput("missing input column 'x'", detail={"column": "x"})
        if df["x"].dtype.kind not in "iuf":
            raise InvalidInput("column 'x' must be numbers", detail={"column": "x"})

    def predict(self, data: Any) -> Any:
        import numpy as np

        if self.broken == "predict":
            raise RuntimeError("this model always fails")
        values = data["x"].to_numpy() if hasattr(data, "columns") else np.asarray(data)[:, 0]
        return values * self.factor

    def warm(self) -> None:
        if self.broken == "warm":
            raise RuntimeError("warm-up failed")
        if self.broken != "predict":  # that one fails on real requests only
            self.predict(self.example)
        self.warmed += 1


def load(registry: Any, ref: str, *, trust: bool = False) -> Scaled:
    """Download ``ref`` (verified) and build its model."""
    version = registry.get_version(ref)
    with tempfile.TemporaryDirectory() as tmp:
        registry.download(ref, tmp)
        spec = json.loads((Path(tmp) / "model.json").read_text())
    if spec.get("broken") == "load":
        raise ValueError(f"cannot load {ref}: the file is corrupt")
    return Scaled(version, float(spec["factor"]), spec.get("broken", ""))
