"""MLflow's scoring protocol: request bodies to model input, predictions to a JSON answer.

A JSON body holds exactly one of ``dataframe_split`` (``{columns, data[, index]}``),
``dataframe_records`` (a list of row objects), ``instances`` or ``inputs`` (rows, a dict of
columns, or tensors as nested lists); a ``text/csv`` body is a table with a header row. The
answer is ``{"predictions": [...]}``, as ``mlflow models serve`` gives it.
"""

from __future__ import annotations

import io
import json
import math
from typing import Any

from modelreg.errors import InvalidInput

JSON_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
JSON_TYPES = ("application/json",)
CSV_TYPES = ("text/csv",)


def parse_body(body: bytes, content_type: str, columns: list[str] | None = None) -> Any:
    """The model input in a request: a pandas DataFrame, or a numpy array for tensors.

    ``columns`` are the signature's input names: a bare 2-D array of rows becomes a DataFrame
    with them when the widths agree, so it can be checked against the signature. Raises
    ``InvalidInput`` saying what is wrong with the body.
    """
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind in CSV_TYPES:
        return _csv(body)
    if kind not in JSON_TYPES:
        raise InvalidInput(
            f"content type {kind or '(none)'!r} is not supported: send application/json "
            "or text/csv",
            detail={"content_type": kind},
        )
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the body is not JSON: {exc}", detail={}) from None
    if not isinstance(doc, dict):
        raise InvalidInput(f"the body must be a JSON object with one of {_keys()}", detail={})
    given = [k for k in JSON_KEYS if k in doc]
    if len(given) != 1:
        raise InvalidInput(
            f"the body must hold exactly one of {_keys()}",
            detail={"keys": sorted(str(k) for k in doc)},
        )
    key = given[0]
    if key == "dataframe_split":
        return _split(doc[key])
    if key == "dataframe_records":
        return _records(doc[key], key)
    return _tensor(doc[key], key, columns)


def _pandas() -> Any:
    """pandas, imported on first use (it has no type stubs)."""
    import pandas

    return pandas


def _keys() -> str:
    return ", ".join(JSON_KEYS)


def _csv(body: bytes) -> Any:
    pd = _pandas()

    if not body.strip():
        raise InvalidInput("the CSV body is empty", detail={})
    try:
        return pd.read_csv(io.BytesIO(body))
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read the CSV body: {exc}", detail={}) from None


def _split(value: Any) -> Any:
    pd = _pandas()

    if not isinstance(value, dict) or not isinstance(value.get("data"), list):
        raise InvalidInput(
            "dataframe_split must be an object with 'data' (a list of rows) and 'columns'",
            detail={"key": "dataframe_split"},
        )
    columns = value.get("columns")
    if columns is not None and (
        not isinstance(columns, list) or not all(isinstance(c, str | int) for c in columns)
    ):
        raise InvalidInput("dataframe_split.columns must be a list of names", detail={})
    rows = value["data"]
    if not all(isinstance(r, list) for r in rows):
        raise InvalidInput("dataframe_split.data must be a list of rows (lists)", detail={})
    width = len(columns) if columns is not None else None
    for i, row in enumerate(rows):
        if width is not None and len(row) != width:
            raise InvalidInput(
                f"dataframe_split.data row {i} has {len(row)} values for {width} columns",
                detail={"row": i},
            )
    try:
        return pd.DataFrame(rows, columns=columns, index=value.get("index"))
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"cannot build a table from dataframe_split: {exc}", detail={}) from None


def _records(value: Any, key: str) -> Any:
    pd = _pandas()

    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise InvalidInput(f"{key} must be a list of objects (one per row)", detail={"key": key})
    return pd.DataFrame.from_records(value)


def _tensor(value: Any, key: str, columns: list[str] | None) -> Any:
    import numpy as np

    pd = _pandas()

    if isinstance(value, dict):  # named columns (or tensors): {"a": [1, 2], "b": [3, 4]}
        try:
            return pd.DataFrame(value)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"cannot build a table from {key}: {exc}", detail={}) from None
    if not isinstance(value, list):
        raise InvalidInput(f"{key} must be a list or an object of columns", detail={"key": key})
    if value and all(isinstance(r, dict) for r in value):
        return pd.DataFrame.from_records(value)
    try:
        array = np.asarray(value)
    except ValueError as exc:  # ragged rows
        raise InvalidInput(f"{key} is not a regular array: {exc}", detail={}) from None
    if array.dtype == object:
        raise InvalidInput(f"{key} is not a regular array of numbers or strings", detail={})
    if columns and array.ndim == 2 and array.shape[1] == len(columns):
        return pd.DataFrame(array, columns=columns)
    return array


def to_jsonable(predictions: Any) -> Any:
    """Predictions as plain JSON values: lists for arrays, rows for tables; NaN becomes null."""
    tolist = getattr(predictions, "tolist", None)
    if hasattr(predictions, "to_dict") and hasattr(predictions, "columns"):
        value: Any = predictions.to_dict(orient="records")
    elif callable(tolist):
        value = tolist()
    else:
        value = predictions
    return value


def dump(predictions: Any) -> bytes:
    """The answer body ``{"predictions": ...}``: strict JSON (no NaN or Infinity)."""
    doc = {"predictions": to_jsonable(predictions)}
    try:
        return json.dumps(doc, allow_nan=False, separators=(",", ":")).encode()
    except ValueError:
        return json.dumps(_finite(doc), allow_nan=False, separators=(",", ":")).encode()
    except TypeError as exc:
        raise TypeError(f"the model's predictions cannot be written as JSON: {exc}") from None


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value
