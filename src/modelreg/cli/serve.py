"""``modelreg serve REF``: a scoring server (MLflow's protocol) that follows a stage or alias."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import asdict

import click

from modelreg.cli.output import Ctx
from modelreg.errors import InvalidInput
from modelreg.names import parse_ref


def advertised(host: str, port: int) -> str:
    """The address other machines reach this server at, for the deployment report."""
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - naming them, not binding
        host = socket.getfqdn()
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@contextlib.contextmanager
def _multiprocess_metrics(workers: int) -> Iterator[None]:
    """With several workers, one Prometheus sample folder they all write (and sum)."""
    if workers == 1 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    folder = tempfile.mkdtemp(prefix="modelreg-serve-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    try:
        yield
    finally:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        shutil.rmtree(folder, ignore_errors=True)


KEEP_ALIVE = 75  # seconds; see the uvicorn.run call


@click.command()
@click.argument("ref")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=9000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Server processes; each loads the model and follows REF itself.",
)
@click.option(
    "--trust",
    is_flag=True,
    help="Load pickle-family files even without a clean safety scan (runs their code).",
)
@click.option(
    "--require-signature",
    is_flag=True,
    help="Load a version only when its files match a signature by a trusted key (modelreg keys).",
)
@click.option(
    "--guard",
    metavar="EXPR",
    help="Roll REF back when a swapped-in version fails: 'error_rate > 0.05 over 60s'.",
)
@click.option(
    "--max-body",
    default=32,
    show_default=True,
    type=click.IntRange(1, 4096),
    help="Largest request body, MiB (larger ones get 413).",
)
@click.option(
    "--no-report",
    is_flag=True,
    help="Do not report this server to the registry's deployments.",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
)
@click.option(
    "--log-format",
    default="text",
    show_default=True,
    type=click.Choice(["text", "json"], case_sensitive=False),
)
@click.option("--loader", hidden=True, default=None, help="MODULE:FUNCTION loading a version.")
@click.pass_obj
def serve(
    obj: Ctx,
    ref: str,
    host: str,
    port: int,
    workers: int,
    trust: bool,
    require_signature: bool,
    guard: str | None,
    max_body: int,
    no_report: bool,
    log_level: str,
    log_format: str,
    loader: str | None,
) -> None:
    """Serve REF over HTTP with MLflow's scoring protocol, following it as it moves.

    POST /invocations takes dataframe_split, dataframe_records, instances or inputs (JSON)
    or text/csv; GET /ping, /version and /metrics (Prometheus). When REF's stage or alias
    moves, the new version is loaded and warmed, then swapped in without failing a request;
    a version that fails to load is not swapped in and the old one keeps serving.

    \b
    Example:
      modelreg serve models:/churn/production --port 9000
      modelreg serve churn@champion --workers 4 --guard 'error_rate > 0.05 over 60s'
    """
    try:
        import uvicorn

        from modelreg.serving.app import ENV, ServeConfig, guard_target, load_loader
        from modelreg.serving.guard import parse_guard
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise InvalidInput(
            f"serving needs its extra: pip install 'modelreg[serve]' ({exc})", detail={}
        ) from None
    from modelreg.api.access_log import logging_config

    config = ServeConfig(
        ref=ref,
        registry=obj.registry.uri,
        address=advertised(host, port),
        trust=trust,
        require_signature=require_signature,
        guard=guard,
        max_body=max_body << 20,
        report=not no_report,
        info={
            "workers": workers,
            "guard": guard or "",
            "trust": trust,
            "require_signature": require_signature,
        },
    )
    if loader:
        config.loader = loader
    # Fail here, once, on what is surely a mistake: a bad REF, guard, loader or token.
    parsed = parse_ref(ref, allow_model=False)
    load_loader(config.loader)
    if guard:
        parse_guard(guard)
        guard_target(parsed)
    version = obj.registry.get_version(ref)
    obj.registry.close()  # the workers open their own
    click.echo(
        f"modelreg serve: {ref} (now {version.ref}) on http://{host}:{port}, "
        f"{workers} worker{'s' if workers != 1 else ''}; POST /invocations, GET /ping "
        "/version /metrics",
        err=True,
    )
    os.environ[ENV] = json.dumps(asdict(config))
    if workers > 1:
        from modelreg.api.orphans import SUPERVISOR_ENV

        # Workers end when this process dies, even by SIGKILL (api.orphans).
        os.environ[SUPERVISOR_ENV] = str(os.getpid())
    with _multiprocess_metrics(workers):
        uvicorn.run(
            "modelreg.serving.app:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=logging_config(log_level.lower(), log_format.lower()),
            log_level=None,
            access_log=False,
            server_header=False,
            # Longer than a load balancer's idle timeout (60 s on the common ones): the server
            # must never be the side that closes an idle connection, or a request sent on it
            # at that moment fails ("connection reset"), which is a failed request.
            timeout_keep_alive=KEEP_ALIVE,
            timeout_graceful_shutdown=30,
        )
