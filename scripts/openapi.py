"""Print, write or check the REST API's OpenAPI document (the committed ``openapi.json``).

Usage::

    python scripts/openapi.py            # print the document (stable JSON) on stdout
    python scripts/openapi.py --write    # (re)write openapi.json at the repository root
    python scripts/openapi.py --check    # exit 1 with a unified diff if openapi.json is stale

The document is built from ``create_app(Settings.for_home(<a temporary folder>))``, so it
depends on the code only, never on a registry's data or the caller's environment.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "openapi.json"

# Settings.for_home reads these; a developer's shell must not change the document.
_ENV = ("MODELREG_DB", "MODELREG_ARTIFACTS", "MODELREG_ACTOR", "MODELREG_ALLOWED_HOSTS")


def render() -> str:
    """The app's OpenAPI document as stable JSON text (sorted keys, 2-space indent, newline)."""
    from modelreg.api.app import create_app, openapi_document
    from modelreg.config import Settings

    saved = {key: os.environ.pop(key) for key in _ENV if key in os.environ}
    try:
        with tempfile.TemporaryDirectory(prefix="modelreg-openapi-") as folder:
            app = create_app(Settings.for_home(folder))
            document = openapi_document(app)
            app.state.registry.engine.dispose()
    finally:
        os.environ.update(saved)
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def diff(committed: str, current: str) -> str:
    """A unified diff from the committed document to the current one ('' when equal)."""
    return "".join(
        difflib.unified_diff(
            committed.splitlines(keepends=True),
            current.splitlines(keepends=True),
            fromfile="openapi.json (committed)",
            tofile="openapi.json (from the app)",
        )
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help=f"write {TARGET.name}")
    mode.add_argument("--check", action="store_true", help=f"fail if {TARGET.name} is stale")
    args = parser.parse_args(argv)

    current = render()
    if args.write:
        TARGET.write_text(current)
        print(f"wrote {TARGET}", file=sys.stderr)
        return 0
    if args.check:
        committed = TARGET.read_text() if TARGET.is_file() else ""
        changes = diff(committed, current)
        if changes:
            sys.stdout.write(changes)
            print(f"{TARGET.name} is out of date: run `make openapi`", file=sys.stderr)
            return 1
        print(f"{TARGET.name} is up to date", file=sys.stderr)
        return 0
    sys.stdout.write(current)
    return 0


if __name__ == "__main__":
    sys.exit(main())
