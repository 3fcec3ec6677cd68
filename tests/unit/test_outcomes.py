"""The outcome table: each promotion outcome's HTTP status, exception and exit code, once."""

from __future__ import annotations

import pytest

from modelreg.errors import (
    OUTCOMES,
    ApprovalRequired,
    PolicyViolation,
    applied_or_raise,
    criteria_lines,
    outcome,
    settle,
)

REQUEST = {
    "id": 7,
    "name": "fraud",
    "version": 2,
    "target": "production",
    "approvals": [],
    "approvals_required": 2,
    "failed_criteria": [{"criterion": "metrics.recall >= 0.7", "message": "not met"}],
}


@pytest.mark.parametrize(
    ("state", "status", "exit_code"),
    [("applied", 200, 0), ("pending", 202, 4), ("refused", 422, 3), ("rejected", 200, 0)],
)
def test_each_outcome_has_one_status_and_exit_code(state: str, status: int, exit_code: int) -> None:
    assert (outcome(state).status, outcome(state).exit_code) == (status, exit_code)


def test_the_exit_codes_are_the_error_classes() -> None:
    assert OUTCOMES["pending"].exit_code == ApprovalRequired.exit_code
    assert OUTCOMES["refused"].exit_code == PolicyViolation.exit_code


@pytest.mark.parametrize("state", ["applied", "pending", "refused"])
def test_a_dry_run_answers_200_and_exits_as_its_state_would(state: str) -> None:
    row = outcome(state, dry_run=True)
    assert (row.status, row.exit_code) == (200, OUTCOMES[state].exit_code)
    assert settle({**REQUEST, "state": state, "dry_run": True}) == row  # nothing raised


def test_a_refusal_is_raised_with_its_criteria() -> None:
    with pytest.raises(PolicyViolation) as caught:
        settle({**REQUEST, "state": "refused"})
    assert caught.value.failed_criteria == REQUEST["failed_criteria"]
    assert caught.value.detail["promotion"]["id"] == 7


def test_a_waiting_move_answered_where_a_version_is_expected_raises() -> None:
    with pytest.raises(ApprovalRequired) as caught:
        applied_or_raise(202, {**REQUEST, "state": "pending"})
    assert caught.value.detail["request_id"] == 7
    applied_or_raise(200, {"name": "fraud", "version": 2})  # a version: nothing raised


def test_criteria_print_one_line_each() -> None:
    criteria = [
        {"criterion": "from stage staging", "message": "it is in none", "passed": False},
        {"criterion": "tag validated", "passed": True},
    ]
    assert criteria_lines(criteria) == ["✗ from stage staging: it is in none", "✓ tag validated"]
