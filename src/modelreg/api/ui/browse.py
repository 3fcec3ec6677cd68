"""UI pages: browse (filled in by its work package)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
