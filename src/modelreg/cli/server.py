"""``modelreg server``: serve the REST API for a registry folder."""

from __future__ import annotations

import ipaddress
import os

import click

from modelreg.errors import InvalidInput


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def describe_access(*, users: int, allowed_hosts: list[str]) -> str:
    """Who the server answers, for its start-up line (docs/configuration.md, host names).

    The count is taken at start-up: a user created while the server runs turns
    authentication on for the next request, so the line says when it was true.
    """
    names = (
        f"as {', '.join(allowed_hosts)} only (allowed_hosts)"
        if allowed_hosts
        else "as any host name (set allowed_hosts to pin them)"
        if users
        else "as localhost, 127.0.0.1 or [::1] only (DNS-rebinding defence; see allowed_hosts)"
    )
    if users:
        counted = f"{users} user{'s' if users != 1 else ''}"
        who = f"authentication on: {counted} at start-up, tokens required"
    else:
        who = (
            "laptop mode: no users at start-up, so loopback clients only, acting as the owner "
            "(once a user is created, every request needs a token)"
        )
    return f"{who}; answering {names}"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Server processes (each stateless; the database serialises writes).",
)
@click.option("--db", metavar="URL", help="Metadata database URL (default: the folder's SQLite).")
@click.option(
    "--artifacts",
    metavar="PATH|s3://BUCKET/PREFIX",
    help="Artifact store: a folder (default: the registry's blobs/) or an S3 bucket.",
)
@click.option(
    "--allowed-hosts",
    metavar="NAMES",
    help="Host names the server answers as, comma-separated (setting allowed_hosts).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    help="Log this and above; info adds a line per request (setting log_level; default info).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"], case_sensitive=False),
    help="Log lines as text or one JSON object each (setting log_format; default text).",
)
@click.pass_context
def server(
    ctx: click.Context,
    host: str,
    port: int,
    workers: int,
    db: str | None,
    artifacts: str | None,
    allowed_hosts: str | None,
    log_level: str | None,
    log_format: str | None,
) -> None:
    """Serve the REST API (/api/v1, docs at /api/docs) for the registry.

    Logs go to standard error: a line per request (method, path, status, time, actor,
    client; never a token) at --log-level info, as text or JSON (--log-format json).

    \b
    Example:
      modelreg server --port 8080
      modelreg server --log-format json 2>> server.log
      MODELREG_URI=http://127.0.0.1:8080 modelreg models
    """
    try:
        import uvicorn
    except ImportError:  # pragma: no cover - depends on the install
        raise InvalidInput(
            "the server needs its extra: pip install 'modelreg[server]'", detail={}
        ) from None
    from modelreg.api.access_log import json_line, logging_config
    from modelreg.config import Settings
    from modelreg.db.schema import ensure_schema
    from modelreg.db.session import make_engine, transaction
    from modelreg.location import check_folder, is_remote, resolve_uri
    from modelreg.services.auth import count_principals

    home = resolve_uri(ctx.find_root().params.get("registry"))
    if is_remote(home):
        raise InvalidInput("`modelreg server` serves a registry folder, not a URL", detail={})
    # Before MODELREG_HOME is set below, which would make any folder "the default".
    check_folder(home)
    # Workers are separate processes: they find the registry through the environment.
    os.environ["MODELREG_HOME"] = home
    os.environ.pop("MODELREG_URI", None)
    if db:
        os.environ["MODELREG_DB"] = db
    if artifacts:
        os.environ["MODELREG_ARTIFACTS"] = artifacts
    if allowed_hosts:
        os.environ["MODELREG_ALLOWED_HOSTS"] = allowed_hosts
    if log_level:
        os.environ["MODELREG_LOG_LEVEL"] = log_level.lower()
    if log_format:
        os.environ["MODELREG_LOG_FORMAT"] = log_format.lower()
    settings = Settings.for_home(home)
    if not settings.db:
        settings.home.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.db_url)
    try:
        ensure_schema(engine, create=settings.create)  # fail here, once, not in every worker
        with transaction(engine, write=False) as session:
            users = count_principals(session)
    finally:
        engine.dispose()
    if not users and not is_loopback(host):
        raise InvalidInput(
            f"refusing to serve on {host}: this registry has no users yet, so it may only listen "
            "on a loopback address (127.0.0.1, ::1); create one with `modelreg users create`",
            detail={"host": host},
        )
    access = describe_access(users=users, allowed_hosts=settings.allowed_hosts)
    where = f"http://{host}:{port}"
    banner = (
        f"modelreg serving {settings.home} on {where}: web UI {where}/, "
        f"API docs {where}/api/docs; {access}"
    )
    if settings.log_format == "json":
        banner = json_line(
            "modelreg.server", banner, home=str(settings.home), url=where, users=users
        )
    click.echo(banner, err=True)
    if workers > 1:
        from modelreg.api.orphans import SUPERVISOR_ENV

        # Workers end when this process dies, even by SIGKILL (api.orphans).
        os.environ[SUPERVISOR_ENV] = str(os.getpid())
    uvicorn.run(
        "modelreg.api.main:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # Our logging (api.access_log): a line per request from the app, uvicorn's own quiet.
        log_config=logging_config(settings.log_level, settings.log_format),
        log_level=None,
        access_log=False,
        server_header=False,
        # Slow clients (SECURITY.md rule 16): headers must be complete within 30 s of
        # connecting or of the previous answer (uvicorn itself never times them out), an idle
        # kept-alive connection is closed after 5 s (uvicorn's default, pinned here), and a
        # body that stalls is cut off by the application (``body_idle_timeout``).
        http="modelreg.api.http_protocol:HeaderDeadlineProtocol",
        timeout_keep_alive=5,
    )
