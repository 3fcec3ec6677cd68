"""The metadata store: SQLAlchemy tables, engines and Alembic migrations."""
