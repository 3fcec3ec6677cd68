"""What the client gathers on the user's machine: the files to upload, git state, environment."""

from __future__ import annotations

import os
import platform
import re
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from modelreg.errors import InvalidInput, InvalidPath
from modelreg.names import validate_manifest_path


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A file to register: where it is on disk and its path inside the version."""

    source: Path
    path: str
    size: int


def _walk(folder: Path, prefix: str) -> list[LocalFile]:
    found: list[LocalFile] = []
    inside = folder.resolve()
    for root, dirs, names in os.walk(folder, followlinks=False):
        for d in dirs:
            if (Path(root) / d).is_symlink():
                raise InvalidPath(
                    f"{Path(root) / d}: symbolic links to folders are not followed; copy the "
                    "folder or register it directly",
                    detail={"path": str(Path(root) / d)},
                )
        dirs.sort()
        for name in sorted(names):
            full = Path(root) / name
            rel = full.relative_to(folder).as_posix()
            # DESIGN.md §4: no links out. A link to a file inside the folder is stored as that
            # file's bytes; one that leaves the folder could leak anything the user can read.
            if full.is_symlink() and not full.resolve().is_relative_to(inside):
                raise InvalidPath(
                    f"{full} is a symbolic link to {full.resolve()}, outside {folder}; copy the "
                    "file into the folder or pass it explicitly",
                    detail={"path": str(full)},
                )
            found.append(_one(full, f"{prefix}{rel}"))
    return found


def _one(source: Path, path: str) -> LocalFile:
    validate_manifest_path(path)
    try:
        info = source.stat()
        # Check the type before opening: opening a FIFO or a device would block or never end.
        if not stat.S_ISREG(info.st_mode):
            raise InvalidInput(f"{source} is not a regular file", detail={"path": str(source)})
        with open(source, "rb"):
            pass
    except OSError as exc:
        raise InvalidInput(
            f"cannot read {source}: {exc.strerror}", detail={"path": str(source)}
        ) from None
    return LocalFile(source, path, info.st_size)


def collect_files(paths: list[str | os.PathLike[str]]) -> list[LocalFile]:
    """The files a registration of ``paths`` uploads, each with its path inside the version.

    One folder keeps its tree at the version's root; one file keeps its name; several paths
    each keep their own name (a folder's files under ``folder/``).
    """
    if not paths:
        raise InvalidInput("give at least one file or folder to register", detail={})
    single = len(paths) == 1
    files: list[LocalFile] = []
    for raw in paths:
        source = Path(raw).expanduser()
        if not source.exists():
            raise InvalidInput(f"{source}: no such file or folder", detail={"path": str(source)})
        if source.is_dir():
            found = _walk(source, "" if single else f"{source.absolute().name}/")
            if not found:
                raise InvalidInput(f"{source}: the folder is empty", detail={"path": str(source)})
            files.extend(found)
        else:
            files.append(_one(source, source.name))
    seen: set[str] = set()
    for item in files:
        if item.path in seen:
            raise InvalidPath(
                f"two inputs would both be stored as {item.path!r}", detail={"path": item.path}
            )
        seen.add(item.path)
    return files


def _git(cwd: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def capture_git(cwd: str | os.PathLike[str] | None = None) -> dict[str, object]:
    """The git remote, commit and dirty flag of ``cwd``'s repository (empty outside one)."""
    where = Path(cwd or os.getcwd())
    commit = _git(where, "rev-parse", "HEAD")
    if commit is None:
        return {}
    status = _git(where, "status", "--porcelain", "--untracked-files=no")
    remote = _git(where, "remote", "get-url", "origin") or _git(
        where, "rev-parse", "--show-toplevel"
    )
    # Credentials embedded in a remote URL must never reach the registry.
    if remote:
        remote = re.sub(r"^([a-z+]+://)[^@/]+@", r"\1", remote)
    return {"git_repo": remote, "git_commit": commit, "git_dirty": bool(status)}


def capture_environment() -> dict[str, object]:
    """The Python version and the installed distributions (``name==version``, sorted)."""
    from importlib import metadata

    packages = sorted(
        {
            f"{dist.metadata['Name']}=={dist.version}"
            for dist in metadata.distributions()
            if dist.metadata and dist.metadata["Name"]
        },
        key=str.lower,
    )
    return {"python": platform.python_version(), "packages": packages}
