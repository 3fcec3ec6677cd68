"""Flavors: how a Python object is saved into a version's files and loaded back.

``Registry.register(name, model=obj)`` saves ``obj`` with the flavor that handles it (or the
one named by ``flavor=``) and records the flavor's info as the version's ``flavor``;
``Registry.load(ref)`` and ``open_version(registry, ref)`` give it back. Built-ins: ``sklearn``
(skops, else joblib), ``pytorch`` (safetensors plus the module's import path, or TorchScript),
``onnx``, ``xgboost``, ``lightgbm`` and ``pickle`` (the last resort). Third-party flavors are
entry points in group ``modelreg.flavors`` naming a class (or an instance) that implements
``Flavor``. Importing this package imports no machine-learning library.
"""

from modelreg.flavors._base import (
    ENTRY_POINT_GROUP,
    PICKLE_FORMATS,
    Flavor,
    LibraryVersionWarning,
    detect,
    flavor_names,
    get_flavor,
    library_versions,
    unpickles,
)
from modelreg.flavors._loaded import LoadedModel, check_safe, open_version, save_object
from modelreg.flavors._signature import EXAMPLE_FILE, check_input, infer_signature

__all__ = [
    "ENTRY_POINT_GROUP",
    "EXAMPLE_FILE",
    "PICKLE_FORMATS",
    "Flavor",
    "LibraryVersionWarning",
    "LoadedModel",
    "check_input",
    "check_safe",
    "detect",
    "flavor_names",
    "get_flavor",
    "infer_signature",
    "library_versions",
    "open_version",
    "save_object",
    "unpickles",
]
