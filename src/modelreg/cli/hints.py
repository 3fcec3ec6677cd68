"""Hints the CLI adds to an error: close names, stages, aliases, how to start a server.

Every hint is looked up with the caller's own credentials (``list_models``, ``get_model``), so it
names only models the caller may read; a hint that cannot be computed is left out, never an
error of its own. Hints go into the message and, for ``--json``, into ``detail``.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

from modelreg.errors import (
    AliasNotFound,
    InvalidReference,
    ModelNotFound,
    RegistryError,
    Unavailable,
)
from modelreg.names import Stage

if TYPE_CHECKING:
    from modelreg.client import Registry

STAGES = [s.value for s in Stage]
# Enough names to find a typo in any registry a person types names of, bounded for huge ones.
MAX_NAMES = 5000


def explain(exc: RegistryError, registry: Registry | None) -> None:
    """Add what would help to ``exc`` (message and detail), in place."""
    if isinstance(exc, Unavailable):
        _unreachable(exc, registry)
        return
    if registry is None:
        return
    try:
        if isinstance(exc, ModelNotFound):
            _unknown_model(exc, registry)
        elif isinstance(exc, AliasNotFound):
            _unknown_alias(exc, registry)
        elif isinstance(exc, InvalidReference):
            # `team/fraud/prod`: too many slashes for a name, one model and a wrong stage.
            ref = str(exc.detail.get("name") or exc.detail.get("ref") or "")
            if ref.count("/") == 2 and ":" not in ref and "@" not in ref:
                _wrong_stage(exc, registry, ref)
    except RegistryError:
        pass  # no hint is better than a second error


def _add(exc: RegistryError, sentence: str, **detail: object) -> None:
    exc.message = f"{exc.message}; {sentence}"
    exc.args = (exc.message,)
    exc.detail.update(detail)


def _unreachable(exc: Unavailable, registry: Registry | None) -> None:
    url = exc.detail.get("url")
    if registry is None or url is None or url.rstrip("/") != registry.uri.rstrip("/"):
        return  # another server (an import's source) is not ours to explain
    _add(
        exc,
        "is the server running? Start one with `modelreg server` (on that machine), or point "
        "MODELREG_URI / --registry at the right address",
        hint="start a server with `modelreg server`, or check MODELREG_URI / --registry",
    )


def _unknown_model(exc: ModelNotFound, registry: Registry) -> None:
    name = str(exc.detail.get("name") or "")
    if not name or _wrong_stage(exc, registry, name):
        return
    close = _close_names(registry, name)
    if close:
        _add(exc, f"did you mean {' or '.join(close)}?", did_you_mean=close)


def _wrong_stage(exc: RegistryError, registry: Registry, name: str) -> bool:
    """Say which stages there are when ``name`` is a readable model, a slash and a non-stage.

    ``fraud/prod`` reads as a model named ``fraud/prod`` (``team/name`` models exist), and
    ``team/fraud/prod`` as an invalid name; when the part before the last slash is a model the
    caller can read, the user meant a stage.
    """
    head, sep, last = name.rpartition("/")
    if not sep or not last or not _readable(registry, head):
        return False
    guess = [s for s in STAGES if s.startswith(last.lower())] or difflib.get_close_matches(
        last.lower(), STAGES, n=1
    )
    meant = [f"{head}/{s}" for s in guess]
    also = f" (did you mean {meant[0]}?)" if meant else ""
    # The whole message changes: "no model named 'fraud/prod'" is what misled.
    exc.message = f"model {head!r} has no stage {last!r}; stages are {', '.join(STAGES)}{also}"
    exc.args = (exc.message,)
    exc.detail.update(stages=STAGES, did_you_mean=meant)
    return True


def _unknown_alias(exc: AliasNotFound, registry: Registry) -> None:
    name = exc.detail.get("name")
    alias = str(exc.detail.get("alias") or "")
    if not name:
        return
    aliases = sorted(registry.get_model(str(name)).aliases)
    if not aliases:
        _add(exc, f"{name} has no aliases yet", aliases=[])
        return
    close = difflib.get_close_matches(alias, aliases, n=3, cutoff=0.5)
    also = f" (did you mean @{close[0]}?)" if close else ""
    _add(
        exc,
        f"its aliases are {', '.join('@' + a for a in aliases)}{also}",
        aliases=aliases,
        did_you_mean=[f"{name}@{a}" for a in close],
    )


def _readable(registry: Registry, name: str) -> bool:
    try:
        registry.get_model(name)
    except RegistryError:
        return False
    return True


def _close_names(registry: Registry, name: str) -> list[str]:
    """Model names the caller can read that look like ``name`` (a typo, a case difference)."""
    names: list[str] = []
    token: str | None = None
    while len(names) < MAX_NAMES:
        page = registry.list_models(page_size=1000, page_token=token)
        names.extend(m.name for m in page)
        token = page.next_page_token
        if not token:
            break
    by_key = {n.lower(): n for n in names}
    found = difflib.get_close_matches(name.lower(), list(by_key), n=3, cutoff=0.6)
    return [by_key[k] for k in found]
