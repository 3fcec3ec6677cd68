"""The one exception tree of modelreg, shared by the service layer, the client and the CLI.

Every error carries a stable snake_case ``code`` (the REST envelope's ``error.code``, from which a
remote client rebuilds the same class) and the CLI exit code of DESIGN.md §5::

    RegistryError                       code=registry_error      exit 1
    ├── InvalidInput                    code=invalid_input       exit 1
    │   ├── InvalidName                 code=invalid_name
    │   ├── InvalidReference            code=invalid_reference
    │   ├── InvalidPath                 code=invalid_path
    │   ├── InvalidQuery                code=invalid_query       (.position)
    │   ├── DigestMismatch              code=digest_mismatch     (an upload's bytes != its digest)
    │   ├── SignatureInvalid            code=signature_invalid   (a signature does not verify)
    │   └── BodyTooLarge                code=body_too_large      (modelreg serve: over --max-body)
    ├── NotFound                        code=not_found           exit 2
    │   ├── ModelNotFound               code=model_not_found
    │   ├── VersionNotFound             code=version_not_found
    │   ├── AliasNotFound               code=alias_not_found
    │   └── BlobNotFound                code=blob_not_found
    ├── PolicyViolation                 code=policy_violation    exit 3 (.failed_criteria)
    ├── ApprovalRequired                code=approval_required   exit 4 (.request_id)
    ├── PermissionDenied                code=permission_denied   exit 5
    │   ├── Unauthenticated             code=unauthenticated
    │   └── UnsafeModel                 code=unsafe_model        (load refuses a pickle-family
    │                                                              model not trusted nor scanned)
    ├── Conflict                        code=conflict            exit 6
    │   ├── AlreadyExists               code=already_exists
    │   ├── Immutable                   code=immutable
    │   └── ConcurrentChange            code=concurrent_change
    ├── IntegrityFailure                code=integrity_failure   exit 1 (stored bytes are not what
    │                                                                   the manifest promised)
    ├── StorageFailure                  code=storage_failure     exit 1 (disk full, unwritable
    │                                                                   folder, store unreachable)
    ├── ModelFailed                     code=model_error         exit 1 (the served model raised)
    ├── Unavailable                     code=unavailable         exit 7 (no answer from the server)
    │   └── ImportStopped               code=import_stopped      exit 1 (an import's source broke
    │                                                                   a bound or its time limit)
    ├── TooManyUploads                  code=too_many_uploads    exit 1 (.retry_after; 429)
    ├── BodyTimeout                     code=body_timeout        exit 1 (a request body stalled;
    │                                                                   408)
    └── SchemaOutdated                  code=schema_outdated     exit 1 (run `modelreg db upgrade`)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "OUTCOMES",
    "AliasNotFound",
    "AlreadyExists",
    "ApprovalRequired",
    "BlobNotFound",
    "BodyTimeout",
    "BodyTooLarge",
    "ConcurrentChange",
    "Conflict",
    "DigestMismatch",
    "Immutable",
    "ImportStopped",
    "IntegrityFailure",
    "InvalidInput",
    "InvalidName",
    "InvalidPath",
    "InvalidQuery",
    "InvalidReference",
    "ModelFailed",
    "ModelNotFound",
    "NotFound",
    "Outcome",
    "PermissionDenied",
    "PolicyViolation",
    "RegistryError",
    "SchemaOutdated",
    "SignatureInvalid",
    "StorageFailure",
    "TooManyUploads",
    "Unauthenticated",
    "Unavailable",
    "UnsafeModel",
    "VersionNotFound",
    "applied_or_raise",
    "criteria_lines",
    "error_class_for_code",
    "outcome",
    "rebuild",
    "settle",
]


class RegistryError(Exception):
    """Base of every error modelreg raises on purpose.

    Attributes:
        message: a sentence for a person.
        detail: structured data for a program (what failed, with which values).
    """

    code: ClassVar[str] = "registry_error"
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, *, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail: dict[str, Any] = dict(detail or {})

    def to_dict(self) -> dict[str, Any]:
        """The error as the JSON envelope's ``error`` object."""
        return {"code": self.code, "message": self.message, "detail": self.detail}


class InvalidInput(RegistryError):
    """The request itself is wrong: nothing was changed."""

    code = "invalid_input"


class InvalidName(InvalidInput):
    """A model, alias, tag or key name breaks the naming rules."""

    code = "invalid_name"


class InvalidReference(InvalidInput):
    """A version reference (``NAME:3``, ``NAME@alias``, ``models:/…``) cannot be parsed."""

    code = "invalid_reference"


class InvalidPath(InvalidInput):
    """A manifest path is absolute, escapes the version, or is not normalised."""

    code = "invalid_path"


class InvalidQuery(InvalidInput):
    """A search expression has a syntax or field error; ``position`` is its 0-based offset."""

    code = "invalid_query"

    def __init__(self, message: str, *, position: int, detail: dict[str, Any] | None = None):
        super().__init__(message, detail={"position": position, **(detail or {})})
        self.position = position


class DigestMismatch(InvalidInput):
    """Uploaded bytes do not hash to the digest the client declared."""

    code = "digest_mismatch"


class SignatureInvalid(InvalidInput):
    """A version signature does not verify: bad bundle, wrong key, or files that differ."""

    code = "signature_invalid"


class BodyTooLarge(InvalidInput):
    """A request body over the server's limit (``modelreg serve --max-body``)."""

    code = "body_too_large"


class ModelFailed(RegistryError):
    """The served model raised while predicting (a 500 that the serve guard counts)."""

    code = "model_error"


class NotFound(RegistryError):
    """The thing named does not exist."""

    code = "not_found"
    exit_code = 2


class ModelNotFound(NotFound):
    """No registered model has this name."""

    code = "model_not_found"


class VersionNotFound(NotFound):
    """The model exists but no version matches the reference."""

    code = "version_not_found"


class AliasNotFound(NotFound):
    """The model has no such alias."""

    code = "alias_not_found"


class BlobNotFound(NotFound):
    """The artifact store has no blob with this digest."""

    code = "blob_not_found"


class PromotionNotFound(NotFound):
    """No promotion request has that id."""

    code = "promotion_not_found"


class PolicyViolation(RegistryError):
    """A policy gate refused the action; ``failed_criteria`` lists each failed check."""

    code = "policy_violation"
    exit_code = 3

    def __init__(
        self,
        message: str,
        *,
        failed_criteria: list[dict[str, Any]] | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        criteria = list(failed_criteria or [])
        super().__init__(message, detail={"failed_criteria": criteria, **(detail or {})})
        self.failed_criteria = criteria


class ApprovalRequired(RegistryError):
    """The action was recorded as a request that now waits for approvals."""

    code = "approval_required"
    exit_code = 4


class PermissionDenied(RegistryError):
    """The actor is known but may not do this."""

    code = "permission_denied"
    exit_code = 5


class Unauthenticated(PermissionDenied):
    """No valid credentials were presented."""

    code = "unauthenticated"


class UnsafeModel(PermissionDenied):
    """Loading would unpickle a model that is neither trusted (``trust=True``) nor scanned clean."""

    code = "unsafe_model"


class Conflict(RegistryError):
    """The action clashes with the registry's current state."""

    code = "conflict"
    exit_code = 6


class AlreadyExists(Conflict):
    """Something with this identity exists already."""

    code = "already_exists"


class Immutable(Conflict):
    """The target may not change (a ready version's artifacts, params, metrics, lineage)."""

    code = "immutable"


class ConcurrentChange(Conflict):
    """Someone else changed the target first (compare-and-set failed)."""

    code = "concurrent_change"


class IntegrityFailure(RegistryError):
    """Stored bytes do not match the manifest: the registry refuses to hand them out."""

    code = "integrity_failure"


class StorageFailure(RegistryError):
    """Reading or writing bytes failed (disk full, permissions); nothing was half-written."""

    code = "storage_failure"


class Unavailable(RegistryError):
    """The registry server cannot be reached (network, DNS, TLS, timeout).

    Its own exit code (7) lets a script tell "try again later" from a refusal.
    """

    code = "unavailable"
    exit_code = 7


class ImportStopped(Unavailable):
    """An import stopped: its source broke a bound (pages, bytes, time) or is not MLflow.

    As fatal to the run as an unreachable source, but not a network fault that waiting fixes,
    so it keeps exit 1.
    """

    code = "import_stopped"
    exit_code = 1


class TooManyUploads(RegistryError):
    """The caller already has as many uploads running as the server allows one principal.

    Nothing was read or stored; ``retry_after`` (seconds) says when to try again.
    """

    code = "too_many_uploads"

    def __init__(self, message: str, *, retry_after: int, detail: dict[str, Any] | None = None):
        super().__init__(message, detail={"retry_after": retry_after, **(detail or {})})
        self.retry_after = retry_after


class BodyTimeout(RegistryError):
    """A request's body stopped arriving for longer than the server waits; nothing was stored."""

    code = "body_timeout"


class SchemaOutdated(RegistryError):
    """The metadata database needs ``modelreg db upgrade`` (or a newer modelreg)."""

    code = "schema_outdated"


def _all_subclasses(cls: type[RegistryError]) -> list[type[RegistryError]]:
    found: list[type[RegistryError]] = [cls]
    for sub in cls.__subclasses__():
        found.extend(_all_subclasses(sub))
    return found


def _criteria_text(criteria: list[dict[str, Any]]) -> str:
    parts = []
    for item in criteria:
        message = item.get("message") or ""
        parts.append(
            f"{item.get('criterion')} ({message})" if message else str(item.get("criterion"))
        )
    return "; ".join(parts)


def refused(promotion: Mapping[str, Any]) -> PolicyViolation:
    """The error for a refused promotion request, naming every failed criterion."""
    criteria = list(promotion.get("failed_criteria") or [])
    # The answer says which kind of target it is (``to_alias``/``to_stage``): no text to parse.
    alias = promotion.get("to_alias")
    where = (
        f"{promotion.get('name')}@{alias}"
        if alias
        else f"{promotion.get('name')}/{promotion.get('target', '')}"
    )
    request = f" (request #{promotion['id']})" if promotion.get("id") else ""
    return PolicyViolation(
        f"version {promotion.get('version')} may not enter {where}{request}: "
        + _criteria_text(criteria),
        failed_criteria=criteria,
        detail={"promotion": dict(promotion)},
    )


def awaiting(promotion: Mapping[str, Any]) -> ApprovalRequired:
    """The error for a move that became a request waiting for approvals."""
    # An approval whose approver has since lost the role is on record but does not count.
    have = sum(1 for a in promotion.get("approvals") or [] if a.get("counts") is not False)
    return ApprovalRequired(
        f"promotion #{promotion.get('id')} of version {promotion.get('version')} to "
        f"{promotion.get('target')} waits for approval ({have} of "
        f"{promotion.get('approvals_required')}); approve it with: modelreg approve "
        f"{promotion.get('id')}",
        detail={"request_id": promotion.get("id"), "promotion": dict(promotion)},
    )


def criteria_lines(criteria: list[dict[str, Any]]) -> list[str]:
    """One line per gate, ``✗ criterion: message`` (``✓`` for a passed one).

    The one printer of failed criteria for every door that shows them to a person (the CLI's
    refusals and dry runs), as ``_criteria_text`` is for the error's message.
    """
    lines = []
    for item in criteria:
        message = f": {item['message']}" if item.get("message") else ""
        mark = "✓" if item.get("passed") else "✗"
        lines.append(f"{mark} {item.get('criterion')}{message}")
    return lines


@dataclass(frozen=True, slots=True)
class Outcome:
    """How every door answers one outcome of a promotion request (or protected-alias move).

    ``status`` is the REST answer's HTTP status; ``error`` builds the exception the outcome
    is, which a client raises when it ``raises`` (always: a refusal), or when the verb answers
    a version rather than the request (``set_alias`` on a protected alias that now waits for
    approvals); ``exit_code`` is the CLI's.
    """

    name: str
    status: int
    exit_code: int
    error: Callable[[Mapping[str, Any]], RegistryError] | None = None
    raises: bool = False


# THE table: each outcome's HTTP status, exception and exit code. A dry run changes nothing and
# raises nothing: it answers 200 and exits with the code of the state it would reach.
OUTCOMES: dict[str, Outcome] = {
    "applied": Outcome("applied", 200, 0),
    "pending": Outcome("pending", 202, ApprovalRequired.exit_code, awaiting),
    "refused": Outcome("refused", 422, PolicyViolation.exit_code, refused, raises=True),
    "rejected": Outcome("rejected", 200, 0),
    "dry_run": Outcome("dry_run", 200, 0),
}


def outcome(state: str, dry_run: bool = False) -> Outcome:
    """The row of ``OUTCOMES`` for a request in ``state`` (a dry run: 200, nothing raised)."""
    row = OUTCOMES.get(state, OUTCOMES["applied"])
    if dry_run:
        return Outcome("dry_run", OUTCOMES["dry_run"].status, row.exit_code)
    return row


def settle(promotion: Mapping[str, Any]) -> Outcome:
    """Raise the error a promotion request's outcome is (a refusal); else return its row.

    Called once its transaction committed (a refusal is stored before it is raised).
    """
    row = outcome(str(promotion["state"]), bool(promotion.get("dry_run")))
    if row.raises and row.error is not None:
        raise row.error(promotion)
    return row


def applied_or_raise(status: int, promotion: Mapping[str, Any]) -> None:
    """For verbs that answer a version: raise unless the move was applied (``status`` 200).

    A protected alias's move that waits for approvals answers 202 with the request, which
    such a verb raises as ``ApprovalRequired`` (refusals were raised already, as 422).
    """
    row = next((r for r in OUTCOMES.values() if r.status == status and r.error), None)
    if row is not None and row.error is not None:
        raise row.error(promotion)


def rebuild(code: str, message: str, detail: dict[str, Any] | None = None) -> RegistryError:
    """The exception an error envelope describes, as the class that raised it on the server.

    Subclasses with extra attributes (``InvalidQuery.position``,
    ``PolicyViolation.failed_criteria``) get them back from ``detail``.
    """
    cls = error_class_for_code(code)
    exc = cls.__new__(cls)
    RegistryError.__init__(exc, message, detail=detail)
    if isinstance(exc, InvalidQuery):
        exc.position = int(exc.detail.get("position", 0))
    if isinstance(exc, PolicyViolation):
        exc.failed_criteria = list(exc.detail.get("failed_criteria", []))
    if isinstance(exc, TooManyUploads):
        exc.retry_after = int(exc.detail.get("retry_after", 1))
    return exc


def error_class_for_code(code: str) -> type[RegistryError]:
    """The exception class for an envelope's ``code`` (``RegistryError`` when unknown)."""
    for cls in _all_subclasses(RegistryError):
        if cls.code == code:
            return cls
    return RegistryError
