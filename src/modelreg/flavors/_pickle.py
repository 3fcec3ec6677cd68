"""The last resort: any object as a pickle (cloudpickle when plain pickle cannot write it).

Loading a pickle runs whatever code its bytes name, so ``load`` refuses it unless the
version's scan is clean or the caller passes ``trust=True``.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from modelreg.errors import InvalidInput
from modelreg.flavors._base import library_versions, python_version


class PickleFlavor:
    """Any picklable object; ``predict`` calls its ``predict`` method, or the object itself."""

    name = "pickle"

    def handles(self, obj: Any) -> bool:
        """Everything (the last flavor tried)."""
        return True

    def save(self, obj: Any, folder: Path) -> dict[str, Any]:
        """``model.pkl`` by ``pickle``; by ``cloudpickle`` for lambdas and local classes."""
        path = folder / "model.pkl"
        try:
            with open(path, "wb") as fh:
                pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
            fmt, libs = "pickle", {}
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            try:
                import cloudpickle
            except ImportError:
                raise InvalidInput(
                    f"cannot pickle {type(obj).__qualname__}: {exc} (installing cloudpickle "
                    "may help)",
                    detail={},
                ) from None
            with open(path, "wb") as fh:
                cloudpickle.dump(obj, fh)
            fmt, libs = "cloudpickle", library_versions("cloudpickle")
        files = ["model.pkl"]
        return {"format": fmt, "files": files, "libraries": libs, "python": python_version()}

    def load(self, folder: Path, info: dict[str, Any]) -> Any:
        """The unpickled object (the caller checked that it may be unpickled)."""
        if info.get("format") not in ("pickle", "cloudpickle"):
            fmt = info.get("format")
            raise InvalidInput(f"unknown pickle format {fmt!r}", detail={"format": fmt})
        with open(folder / "model.pkl", "rb") as fh:
            return pickle.load(fh)  # noqa: S301 - refused before this unless trusted or clean

    def predict(self, native: Any, data: Any) -> Any:
        """``native.predict(data)``, or ``native(data)`` for a plain callable."""
        if hasattr(native, "predict"):
            return native.predict(data)
        if callable(native):
            return native(data)
        raise InvalidInput(
            f"a {type(native).__qualname__} has no predict method and is not callable",
            detail={},
        )
