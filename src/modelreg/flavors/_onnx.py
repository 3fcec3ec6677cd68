"""ONNX models: saved as ``model.onnx``, loaded as an ``onnxruntime.InferenceSession``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelreg.errors import InvalidInput
from modelreg.flavors._base import imported, library_versions, python_version

# ONNX tensor element types onnxruntime names, as NumPy dtypes.
_DTYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
}


class OnnxFlavor:
    """An ``onnx.ModelProto``; ``load`` answers an onnxruntime session (CPU)."""

    name = "onnx"

    def handles(self, obj: Any) -> bool:
        """An ONNX ``ModelProto``."""
        if not imported("onnx"):
            return False
        import onnx

        return isinstance(obj, onnx.ModelProto)

    def save(self, obj: Any, folder: Path) -> dict[str, Any]:
        """``model.onnx``, checked by ``onnx.checker`` first."""
        import onnx

        onnx.checker.check_model(obj)
        onnx.save_model(obj, str(folder / "model.onnx"))
        return {
            "format": "onnx",
            "files": ["model.onnx"],
            "opset": [int(o.version) for o in obj.opset_import],
            "libraries": library_versions("onnx", "onnxruntime"),
            "python": python_version(),
        }

    def load(self, folder: Path, info: dict[str, Any]) -> Any:
        """An ``onnxruntime.InferenceSession`` on the CPU."""
        import onnxruntime

        if info.get("format") != "onnx":
            raise InvalidInput(f"unknown onnx format {info.get('format')!r}", detail={})
        return onnxruntime.InferenceSession(
            str(folder / "model.onnx"), providers=["CPUExecutionProvider"]
        )

    def predict(self, native: Any, data: Any) -> Any:
        """The first output; a frame whose columns name the inputs feeds one per column."""
        import numpy as np

        inputs = native.get_inputs()
        columns = [str(c) for c in getattr(data, "columns", [])]
        if len(inputs) > 1 and all(i.name in columns for i in inputs):
            feed = {
                i.name: np.asarray(data[i.name], dtype=_DTYPES.get(i.type)).reshape(-1, 1)
                for i in inputs
            }
        else:
            first = inputs[0]
            feed = {first.name: np.asarray(data, dtype=_DTYPES.get(first.type))}
        return native.run(None, feed)[0]
