"""Which files can carry code (by name and magic bytes), and scanning each kind without loading.

``code_kind(path, head)`` decides from a file's name and first bytes alone, so registering
data, text or ONNX files costs one small read. ``scan_file`` then reads the kinds that can
carry code: pickles (protocols 0-5, joblib, compressed joblib), zip archives (PyTorch's
``data.pkl``, ``.npz`` arrays, a ``.keras`` model's ``config.json``), NumPy ``.npy`` object
arrays and Keras HDF5 files. Nothing is ever unpickled, imported or evaluated.
"""

from __future__ import annotations

import ast
import bz2
import gzip
import json
import lzma
import re
import shutil
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from modelreg.services.scanning.pickles import Finding, scan_pickle_stream

__all__ = ["FileVerdict", "code_kind", "scan_file"]

HEAD = 64
PICKLE_NAMES = re.compile(
    r".*\.(pkl|pickle|joblib|dill|sav|pt|pth|bin|ckpt|dat|data|cloudpickle|model|mdl|p)"
    r"(\.(gz|bz2|xz|lzma|z|zlib))?$",
    re.IGNORECASE,
)
ZIP_MAGIC = b"PK\x03\x04"
NPY_MAGIC = b"\x93NUMPY"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_COMPRESSED = {b"\x1f\x8b": "gzip", b"BZh": "bz2", b"\xfd7zXZ\x00": "xz"}
_ZLIB = re.compile(rb"\x78[\x01\x5e\x9c\xda]")
# A text-protocol (0 or 1) pickle that does anything starts with MARK, a GLOBAL or an empty
# list, dict or tuple.
_TEXT_PICKLE = re.compile(rb"(\(|c[\w.]+\n[\w.]+\n|\]|\}|\))")
MAX_ZIP_ENTRIES = 10_000
MAX_ZIP_DEPTH = 3
MAX_CONFIG = 16 * 1024 * 1024
_IMPORT = re.compile(r"[A-Za-z_][\w.]*\.[A-Za-z_]\w*")
_LAMBDA = re.compile(rb'"class_name"\s*:\s*"(Lambda|TFOpLambda)"')


@dataclass(slots=True)
class FileVerdict:
    """One file's scan: ``clean``, ``unsafe``, ``not_applicable`` or ``error``."""

    status: str
    findings: list[Finding] = field(default_factory=list)

    @classmethod
    def of(cls, findings: list[Finding], error: str | None) -> FileVerdict:
        """Unsafe with findings, else an error when unreadable, else clean."""
        if findings:
            return cls("unsafe", findings)
        if error:
            return cls("error", [Finding("unreadable", error, "high")])
        return cls("clean")


def code_kind(path: str, head: bytes) -> str | None:
    """The kind of code-carrying file this is (``None``: it cannot carry code)."""
    if head.startswith(NPY_MAGIC):
        return "npy"
    if head.startswith(ZIP_MAGIC):
        return "zip"
    if head.startswith(HDF5_MAGIC):
        return "hdf5"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "pickle"
    named = bool(PICKLE_NAMES.fullmatch(path))
    if named and any(head.startswith(m) for m in _COMPRESSED):
        return "compressed"
    if named and _ZLIB.match(head):
        return "compressed"
    if named or _TEXT_PICKLE.match(head):
        return "pickle"
    return None


def scan_file(path: str, stream: IO[bytes], kind: str, *, depth: int = 0) -> FileVerdict:
    """Scan one file of ``kind`` (from ``code_kind``) read from ``stream`` (seekable).

    ``depth`` counts the archives it is nested in (a zip in a zip is opened, three deep).
    """
    if kind == "pickle":
        return _pickle(stream, sniffed=not PICKLE_NAMES.fullmatch(path))
    if kind == "compressed":
        with _decompressed(stream) as plain:
            return _pickle(plain, sniffed=False)
    if kind == "npy":
        return _npy(stream)
    if kind == "hdf5":
        return FileVerdict.of(_lambda_bytes(stream), None)
    return _zip(stream, depth)


def _pickle(stream: IO[bytes], *, sniffed: bool) -> FileVerdict:
    report = scan_pickle_stream(stream, many=True)  # type: ignore[arg-type]
    findings = report.findings
    if sniffed and report.error:
        # Picked by its first bytes only, and not a whole pickle: text or data, unless it
        # names a real module (a truncated payload still runs up to where it breaks).
        findings = [f for f in findings if _IMPORT.fullmatch(f.detail)]
        if not findings:
            return FileVerdict("not_applicable")
    return FileVerdict.of(findings, report.error)


def _npy(stream: IO[bytes]) -> FileVerdict:
    """A ``.npy`` array: only an object array holds a pickle (after the header)."""
    head = stream.read(12)
    major = head[6] if len(head) > 6 else 0
    if major == 1:
        (length,), start = struct.unpack("<H", head[8:10]), 10
    elif major in (2, 3):
        (length,), start = struct.unpack("<I", head[8:12]), 12
    else:
        return FileVerdict.of([], f"unknown .npy format version {major}")
    stream.seek(start)
    text = stream.read(min(length, 1 << 20))
    try:
        header = ast.literal_eval(text.decode("latin1"))
        descr = str(header["descr"])
    except (ValueError, SyntaxError, KeyError, TypeError, MemoryError):
        return FileVerdict.of([], "the .npy header cannot be read")
    if "O" not in descr:
        return FileVerdict("not_applicable")  # plain numbers: loads without unpickling
    stream.seek(start + length)
    return _pickle(stream, sniffed=False)


def _lambda_config(config: Any) -> list[Finding]:
    """Keras layers that carry Python code (``Lambda``) or name code outside Keras."""
    findings: list[Finding] = []
    for node in _walk(config):
        name = node.get("class_name")
        module = node.get("module")
        if name in ("Lambda", "TFOpLambda"):
            findings.append(
                Finding("lambda", f"a Keras {name} layer holds Python code", "critical")
            )
        elif isinstance(module, str) and module and not module.startswith(("keras", "tf_keras")):
            findings.append(Finding("custom_object", f"{module}.{name} runs code from {module}"))
    return findings[:50]


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _lambda_bytes(stream: IO[bytes]) -> list[Finding]:
    """An HDF5 Keras file: its ``model_config`` attribute is JSON text stored as is."""
    tail = b""
    while chunk := stream.read(1 << 20):
        if _LAMBDA.search(tail + chunk):
            return [Finding("lambda", "the model config has a Keras Lambda layer", "critical")]
        tail = chunk[-64:]
    return []


def _zip(stream: IO[bytes], depth: int) -> FileVerdict:
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        return FileVerdict.of([], f"not a readable zip: {exc}")
    findings: list[Finding] = []
    errors: list[str] = []
    with archive:
        entries = archive.infolist()
        if len(entries) > MAX_ZIP_ENTRIES:
            return FileVerdict.of([], f"more than {MAX_ZIP_ENTRIES} entries")
        for info in entries:
            verdict = _zip_entry(archive, info, depth)
            if verdict is None:
                continue
            for finding in verdict.findings:
                detail = f"{info.filename}: {finding.detail}"
                findings.append(Finding(finding.kind, detail, finding.severity))
            if verdict.status == "error":
                errors.append(info.filename)
    if errors and not findings:
        return FileVerdict.of([], f"unreadable entries: {', '.join(errors[:5])}")
    return FileVerdict.of(findings, None)


def _zip_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, depth: int) -> FileVerdict | None:
    name = info.filename
    if info.is_dir():
        return None
    if name.rsplit("/", 1)[-1] == "config.json":
        if info.file_size > MAX_CONFIG:
            return FileVerdict.of([], "config.json is too large to read")
        try:
            config = json.loads(archive.read(info))
        except (ValueError, RecursionError):
            return None  # not JSON: Keras could not read it either
        return FileVerdict.of(_lambda_config(config), None)
    with archive.open(info) as entry:
        head = entry.read(HEAD)
    kind = code_kind(name, head)
    if kind is None:
        return None
    if kind == "zip" and depth >= MAX_ZIP_DEPTH:
        return FileVerdict.of([], f"archives nested more than {MAX_ZIP_DEPTH} deep")
    with _spooled(archive, info) as plain:
        return scan_file(name, plain, kind, depth=depth + 1)


def _spooled(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> IO[bytes]:
    """An entry's bytes in a seekable file (small entries stay in memory)."""
    spool = tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024)  # noqa: SIM115 (returned)
    with archive.open(info) as entry:
        shutil.copyfileobj(entry, spool, 1 << 20)
    spool.seek(0)
    return spool


class _Inflate:
    """A zlib stream (joblib's default compression) read in bounded pieces."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.inflate = zlib.decompressobj()

    def read(self, size: int) -> bytes:
        while True:
            if self.inflate.unconsumed_tail:
                return self.inflate.decompress(self.inflate.unconsumed_tail, size)
            chunk = self.stream.read(1 << 20)
            if not chunk:
                return self.inflate.flush()
            out = self.inflate.decompress(chunk, size)
            if out:
                return out

    def __enter__(self) -> _Inflate:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None


class TooLarge(ValueError):
    """A compressed file inflates beyond ``MAX_INFLATED`` (a decompression bomb, or absurd)."""


# A compressed pickle may inflate to this many bytes; beyond, it is an ``error``, not clean.
MAX_INFLATED = 64 * 2**30


def _copy_bounded(reader: Any, spool: IO[bytes]) -> None:
    total = 0
    while chunk := reader.read(1 << 20):
        total += len(chunk)
        if total > MAX_INFLATED:
            raise TooLarge(f"it inflates to more than {MAX_INFLATED} bytes")
        spool.write(chunk)


def _decompressed(stream: IO[bytes]) -> IO[bytes]:
    """A compressed pickle (joblib's gzip, bz2, xz or zlib), decompressed to a temporary file."""
    head = stream.read(8)
    stream.seek(0)
    spool = tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024)  # noqa: SIM115 (returned)
    reader: Any
    if head.startswith(b"\x1f\x8b"):
        reader = gzip.GzipFile(fileobj=stream)
    elif head.startswith(b"BZh"):
        reader = bz2.BZ2File(stream)
    elif head.startswith(b"\xfd7zXZ"):
        reader = lzma.LZMAFile(stream)  # noqa: SIM115 (closed below)
    else:
        reader = _Inflate(stream)
    with reader:
        _copy_bounded(reader, spool)
    spool.seek(0)
    return spool
