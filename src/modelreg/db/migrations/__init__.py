"""Alembic migrations of the metadata store (run only by `modelreg db upgrade` or first use)."""
