"""The server's logs: one access line per request (``AccessLog``), as text or JSON.

An access line names the method, the path (the query string too, with the values of keys
that look like credentials replaced by ``REDACTED``), the status, the time taken, the bytes
of the answer, the actor (the name a token or laptop mode authenticated as; never a token or
an ``Authorization`` header) and the client's address. ``logging_config`` is the
configuration ``modelreg server`` gives uvicorn (settings ``log_level``, ``log_format``): it
replaces uvicorn's own access log with this one and sends every line to standard error.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import threading
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


# What an access line's record holds that ``LogRecord.__init__`` would look up per line (file
# and module names, thread and process names): fixed, so any %-style format still finds them.
_FIXED_ATTRIBUTES: dict[str, Any] = {
    "name": LOGGER,
    "levelno": logging.INFO,
    "levelname": "INFO",
    "msg": "%s %s %s",
    "pathname": __file__,
    "filename": "access_log.py",
    "module": "access_log",
    "lineno": 0,
    "funcName": "AccessLog",
    "exc_info": None,
    "exc_text": None,
    "stack_info": None,
    "threadName": "",
    "processName": "",
    "relativeCreated": 0.0,
}


def _uncached(raw: bytes, query: bytes) -> tuple[str, str]:
    return _clean(raw.decode("latin-1")), redact_query(query) if query else ""


# Clients repeat the same few requests (a service resolving its model): short targets are
# cleaned once. Long ones are not kept, so the cache stays small whatever clients send.
_target = functools.lru_cache(maxsize=1024)(_uncached)


class LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A ``StreamHandler`` that writes each line with one call and no separate flush.

    ``sys.stderr`` is line-buffered, so the write sends the line; ``StreamHandler`` would
    take its lock a second time per line to flush an empty buffer.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = self.stream
            stream.write(self.format(record) + "\n")
            if not getattr(stream, "line_buffering", False):
                stream.flush()  # a file or pipe that is not line-buffered: no line may wait
        except Exception:
            self.handleError(record)


class _AccessRecord(logging.LogRecord):
    """An access line's record, made without ``LogRecord.__init__`` (a third of a line's cost)."""

    def __init__(self, fields: dict[str, Any]) -> None:  # no super().__init__: see above
        now = time.time()
        self.__dict__.update(_FIXED_ATTRIBUTES)
        self.args = (fields["method"], fields["path"], fields["status"] or "-")
        self.created = now
        self.msecs = (now - int(now)) * 1000
        self.thread = threading.get_ident()
        self.process = os.getpid()
        self.access = fields


class AccessLog:
    """Log one line per HTTP request once its answer is sent (or the client is gone).

    A plain ASGI layer, the outermost one added: it sees every answer, the ones the guards
    send on their own included (and logs 500 for an exception, which Starlette's
    ``ServerErrorMiddleware`` outside it answers). It costs a closure and two clock reads
    per request, plus the line, and nothing more when its logger is off (``--log-level
    warning``).
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
        except Exception:
            # Starlette's ServerErrorMiddleware, outside every added layer, answers it.
            status = status or 500
            raise
        finally:
            ms = (time.perf_counter() - start) * 1000
            self._log(scope, status, size, ms, actor[-1] if actor else None)

    def _log(self, scope: Scope, status: int, size: int, ms: float, actor: str | None) -> None:
        raw: bytes = scope.get("raw_path") or scope["path"].encode()
        query: bytes = scope.get("query_string") or b""
        path, logged_query = (
            _target(raw, query) if len(raw) + len(query) <= 512 else _uncached(raw, query)
        )
        client = scope.get("client")
        fields = {
            "method": scope["method"],
            "path": path,
            "query": logged_query,
            "status": status or None,  # None: no answer was sent (the client left)
            "duration_ms": round(ms, 3),
            "bytes": size,
            "actor": actor,
            "client": client[0] if client else None,
        }
        self.logger.handle(_AccessRecord(fields))


_second: list[Any] = [None, ""]  # the last whole second formatted, and its text


def _timestamp(record: logging.LogRecord) -> str:
    # strftime once a second, not once a line: it was a third of a text line's cost.
    whole = int(record.created)
    if _second[0] != whole:
        _second[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _second[0] = whole
    return f"{_second[1]}.{int(record.msecs):03d}Z"


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


# One encoder for every line: json.dumps with options builds a new one per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)


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
        return _ENCODER.encode(entry)


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
                "class": f"{__name__}.LineHandler",
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
