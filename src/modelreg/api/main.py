"""The ASGI entry point uvicorn's workers import: the registry comes from ``MODELREG_*``."""

from __future__ import annotations

import gc

from fastapi import FastAPI

from modelreg.api.app import create_app
from modelreg.api.orphans import watch_parent
from modelreg.config import Settings
from modelreg.location import resolve_uri


def app_from_env() -> FastAPI:
    """Build the app for the registry named by ``MODELREG_URI`` / ``MODELREG_HOME``."""
    watch_parent()  # a worker of several ends when its supervisor is killed
    app = create_app(Settings.for_home(resolve_uri(None)))
    # Everything imported and built so far lives as long as the worker. Frozen, the cyclic
    # collector stops rescanning it: a full collection over FastAPI, pydantic and SQLAlchemy
    # took 35-50 ms, and landed on whichever request crossed its threshold (the p99 of
    # list_models was three times its p50 at 2,000 versions already).
    gc.collect()
    gc.freeze()
    return app
