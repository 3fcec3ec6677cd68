"""The ASGI entry point uvicorn's workers import: the registry comes from ``MODELREG_*``."""

from __future__ import annotations

from fastapi import FastAPI

from modelreg.api.app import create_app
from modelreg.config import Settings
from modelreg.location import resolve_uri


def app_from_env() -> FastAPI:
    """Build the app for the registry named by ``MODELREG_URI`` / ``MODELREG_HOME``."""
    return create_app(Settings.for_home(resolve_uri(None)))
