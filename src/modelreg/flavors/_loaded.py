"""Saving an object for registration, and opening a registered one: ``LoadedModel``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelreg.errors import InvalidInput, UnsafeModel
from modelreg.flavors._base import (
    Flavor,
    check_libraries,
    detect,
    get_flavor,
    python_version,
    unpickles,
)
from modelreg.flavors._signature import (
    EXAMPLE_FILE,
    check_input,
    infer_signature,
    normalize_example,
    read_example,
    to_input,
    write_example,
)

if TYPE_CHECKING:
    from modelreg.client import Registry
    from modelreg.types import Version

__all__ = ["LoadedModel", "check_safe", "open_version", "save_object"]


def save_object(
    obj: Any, folder: Path, *, flavor: str | None = None, input_example: Any = None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Write ``obj`` (and its example) into ``folder``; answer ``(flavor info, signature)``."""
    chosen: Flavor = get_flavor(flavor) if flavor is not None else detect(obj)
    if flavor is not None and not chosen.handles(obj):
        raise InvalidInput(
            f"flavor {flavor!r} does not handle a {type(obj).__qualname__}",
            detail={"flavor": flavor},
        )
    info = dict(chosen.save(obj, folder))
    info["name"] = chosen.name
    info.setdefault("python", python_version())
    signature = None
    if input_example is not None:
        example = normalize_example(input_example)
        try:
            output = chosen.predict(obj, example)
        except Exception:
            # A model that cannot predict on its own example yet: the signature has inputs only.
            output = None
        signature = infer_signature(example, output)
        write_example(example, folder)
        info["files"] = [*info.get("files", []), EXAMPLE_FILE]
    return info, signature


def check_safe(version: Version, *, trust: bool) -> None:
    """Refuse to load a pickle-family version unless trusted or its scan is clean.

    Raises:
        UnsafeModel: the format unpickles and the scan is missing, pending or not clean.
    """
    info = version.flavor or {}
    if trust or not unpickles(info):
        return
    scan = version.scan or {}
    status = scan.get("status")
    if status == "clean":
        return
    why = {
        None: "it has not been scanned",
        "pending": "its scan is pending",
        "unsafe": "its scan found code that would run on load",
    }.get(status, f"its scan status is {status!r}")
    raise UnsafeModel(
        f"{version.ref} is a {info.get('format')} file, which runs code when loaded, and "
        f"{why}; load it with trust=True (--trust) only if you trust who registered it",
        detail={"format": info.get("format"), "scan": status, "version": version.ref},
    )


@dataclass
class LoadedModel:
    """A registered model opened for serving: the version, the native object, its signature.

    ``predict`` takes a pandas DataFrame, a NumPy array or a list (of rows or of dicts);
    ``check_input`` raises ``InvalidInput`` naming the first bad column.
    """

    version: Version
    flavor: str
    model: Any
    folder: Path
    impl: Flavor = field(repr=False)
    example: Any = None

    @property
    def signature(self) -> dict[str, Any] | None:
        """The version's input/output signature, if recorded."""
        return self.version.signature

    def check_input(self, data: Any) -> Any:
        """``data`` checked against the signature and converted (columns in order)."""
        return check_input(data, self.signature)

    def predict(self, data: Any) -> Any:
        """The model's predictions for ``data`` (checked against the signature first)."""
        data = self.check_input(to_input(data, self.signature))
        return self.impl.predict(self.model, data)

    def warm(self) -> Any:
        """Predict on the stored input example (``None`` when there is none)."""
        if self.example is None:
            return None
        return self.predict(self.example)


def open_version(registry: Registry, ref: str, *, trust: bool = False) -> LoadedModel:
    """Resolve ``ref``, fetch its files (verified, cached by digest) and load it.

    Raises:
        InvalidInput: the version holds files, not an object saved with a flavor.
        UnsafeModel: a pickle-family version that is not trusted nor scanned clean.
    """
    version = registry.get_version(ref)
    info = version.flavor
    if not isinstance(info, dict) or not isinstance(info.get("name"), str):
        raise InvalidInput(
            f"{version.ref} holds files, not a Python object saved with a flavor; "
            f"use download() to get its files",
            detail={"version": version.ref},
        )
    impl = get_flavor(info["name"])
    check_safe(version, trust=trust)
    folder = registry.local_files(version)
    check_libraries(info, version.ref)
    native = impl.load(folder, info)
    loaded = LoadedModel(version, impl.name, native, folder, impl)
    loaded.example = read_example(folder, version.signature)
    return loaded
