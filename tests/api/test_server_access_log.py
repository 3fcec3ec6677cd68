"""The server's access log and start-up line, from a real ``modelreg server`` process.

Issue 19 finding 11: the server logged nothing per request, and its start-up line said "no
users, so loopback clients only" whatever held later. Every request now gets one line
(method, path, status, time, bytes, actor, client) as text or JSON, never with a token in it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import modelreg
from modelreg.api.access_log import redact_query
from server_process import ServerProcess

pytestmark = pytest.mark.slow

TEXT_LINE = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) INFO access (?P<client>\S+) "
    r'(?P<actor>\S+) "(?P<method>[A-Z]+) (?P<target>\S+)" (?P<status>\d{3}|-) '
    r"(?P<ms>\d+\.\d{3})ms (?P<bytes>\d+)B$"
)


def text_entries(output: str) -> list[dict[str, Any]]:
    entries = []
    for line in output.splitlines():
        match = TEXT_LINE.match(line)
        if match:
            entry: dict[str, Any] = match.groupdict()
            path, _, query = entry.pop("target").partition("?")
            entry.update(path=path, query=query, status=int(entry["status"]))
            entry["actor"] = None if entry["actor"] == "-" else entry["actor"]
            entries.append(entry)
    return entries


def json_entries(output: str) -> list[dict[str, Any]]:
    lines = [line for line in output.splitlines() if line.strip()]
    # JSON means every line is one object: the start-up line included.
    parsed = [json.loads(line) for line in lines]
    return [entry for entry in parsed if entry["logger"] == "modelreg.access"]


PARSERS: dict[str, Callable[[str], list[dict[str, Any]]]] = {
    "text": text_entries,
    "json": json_entries,
}


@pytest.fixture
def team(tmp_path: Path) -> tuple[Path, str]:
    """A registry with one model and one user, alice; her token."""
    home = tmp_path / "registry"
    local = modelreg.Registry(home)
    (tmp_path / "model.bin").write_bytes(b"weights")
    local.register("fraud", tmp_path / "model.bin", capture=False)
    local.create_user("alice", role="admin")
    token: str = local.create_token("alice", label="test")["token"]
    local.close()
    return home, token


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_every_request_gets_one_access_line_without_secrets(
    team: tuple[Path, str], log_format: str
) -> None:
    home, token = team
    bogus = "mr_" + "x" * 40
    server = ServerProcess(home, "--log-format", log_format, ready_path="/healthz")
    with server:
        auth = {"authorization": f"Bearer {token}"}
        assert httpx.get(server.url + "/api/v1/models", headers=auth).status_code == 200
        assert httpx.get(server.url + "/api/v1/models/nope", headers=auth).status_code == 404
        refused = httpx.get(
            server.url + "/api/v1/models", headers={"authorization": f"Bearer {bogus}"}
        )
        assert refused.status_code == 401
        # A credential in the query string (no route takes one, a client may send one).
        leaked = httpx.get(
            server.url + "/api/v1/models",
            params={"page_size": "5", "access_token": token, "api_key": bogus},
            headers=auth,
        )
        assert leaked.status_code in (200, 400)
        # The second resolve is answered from memory (api.answers), before routing.
        for _ in range(2):
            resolved = httpx.get(
                server.url + "/api/v1/resolve", params={"uri": "models:/fraud/1"}, headers=auth
            )
            assert resolved.status_code == 200
        # A path that tries to start a second log line.
        assert httpx.get(server.url + "/api/v1/models/a%0Ab", headers=auth).status_code == 404
    output = server.output()
    assert token not in output
    assert bogus not in output
    # No part of the secret either (it is "mr_" + URL-safe base64, which may hold "_").
    secret = token.removeprefix("mr_")
    assert secret[:12] not in output
    assert secret[-12:] not in output
    entries = PARSERS[log_format](output)
    by_path = [(e["method"], e["path"], e["status"], e["actor"]) for e in entries]
    assert ("GET", "/api/v1/models", 200, "alice") in by_path
    assert ("GET", "/api/v1/models/nope", 404, "alice") in by_path
    assert ("GET", "/api/v1/models", 401, None) in by_path
    assert ("GET", "/api/v1/models/a%0Ab", 404) in [row[:3] for row in by_path]
    if log_format == "text":  # nothing a client sends starts a line of its own
        lines = output.splitlines()
        assert lines[0].startswith("modelreg serving")
        assert len(entries) == len(lines) - 1
    query = next(e["query"] for e in entries if e["query"])
    assert "page_size=5" in query
    assert "access_token=REDACTED" in query
    assert "api_key=REDACTED" in query
    for entry in entries:
        assert entry["client"] == "127.0.0.1"
        assert float(entry["ms"] if "ms" in entry else entry["duration_ms"]) >= 0
        assert int(entry["bytes"]) > 0
    resolves = [e for e in entries if e["path"] == "/api/v1/resolve"]
    assert [(e["status"], e["actor"]) for e in resolves] == [(200, "alice"), (200, "alice")]
    # One line per request: the readiness polls, and the seven above.
    assert len([e for e in entries if e["path"] != "/healthz"]) == 7


def test_log_level_warning_keeps_requests_out(team: tuple[Path, str]) -> None:
    home, token = team
    with ServerProcess(home, "--log-level", "warning", ready_path="/healthz") as server:
        auth = {"authorization": f"Bearer {token}"}
        assert httpx.get(server.url + "/api/v1/models", headers=auth).status_code == 200
    assert text_entries(server.output()) == []
    assert "modelreg serving" in server.output()  # the start-up line is not a log level's


def test_start_up_line_says_what_holds_at_start_up(team: tuple[Path, str], tmp_path: Path) -> None:
    home, _token = team
    with ServerProcess(home, ready_path="/healthz") as server:
        pass
    assert "authentication on: 1 user at start-up, tokens required" in server.output()
    assert "no users" not in server.output()

    laptop = tmp_path / "laptop"
    laptop.mkdir()
    with ServerProcess(laptop, "--log-format", "json", ready_path="/healthz") as server:
        pass
    first = json.loads(server.output().splitlines()[0])
    assert first["logger"] == "modelreg.server"
    assert first["users"] == 0
    assert "laptop mode: no users at start-up, so loopback clients only" in first["message"]
    assert "once a user is created, every request needs a token" in first["message"]


def test_the_query_string_keeps_what_helps_and_hides_what_could_be_a_secret() -> None:
    assert redact_query(b"name=fraud&alias=champion") == "name=fraud&alias=champion"
    assert redact_query(b"token=abc&x=1") == "token=REDACTED&x=1"
    assert redact_query(b"a=1&X-Amz-Signature=abc&PASSWORD=p&sessionid=s") == (
        "a=1&X-Amz-Signature=REDACTED&PASSWORD=REDACTED&sessionid=REDACTED"
    )
    assert redact_query(b"q=a%20b&q2=new\nline") == "q=a%20b&q2=new%0Aline"
    assert redact_query(b"q=" + b"x" * 5000).endswith("…")


def test_a_request_that_fails_is_logged_as_the_500_it_gets(tmp_path: Path) -> None:
    """Starlette answers an exception outside every added layer; the line still says 500."""
    import logging

    from modelreg.api.app import create_app
    from modelreg.config import Settings
    from server_process import ThreadedServer, unlogged_server_errors

    (tmp_path / "registry").mkdir()
    app = create_app(Settings.for_home(tmp_path / "registry"))

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("modelreg.access")
    keep, was = Keep(), logger.level
    logger.addHandler(keep)
    logger.setLevel(logging.INFO)
    try:
        with ThreadedServer(app) as server, unlogged_server_errors():
            assert httpx.get(server.url + "/boom").status_code == 500
            assert httpx.get(server.url + "/healthz").status_code == 200
    finally:
        logger.removeHandler(keep)
        logger.setLevel(was)
        app.state.registry.engine.dispose()
    lines = [r.access for r in records]  # type: ignore[attr-defined]
    assert [(a["path"], a["status"]) for a in lines] == [("/boom", 500), ("/healthz", 200)]
    assert lines[0]["actor"] is None
