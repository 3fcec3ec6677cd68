"""THE map from ``RegistryError`` classes to HTTP statuses, and the one JSON error envelope."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from modelreg import errors
from modelreg.api.mlflow import _common as mlflow_common
from modelreg.api.schemas import ErrorEnvelope, PromotionRead

# Most specific first: the first class an error is an instance of decides its status.
STATUS: list[tuple[type[errors.RegistryError], int]] = [
    (errors.Unauthenticated, 401),
    (errors.PermissionDenied, 403),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.PolicyViolation, 422),
    (errors.ApprovalRequired, 202),
    (errors.InvalidInput, 400),
    (errors.BodyTimeout, 408),
    (errors.TooManyUploads, 429),
    (errors.IntegrityFailure, 500),
    (errors.StorageFailure, 503),
    (errors.SchemaOutdated, 503),
    (errors.RegistryError, 500),
]


def status_for(exc: errors.RegistryError) -> int:
    """The HTTP status of a registry error."""
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    raise AssertionError(exc)  # pragma: no cover - RegistryError is the last entry


def envelope(
    code: str, message: str, detail: Any = None, status: int = 400, *, path: str = ""
) -> JSONResponse:
    """``{"error": {"code", "message", "detail"}}`` with ``status`` (MLflow's body on its paths)."""
    if mlflow_common.is_mlflow_path(path):
        return mlflow_common.answer_status(status, message)
    body = {"error": {"code": code, "message": message, "detail": detail or {}}}
    return JSONResponse(body, status_code=status)


# The statuses ``promotion_answer`` adds to a route's 200, for its OpenAPI document: the rows of
# ``errors.OUTCOMES`` that are not 200.
_OUTCOME_DOCS: dict[str, dict[str, Any]] = {
    "pending": {"model": PromotionRead, "description": "Stored; waits for approvals"},
    "refused": {
        "model": ErrorEnvelope,
        "description": "Refused by a policy gate (`policy_violation`); the refusal is stored "
        "and `detail` holds `failed_criteria` and the `promotion`",
    },
}
PROMOTION_ANSWERS: dict[int | str, dict[str, Any]] = {
    errors.OUTCOMES[name].status: doc for name, doc in _OUTCOME_DOCS.items()
}


def promotion_answer(promotion: dict[str, Any]) -> Any:
    """The answer for a promotion request, once its transaction has committed.

    Its status is the outcome's in ``errors.OUTCOMES``: 202 with the request while it waits
    for approvals, 200 otherwise (applied, a dry run's outcome); a refusal (422) was raised by
    the use-case already (``errors.settle``).
    """
    status = errors.settle(promotion).status
    if status != 200:
        return JSONResponse(promotion, status_code=status)
    return promotion


def _ui(request: Request) -> bool:
    from modelreg.api.ui import is_ui_path

    return is_ui_path(request.url.path)


async def registry_error(request: Request, exc: Exception) -> Response:
    """Answer a ``RegistryError`` raised anywhere below a route (a page on UI paths)."""
    assert isinstance(exc, errors.RegistryError)
    if _ui(request):
        from modelreg.api.ui import errors as ui_errors

        return ui_errors.registry_error(request, exc, status_for(exc))
    if mlflow_common.is_mlflow_path(request.url.path):
        response = mlflow_common.answer_registry_error(exc)
    else:
        response = envelope(exc.code, exc.message, exc.detail, status_for(exc))
    if isinstance(exc, errors.TooManyUploads):
        response.headers["retry-after"] = str(exc.retry_after)
    return response


async def validation_error(request: Request, exc: Exception) -> Response:
    """Answer a request that does not match the schema: 400 ``invalid_input``."""
    assert isinstance(exc, RequestValidationError)
    problems = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
        for e in exc.errors()
    ]
    first = problems[0] if problems else {"loc": [], "msg": "invalid request"}
    message = f"{'.'.join(first['loc'])}: {first['msg']}"
    if _ui(request):
        from modelreg.api.ui import errors as ui_errors

        return ui_errors.error_page(request, 400, "invalid_input", message)
    if mlflow_common.is_mlflow_path(request.url.path):
        return mlflow_common.mlflow_error("INVALID_PARAMETER_VALUE", message, 400)
    return envelope("invalid_input", message, {"problems": problems}, 400)


async def http_error(request: Request, exc: Exception) -> Response:
    """Answer routing errors (unknown path, wrong method) in the same envelope."""
    assert isinstance(exc, HTTPException)
    if mlflow_common.is_mlflow_path(request.url.path):
        return mlflow_common.answer_status(exc.status_code, str(exc.detail))
    code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
        exc.status_code, "http_error"
    )
    if _ui(request):
        from modelreg.api.ui import errors as ui_errors

        message = "there is no such page" if exc.status_code == 404 else str(exc.detail)
        return ui_errors.bare_page(exc.status_code, code, message)
    return envelope(code, str(exc.detail), None, exc.status_code)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    """A bug: still a JSON answer in the route family's format (the traceback goes to the log).

    Without it the client gets plain text, and MLflow's client a body it cannot parse.
    """
    if _ui(request):
        from modelreg.api.ui import errors as ui_errors

        return ui_errors.bare_page(500, "internal_error", "internal server error")
    return envelope("internal_error", "internal server error", None, 500, path=request.url.path)
