"""Helpers of the serving tests: the serve app on a loopback port, and waiting for a state."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

from serving_fakes import load

import modelreg
from modelreg.serving.app import ServeConfig, assemble, build_app
from server_process import DEADLINE, ThreadedServer


@contextlib.contextmanager
def serving(url: str, ref: str, **options: Any) -> Iterator[ThreadedServer]:
    """``modelreg serve REF`` (the app, with the test loader) on a free loopback port."""
    config = ServeConfig(ref=ref, **options)
    parts = assemble(modelreg.Registry(url), config, loader=load)
    with ThreadedServer(build_app(parts)) as server:
        yield server
    parts.follower.registry.close()


def wait_for(what: str, check: Callable[[], Any]) -> Any:
    """Poll ``check`` until it is truthy; DEADLINE only detects a hang, it times nothing."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"never happened: {what}")
