"""A joblib scikit-learn loader for ``modelreg serve --loader``, used by ``serve.py`` only when
``modelreg.flavors`` (``register(model=...)``, ``open_version``) is not installed."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any


class JoblibModel:
    """A LoadedModel-compatible wrapper (no signature check, no example)."""

    flavor = "sklearn"
    example = None

    def __init__(self, version: Any, model: Any) -> None:
        self.version = version
        self.model = model

    def check_input(self, df: Any) -> None:
        """No signature recorded: nothing to check."""

    def predict(self, data: Any) -> Any:
        return self.model.predict(data)

    def warm(self) -> None:
        """No input example recorded."""


def load(registry: Any, ref: str, *, trust: bool = False) -> JoblibModel:
    """Download ``ref`` (verified) and ``joblib.load`` its ``model.joblib``."""
    import joblib

    version = registry.get_version(ref)
    with tempfile.TemporaryDirectory() as tmp:
        registry.download(ref, tmp)
        model = joblib.load(Path(tmp) / "model.joblib")
    return JoblibModel(version, model)
