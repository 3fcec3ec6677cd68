"""The scikit-learn flavor: skops when the estimator round-trips through it, else joblib.

skops stores an estimator without pickle; loading it builds only the types it is told to
trust. The flavor trusts, besides skops's own defaults, classes (never functions) of
scikit-learn, NumPy and SciPy, and decides at save time: an estimator holding anything else
(a custom transformer, a lambda) is written with joblib, a pickle-family format that ``load``
refuses unless the version is trusted or scanned clean.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from modelreg.errors import InvalidInput
from modelreg.flavors._base import library_versions, module_loaded, python_version

# Modules whose classes a skops file may name and still load without ``trust``.
SAFE_MODULES = ("sklearn", "numpy", "scipy")


def _safe_type(name: str) -> bool:
    """Whether a type skops does not trust by default is a class of a safe library."""
    module, _, attr = name.rpartition(".")
    if not any(module == m or module.startswith(m + ".") for m in SAFE_MODULES):
        return False
    try:
        found = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return False
    return isinstance(found, type)


def _untrusted(path: Path) -> list[str]:
    import skops.io

    return [str(t) for t in skops.io.get_untrusted_types(file=path)]


def as_input(native: Any, data: Any) -> Any:
    """``data`` as the estimator wants it: a frame if it was fitted on named columns."""
    import numpy as np

    if hasattr(native, "feature_names_in_") or not hasattr(data, "columns"):
        return data
    return np.asarray(data)


class SklearnFlavor:
    """scikit-learn estimators (anything from ``sklearn``) — skops, else joblib."""

    name = "sklearn"

    def handles(self, obj: Any) -> bool:
        """A scikit-learn estimator (its class, or a base, comes from ``sklearn``)."""
        return module_loaded(obj, "sklearn")

    def save(self, obj: Any, folder: Path) -> dict[str, Any]:
        """``model.skops`` if every type in it is safe to load, else ``model.joblib``."""
        libs = library_versions("scikit-learn", "skops", "numpy", "scipy")
        try:
            import skops.io

            path = folder / "model.skops"
            skops.io.dump(obj, path)
            untrusted = _untrusted(path)
            if all(_safe_type(t) for t in untrusted):
                return {
                    "format": "skops",
                    "files": ["model.skops"],
                    "libraries": libs,
                    "python": python_version(),
                }
            path.unlink()
        except ImportError:
            pass
        except Exception:
            # skops cannot write this object (its own error types vary): joblib can.
            (folder / "model.skops").unlink(missing_ok=True)
        import joblib

        joblib.dump(obj, folder / "model.joblib")
        libs.pop("skops", None)
        libs.update(library_versions("joblib"))
        return {
            "format": "joblib",
            "files": ["model.joblib"],
            "libraries": libs,
            "python": python_version(),
        }

    def load(self, folder: Path, info: dict[str, Any]) -> Any:
        """The estimator; a skops file naming an unsafe type is refused."""
        fmt = info.get("format")
        if fmt == "skops":
            import skops.io

            path = folder / "model.skops"
            untrusted = _untrusted(path)
            unsafe = [t for t in untrusted if not _safe_type(t)]
            if unsafe:
                raise InvalidInput(
                    f"model.skops names types that are not safe to load: {', '.join(unsafe)}",
                    detail={"types": unsafe},
                )
            return skops.io.load(path, trusted=untrusted)
        if fmt == "joblib":
            import joblib

            return joblib.load(folder / "model.joblib")
        raise InvalidInput(f"unknown sklearn format {fmt!r}", detail={"format": fmt})

    def predict(self, native: Any, data: Any) -> Any:
        """``native.predict(data)``."""
        return native.predict(as_input(native, data))
