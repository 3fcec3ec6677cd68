"""The guard's rule and window, on a clock the test moves (no sleeping, no timing)."""

from __future__ import annotations

import threading

import pytest

from modelreg.errors import InvalidInput
from modelreg.serving.guard import Guard, GuardRule, parse_guard


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("error_rate > 0.05 over 60s", GuardRule(0.05, 60.0, 20)),
        ("error_rate>0.5 over 2m", GuardRule(0.5, 120.0, 20)),
        ("  error_rate > 0 over 10 min 3 ", GuardRule(0.0, 10.0, 3)),
    ],
)
def test_rules_read(text: str, rule: GuardRule) -> None:
    assert parse_guard(text) == rule


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "cannot read"),
        ("latency > 0.5 over 60s", "cannot read"),
        ("error_rate > 1 over 60s", "between 0 and 1"),
        ("error_rate > 0.1 over 0s", "1 s to 1 day"),
        ("error_rate > 0.1 over 2000m", "1 s to 1 day"),
        ("error_rate > 0.1 over 60s min 0", "min is 1"),
    ],
)
def test_bad_rules_are_refused(text: str, needle: str) -> None:
    with pytest.raises(InvalidInput, match=needle):
        parse_guard(text)


class Fired:
    """Collects the guard's rollbacks (it calls them on a thread of its own)."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str]] = []
        self.done = threading.Event()

    def __call__(self, version: int, reason: str) -> None:
        self.calls.append((version, reason))
        self.done.set()


def test_fires_once_past_the_threshold_within_the_window() -> None:
    now = [0.0]
    fired = Fired()
    guard = Guard(GuardRule(0.25, 10.0, 4), fired, clock=lambda: now[0])
    guard.note(3, True)  # not armed yet: ignored
    guard.arm(3)
    for failed in (False, False, False, True):  # 1 of 4 = 0.25: not over
        guard.note(3, failed)
    guard.note(2, True)  # another version's answer: ignored
    assert not fired.calls
    now[0] = 11.0  # the first four leave the window
    for failed in (True, False, False):  # 1 of 3: under min
        guard.note(3, failed)
    assert not fired.calls
    guard.note(3, True)  # 2 of 4 = 0.5 > 0.25
    assert fired.done.wait(30)
    assert fired.calls == [(3, fired.calls[0][1])]
    assert fired.calls[0][1].startswith("serve guard: error rate 0.500 (2 of 4 requests) > 0.25")
    guard.arm(3)  # the same version again (rolled back, then promoted again): not judged
    for _ in range(10):
        guard.note(3, True)
    assert len(fired.calls) == 1


def test_a_failing_rollback_does_not_escape() -> None:
    done = threading.Event()

    def refuse(version: int, reason: str) -> None:
        done.set()
        raise InvalidInput("nope")

    guard = Guard(GuardRule(0.0, 60.0, 1), refuse)
    guard.arm(1)
    guard.note(1, True)
    assert done.wait(30)
