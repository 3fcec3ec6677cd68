"""Malicious and benign model files, made by the tests (never downloaded).

Every malicious file, if it were ever loaded, would create ``marker`` (a file the tests check
was never created): that is how a test proves the scanner never ran the payload.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


class _Reduce:
    """An object whose unpickling calls ``func(*args)``."""

    def __init__(self, func: Any, args: tuple[Any, ...]) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.func, self.args


def _touch(marker: Path) -> str:
    return f"touch {marker}"


def _short_unicode(text: str) -> bytes:
    data = text.encode()
    return b"\x8c" + bytes([len(data)]) + data


def os_system(marker: Path) -> bytes:
    return pickle.dumps(_Reduce(os.system, (_touch(marker),)), protocol=4)


def subprocess_call(marker: Path) -> bytes:
    import subprocess

    return pickle.dumps(_Reduce(subprocess.call, (["touch", str(marker)],)), protocol=3)


def builtins_eval(marker: Path) -> bytes:
    import builtins

    return pickle.dumps(_Reduce(builtins.eval, (f"open({str(marker)!r}, 'w')",)), protocol=2)


def builtins_exec(marker: Path) -> bytes:
    import builtins

    return pickle.dumps(_Reduce(builtins.exec, (f"open({str(marker)!r}, 'w')",)), protocol=5)


def dunder_import(marker: Path) -> bytes:
    # operator.methodcaller('system', cmd)(__import__('os')), written by hand.
    return (
        b"\x80\x04coperator\nmethodcaller\n"
        + _short_unicode("system")
        + _short_unicode(_touch(marker))
        + b"\x86R"
        + b"cbuiltins\n__import__\n"
        + _short_unicode("os")
        + b"\x85R\x85R."
    )


def getattr_chain(marker: Path) -> bytes:
    # getattr(getattr(__import__('builtins'), '__import__')('os'), 'system')(cmd)
    return (
        b"\x80\x04cbuiltins\ngetattr\n(cbuiltins\ngetattr\n(cbuiltins\n__import__\n"
        + _short_unicode("builtins")
        + b"\x85R"
        + _short_unicode("__import__")
        + b"tR"
        + _short_unicode("os")
        + b"\x85R"
        + _short_unicode("system")
        + b"tR"
        + _short_unicode(_touch(marker))
        + b"\x85R."
    )


def runpy_run(marker: Path) -> bytes:
    import runpy

    script = marker.with_suffix(".py")
    script.write_text(f"open({str(marker)!r}, 'w')\n")
    return pickle.dumps(_Reduce(runpy.run_path, (str(script),)), protocol=4)


def protocol_0(marker: Path) -> bytes:
    return pickle.dumps(_Reduce(os.system, (_touch(marker),)), protocol=0)


def stack_global_obfuscated(marker: Path) -> bytes:
    # 'os' and 'system' are memoised among decoys and fetched back by BINGET before
    # STACK_GLOBAL: no GLOBAL opcode and no adjacent 'os' 'system' strings to grep for.
    return (
        b"\x80\x04"
        + _short_unicode("o" + "s")
        + b"\x94"  # memo 0
        + _short_unicode("numpy")
        + b"\x940"  # memo 1, POP
        + _short_unicode("sys" + "tem")
        + b"\x940"  # memo 2, POP
        + b"0"  # POP 'os'
        + b"h\x00h\x02\x93"  # BINGET 0, BINGET 2, STACK_GLOBAL
        + _short_unicode(_touch(marker))
        + b"\x85R."
    )


def torch_zip(marker: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", os_system(marker))
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/version", "3\n")
    return buffer.getvalue()


def object_npy(marker: Path) -> bytes:
    header = repr({"descr": "|O", "fortran_order": False, "shape": (1,)}).encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + os_system(marker)


def keras_lambda(marker: Path) -> bytes:
    layer = {
        "module": "keras.layers",
        "class_name": "Lambda",
        "config": {
            "name": "payload",
            "function": {"class_name": "__lambda__", "config": {"code": "4wEAAAAAAAAA"}},
        },
    }
    config = {"module": "keras", "class_name": "Sequential", "config": {"layers": [layer]}}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.6.0"}))
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n")
    return buffer.getvalue()


def keras_h5_lambda(marker: Path) -> bytes:
    # The layout h5py writes: the model_config attribute's JSON text stored as is.
    config = {"class_name": "Sequential", "config": {"layers": [{"class_name": "Lambda"}]}}
    return b"\x89HDF\r\n\x1a\n" + b"\x00" * 500 + json.dumps(config).encode() + b"\x00" * 100


def joblib_after_array(marker: Path) -> bytes:
    import joblib
    import numpy as np

    buffer = io.BytesIO()
    joblib.dump({"weights": np.arange(64.0), "x": _Reduce(os.system, (_touch(marker),))}, buffer)
    return buffer.getvalue()


MALICIOUS: dict[str, tuple[str, Callable[[Path], bytes]]] = {
    "os.system": ("model.pkl", os_system),
    "subprocess": ("model.pkl", subprocess_call),
    "builtins.eval": ("model.pkl", builtins_eval),
    "builtins.exec": ("model.pickle", builtins_exec),
    "__import__": ("model.pkl", dunder_import),
    "getattr chain": ("model.pkl", getattr_chain),
    "runpy": ("model.pkl", runpy_run),
    "protocol 0": ("model", protocol_0),
    "obfuscated STACK_GLOBAL": ("model.pkl", stack_global_obfuscated),
    "pickle in a PyTorch zip": ("model.pt", torch_zip),
    "object .npy": ("weights.npy", object_npy),
    "Keras Lambda (.keras)": ("model.keras", keras_lambda),
    "Keras Lambda (.h5)": ("model.h5", keras_h5_lambda),
    "joblib, payload after an array": ("model.joblib", joblib_after_array),
}


def write(folder: Path, case: str, marker: Path) -> Path:
    """Write malicious ``case`` into ``folder``; its payload would create ``marker``."""
    name, make = MALICIOUS[case]
    path = folder / name
    folder.mkdir(parents=True, exist_ok=True)
    path.write_bytes(make(marker))
    return path


def benign(folder: Path) -> dict[str, Path]:
    """Real models of the common libraries, saved the way their users save them."""
    import joblib
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    x = rng.random((60, 4))
    y = (x[:, 0] > 0.5).astype(int)
    out: dict[str, Path] = {}
    out["sklearn forest (joblib)"] = folder / "forest.joblib"
    joblib.dump(
        RandomForestClassifier(n_estimators=3, random_state=0).fit(x, y),
        out["sklearn forest (joblib)"],
    )
    out["sklearn pipeline (pickle)"] = folder / "pipeline.pkl"
    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    out["sklearn pipeline (pickle)"].write_bytes(pickle.dumps(pipeline))
    out["sklearn boosting (compressed joblib)"] = folder / "hgb.joblib"
    joblib.dump(
        HistGradientBoostingClassifier(max_iter=3).fit(x, y),
        out["sklearn boosting (compressed joblib)"],
        compress=3,
    )
    try:
        import xgboost
    except ImportError:
        pass
    else:
        booster = xgboost.XGBClassifier(n_estimators=3).fit(x, y)
        out["xgboost (pickle)"] = folder / "xgb.pkl"
        out["xgboost (pickle)"].write_bytes(pickle.dumps(booster))
        out["xgboost (json)"] = folder / "xgb.json"
        booster.save_model(out["xgboost (json)"])
    try:
        import torch
    except ImportError:
        pass
    else:
        net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
        out["torch state_dict"] = folder / "state.pt"
        torch.save(net.state_dict(), out["torch state_dict"])
        out["torch module"] = folder / "module.pth"
        torch.save(net, out["torch module"])
        out["torch legacy format"] = folder / "legacy.pt"
        torch.save(
            net.state_dict(), out["torch legacy format"], _use_new_zipfile_serialization=False
        )
    return out
