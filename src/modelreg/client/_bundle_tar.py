"""The bundle file: writing one, and reading one back only if every byte is as it says.

A bundle is an uncompressed tar holding ``modelreg-bundle.json`` (the manifest: every
version's record and its files' paths, sizes and SHA-256), ``modelreg-bundle.sha256`` (the
manifest's own digest) and ``files/<i>/<path>``, the files of the manifest's i-th version.
Reading refuses, before anything is registered: members that are not plain files or folders
(symlinks, hard links, devices), names that are absolute or climb out (``..``), names the
format does not have, more bytes than allowed, a truncated archive, a manifest that does not
match its digest, and files missing, extra, or not hashing to the manifest's digest.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any

from modelreg.digest import CHUNK
from modelreg.errors import InvalidInput

FORMAT = "modelreg-bundle"
FORMAT_VERSION = 1
MANIFEST = "modelreg-bundle.json"
DIGEST = "modelreg-bundle.sha256"
FILES = "files"
MAX_MANIFEST = 64 * 1024 * 1024
DEFAULT_MAX_BYTES = 100 * 1024**3


def write(target: Path, manifest: dict[str, Any], folders: list[Path]) -> None:
    """Write the bundle: the manifest, its digest, then each version's files from ``folders``."""
    data = json.dumps(manifest, indent=1, sort_keys=True).encode()
    partial = target.with_name(f"{target.name}.partial")
    with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, MANIFEST, data)
        _add_bytes(tar, DIGEST, (hashlib.sha256(data).hexdigest() + "\n").encode())
        for i, (entry, folder) in enumerate(zip(manifest["versions"], folders, strict=True)):
            for item in entry["version"]["files"]:
                info = tar.gettarinfo(str(folder / item["path"]), f"{FILES}/{i}/{item['path']}")
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mode = 0o644
                with (folder / item["path"]).open("rb") as fh:
                    tar.addfile(info, fh)
    partial.replace(target)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    import io

    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _bad(path: Path, why: str) -> InvalidInput:
    return InvalidInput(
        f"{path} is not a bundle this registry accepts: {why}; nothing was imported",
        detail={"bundle": str(path)},
    )


def _member_path(path: Path, member: tarfile.TarInfo) -> PurePosixPath:
    name = member.name
    pure = PurePosixPath(name)
    if name.startswith("/") or "\\" in name or any(p in ("..", "") for p in name.split("/")):
        raise _bad(path, f"member {name!r} is absolute or leaves the bundle")
    if not (member.isreg() or member.isdir()):
        kind = "a symlink" if member.issym() else "a hard link" if member.islnk() else "special"
        raise _bad(path, f"member {name!r} is {kind}, not a plain file")
    if member.isreg() and name not in (MANIFEST, DIGEST):
        parts = pure.parts
        if len(parts) < 3 or parts[0] != FILES or not parts[1].isdigit():
            raise _bad(path, f"member {name!r} is not part of a bundle")
    return pure


def read(path: Path, dest: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, Any]:
    """Unpack the bundle at ``path`` into ``dest`` and answer its verified manifest.

    Raises ``InvalidInput`` naming what is wrong; ``dest`` then holds nothing to use.
    """
    got: dict[str, tuple[int, str]] = {}
    try:
        with tarfile.open(path, "r:") as tar:
            members = tar.getmembers()
            total = sum(m.size for m in members if m.isreg())
            if total > max_bytes:
                raise _bad(path, f"it holds {total:,} bytes, more than the {max_bytes:,} allowed")
            for member in members:
                pure = _member_path(path, member)
                if not member.isreg():
                    continue
                if str(pure) in got:
                    raise _bad(path, f"member {member.name!r} appears twice")
                if str(pure) == MANIFEST and member.size > MAX_MANIFEST:
                    raise _bad(path, "its manifest is larger than 64 MiB")
                got[str(pure)] = _unpack(tar, member, dest / pure)
    except tarfile.TarError as exc:
        raise _bad(path, f"it cannot be read as a tar archive (truncated?): {exc}") from None
    except EOFError:
        raise _bad(path, "it ends early (truncated)") from None
    return _verified(path, dest, got)


def _unpack(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> tuple[int, str]:
    source = tar.extractfile(member)
    assert source is not None  # a regular member
    target.parent.mkdir(parents=True, exist_ok=True)
    hasher = hashlib.sha256()
    size = 0
    with source, target.open("xb") as out:
        while chunk := source.read(CHUNK):
            hasher.update(chunk)
            size += len(chunk)
            out.write(chunk)
    if size != member.size:
        raise tarfile.ReadError(f"{member.name}: {size} of {member.size} bytes")
    return size, hasher.hexdigest()


def _verified(path: Path, dest: Path, got: dict[str, tuple[int, str]]) -> dict[str, Any]:
    if MANIFEST not in got or DIGEST not in got:
        raise _bad(path, f"it has no {MANIFEST} and {DIGEST}")
    want = (dest / DIGEST).read_text().strip()
    if not hmac.compare_digest(got[MANIFEST][1], want):
        raise _bad(path, f"its manifest hashes to {got[MANIFEST][1]}, not {want}")
    try:
        manifest = json.loads((dest / MANIFEST).read_text())
    except ValueError as exc:
        raise _bad(path, f"its manifest is not JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _bad(path, "its manifest is not a modelreg bundle's")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise _bad(path, f"it is bundle format {manifest.get('format_version')}")
    try:
        expected = _expected(manifest)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise _bad(path, "its manifest does not list versions and files as a bundle does") from None
    files = {k: v for k, v in got.items() if k not in (MANIFEST, DIGEST)}
    if missing := sorted(set(expected) - set(files)):
        raise _bad(path, f"{len(missing)} file(s) are missing, e.g. {missing[0]}")
    if extra := sorted(set(files) - set(expected)):
        raise _bad(path, f"{len(extra)} file(s) are not in its manifest, e.g. {extra[0]}")
    for name, (size, digest) in expected.items():
        if files[name] != (size, digest):
            raise _bad(
                path,
                f"{name} is {files[name][0]} bytes hashing to {files[name][1]}, "
                f"not {size} bytes hashing to {digest}",
            )
    return manifest


def _expected(manifest: dict[str, Any]) -> dict[str, tuple[int, str]]:
    expected: dict[str, tuple[int, str]] = {}
    for i, entry in enumerate(manifest["versions"]):
        record = entry["version"]
        str(record["name"]), int(record["version"])
        for item in record["files"]:
            expected[f"{FILES}/{i}/{item['path']}"] = (int(item["size"]), str(item["sha256"]))
    return expected


def version_folder(dest: Path, index: int) -> Path:
    """Where the i-th version's files were unpacked."""
    return dest / FILES / str(index)
