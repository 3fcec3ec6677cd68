"""PyTorch modules: the ``state_dict`` as safetensors plus the class's import path, or TorchScript.

A module whose class can be imported again and built without arguments is saved as
``model.safetensors`` (weights only, no pickle) with ``module: "package.module:Class"``;
loading imports that class (it must be installed where the model is loaded), builds it and
loads the weights. Any other module is compiled with ``torch.jit.script`` into
``model.pt``, which needs no Python class to load.
"""

from __future__ import annotations

import importlib
import inspect
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from modelreg.errors import InvalidInput
from modelreg.flavors._base import imported, library_versions, python_version


@contextmanager
def _torchscript() -> Iterator[None]:
    """PyTorch 2.x deprecates TorchScript but keeps it working: its warning is not the user's."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*torch.jit")
        yield


def _rebuildable(cls: type) -> str | None:
    """``module:Qualname`` if ``cls`` can be imported back and built without arguments."""
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        return None
    try:
        found: Any = importlib.import_module(cls.__module__)
        for part in cls.__qualname__.split("."):
            found = getattr(found, part)
        params = inspect.signature(cls).parameters.values()
    except (ImportError, AttributeError, TypeError, ValueError):
        return None
    required = [
        p
        for p in params
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if found is not cls or required:
        return None
    return f"{cls.__module__}:{cls.__qualname__}"


def _import_class(path: str) -> Any:
    import torch

    module, _, qualname = path.partition(":")
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise InvalidInput(
            f"cannot import the model's class {path}: {exc} (install the package that defines it)",
            detail={"module": path},
        ) from None
    if not (isinstance(found, type) and issubclass(found, torch.nn.Module)):
        raise InvalidInput(f"{path} is not a torch.nn.Module class", detail={"module": path})
    return found


class PyTorchFlavor:
    """``torch.nn.Module``: safetensors + import path when rebuildable, else TorchScript."""

    name = "pytorch"

    def handles(self, obj: Any) -> bool:
        """A ``torch.nn.Module`` (TorchScript modules included)."""
        if not imported("torch"):
            return False
        import torch

        return isinstance(obj, torch.nn.Module)

    def save(self, obj: Any, folder: Path) -> dict[str, Any]:
        """``model.safetensors`` (+ the class) or ``model.pt`` (TorchScript)."""
        import torch

        libs = library_versions("torch", "safetensors")
        path = None if isinstance(obj, torch.jit.ScriptModule) else _rebuildable(type(obj))
        if path is not None:
            from safetensors.torch import save_model

            save_model(obj, str(folder / "model.safetensors"))
            return {
                "format": "safetensors",
                "module": path,
                "files": ["model.safetensors"],
                "libraries": libs,
                "python": python_version(),
            }
        try:
            with _torchscript():
                scripted = obj if isinstance(obj, torch.jit.ScriptModule) else torch.jit.script(obj)
        except Exception as exc:
            # TorchScript refuses many Python constructs, each with its own error type.
            raise InvalidInput(
                f"cannot save {type(obj).__qualname__}: its class cannot be rebuilt without "
                f"arguments from an installed module, and TorchScript refuses it ({exc}); "
                "use flavor='pickle' if you trust every loader",
                detail={"flavor": "pytorch"},
            ) from None
        with _torchscript():
            scripted.save(str(folder / "model.pt"))
        libs.pop("safetensors", None)
        return {
            "format": "torchscript",
            "files": ["model.pt"],
            "libraries": libs,
            "python": python_version(),
        }

    def load(self, folder: Path, info: dict[str, Any]) -> Any:
        """The module, in evaluation mode."""
        import torch

        fmt = info.get("format")
        if fmt == "safetensors":
            from safetensors.torch import load_model

            model = _import_class(str(info.get("module")))()
            load_model(model, str(folder / "model.safetensors"))
        elif fmt == "torchscript":
            with _torchscript():
                model = torch.jit.load(  # type: ignore[no-untyped-call]
                    str(folder / "model.pt"), map_location="cpu"
                )
        else:
            raise InvalidInput(f"unknown pytorch format {fmt!r}", detail={"format": fmt})
        model.eval()
        return model

    def predict(self, native: Any, data: Any) -> Any:
        """The module's output on ``data`` as float32, as a NumPy array (no gradients)."""
        import numpy as np
        import torch

        tensor = torch.as_tensor(np.asarray(data, dtype=np.float32))
        with torch.no_grad():
            out = native(tensor)
        return out.numpy() if isinstance(out, torch.Tensor) else out
