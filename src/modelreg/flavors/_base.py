"""The flavor protocol and the table of flavors: built-ins and ``modelreg.flavors`` plug-ins.

A flavor knows one kind of Python object: whether it ``handles`` an object, how to ``save`` it
into a folder (answering the ``info`` recorded as the version's ``flavor``), how to ``load`` it
back from that folder and ``info``, and how to ``predict`` with it. Nothing here imports a
machine-learning library: each flavor imports its own inside the function that needs it, and
``handles`` looks only at objects whose library the caller already imported (``sys.modules``).
"""

from __future__ import annotations

import importlib
import platform
import sys
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from modelreg.errors import InvalidInput

__all__ = [
    "ENTRY_POINT_GROUP",
    "PICKLE_FORMATS",
    "Flavor",
    "LibraryVersionWarning",
    "check_libraries",
    "detect",
    "flavor_names",
    "get_flavor",
    "library_versions",
    "unpickles",
]

ENTRY_POINT_GROUP = "modelreg.flavors"

# Formats whose loading runs ``pickle`` (or an unpickler as open): loading one runs whatever
# code its bytes name, so ``load`` refuses them unless trusted or scanned clean.
PICKLE_FORMATS = frozenset({"pickle", "cloudpickle", "joblib", "torch-pickle"})

# The built-ins, in detection order: the boosting libraries' scikit-learn wrappers are
# scikit-learn estimators too, so their own flavors come first; pickle takes anything, last.
_BUILTINS: dict[str, str] = {
    "xgboost": "modelreg.flavors._boosting:XGBoostFlavor",
    "lightgbm": "modelreg.flavors._boosting:LightGBMFlavor",
    "sklearn": "modelreg.flavors._sklearn:SklearnFlavor",
    "pytorch": "modelreg.flavors._torch:PyTorchFlavor",
    "onnx": "modelreg.flavors._onnx:OnnxFlavor",
    "pickle": "modelreg.flavors._pickle:PickleFlavor",
}


class LibraryVersionWarning(UserWarning):
    """The installed version of a model's library differs from the one it was saved with."""


@runtime_checkable
class Flavor(Protocol):
    """What a flavor implements (built-in, or a plug-in in entry-point group ``modelreg.flavors``).

    ``save`` answers ``info``: at least ``format`` (how the files are written, e.g. ``skops``;
    a pickle-family format must be one of ``PICKLE_FORMATS`` or set ``unpickles: true``),
    ``libraries`` (``{distribution: version}``, checked on load) and ``files`` (what it
    wrote). ``name``, ``python`` and anything else JSON-able it adds are kept as given.
    """

    name: str

    def handles(self, obj: Any) -> bool:
        """Whether this flavor saves ``obj`` (cheap: never import a library to answer)."""
        ...

    def save(self, obj: Any, folder: Path) -> dict[str, Any]:
        """Write ``obj`` into the empty ``folder``; answer the info to record."""
        ...

    def load(self, folder: Path, info: dict[str, Any]) -> Any:
        """The native object saved in ``folder`` with ``info``."""
        ...

    def predict(self, native: Any, data: Any) -> Any:
        """Predictions of ``native`` for ``data`` (a DataFrame, a NumPy array or a list)."""
        ...


_cache: dict[str, Flavor] = {}


def _instantiate(target: Any, name: str) -> Flavor:
    flavor = target() if isinstance(target, type) else target
    if not isinstance(flavor, Flavor):
        raise InvalidInput(
            f"flavor {name!r} does not implement the Flavor protocol "
            "(name, handles, save, load, predict)",
            detail={"flavor": name},
        )
    return flavor


def _plugins() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def flavor_names() -> list[str]:
    """Every flavor name known: the plug-ins' and the built-ins'."""
    return sorted(set(_plugins()) | set(_BUILTINS))


def get_flavor(name: str) -> Flavor:
    """The flavor called ``name`` (a plug-in of that name wins over a built-in)."""
    if name in _cache:
        return _cache[name]
    plugin = _plugins().get(name)
    if plugin is not None:
        flavor = _instantiate(plugin.load(), name)
    elif name in _BUILTINS:
        module, _, attr = _BUILTINS[name].partition(":")
        flavor = _instantiate(getattr(importlib.import_module(module), attr), name)
    else:
        raise InvalidInput(
            f"unknown flavor {name!r}; known: {', '.join(flavor_names())} (a plug-in flavor is "
            f"installed as an entry point in group {ENTRY_POINT_GROUP!r})",
            detail={"flavor": name},
        )
    _cache[name] = flavor
    return flavor


def detect(obj: Any) -> Flavor:
    """The first flavor that handles ``obj``: plug-ins, then the built-ins, pickle last."""
    order = [n for n in _plugins() if n not in _BUILTINS] + list(_BUILTINS)
    for name in order:
        try:
            flavor = get_flavor(name)
        except Exception as exc:
            # One broken plug-in must not stop every registration: said, then skipped.
            warnings.warn(f"flavor plug-in {name!r} cannot be used: {exc}", stacklevel=3)
            continue
        if flavor.handles(obj):
            return flavor
    raise InvalidInput(  # pragma: no cover - pickle handles everything
        f"no flavor handles {type(obj).__qualname__}", detail={}
    )


def library_versions(*distributions: str) -> dict[str, str]:
    """``{distribution: installed version}`` for each one installed."""
    found: dict[str, str] = {}
    for dist in distributions:
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return found


def check_libraries(info: dict[str, Any], label: str) -> None:
    """Warn (``LibraryVersionWarning``) for each recorded library installed at another version."""
    recorded = info.get("libraries") or {}
    if not isinstance(recorded, dict):
        return
    for dist, version in sorted(recorded.items()):
        now = library_versions(str(dist)).get(str(dist))
        if now is None:
            warnings.warn(
                f"{label} was saved with {dist} {version}, which is not installed",
                LibraryVersionWarning,
                stacklevel=3,
            )
        elif now != str(version):
            warnings.warn(
                f"{label} was saved with {dist} {version}; {now} is installed",
                LibraryVersionWarning,
                stacklevel=3,
            )


def unpickles(info: dict[str, Any]) -> bool:
    """Whether loading ``info``'s format runs an unpickler (pickle, joblib, ``torch.save``)."""
    return bool(info.get("unpickles")) or info.get("format") in PICKLE_FORMATS


def module_loaded(obj: Any, *prefixes: str) -> bool:
    """Whether ``obj``'s class (or a base) comes from one of the library ``prefixes``.

    Looking at the class's module names only, so asking never imports the library.
    """
    for cls in type(obj).__mro__:
        module = getattr(cls, "__module__", "") or ""
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return True
    return False


def python_version() -> str:
    """This interpreter's version (``3.11.9``), recorded with every saved object."""
    return platform.python_version()


def imported(name: str) -> bool:
    """Whether the library ``name`` is imported already (an object of it can exist)."""
    return name in sys.modules
