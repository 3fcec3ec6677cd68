"""``modelreg``'s exported names are pinned: sorted, complete, and each one importable (httpx)."""

from __future__ import annotations

import subprocess
import sys
from types import ModuleType

import pytest

import modelreg
from modelreg import errors, types


def _public_errors() -> set[str]:
    return {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type)
        and issubclass(value, errors.RegistryError)
        and not name.startswith("_")
    }


def _public_types() -> set[str]:
    # The typed results live in modelreg.types' private modules; its __all__ lists them.
    return set(types.__all__)


def test_all_is_sorted() -> None:
    assert modelreg.__all__ == sorted(modelreg.__all__)


def test_all_has_no_duplicates() -> None:
    assert len(set(modelreg.__all__)) == len(modelreg.__all__)


def test_every_entry_exists() -> None:
    for name in modelreg.__all__:
        assert getattr(modelreg, name) is not None, name


def test_every_public_name_is_exported() -> None:
    defined = {
        name
        for name, value in vars(modelreg).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }
    expected = defined | {"Registry", "__version__", "load"} | _public_errors() | _public_types()
    assert set(modelreg.__all__) == expected


def test_dir_lists_the_lazy_names() -> None:
    assert set(modelreg.__all__) <= set(dir(modelreg))


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        modelreg.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018


def test_import_modelreg_stays_light() -> None:
    code = (
        "import sys, modelreg; "
        "heavy = [m for m in ('sqlalchemy', 'pydantic', 'httpx', 'modelreg.client') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
