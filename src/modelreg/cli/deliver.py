"""``modelreg deliver``: run the delivery worker apart from the server."""

from __future__ import annotations

import contextlib
import signal
import threading
from types import FrameType

import click


@click.command()
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit.")
@click.pass_context
def deliver(ctx: click.Context, once: bool) -> None:
    """Send pending webhook, Slack and email deliveries (each server also runs this worker).

    One worker is active at a time across every server and `modelreg deliver` sharing the
    database (a lease row); the others stand by and take over within 15 s.

    Without --once it runs until Ctrl-C or SIGTERM; --once suits cron.

    \b
    Example:
      modelreg deliver
      modelreg deliver --once
    """
    from modelreg.config import Settings
    from modelreg.db.schema import ensure_schema
    from modelreg.db.session import make_engine
    from modelreg.errors import InvalidInput
    from modelreg.location import is_remote, resolve_uri
    from modelreg.services.delivery.worker import DeliveryWorker

    uri = resolve_uri(ctx.find_root().params.get("registry"))
    if is_remote(uri):
        raise InvalidInput("`modelreg deliver` works on a registry folder, not a URL", detail={})
    settings = Settings.for_home(uri)
    engine = make_engine(settings.db_url)
    try:
        ensure_schema(engine, create=False)
        worker = DeliveryWorker(engine, settings)
        if once:
            sent = worker.run_once()
            worker.stop()
            click.echo(f"{sent} attempt{'s' if sent != 1 else ''} made")
            return
        stopped = threading.Event()

        def _stop(_signum: int, _frame: FrameType | None) -> None:
            stopped.set()

        signal.signal(signal.SIGTERM, _stop)
        worker.start()
        with contextlib.suppress(KeyboardInterrupt):
            stopped.wait()
        worker.stop()
    finally:
        engine.dispose()
