"""The server's logs: one access line per request (``AccessLog``), as text or JSON.

An access line names the method, the path (the query string too, with the values of keys
that look like credentials replaced by ``REDACTED``), the status, the time taken, the bytes
of the answer, the actor (the name a token or laptop mode authenticated as; never a token or
an ``Authorization`` header) and the client's address. ``logging_config`` is the
configuration ``modelreg server`` gives uvicorn (settings ``log_level``, ``log_format``): it
replaces uvicorn's own access log with this one and sends every line to standard error.
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOGGER = "modelreg.access"
LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
# Where routes note who the request authenticated as (``note_actor``); the name only.
_ACTOR = "modelreg.actor"
# Query keys whose values are credentials somewhere (OAuth, signed URLs, API keys): no route
# of modelreg takes one, but a client may send one anyway, and logs outlive requests.
_SECRET_KEY = re.compile(
    rb"(?:^|&)[^=&]*(?:token|passw|secret|api.?key|signature|sig|auth|credential|session)[^=&]*=",
    re.IGNORECASE,
)
_SECRET_NAME = re.compile(
    r"token|passw|secret|api.?key|signature|sig|auth|credential|session", re.IGNORECASE
)
# Logged paths are what the client sent (still percent-encoded); anything that could break a
# line or a field (controls, spaces, quotes, non-ASCII) is percent-encoded on top.
_UNSAFE = re.compile(r'[^\x21-\x7e]|["\\]')
MAX_QUERY = 1024  # characters of the query string kept in a line


def note_actor(scope: Scope, name: str) -> None:
    """Record the name a request authenticated as, for its access line."""
    holder: list[str] | None = scope.get(_ACTOR)
    if holder is not None:
        holder.append(name)


def _clean(text: str) -> str:
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m[0].encode("utf-8")), text)


def redact_query(query: bytes) -> str:
    """The query string as logged: secret-looking values replaced, cut at ``MAX_QUERY``."""
    if _SECRET_KEY.search(query) is not None:
        parts = []
        for part in query.split(b"&"):
            key, eq, _value = part.partition(b"=")
            secret = eq and _SECRET_NAME.search(key.decode("latin-1"))
            parts.append(key + b"=REDACTED" if secret else part)
        query = b"&".join(parts)
    text = _clean(query.decode("latin-1"))
    return text if len(text) <= MAX_QUERY else text[:MAX_QUERY] + "…"


class AccessLog:
    """Log one line per HTTP request once its answer is sent (or the client is gone).

    A plain ASGI layer, outermost: it sees every answer, the ones the guards send on their
    own included. It costs a closure and two clock reads per request, and nothing at all
    when its logger is off (``--log-level warning``).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.logger = logging.getLogger(LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.logger.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0
        size = 0
        # A holder, not a key of its own: layers below may pass on a shallow copy of the scope.
        actor: list[str] = []
        scope[_ACTOR] = actor

        async def counted(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            elif message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counted)
        finally:
            ms = (time.perf_counter() - start) * 1000
            self._log(scope, status, size, ms, actor[-1] if actor else None)

    def _log(self, scope: Scope, status: int, size: int, ms: float, actor: str | None) -> None:
        raw = scope.get("raw_path")
        path = _clean(raw.decode("latin-1") if raw else scope["path"])
        query = scope.get("query_string")
        client = scope.get("client")
        fields = {
            "method": scope["method"],
            "path": path,
            "query": redact_query(query) if query else "",
            "status": status or None,  # None: no answer was sent (the client left)
            "duration_ms": round(ms, 3),
            "bytes": size,
            "actor": actor,
            "client": client[0] if client else None,
        }
        # makeRecord, not logger.info: that would also walk the stack for the caller's line.
        record = self.logger.makeRecord(
            LOGGER,
            logging.INFO,
            "",
            0,
            "%s %s %s",
            (fields["method"], path, status or "-"),
            None,
            extra={"access": fields},
        )
        self.logger.handle(record)


def _timestamp(record: logging.LogRecord) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    """``TIME LEVEL …``: access lines as ``CLIENT ACTOR "METHOD TARGET" STATUS MSms BYTESB``."""

    def format(self, record: logging.LogRecord) -> str:
        access: dict[str, Any] | None = getattr(record, "access", None)
        head = f"{_timestamp(record)} {record.levelname}"
        if access is not None:
            query = access["query"]
            target = f"{access['path']}?{query}" if query else access["path"]
            return (
                f"{head} access {access['client'] or '-'} {access['actor'] or '-'} "
                f'"{access["method"]} {target}" {access["status"] or "-"} '
                f"{access['duration_ms']:.3f}ms {access['bytes']}B"
            )
        line = f"{head} {record.name}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``.

    Access lines add ``method``, ``path``, ``query``, ``status``, ``duration_ms``, ``bytes``,
    ``actor`` and ``client``; a traceback, if any, is ``exception``.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        access: dict[str, Any] | None = getattr(record, "access", None)
        if access is not None:
            entry.update(access)
        fields: dict[str, Any] | None = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, separators=(",", ":"), default=str)


def json_line(logger: str, message: str, **fields: Any) -> str:
    """One line as ``JsonFormatter`` writes it, for what is printed before logging starts."""
    record = logging.makeLogRecord(
        {"name": logger, "levelno": logging.INFO, "levelname": "INFO", "msg": message}
    )
    record.__dict__["fields"] = fields
    return JsonFormatter().format(record)


def logging_config(level: str, log_format: str) -> dict[str, Any]:
    """``logging.config.dictConfig`` input for the server: every line to standard error.

    uvicorn's own start-up chatter stays at ``warning`` unless ``level`` is ``debug``; its
    access log is replaced by ``AccessLog``.
    """
    ours = level.upper()
    theirs = "WARNING" if level == "info" else ours
    kind = "JsonFormatter" if log_format == "json" else "TextFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"modelreg": {"()": f"{__name__}.{kind}"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "modelreg",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "modelreg": {"handlers": ["stderr"], "level": ours, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": theirs, "propagate": False},
            "uvicorn.error": {"level": theirs},
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
        },
    }
