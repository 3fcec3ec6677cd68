"""Signatures inferred from an input example, the example file, and the input check.

A signature is ``{"type": "dataframe"|"tensor", "inputs": [...], "outputs": [...]}``: for a
dataframe each input is a column ``{name, dtype}``; for a tensor there is one input
``{name: null, dtype, shape}`` (``-1`` for the batch). The example is stored beside the model
as ``input_example.json`` in MLflow's scoring shape (``{"dataframe_split": {columns, data}}``
or ``{"inputs": [...]}``), so it can be posted to ``/invocations`` as it is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modelreg.errors import InvalidInput

__all__ = [
    "EXAMPLE_FILE",
    "MAX_COLUMNS",
    "check_input",
    "infer_signature",
    "read_example",
    "to_input",
    "write_example",
]

EXAMPLE_FILE = "input_example.json"
MAX_COLUMNS = 2000
MAX_EXAMPLE_ROWS = 100

_NUMERIC = "iufb"


def normalize_example(example: Any) -> Any:
    """The example as a DataFrame (columns) or a NumPy array (a tensor)."""
    import numpy as np
    import pandas as pd

    if isinstance(example, pd.DataFrame):
        frame = example
    elif isinstance(example, pd.Series):
        frame = example.to_frame()
    elif isinstance(example, dict):
        frame = pd.DataFrame({k: np.atleast_1d(v) for k, v in example.items()})
    elif isinstance(example, np.ndarray):
        return example[:MAX_EXAMPLE_ROWS]
    elif isinstance(example, list | tuple) and example and isinstance(example[0], dict):
        frame = pd.DataFrame(list(example))
    elif isinstance(example, list | tuple):
        return np.asarray(example)[:MAX_EXAMPLE_ROWS]
    else:
        raise InvalidInput(
            "input_example must be a pandas DataFrame, a dict of columns, a list of rows "
            f"or a NumPy array, not {type(example).__qualname__}",
            detail={},
        )
    if len(frame.columns) > MAX_COLUMNS:
        raise InvalidInput(f"input_example has more than {MAX_COLUMNS} columns", detail={})
    frame = frame.head(MAX_EXAMPLE_ROWS).copy()
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _describe(value: Any) -> list[dict[str, Any]]:
    import numpy as np
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return [{"name": str(c), "dtype": str(value[c].dtype)} for c in value.columns]
    if isinstance(value, pd.Series):
        name = None if value.name is None else str(value.name)
        return [{"name": name, "dtype": str(value.dtype)}]
    array = np.asarray(value)
    return [{"name": None, "dtype": str(array.dtype), "shape": [-1, *array.shape[1:]]}]


def infer_signature(example: Any, output: Any | None) -> dict[str, Any]:
    """The signature of a normalized example (and of the model's output on it, if any)."""
    import numpy as np

    kind = "tensor" if isinstance(example, np.ndarray) else "dataframe"
    outputs = [] if output is None else _describe(output)
    return {"type": kind, "inputs": _describe(example), "outputs": outputs}


def write_example(example: Any, folder: Path) -> None:
    """``input_example.json`` in the scoring protocol's shape."""
    import numpy as np

    if isinstance(example, np.ndarray):
        body: dict[str, Any] = {"inputs": example.tolist()}
    else:
        split = json.loads(example.to_json(orient="split", index=False, date_format="iso"))
        body = {"dataframe_split": {"columns": split["columns"], "data": split["data"]}}
    (folder / EXAMPLE_FILE).write_text(json.dumps(body), encoding="utf-8")


def read_example(folder: Path, signature: dict[str, Any] | None) -> Any:
    """The stored example as a DataFrame (or an array for a tensor), or ``None``."""
    path = folder / EXAMPLE_FILE
    if not path.is_file():
        return None
    body = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(body, dict) and "inputs" in body:
        import numpy as np

        dtype = None
        if signature and signature.get("type") == "tensor" and signature.get("inputs"):
            dtype = signature["inputs"][0].get("dtype")
        return np.asarray(body["inputs"], dtype=dtype)
    import pandas as pd

    split = body.get("dataframe_split") if isinstance(body, dict) else None
    if not isinstance(split, dict):
        return None
    frame = pd.DataFrame(split.get("data") or [], columns=split.get("columns"))
    return check_input(frame, signature) if signature else frame


def _column_error(name: str, expected: str, got: str) -> InvalidInput:
    return InvalidInput(
        f"column {name!r} must be {expected}, not {got}",
        detail={"column": name, "expected": expected, "got": got},
    )


def _check_column(frame: Any, name: str, dtype: str) -> Any:
    """The column converted to ``dtype`` when that loses nothing; else ``InvalidInput``."""
    import numpy as np
    import pandas as pd

    column = frame[name]
    try:
        want = np.dtype(dtype)
    except TypeError:
        return column  # a pandas extension type (category, string): taken as given
    if want.kind not in _NUMERIC:
        return column
    if column.dtype.kind not in _NUMERIC:
        converted = pd.to_numeric(column, errors="coerce")
        bad = converted.isna() & column.notna()
        if bad.any():
            first = column[bad].iloc[0]
            raise _column_error(name, dtype, f"{first!r}")
        column = converted
    if (
        want.kind in "iu"
        and column.dtype.kind == "f"
        and (column.isna().any() or (column % 1 != 0).any())
    ):
        raise _column_error(name, dtype, "a number with a fraction (or a missing value)")
    if want.kind == "b" and column.dtype.kind != "b":
        raise _column_error(name, dtype, str(column.dtype))
    return column.astype(want)


def check_input(data: Any, signature: dict[str, Any] | None) -> Any:
    """``data`` checked against ``signature`` (``InvalidInput`` naming the column), converted.

    A dataframe answers its signature's columns in order (extra columns are dropped); a tensor
    answers a NumPy array of the signature's dtype whose shape matches but for the batch.
    """
    if not signature or not signature.get("inputs"):
        return data
    if signature.get("type") == "tensor":
        return _check_tensor(data, signature["inputs"][0])
    import pandas as pd

    frame = data if isinstance(data, pd.DataFrame) else to_input(data, signature)
    columns: dict[str, Any] = {}
    for spec in signature["inputs"]:
        name = str(spec.get("name"))
        if name not in frame.columns:
            raise InvalidInput(
                f"missing column {name!r} (expected: "
                f"{', '.join(str(s.get('name')) for s in signature['inputs'])})",
                detail={"column": name},
            )
        columns[name] = _check_column(frame, name, str(spec.get("dtype")))
    return pd.DataFrame(columns, index=frame.index)


def _check_tensor(data: Any, spec: dict[str, Any]) -> Any:
    import numpy as np

    try:
        array = np.asarray(data, dtype=spec.get("dtype"))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"input must be an array of {spec.get('dtype')}: {exc}", detail={"column": None}
        ) from None
    shape = spec.get("shape") or []
    if len(shape) > 1 and (array.ndim != len(shape) or list(array.shape[1:]) != shape[1:]):
        raise InvalidInput(
            f"input must have shape {shape} (-1: any), not {list(array.shape)}",
            detail={"shape": list(array.shape)},
        )
    return array


def to_input(data: Any, signature: dict[str, Any] | None) -> Any:
    """``data`` as the model's input: a DataFrame with the signature's columns, or an array.

    Rows (lists or dicts), a dict of columns and a 2-D array become a DataFrame when the
    signature has columns; input that cannot be one raises ``InvalidInput``.
    """
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if not (signature and signature.get("type") == "dataframe"):
        if isinstance(data, np.ndarray):
            return data
        try:
            return np.asarray(data)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"input is not an array: {exc}", detail={}) from None
    names = [str(s.get("name")) for s in signature.get("inputs") or []]
    try:
        if isinstance(data, dict):
            return pd.DataFrame({k: np.atleast_1d(v) for k, v in data.items()})
        if isinstance(data, list | tuple) and data and isinstance(data[0], dict):
            return pd.DataFrame(list(data))
        if isinstance(data, list | tuple) and data and not isinstance(data[0], list | tuple):
            data = [data]  # one row
        widths = {len(row) for row in data} if isinstance(data, list | tuple) else set()
        rows = np.asarray(data, dtype=object) if len(widths) <= 1 else np.empty((0,))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"input is not a table: {exc}", detail={}) from None
    if rows.ndim != 2 or rows.shape[1] != len(names):
        raise InvalidInput(
            f"input rows must have {len(names)} values ({', '.join(names)}), "
            f"not shape {list(rows.shape)}",
            detail={"shape": list(rows.shape)},
        )
    frame = pd.DataFrame(rows, columns=names)
    # Object rows (lists from JSON) get their natural dtypes back before the check.
    return frame.infer_objects()
