"""The grammar of names and references, defined once for every layer (file paths: ``paths``).

Validation happens here, at the edge, exactly once per input (SECURITY.md rule 2); the storage
layer re-checks containment on its own.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from modelreg.errors import InvalidInput, InvalidName, InvalidReference

__all__ = [
    "Ref",
    "Semver",
    "Stage",
    "Target",
    "normalize_name",
    "parse_dataset",
    "parse_nonnegative",
    "parse_parent",
    "parse_ref",
    "validate_alias",
    "validate_key",
    "validate_metric",
    "validate_mlflow_key",
    "validate_model_name",
    "validate_text",
]

MAX_NAME = 128
MAX_KEY = 250
MAX_VALUE = 5000
MAX_DESCRIPTION = 20_000
# Version numbers are 32-bit in the database; nobody registers two billion versions of a model.
MAX_VERSION = 2**31 - 1
MAX_SEMVER_PART = 9_999_999_999
# MLflow timestamps (epoch milliseconds) and steps; 64-bit in the database.
MAX_NONNEGATIVE = 2**62

_SEGMENT = r"[A-Za-z0-9_][A-Za-z0-9._-]*"
_NAME_RE = re.compile(rf"^{_SEGMENT}(?:/{_SEGMENT})?$")
_ALIAS_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
_KEY_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:/-]*$")
_DATASET_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./:-]{0,255}$")
_SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)
_FOLD_RE = re.compile(r"[-_.]+")


class Stage(StrEnum):
    """Lifecycle stage of a version; ``none`` is shown as "development" where a team prefers."""

    NONE = "none"
    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"

    @classmethod
    def parse(cls, text: str) -> Stage:
        """Read a stage name case-insensitively (MLflow writes ``Production``)."""
        word = text.strip().lower()
        if word == "development":
            return cls.NONE
        try:
            return cls(word)
        except ValueError:
            choices = ", ".join(s.value for s in cls)
            raise InvalidReference(
                f"unknown stage {text!r}; expected one of {choices}", detail={"stage": text}
            ) from None


_STAGE_WORDS = {s.value for s in Stage} | {"development"}
_RESERVED_LAST = {
    "latest",
    "versions",
    "aliases",
    "tags",
    "files",
    "compare",
    "describe",
    "history",
    "policy",
    "promotions",
    "rollback",
}


def _is_number(text: str) -> bool:
    # str.isdigit() is true for "²" and "１"; a version number is plain ASCII digits.
    return text.isascii() and text.isdigit()


def validate_model_name(name: str) -> str:
    """Return ``name`` if it is a valid model name, else raise ``InvalidName``.

    1–128 characters of ``A-Z a-z 0-9 . _ -``, not starting with ``.`` or ``-``, with at most
    one ``team/`` namespace segment.
    """
    if not isinstance(name, str) or not name:
        raise InvalidName("a model name must not be empty", detail={"name": name})
    if len(name) > MAX_NAME:
        raise InvalidName(
            f"a model name has at most {MAX_NAME} characters (got {len(name)})",
            detail={"name": name[:MAX_NAME] + "…"},
        )
    if not _NAME_RE.fullmatch(name):
        raise InvalidName(
            f"invalid model name {name!r}: use letters, digits, '.', '_' and '-', "
            "not starting with '.' or '-', with at most one 'team/' prefix",
            detail={"name": name},
        )
    if "/" in name:
        last = name.rsplit("/", 1)[1].lower()
        if _is_number(last) or last in _STAGE_WORDS or last in _RESERVED_LAST:
            # "team/1" or "team/production" would read as a version or stage of model "team",
            # and "team/versions" as a URL of model "team".
            raise InvalidName(
                f"invalid model name {name!r}: the part after '/' must not be a number, a stage, "
                "'latest' or one of " + ", ".join(sorted(_RESERVED_LAST - {"latest"})),
                detail={"name": name},
            )
    return name


def normalize_name(name: str) -> str:
    """The lookup key of a name: lower case, runs of ``-_.`` folded to ``-`` (as PyPI does).

    Two models whose names differ only in case or separators would be confusable, so they are
    the same model.
    """
    return "/".join(_FOLD_RE.sub("-", part).lower() for part in name.split("/"))


def validate_alias(alias: str) -> str:
    """Return ``alias`` if valid: a letter or ``_`` first, then up to 63 of ``A-Za-z0-9_.-``.

    ``latest`` and ``v<digits>`` are refused because references would read them as versions.
    """
    if not isinstance(alias, str) or not _ALIAS_RE.fullmatch(alias):
        raise InvalidName(
            f"invalid alias {alias!r}: start with a letter or '_', then up to 63 letters, "
            "digits, '_', '.' or '-'",
            detail={"alias": alias},
        )
    if alias.lower() == "latest" or re.fullmatch(r"[vV]\d+", alias):
        raise InvalidName(
            f"alias {alias!r} is reserved: it reads as a version", detail={"alias": alias}
        )
    return alias


def validate_key(key: str, *, kind: str = "key") -> str:
    """Return a tag, param or metric key if valid (1–250 of ``A-Za-z0-9_.:/-``)."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY or not _KEY_RE.fullmatch(key):
        raise InvalidName(
            f"invalid {kind} {key!r}: 1-{MAX_KEY} letters, digits, '_', '.', ':', '/' or '-', "
            "not starting with punctuation",
            detail={kind: key},
        )
    return key


def validate_text(value: str, *, kind: str, limit: int = MAX_VALUE, blank: bool = True) -> str:
    """Return a tag/param value or description if it is a string within ``limit``, without NUL.

    With ``blank=False`` an empty or all-whitespace string is refused too.
    """
    if not isinstance(value, str):
        raise InvalidName(f"{kind} must be a string", detail={kind: repr(value)})
    if len(value) > limit:
        raise InvalidName(
            f"{kind} is longer than {limit} characters", detail={"length": len(value)}
        )
    if "\x00" in value:
        raise InvalidName(f"{kind} contains a NUL character", detail={})
    if not blank and not value.strip():
        raise InvalidName(f"{kind} must not be empty", detail={})
    return value


def validate_mlflow_key(key: str | None, *, kind: str = "key") -> str:
    """Return a key as the MLflow door accepts it: looser than ``validate_key``.

    MLflow's clients log tags, params and metrics under keys with spaces and other
    punctuation, and the door keeps them as sent: 1-250 characters, not blank, without NUL,
    newline, carriage return or tab. (Registering a version maps them onto ``validate_key``.)
    """
    text = validate_text("" if key is None else key, kind=kind, limit=MAX_KEY, blank=False)
    if any(ch in text for ch in "\n\r\t"):
        raise InvalidName(f"{kind} {text!r} has a control character", detail={"key": text})
    return text


def parse_nonnegative(value: object, *, kind: str) -> int | None:
    """An integer from 0 below 2**62 given as a number or digits (MLflow's timestamps, steps).

    ``None`` and ``""`` are ``None`` (not given); booleans are refused.
    """
    if value is None or value == "":
        return None
    try:
        if isinstance(value, bool):
            raise TypeError(value)
        number: int = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        raise InvalidInput(f"{kind} must be an integer", detail={}) from None
    if not 0 <= number < MAX_NONNEGATIVE:
        raise InvalidInput(f"{kind} is out of range", detail={})
    return number


def validate_metric(key: str, value: object) -> float:
    """Return a metric's value as a finite float."""
    validate_key(key, kind="metric")
    if isinstance(value, bool):
        raise InvalidName(f"metric {key!r} must be a number", detail={"metric": key})
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise InvalidName(
            f"metric {key!r} must be a number, got {value!r}", detail={"metric": key}
        ) from None
    if not math.isfinite(number):
        raise InvalidName(f"metric {key!r} must be finite, got {value!r}", detail={"metric": key})
    return number


@dataclass(frozen=True, slots=True)
class Semver:
    """A semantic version ``MAJOR.MINOR.PATCH[-PRE][+BUILD]`` with a sortable key."""

    major: int
    minor: int
    patch: int
    pre: str | None = None
    build: str | None = None

    @classmethod
    def parse(cls, text: str) -> Semver:
        """Parse ``text`` strictly (semver.org 2.0), or raise ``InvalidName``."""
        match = _SEMVER_RE.fullmatch(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise InvalidName(
                f"invalid semantic version {text!r}: expected MAJOR.MINOR.PATCH, e.g. 1.4.0",
                detail={"semver": text},
            )
        major, minor, patch, pre, build = match.groups()
        parts = (int(major), int(minor), int(patch))
        if max(parts) > MAX_SEMVER_PART or len(text) > 128:
            raise InvalidName(
                f"semantic version {text[:40]!r}… is too large (parts up to {MAX_SEMVER_PART}, "
                "128 characters)",
                detail={"semver": text[:128]},
            )
        return cls(*parts, pre, build)

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.pre:
            text += f"-{self.pre}"
        if self.build:
            text += f"+{self.build}"
        return text

    def bump(self, part: str) -> Semver:
        """The next release after this one: ``part`` is ``major``, ``minor`` or ``patch``."""
        if part == "major":
            return Semver(self.major + 1, 0, 0)
        if part == "minor":
            return Semver(self.major, self.minor + 1, 0)
        if part == "patch":
            return Semver(self.major, self.minor, self.patch + 1)
        raise InvalidName(f"--bump takes major, minor or patch, not {part!r}", detail={})

    def sort_key(self) -> str:
        """A string whose order is semver precedence (release sorts after its pre-releases).

        Pre-release identifiers are compared as text, which is exact for the common
        ``rc1``/``beta.2`` forms and close enough for ordering listings.
        """
        base = f"{self.major:010d}.{self.minor:010d}.{self.patch:010d}"
        return base + ("~" if self.pre is None else f"-{self.pre}")


@dataclass(frozen=True, slots=True)
class Ref:
    """A parsed reference to one version of a model: exactly one selector is set.

    ``version`` (a number), ``alias``, ``stage`` or ``latest``; ``name`` alone (all selectors
    empty) names the model itself.
    """

    name: str
    version: int | None = None
    alias: str | None = None
    stage: Stage | None = None
    latest: bool = False

    def __post_init__(self) -> None:
        if self.version is not None and (
            isinstance(self.version, bool)
            or not isinstance(self.version, int)
            or not 1 <= self.version <= MAX_VERSION
        ):
            raise InvalidReference(
                f"version numbers run from 1 to {MAX_VERSION}, got {self.version!r}",
                detail={"version": repr(self.version)},
            )

    @property
    def is_model(self) -> bool:
        """True when the reference names the model, not one of its versions."""
        return (
            self.version is None and self.alias is None and self.stage is None and not self.latest
        )

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        if self.stage is not None:
            return f"{self.name}/{self.stage.value}"
        if self.latest:
            return f"{self.name}/latest"
        return self.name


def _selector(name: str, selector: str, text: str) -> Ref:
    if _is_number(selector):
        number = int(selector)
        if not 1 <= number <= MAX_VERSION:
            raise InvalidReference(
                f"version numbers run from 1 to {MAX_VERSION}: {text!r}", detail={"ref": text}
            )
        return Ref(validate_model_name(name), version=number)
    if selector.lower() == "latest":
        return Ref(validate_model_name(name), latest=True)
    if selector.lower() in _STAGE_WORDS:
        return Ref(validate_model_name(name), stage=Stage.parse(selector))
    raise InvalidReference(
        f"cannot read {text!r}: after the model name give a version number, a stage "
        "(staging, production, archived, none) or 'latest'",
        detail={"ref": text},
    )


def parse_ref(text: str, *, allow_model: bool = True) -> Ref:
    """Parse a reference in any form of DESIGN.md §3.

    Accepted: ``models:/NAME/VERSION``, ``models:/NAME/STAGE``, ``models:/NAME/latest``,
    ``models:/NAME@ALIAS``, and the short forms ``NAME:VERSION``, ``NAME@ALIAS``,
    ``NAME/STAGE``, ``NAME/latest``; with ``allow_model`` also a bare ``NAME``.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidReference("a reference must not be empty", detail={"ref": text})
    if "\x00" in text or len(text) > 512:
        raise InvalidReference("reference is too long or contains NUL", detail={})
    ref_text = text.strip()
    uri = ref_text.startswith("models:/")
    body = ref_text[len("models:/") :] if uri else ref_text
    try:
        if "@" in body:
            name, _, alias = body.partition("@")
            return Ref(validate_model_name(name), alias=validate_alias(alias))
        if ":" in body:
            name, _, selector = body.partition(":")
            if not (_is_number(selector) or selector.lower() == "latest"):
                raise InvalidReference(
                    f"cannot read {text!r}: NAME:VERSION takes a version number",
                    detail={"ref": text},
                )
            return _selector(name, selector, text)
        head, sep, last = body.rpartition("/")
        if sep and (_is_number(last) or last.lower() in _STAGE_WORDS or last.lower() == "latest"):
            return _selector(head, last, text)
        if uri:
            raise InvalidReference(
                f"{text!r} names no version: use models:/NAME/VERSION, /STAGE, /latest "
                "or models:/NAME@ALIAS",
                detail={"ref": text},
            )
        ref = Ref(validate_model_name(body))
    except InvalidName as exc:
        raise InvalidReference(
            f"invalid reference {text!r}: {exc.message}", detail=exc.detail
        ) from None
    if not allow_model:
        raise InvalidReference(
            f"{text!r} names a model, not a version: add :VERSION, @ALIAS, /STAGE or /latest",
            detail={"ref": text},
        )
    return ref


def parse_dataset(text: str) -> tuple[str, str]:
    """Parse ``NAME@VERSION_OR_DIGEST`` into ``(name, ref)``."""
    name, sep, ref = text.rpartition("@") if isinstance(text, str) else ("", "", "")
    if (
        not sep
        or not _DATASET_RE.fullmatch(name)
        or not ref
        or len(ref) > 256
        or not ref.isprintable()
    ):
        raise InvalidName(
            f"invalid dataset {text!r}: expected NAME@VERSION_OR_DIGEST, e.g. "
            "transactions@2024-06 or features@sha256:…",
            detail={"dataset": text},
        )
    return name, ref


def parse_parent(text: str) -> tuple[str, int]:
    """Parse a parent ``NAME:VERSION`` into ``(name, number)``."""
    ref = parse_ref(text, allow_model=False)
    if ref.version is None:
        raise InvalidReference(
            f"a parent is NAME:VERSION with a number, got {text!r}", detail={"parent": text}
        )
    return ref.name, ref.version


def parse_instant(text: str) -> datetime:
    """An ISO-8601 moment (``2026-11-01T12:00Z``) in UTC; a time without a zone is read as UTC."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidReference("a moment is an ISO time such as 2026-11-01T12:00Z", detail={})
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        # Inside the try: a zone offset can push year 1 or 9999 out of range.
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidReference(
            f"{text!r} is not an ISO time such as 2026-11-01T12:00Z", detail={"at": text}
        ) from None


# --------------------------------------------------------------------------------------------
# Targets: where a promotion, a rollback or a policy rule moves a version


@dataclass(frozen=True, slots=True)
class Target:
    """A stage or an alias (written ``@alias``) of a model: exactly one of the two is set.

    Text is read once where it enters (``Target.parse``); ``str(target)`` is the canonical
    text promotions and policy rules store (``production``, ``@champion``).
    """

    stage: Stage | None = None
    alias: str | None = None

    def __post_init__(self) -> None:
        # Programming errors, not user input: text goes through ``parse``.
        if (self.stage is None) == (self.alias is None):
            raise TypeError("a Target has a stage or an alias, not both or neither")
        if self.stage is not None and not isinstance(self.stage, Stage):
            raise TypeError(f"a Target's stage is a Stage, not {self.stage!r}")
        if self.alias is not None:
            validate_alias(self.alias)

    @classmethod
    def parse(cls, text: str | Target) -> Target:
        """Read ``@alias`` or a stage name (case-insensitively, ``development`` is ``none``).

        A ``Target`` comes back as it is, so a function may take either.
        """
        if isinstance(text, Target):
            return text
        if not isinstance(text, str) or not text.strip():
            raise InvalidReference("a target is a stage or @alias", detail={"target": text})
        text = text.strip()
        if text.startswith("@"):
            return cls(alias=text[1:])
        return cls(stage=Stage.parse(text))

    @property
    def is_alias(self) -> bool:
        """True for ``@alias``, false for a stage."""
        return self.alias is not None

    @property
    def label(self) -> str:
        """The canonical text: the stage's value, or ``@alias``."""
        return f"@{self.alias}" if self.alias is not None else str(self.stage)

    def on(self, name: str) -> str:
        """The reference naming this target of model ``name``: ``NAME@alias`` or ``NAME/stage``."""
        return f"{name}{self.label}" if self.is_alias else f"{name}/{self.label}"

    def __str__(self) -> str:
        return self.label


def parse_target(text: str) -> str:
    """The canonical text of a promotion target: a stage value, or ``@alias``."""
    return Target.parse(text).label
