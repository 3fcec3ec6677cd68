"""Where a registry lives: the location rules shared by the client, the CLI and the server.

Resolution order: an explicit ``uri`` argument, ``MODELREG_URI``, ``MODELREG_HOME``, then the
user's data folder (``platformdirs``). Kept free of heavy imports: ``modelreg.Registry`` loads it.
"""

from __future__ import annotations

import os
from pathlib import Path


def default_home() -> Path:
    """The embedded registry's default folder (``MODELREG_HOME`` or the user data dir)."""
    env = os.environ.get("MODELREG_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("modelreg", appauthor=False))


def is_remote(uri: str) -> bool:
    """Whether ``uri`` names a server rather than a folder."""
    return uri.startswith(("http://", "https://"))


def resolve_uri(uri: str | os.PathLike[str] | None) -> str:
    """The registry location to use: the argument, ``MODELREG_URI``, or the default folder."""
    if uri is not None and str(uri) != "":
        return str(uri)
    env = os.environ.get("MODELREG_URI")
    if env:
        return env
    return str(default_home())
