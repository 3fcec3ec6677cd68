"""The exception tree: stable codes, DESIGN.md exit codes, rebuildable from a code."""

from __future__ import annotations

import pytest

from modelreg import errors


def all_errors() -> list[type[errors.RegistryError]]:
    return errors._all_subclasses(errors.RegistryError)


def test_codes_are_unique_snake_case():
    codes = [cls.code for cls in all_errors()]
    assert len(codes) == len(set(codes))
    assert all(code.replace("_", "").isalpha() and code.islower() for code in codes)


@pytest.mark.parametrize(
    ("cls", "exit_code"),
    [
        (errors.InvalidInput, 1),
        (errors.InvalidQuery, 1),
        (errors.NotFound, 2),
        (errors.VersionNotFound, 2),
        (errors.PolicyViolation, 3),
        (errors.ApprovalRequired, 4),
        (errors.PermissionDenied, 5),
        (errors.Unauthenticated, 5),
        (errors.Conflict, 6),
        (errors.Immutable, 6),
        (errors.IntegrityFailure, 1),
        (errors.SchemaOutdated, 1),
    ],
)
def test_exit_codes_follow_the_design(cls, exit_code):
    assert cls.exit_code == exit_code


@pytest.mark.parametrize("cls", all_errors())
def test_every_class_is_rebuilt_from_its_code(cls):
    assert errors.error_class_for_code(cls.code) is cls


def test_unknown_code_falls_back_to_the_base():
    assert errors.error_class_for_code("from_the_future") is errors.RegistryError


def test_envelope_shape():
    exc = errors.PolicyViolation("refused", failed_criteria=[{"metric": "auc"}])
    assert exc.to_dict() == {
        "code": "policy_violation",
        "message": "refused",
        "detail": {"failed_criteria": [{"metric": "auc"}]},
    }


def test_public_names_of_the_package():
    import modelreg

    for name in modelreg.__all__:
        assert getattr(modelreg, name) is not None
    exported = {n for n in modelreg.__all__ if n[0].isupper()}
    assert {c.__name__ for c in all_errors()} <= exported
    with pytest.raises(AttributeError):
        _ = modelreg.NoSuchThing
