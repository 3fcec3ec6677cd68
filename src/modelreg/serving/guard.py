"""The guard: roll the followed stage or alias back when a newly swapped-in version fails.

``--guard "error_rate > 0.05 over 60s"`` watches the share of scoring requests the live
version answers with a server error (5xx: the model raised; a 4xx is the client's mistake and
does not count) over a sliding window. It arms when a version is swapped in while following
(not for the version loaded at start-up), and fires at most once per version, once the window
holds at least ``min_requests`` requests: it calls ``Registry.rollback`` with the measured rate
as the reason and ``expect_current`` set to that version, so it never moves a stage someone
else has moved since.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from modelreg.errors import InvalidInput

log = logging.getLogger("modelreg.serve")

_EXPR = re.compile(
    r"^\s*error_rate\s*>\s*(?P<rate>\d+(?:\.\d+)?)\s+over\s+(?P<window>\d+(?:\.\d+)?)\s*"
    r"(?P<unit>s|m)?\s*(?:min\s+(?P<min>\d+)\s*)?$"
)
MIN_REQUESTS = 20


@dataclass(frozen=True)
class GuardRule:
    """``error_rate > threshold over window`` seconds, judged on at least ``min_requests``."""

    threshold: float
    window: float
    min_requests: int = MIN_REQUESTS

    def __str__(self) -> str:
        return f"error_rate > {self.threshold:g} over {self.window:g}s min {self.min_requests}"


def parse_guard(text: str) -> GuardRule:
    """Read ``error_rate > 0.05 over 60s`` (``[min N]``: requests needed, default 20)."""
    match = _EXPR.match(text or "")
    if match is None:
        raise InvalidInput(
            f"cannot read the guard {text!r}: write 'error_rate > RATE over SECONDSs' "
            "(e.g. 'error_rate > 0.05 over 60s', optionally '... min 50')",
            detail={"guard": text},
        )
    rate = float(match["rate"])
    window = float(match["window"]) * (60 if match["unit"] == "m" else 1)
    if not 0 <= rate < 1:
        raise InvalidInput("the guard's error rate is between 0 and 1", detail={"guard": text})
    if not 1 <= window <= 86_400:
        raise InvalidInput("the guard's window is 1 s to 1 day", detail={"guard": text})
    least = int(match["min"]) if match["min"] else MIN_REQUESTS
    if not 1 <= least <= 1_000_000:
        raise InvalidInput("the guard's min is 1 to 1,000,000 requests", detail={"guard": text})
    return GuardRule(rate, window, least)


class Guard:
    """Outcomes of the armed version in a sliding window; fires ``rollback(version, reason)``."""

    def __init__(
        self,
        rule: GuardRule,
        rollback: Callable[[int, str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rule = rule
        self._rollback = rollback
        self._clock = clock
        self._lock = threading.Lock()
        self._armed: int | None = None
        self._fired: set[int] = set()
        self._window: deque[tuple[float, bool]] = deque()
        self._failures = 0

    def arm(self, version: int) -> None:
        """Start judging ``version`` (just swapped in), from an empty window."""
        with self._lock:
            self._armed = version if version not in self._fired else None
            self._window.clear()
            self._failures = 0

    def disarm(self) -> None:
        """Stop judging (the live version was loaded at start-up, or was rolled back)."""
        with self._lock:
            self._armed = None
            self._window.clear()
            self._failures = 0

    def note(self, version: int | None, failed: bool) -> None:
        """Count one request answered by ``version``; fire when the rule is broken."""
        if self._armed is None or version != self._armed:
            return
        now = self._clock()
        with self._lock:
            if version != self._armed:
                return
            self._window.append((now, failed))
            self._failures += failed
            horizon = now - self.rule.window
            while self._window and self._window[0][0] < horizon:
                _, old = self._window.popleft()
                self._failures -= old
            total = len(self._window)
            rate = self._failures / total
            if total < self.rule.min_requests or rate <= self.rule.threshold:
                return
            self._fired.add(version)
            self._armed = None
            reason = (
                f"serve guard: error rate {rate:.3f} ({self._failures} of {total} requests) "
                f"> {self.rule.threshold:g} over {self.rule.window:g}s"
            )
        log.warning("guard fired for version %s: %s", version, reason)
        threading.Thread(
            target=self._fire, args=(version, reason), name="modelreg-guard", daemon=True
        ).start()

    def _fire(self, version: int, reason: str) -> None:
        try:
            self._rollback(version, reason)
        except Exception:  # the guard must never take the server down with it
            log.exception("guard: the rollback of version %s failed", version)
