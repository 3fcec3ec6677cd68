"""Start a real, throwaway PostgreSQL server for the test suite.

The server lives in a temporary directory, listens on a free port on 127.0.0.1, trusts
every local connection and skips fsync, so it starts in about a second and leaves nothing
behind. PostgreSQL refuses to run as root, so when the tests run as root (as in CI) the
server tools are run as the ``postgres`` OS user that the Debian package creates.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shlex
import shutil
import socket
import stat
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

_PG_TOOLS = ("initdb", "pg_ctl")
_OS_USER = "postgres"
_DB_USER = "postgres"
_START_ATTEMPTS = 3  # a free port can be taken between picking it and binding it


def _has_tools(bindir: Path) -> bool:
    return all((bindir / tool).is_file() for tool in _PG_TOOLS)


def _version_key(bindir: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/15/bin -> (15,); numeric so that 16 sorts above 9.6.
    return tuple(int(part) for part in re.findall(r"\d+", bindir.parent.name))


def find_pg_bin() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or None if PostgreSQL is not installed.

    Debian keeps the server tools off PATH (in /usr/lib/postgresql/<version>/bin), so
    ``pg_config --bindir`` and that directory are tried before PATH.
    """
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            )
            bindir = Path(out.stdout.strip())
            if _has_tools(bindir):
                return bindir
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    for bindir in candidates:
        if _has_tools(bindir):
            return bindir
    found = [shutil.which(tool) for tool in _PG_TOOLS]
    if found[0] and found[1] and Path(found[0]).parent == Path(found[1]).parent:
        return Path(found[0]).parent
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _sanitize(name: str) -> str:
    cleaned = re.sub(r"[^a-z0-9_]", "_", name.lower())[:63]
    if not cleaned:
        raise ValueError(f"not a usable database name: {name!r}")
    return cleaned


class PostgresServer:
    """A private PostgreSQL server: ``start()``, ``create_database()``, then ``stop()``.

    Attributes:
        url_base: SQLAlchemy URL of the server without a database, e.g.
            ``postgresql+psycopg://postgres@127.0.0.1:54321``. Set by ``start()``.
    """

    def __init__(self, bindir: Path | None = None) -> None:
        self.bindir = bindir
        self.url_base = ""
        self.port = 0
        self._tmp: Path | None = None
        self._data: Path | None = None
        self._log: Path | None = None
        self._running = False

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Create a cluster in a new temporary directory and start the server on it."""
        if self._running:
            return
        bindir = self.bindir or find_pg_bin()
        if bindir is None:
            raise RuntimeError("PostgreSQL server tools (initdb, pg_ctl) were not found")
        self.bindir = bindir
        self._tmp = Path(tempfile.mkdtemp(prefix="modelreg-pg-"))
        self._data = self._tmp / "data"
        self._log = self._tmp / "postgres.log"
        sockdir = self._tmp / "sock"
        sockdir.mkdir()
        try:
            if os.geteuid() == 0:
                self._hand_to_os_user()
            self._run(
                "initdb",
                [
                    *("-D", str(self._data), "-A", "trust", "-U", _DB_USER, "--no-sync"),
                    *("-E", "UTF8", "--locale=C"),  # one collation everywhere, whatever LANG is
                ],
            )
            self._start_server(sockdir)
        except BaseException:
            self._cleanup()
            raise

    def stop(self) -> None:
        """Stop the server at once (the data is thrown away) and delete its directory."""
        try:
            if self._running and self._data is not None:
                self._run("pg_ctl", ["-D", str(self._data), "-m", "immediate", "stop"])
        finally:
            self._running = False
            self._cleanup()

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- databases ---------------------------------------------------------------------

    def create_database(self, name: str) -> str:
        """Create database ``name`` (reduced to ``[a-z0-9_]``); return its SQLAlchemy URL."""
        import psycopg

        if not self._running:
            raise RuntimeError("the PostgreSQL server is not running")
        dbname = _sanitize(name)
        dsn = f"postgresql://{_DB_USER}@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{dbname}"')
        return f"{self.url_base}/{dbname}"

    # -- internals ---------------------------------------------------------------------

    def _hand_to_os_user(self) -> None:
        # Root may not run the server, so the postgres user must own everything it writes.
        assert self._tmp is not None
        try:
            entry = pwd.getpwnam(_OS_USER)
        except KeyError:
            raise RuntimeError(
                f"running as root, but there is no {_OS_USER!r} OS user to run PostgreSQL as "
                "(apt-get install postgresql creates it)"
            ) from None
        for path in (self._tmp, self._tmp / "sock"):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        # The server must be able to pass through the parent (e.g. a private TMPDIR) too.
        parent = self._tmp.parent
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)

    def _start_server(self, sockdir: Path) -> None:
        assert self._data is not None
        assert self._log is not None
        for attempt in range(1, _START_ATTEMPTS + 1):
            port = _free_port()
            options = (
                # pg_ctl hands these to the server through /bin/sh, hence the quoting.
                f"-F -p {port} -k {shlex.quote(str(sockdir))} -c listen_addresses=127.0.0.1"
                " -c fsync=off -c max_connections=200"
            )
            try:
                self._run(
                    "pg_ctl",
                    ["-w", "-D", str(self._data), "-l", str(self._log), "-o", options, "start"],
                )
            except RuntimeError:
                if attempt == _START_ATTEMPTS or "could not bind" not in self._log_tail():
                    raise
                continue
            self.port = port
            self.url_base = f"postgresql+psycopg://{_DB_USER}@127.0.0.1:{port}"
            self._running = True
            return

    def _run(self, tool: str, args: list[str]) -> None:
        assert self.bindir is not None
        assert self._tmp is not None
        cmd = [str(self.bindir / tool), *args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", _OS_USER, "--", *cmd]
        # cwd: the postgres user may not be allowed into the caller's directory (e.g. /root).
        result = subprocess.run(
            cmd,
            cwd=self._tmp,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{tool} failed with exit code {result.returncode}: {' '.join(cmd)}\n"
                f"--- output ---\n{result.stdout}{result.stderr}\n"
                f"--- server log (tail) ---\n{self._log_tail()}"
            )

    def _log_tail(self, lines: int = 40) -> str:
        if self._log is None or not self._log.exists():
            return "(no log file)"
        return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])

    def _cleanup(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
        self._tmp = self._data = self._log = None
