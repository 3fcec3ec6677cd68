"""Following a reference: load what REF names, and swap in each new version it comes to name.

The follower resolves REF (``churn/production``, ``churn@champion``) whenever the registry's
event stream reports an event about the model, and on a slow timer besides (every second
while the stream is unavailable). A new version is loaded by the ``loader``
(``modelreg.flavors.open_version``: download, verify, load) and warmed off the request path,
then swapped in with one assignment: a request reads ``follower.live`` once and finishes on
that model even if a swap happens meanwhile. The old model is dropped right after the swap.
A version that fails to load or warm is not swapped in: the old one keeps serving, the error
is kept for ``/version`` and the deployment report, and that version is tried again after
``retry`` seconds (or at once if REF moves elsewhere).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from modelreg.errors import NotFound, RegistryError
from modelreg.names import Ref, parse_ref

if TYPE_CHECKING:
    from modelreg.client import Registry
    from modelreg.types import Version

log = logging.getLogger("modelreg.serve")

EVENT_WAIT = 20.0  # seconds each long-poll of the event stream waits
POLL_WITH_EVENTS = 15.0  # a resolve poll as a safety net while the stream works
POLL_WITHOUT_EVENTS = 1.0  # and while it does not: a promotion is still seen within 2 s
RETRY_FAILED = 30.0  # seconds before a version that failed to load is tried again


class Servable(Protocol):
    """What the loader gives back (``modelreg.flavors.LoadedModel``)."""

    version: Version
    flavor: str
    example: Any

    def predict(self, data: Any) -> Any:
        """Predictions for a DataFrame, array or list."""

    def check_input(self, df: Any) -> None:
        """Raise ``InvalidInput`` naming the column when ``df`` does not fit the signature."""

    def warm(self) -> None:
        """Predict on the input example, if any."""


Loader = Callable[..., Servable]
"""``loader(registry, "NAME:V", trust=bool[, require_signature=True]) -> Servable``."""


def now_iso() -> str:
    """The current UTC time as the registry writes it."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Live:
    """The model answering requests, and when it was swapped in."""

    model: Servable
    version: int
    loaded_at: str


class Follower:
    """Keeps ``live`` on the version REF names (see the module docstring)."""

    def __init__(
        self,
        registry: Registry,
        ref: str,
        *,
        loader: Loader,
        trust: bool = False,
        require_signature: bool = False,
        retry: float = RETRY_FAILED,
        events: bool = True,
    ) -> None:
        self.registry = registry
        self.ref: Ref = parse_ref(ref, allow_model=False)
        self.ref_text = ref.strip()  # as given (models:/churn/production), for people
        self.name = self.ref.name
        self.loader = loader
        self.trust = trust
        # Passed only when asked for, so a loader without the keyword keeps working.
        self.options: dict[str, bool] = {"require_signature": True} if require_signature else {}
        self.retry = retry
        self.follows = self.ref.version is None
        self.use_events = events and self.follows
        self.live: Live | None = None
        self.last_error = ""
        self.last_error_at: str | None = None
        self.events_ok = False
        self.listeners: list[Callable[[str, Live | None, float], None]] = []
        self._failed: dict[int, float] = {}
        self._kick = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._check_lock = threading.Lock()
        self._watcher: Registry | None = None
        self.event_wait = EVENT_WAIT

    # -- one check ----------------------------------------------------------------------

    def check(self) -> bool:
        """Resolve REF once; load and swap in the version it names if that is new.

        Returns whether a new version was swapped in. Never raises for a registry or model
        failure: that is recorded as ``last_error`` and the live model stays.
        """
        with self._check_lock:
            try:
                target = self.registry.get_version(str(self.ref))
            except NotFound as exc:
                self._fail(None, f"{self.ref} names no version: {exc.message}", 0.0)
                return False
            except Exception as exc:  # the registry is down: keep serving what we have
                self._fail(None, f"cannot resolve {self.ref}: {_describe(exc)}", 0.0)
                return False
            live = self.live
            if live is not None and live.version == target.version:
                self._failed.clear()  # REF is back on the live version (e.g. rolled back)
                self._clear_error()
                return False
            failed_at = self._failed.get(target.version)
            if failed_at is not None and time.monotonic() - failed_at < self.retry:
                return False
            return self._load(target.version)

    def _load(self, number: int) -> bool:
        started = time.monotonic()
        pinned = f"{self.name}:{number}"
        try:
            model = self.loader(self.registry, pinned, trust=self.trust, **self.options)
            model.warm()
        except Exception as exc:
            self._failed[number] = time.monotonic()
            self._fail(number, f"{pinned} was not swapped in: {_describe(exc)}", started)
            return False
        seconds = time.monotonic() - started
        old, self.live = self.live, Live(model, number, now_iso())
        self._failed.clear()
        self._clear_error()
        was = f"{self.name}:{old.version}" if old else "nothing"
        log.info("serving %s (was %s; loaded and warmed in %.3f s)", pinned, was, seconds)
        # In-flight requests hold their own reference to the old model; ours goes now.
        del old
        gc.collect()
        self._notify("swap", seconds)
        return True

    def _fail(self, number: int | None, message: str, started: float) -> None:
        if message != self.last_error:
            log.error("%s", message)
        self.last_error = message
        self.last_error_at = now_iso()
        # "failure": a version failed to load (counted); "error": REF could not be resolved.
        self._notify("failure" if number is not None else "error", time.monotonic() - started)

    def _clear_error(self) -> None:
        self.last_error = ""
        self.last_error_at = None

    def _notify(self, what: str, seconds: float) -> None:
        for listener in list(self.listeners):
            try:
                listener(what, self.live, seconds)
            except Exception:
                log.exception("a %s listener failed", what)

    # -- following ----------------------------------------------------------------------

    def start(self) -> None:
        """Load REF now (in the background) and keep following it until ``stop``."""
        # Open the backend here, once: threads racing to open it lazily would each make one.
        _ = self.registry.backend
        self._spawn(self._run, "modelreg-follow")
        if self.use_events:
            self._spawn(self._watch_events, "modelreg-events")

    def stop(self) -> None:
        """Stop following: the threads end within a long-poll (at most 5 s are waited for)."""
        self._stop.set()
        self._kick.set()
        patience = min(self.event_wait, 5.0) + 1.0
        for thread in self._threads:
            thread.join(timeout=patience)
        watcher = self._watcher
        if watcher is not None and any(t.is_alive() for t in self._threads):
            watcher.close()  # a long-poll still in flight is abandoned with its connection

    def kick(self) -> None:
        """Resolve REF now rather than at the next poll."""
        self._kick.set()

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._kick.clear()
            self.check()
            if not self.follows and self.live is not None:
                return  # a pinned version never changes
            if self.live is None or self._failed:
                pause = POLL_WITHOUT_EVENTS
            else:
                pause = POLL_WITH_EVENTS if self.events_ok else POLL_WITHOUT_EVENTS
            self._kick.wait(pause)

    def _watch_events(self) -> None:
        from modelreg.client import Registry

        # Its own connection: a long-poll holds one for up to EVENT_WAIT seconds.
        watcher = self._watcher = Registry(self.registry.uri, token=self.registry.token)
        cursor: int | None = None  # None: from now on
        try:
            while not self._stop.is_set():
                try:
                    items, cursor = watcher.backend.events(cursor, self.name, self.event_wait, 100)
                except RegistryError as exc:
                    self._events_down(exc)
                    continue
                except Exception as exc:  # connection refused, timeouts: the poll carries on
                    self._events_down(exc)
                    continue
                if not self.events_ok:
                    self.events_ok = True
                    self._kick.set()  # anything missed while it was down
                if items:
                    self._kick.set()
        finally:
            watcher.close()

    def _events_down(self, exc: Exception) -> None:
        if self._stop.is_set():
            return  # stopping closed the connection under the long-poll
        if self.events_ok:
            log.warning("event stream unavailable (%s); polling every second", _describe(exc))
        self.events_ok = False
        self._stop.wait(2.0)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, RegistryError):
        return f"{type(exc).__name__}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"
