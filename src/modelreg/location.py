"""Where a registry lives: the location rules shared by the client, the CLI and the server.

Resolution order: an explicit ``uri`` argument, ``MODELREG_URI``, ``MODELREG_HOME``, then the
user's data folder (``platformdirs``). Kept free of heavy imports: ``modelreg.Registry`` loads it.

A registry folder is created on first use only where the user clearly asked for one: the default
location (``MODELREG_HOME`` or the user data folder) or a value written as a path (it contains a
path separator: ``./reg``, ``/srv/reg``, ``~/reg``). A bare word (``myreg``) must name a folder
that exists, and a value that looks like a server address without its scheme
(``127.0.0.1:8080``, ``localhost:8080``, ``registry.example.com:8080``) is refused: taken as a
folder it would silently create ``./127.0.0.1:8080/registry.db``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from modelreg.errors import InvalidInput

# HOST:PORT (any host word), an IPv4 literal with or without a port, a bracketed IPv6 literal,
# or a dotted host name with a port; optionally followed by a URL path.
_HOST_LIKE = re.compile(
    r"""^(?:
        [A-Za-z0-9._-]+:[0-9]{1,5}
      | [0-9]{1,3}(?:\.[0-9]{1,3}){3}(?::[0-9]{1,5})?
      | \[[0-9A-Fa-f:.]+(?:%[A-Za-z0-9]+)?\](?::[0-9]{1,5})?
      | [0-9A-Fa-f]*:[0-9A-Fa-f:]*:[0-9A-Fa-f]*
    )(?:/.*)?$""",
    re.VERBOSE,
)


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


def looks_like_host(uri: str) -> bool:
    """Whether ``uri`` reads as a server address written without ``http://``."""
    return "://" not in uri and _HOST_LIKE.match(uri) is not None


def has_separator(uri: str) -> bool:
    """Whether ``uri`` is written as a path (``./reg``, ``/srv/reg``, ``~/reg``)."""
    return "/" in uri or os.sep in uri or (os.altsep is not None and os.altsep in uri)


def check_uri(uri: str) -> None:
    """Refuse a location that is surely a mistake before anything reads or creates it.

    Only looks at the text (no I/O). Raises ``InvalidInput`` for a server address without a
    scheme and for a scheme other than ``http``/``https``.
    """
    if is_remote(uri):
        return
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", uri)
    if scheme:
        raise InvalidInput(
            f"registry location {uri!r}: only http:// and https:// servers or a folder path are "
            "understood",
            detail={"registry": uri, "expected": ["http://HOST:PORT", "https://HOST", "./FOLDER"]},
        )
    if looks_like_host(uri):
        raise InvalidInput(
            f"registry location {uri!r} looks like a server address without a scheme: use "
            f"http://{uri} (or https://{uri}); a folder of that name must be written as a path, "
            f"e.g. ./{uri}",
            detail={"registry": uri, "did_you_mean": f"http://{uri}"},
        )


def check_folder(uri: str) -> None:
    """Refuse to create a registry folder the user did not clearly ask for.

    A folder that exists is used. One that does not is created only at the default location
    (``MODELREG_HOME`` or the user data folder) or when ``uri`` is written as a path.
    """
    check_uri(uri)
    if is_remote(uri) or has_separator(uri) or uri in (".", "..", "~"):
        return
    path = Path(uri).expanduser()
    if path.exists() or path.absolute() == default_home().absolute():
        return
    raise InvalidInput(
        f"there is no registry folder {uri!r} here; to create a new registry in it, write it as "
        f"a path (--registry ./{uri} or MODELREG_URI=./{uri}), or give a server as "
        "http://HOST:PORT",
        detail={"registry": uri, "create_with": f"./{uri}"},
    )


def resolve_uri(uri: str | os.PathLike[str] | None) -> str:
    """The registry location to use: the argument, ``MODELREG_URI``, or the default folder.

    Raises ``InvalidInput`` for a value that is surely a mistake (``check_uri``).
    """
    if uri is not None and str(uri) != "":
        found = str(uri) if isinstance(uri, str) else os.fspath(uri)
        # A Path object is always meant as a folder, even a bare relative one.
        if not isinstance(uri, str) and not has_separator(found):
            found = os.path.join(".", found)
    else:
        found = os.environ.get("MODELREG_URI") or str(default_home())
    check_uri(found)
    return found
