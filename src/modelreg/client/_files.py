"""What the client gathers on the user's machine: the files to upload, git state, environment."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import stat
import subprocess
import tempfile
import unicodedata
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelreg.digest import Progress, Readable, copy_verified
from modelreg.errors import InvalidInput, InvalidPath, StorageFailure
from modelreg.paths import validate_manifest_path


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
    # macOS file systems may hand back decomposed (NFD) names; the registry keeps NFC names
    # (docs/storage.md), so the version gets the composed spelling of the same name.
    path = validate_manifest_path(unicodedata.normalize("NFC", path))
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
    seen: dict[str, LocalFile] = {}
    for item in files:
        first = seen.setdefault(item.path, item)
        if first is not item:
            # Names are kept in NFC: two Unicode spellings of one name are one name.
            why = "" if first.source.name == item.source.name else " (one name in Unicode NFC)"
            raise InvalidPath(
                f"two inputs would both be stored as {item.path!r}{why}",
                detail={"path": item.path},
            )
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


# Run by a training environment's python to list its distributions: no pip needed (a venv made
# `--without-pip` still answers), and nothing but the standard library is imported.
_LIST_DISTRIBUTIONS = """
import json, platform
from importlib import metadata
names = {
    f"{d.metadata['Name']}=={d.version}"
    for d in metadata.distributions()
    if d.metadata and d.metadata['Name']
}
print(json.dumps({"python": platform.python_version(), "packages": sorted(names, key=str.lower)}))
"""
ENV_TIMEOUT = 120.0  # seconds for another python to list its packages (a cold, busy disk)
_MAX_PACKAGES = 5000  # what the server accepts
# One requirement line: `name[extras] <specifiers> ; marker`, or `name @ url` (pip freeze of a
# direct reference), or `-e …` (an editable install, as pip freeze prints it).
_REQUIREMENT = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?\s*(?:\[[^\]]*\])?\s*"
    r"(?:(?:@\s*\S+)|(?:(?:===|==|!=|~=|>=|<=|>|<)\s*[^\s,;]+"
    r"(?:\s*,\s*(?:===|==|!=|~=|>=|<=|>|<)\s*[^\s,;]+)*))?\s*(?:;.*)?"
)
_PINNED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(?:\[[^\]]*\])?(?:==\S+|\s+@\s+\S+)")


def capture_environment(
    env_from: str | os.PathLike[str] | None = None, *, process: str = "python-process"
) -> dict[str, object]:
    """The Python version, the distributions (sorted) and where they were read (``source``).

    Without ``env_from`` this process's own environment is read, recorded as ``process``.
    ``env_from`` points at the training environment instead: a python executable or a venv
    folder (its distributions are listed by running it), a ``conda.yaml``/``environment.yml``,
    a ``requirements.txt``, or a file holding ``pip freeze`` output.

    Raises:
        InvalidInput: the file cannot be read or holds no packages, or the python cannot list
            them; nothing is registered.
    """
    if env_from is None:
        from importlib import metadata

        packages = sorted(
            {
                f"{dist.metadata['Name']}=={dist.version}"
                for dist in metadata.distributions()
                if dist.metadata and dist.metadata["Name"]
            },
            key=str.lower,
        )
        return {"python": platform.python_version(), "packages": packages, "source": process}
    path = Path(env_from)
    if path.is_dir() and (path / "bin" / "python").exists():
        path = path / "bin" / "python"
    if not path.is_file():
        raise InvalidInput(
            f"environment from {path}: no such file (give a requirements.txt, a conda.yaml, "
            "a file of `pip freeze` output, or a venv's python)",
            detail={"env_from": str(path)},
        )
    if path.suffix.lower() in (".yaml", ".yml"):
        env = _conda_environment(path)
    elif _is_program(path):
        env = _python_environment(path)
    else:
        env = _requirements_environment(path)
    found = env["packages"]
    assert isinstance(found, list)
    if not found:
        raise InvalidInput(
            f"environment from {path}: no packages in it", detail={"env_from": str(path)}
        )
    if len(found) > _MAX_PACKAGES:
        raise InvalidInput(
            f"environment from {path}: {len(found)} packages, more than {_MAX_PACKAGES}",
            detail={"env_from": str(path)},
        )
    return env


def _is_program(path: Path) -> bool:
    """An executable binary or script (a python), as opposed to a text file to read."""
    if not os.access(path, os.X_OK):
        return False
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head == b"\x7fELF" or head.startswith(b"#!")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"environment from {path}: cannot be read as text ({exc})",
            detail={"env_from": str(path)},
        ) from exc


def _requirements_environment(path: Path) -> dict[str, object]:
    """A requirements file, or ``pip freeze`` output (every line pinned ``==`` or ``@``)."""
    packages: list[str] = []
    for number, raw in enumerate(_read_text(path).splitlines(), 1):
        line = re.sub(r"(^|\s)#.*", "", raw).strip()
        if not line:
            continue
        if line.startswith(("-e ", "--editable ")):
            packages.append(line)
            continue
        if line.startswith("-"):  # -r other.txt, --index-url …: options, not packages
            continue
        if not _REQUIREMENT.fullmatch(line):
            raise InvalidInput(
                f"environment from {path}, line {number}: not a requirement: {raw.strip()[:80]!r}",
                detail={"env_from": str(path), "line": number},
            )
        packages.append(line)
    named = [p for p in packages if not p.startswith("-")]
    frozen = bool(named) and all(_PINNED.fullmatch(p) for p in named)
    source = (
        "pip freeze" if frozen and "requirements" not in path.name.lower() else "requirements.txt"
    )
    return {"python": None, "packages": sorted(packages, key=str.lower), "source": source}


def _conda_environment(path: Path) -> dict[str, object]:
    """A conda environment file: its conda dependencies and the pip ones under ``pip:``."""
    import yaml

    try:
        data = yaml.safe_load(_read_text(path))
    except yaml.YAMLError as exc:
        raise InvalidInput(
            f"environment from {path}: not valid YAML ({exc})", detail={"env_from": str(path)}
        ) from exc
    deps = data.get("dependencies") if isinstance(data, dict) else None
    if not isinstance(deps, list):
        raise InvalidInput(
            f"environment from {path}: a conda environment file needs a `dependencies:` list",
            detail={"env_from": str(path)},
        )
    packages: list[str] = []
    python: str | None = None
    for dep in deps:
        if isinstance(dep, dict) and isinstance(dep.get("pip"), list):
            packages += [str(p) for p in dep["pip"]]
        elif isinstance(dep, str):
            name, _, version = dep.partition("=")
            if name.strip() == "python" and version:
                python = version.lstrip("=")
            packages.append(dep)
        else:
            raise InvalidInput(
                f"environment from {path}: not a dependency: {dep!r}",
                detail={"env_from": str(path)},
            )
    return {"python": python, "packages": sorted(packages, key=str.lower), "source": "conda.yaml"}


def _python_environment(python: Path) -> dict[str, object]:
    """What another python (a venv's) has installed, listed by running it (no shell)."""
    where = python.absolute()
    try:
        done = subprocess.run(
            [str(where), "-I", "-c", _LIST_DISTRIBUTIONS],
            capture_output=True,
            text=True,
            timeout=ENV_TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InvalidInput(
            f"environment from {python}: could not run it to list its packages ({exc})",
            detail={"env_from": str(python)},
        ) from exc
    try:
        env = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else None
    except (ValueError, IndexError):
        env = None
    if not isinstance(env, dict) or not isinstance(env.get("packages"), list):
        said = (done.stderr or done.stdout).strip()[-300:]
        raise InvalidInput(
            f"environment from {python}: not a python that can list its packages "
            f"(exit {done.returncode}: {said})",
            detail={"env_from": str(python)},
        )
    return {
        "python": str(env.get("python") or "") or None,
        "packages": [str(p) for p in env["packages"]],
        "source": f"venv:{where}",
    }


def plan_download(files: list[dict[str, Any]], out: Path) -> list[tuple[dict[str, Any], Path]]:
    """Where each file goes; refuses, before writing anything, any target that cannot work.

    A target must stay inside ``out`` (even through symlinked folders), must not be a folder,
    and every folder on its way must be a folder (not a file).
    """
    if out.exists() and not out.is_dir():
        raise InvalidPath(f"{out} exists and is not a folder", detail={"out": str(out)})
    root = out.resolve()
    planned: list[tuple[dict[str, Any], Path]] = []
    for entry in files:
        # What the server lists may predate its portability rules: only the safety rules.
        path = validate_manifest_path(entry["path"], existing=True)
        target = out / path
        parent = target.parent
        while parent != out and not parent.exists():
            parent = parent.parent
        if parent.exists() and not parent.is_dir():
            raise InvalidPath(
                f"{path}: {parent} is in the way (it is a file, not a folder)",
                detail={"path": path},
            )
        if not parent.resolve().is_relative_to(root) or target.is_dir():
            raise InvalidPath(
                f"{path}: the destination is a folder or lies outside {out}", detail={"path": path}
            )
        planned.append((entry, target))
    return planned


def write_verified(
    files: list[dict[str, Any]],
    out_dir: Path,
    opener: Callable[[dict[str, Any]], AbstractContextManager[Readable]],
    *,
    label: str,
    progress: Progress | None = None,
) -> list[Path]:
    """Write manifest ``files`` under ``out_dir``, each checked against its SHA-256 and size.

    Every target is checked before anything is written; files go to a staging folder inside
    ``out_dir`` and are moved into place only when all of them verified, so a corrupted or
    missing blob leaves ``out_dir`` as it was.
    """
    out = out_dir.expanduser().absolute()
    targets = plan_download(files, out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".modelreg-download-", dir=out))
    except OSError as exc:
        raise StorageFailure(f"cannot write into {out}: {exc.strerror}", detail={}) from None
    try:
        staged: list[tuple[Path, Path]] = []
        for index, (entry, target) in enumerate(targets):
            temp = staging / str(index)
            with opener(entry) as src, open(temp, "wb") as dst:
                copy_verified(
                    src,
                    dst,
                    sha256=entry["sha256"],
                    size=entry["size"],
                    what=f"{label}/{entry['path']}",
                    progress=progress,
                )
            staged.append((temp, target))
        for temp, target in staged:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temp, target)
    except OSError as exc:
        raise StorageFailure(
            f"download into {out} failed: {exc.strerror or exc}", detail={"out": str(out)}
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [target for _, target in targets]
