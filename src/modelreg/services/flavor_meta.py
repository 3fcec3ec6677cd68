"""Checks of a registration's ``flavor`` and ``signature`` (what ``register(model=…)`` sends).

Both are stored as JSON on the version and read back by every client that loads it, so each
is bounded in size and shape here, once, for every door (REST, embedded, imports).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from modelreg.errors import InvalidInput

__all__ = ["MAX_FLAVOR_BYTES", "MAX_SIGNATURE_BYTES", "check_flavor", "check_signature"]

MAX_FLAVOR_BYTES = 16 * 1024
MAX_SIGNATURE_BYTES = 256 * 1024
MAX_FIELDS = 2000
_FLAVOR_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_SIGNATURE_KEYS = frozenset({"type", "inputs", "outputs"})
_FIELD_KEYS = frozenset({"name", "dtype", "shape"})


def _size(value: Any, what: str, limit: int) -> None:
    try:
        size = len(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError):
        raise InvalidInput(f"{what} must be JSON (no NaN)", detail={"field": what}) from None
    if size > limit:
        raise InvalidInput(
            f"{what} is {size} bytes of JSON, more than {limit}", detail={"field": what}
        )


def _text(value: Any, what: str, limit: int, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        raise InvalidInput(f"{what} must be text of at most {limit} characters", detail={})


def check_flavor(flavor: Mapping[str, Any] | None, paths: Sequence[str]) -> dict[str, Any] | None:
    """The flavor info, checked: a name, a format, libraries, and files of this version."""
    if flavor is None:
        return None
    if not isinstance(flavor, Mapping):
        raise InvalidInput("flavor must be an object", detail={"field": "flavor"})
    clean = dict(flavor)
    _size(clean, "flavor", MAX_FLAVOR_BYTES)
    name = clean.get("name")
    if not isinstance(name, str) or not _FLAVOR_NAME.fullmatch(name):
        raise InvalidInput(
            "flavor.name must be 1 to 64 lowercase letters, digits, '.', '_' or '-'",
            detail={"field": "flavor.name"},
        )
    _text(clean.get("format"), "flavor.format", 64)
    _text(clean.get("python"), "flavor.python", 64, optional=True)
    libraries = clean.get("libraries", {})
    if not isinstance(libraries, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) and len(k) <= 200 and len(v) <= 100
        for k, v in libraries.items()
    ):
        raise InvalidInput(
            "flavor.libraries must map library names to version strings",
            detail={"field": "flavor.libraries"},
        )
    files = clean.get("files", [])
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise InvalidInput("flavor.files must be a list of paths", detail={"field": "flavor.files"})
    have = set(paths)
    for path in files:
        if path not in have:
            raise InvalidInput(
                f"flavor.files names {path[:200]!r}, which is not a file of the version",
                detail={"field": "flavor.files", "path": path[:200]},
            )
    return clean


def _check_fields(fields: Any, what: str) -> None:
    if not isinstance(fields, list) or len(fields) > MAX_FIELDS:
        raise InvalidInput(
            f"signature.{what} must be a list of at most {MAX_FIELDS} fields",
            detail={"field": f"signature.{what}"},
        )
    for item in fields:
        if not isinstance(item, Mapping) or not set(item) <= _FIELD_KEYS:
            raise InvalidInput(
                f"each of signature.{what} is an object with name, dtype and (for a tensor) shape",
                detail={"field": f"signature.{what}"},
            )
        _text(item.get("name"), f"signature.{what}[].name", 256, optional=True)
        _text(item.get("dtype"), f"signature.{what}[].dtype", 64)
        shape = item.get("shape")
        if shape is not None and (
            not isinstance(shape, list)
            or len(shape) > 16
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= -1 for n in shape)
        ):
            raise InvalidInput(
                f"signature.{what}[].shape must be a list of at most 16 sizes (-1: any)",
                detail={"field": f"signature.{what}"},
            )


def check_signature(signature: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The signature, checked: ``{type: dataframe|tensor, inputs: [...], outputs: [...]}``."""
    if signature is None:
        return None
    if not isinstance(signature, Mapping) or not set(signature) <= _SIGNATURE_KEYS:
        raise InvalidInput(
            "signature must be an object with type, inputs and outputs",
            detail={"field": "signature"},
        )
    clean = dict(signature)
    _size(clean, "signature", MAX_SIGNATURE_BYTES)
    if clean.get("type") not in ("dataframe", "tensor"):
        raise InvalidInput(
            "signature.type must be 'dataframe' or 'tensor'", detail={"field": "signature.type"}
        )
    _check_fields(clean.get("inputs", []), "inputs")
    _check_fields(clean.get("outputs", []), "outputs")
    return clean
