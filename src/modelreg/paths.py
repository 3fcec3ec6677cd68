"""Paths of files inside a version: relative, normalised, portable and unambiguous.

Validated here, at the edge, once per input (SECURITY.md rule 2); the storage layer re-checks
containment on its own. The rules are listed in docs/storage.md ("File names").
"""

from __future__ import annotations

import posixpath
import re
import unicodedata

from modelreg.errors import InvalidPath

__all__ = ["MAX_PATH", "validate_manifest_path"]

MAX_PATH = 1024
_PATH_PART_RE = re.compile(r"^[\w.+=@,~ ()\[\]{}-]+$")

# Windows opens a device, not a file, for these names with any extension in any case
# ("con.txt", "Aux.tar.gz"): a download of such a file there would write to the device.
_RESERVED_DEVICES = frozenset(
    {"CON", "PRN", "AUX", "NUL"}
    | {f"COM{i}" for i in range(1, 10)}
    | {f"LPT{i}" for i in range(1, 10)}
)
# Scripts whose letters pass for each other ("е" is Cyrillic, "ο" Greek, "օ" Armenian): a word
# may use letters of one of them only. Letters of other scripts (CJK, Arabic, …) mix freely.
_CONFUSABLE_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK", "ARMENIAN", "CHEROKEE")


def _script(ch: str) -> str | None:
    """The confusable script a letter belongs to (from its Unicode name), else ``None``."""
    name = unicodedata.name(ch, "")
    for script in _CONFUSABLE_SCRIPTS:
        if name.startswith(script + " "):
            return script
    return None


def _lookalike(part: str) -> str | None:
    """Why a path component could pass for another name, or ``None`` when it cannot.

    A component is read as words (runs of letters and marks): each word keeps to one of the
    confusable scripts, so "модель.bin" and "模型v2.bin" pass and "modеl.bin" (Cyrillic "е")
    does not. Characters whose compatibility form is plain ASCII (fullwidth "ｍ", ligature
    "ﬁ", superscript "¹", mathematical "𝐦") are ASCII look-alikes and refused outright.
    """
    for ch in part:
        if not ch.isascii():
            folded = unicodedata.normalize("NFKC", ch)
            if folded != ch and folded.isascii():
                return f"{ch!r} looks like {folded!r}"
    scripts: set[str] = set()
    for ch in part + ".":  # the sentinel ends the last word
        if unicodedata.category(ch)[0] in "LM":
            script = _script(ch)
            if script is not None:
                scripts.add(script)
            continue
        if len(scripts) > 1:
            return "it mixes " + " and ".join(s.title() for s in sorted(scripts)) + " letters"
        scripts.clear()
    return None


def _portable(path: str, part: str) -> None:
    """Refuse a component that names something else on some system, or passes for another."""
    if unicodedata.normalize("NFC", part) != part:
        raise InvalidPath(
            f"file path {path!r} is not in Unicode NFC form (compose accents first)",
            detail={"path": path, "rule": "nfc"},
        )
    if part.endswith("."):
        # Windows drops a trailing dot: "model.bin." would land on "model.bin".
        raise InvalidPath(
            f"file path {path!r} has a part ending in '.'", detail={"path": path, "rule": "dot"}
        )
    stem = part.split(".", 1)[0].rstrip(" ")
    if stem.upper() in _RESERVED_DEVICES:
        raise InvalidPath(
            f"file path {path!r} uses the reserved device name {stem!r} "
            "(CON, PRN, AUX, NUL, COM1-9 and LPT1-9 are devices on Windows)",
            detail={"path": path, "rule": "reserved"},
        )
    why = _lookalike(part)
    if why is not None:
        raise InvalidPath(
            f"file path {path!r} has a look-alike name: {why}",
            detail={"path": path, "rule": "lookalike"},
        )


def validate_manifest_path(path: str, *, existing: bool = False) -> str:
    r"""Return ``path`` if it is a safe, normalised, relative POSIX path inside a version.

    Refused: empty, absolute, drive letters, ``\\``, ``..``/``.`` parts, empty parts, control
    characters and anything outside the allowlist of letters, digits and ``_.+=@,~ ()[]{}-``.

    A new name must also be portable and unambiguous (docs/storage.md, "File names"): in
    Unicode NFC form, no part ending in ``.``, no Windows device name (``CON``, ``aux.txt``,
    ``LPT1.log`` …), no word mixing look-alike scripts (Latin, Cyrillic, Greek, Armenian,
    Cherokee) and no compatibility characters that fold to ASCII. ``existing=True`` checks a
    path that names something already stored (a read, a delete, a download) with the safety
    rules only, so files registered before the portability rules stay reachable.
    """
    if not isinstance(path, str) or not path:
        raise InvalidPath("a file path must not be empty", detail={"path": path})
    if len(path) > MAX_PATH:
        raise InvalidPath(f"a file path has at most {MAX_PATH} characters", detail={"path": path})
    if path.startswith("/") or "\\" in path or re.match(r"^[A-Za-z]:", path):
        raise InvalidPath(f"file path {path!r} must be relative", detail={"path": path})
    parts = path.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise InvalidPath(
                f"file path {path!r} must be normalised (no empty, '.' or '..' parts)",
                detail={"path": path},
            )
        if len(part) > 255 or not _PATH_PART_RE.fullmatch(part) or part != part.strip():
            raise InvalidPath(
                f"file path {path!r} has a part with characters outside letters, digits and "
                "'_.+=@,~ ()[]{}-' (or leading/trailing spaces)",
                detail={"path": path},
            )
    if posixpath.normpath(path) != path:  # pragma: no cover - the part checks above imply it
        raise InvalidPath(f"file path {path!r} is not normalised", detail={"path": path})
    if not existing:
        for part in parts:
            _portable(path, part)
    return path
