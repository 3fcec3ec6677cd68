"""``modelreg events``: the registry's events in order, or followed as they happen."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections.abc import Iterator
from types import FrameType

import click

from modelreg.cli.output import Ctx, emit
from modelreg.types import Event

FOLLOW_WAIT = 30.0  # seconds per long-poll while following


class _CtrlC:
    """Notes that Ctrl-C was pressed while following, then interrupts as Python would."""

    def __init__(self) -> None:
        self.pressed = False

    @contextlib.contextmanager
    def watch(self, active: bool) -> Iterator[None]:
        """Within: SIGINT sets ``pressed`` (only in the main thread, where signals arrive)."""
        if not active or threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_sigint(signum: int, frame: FrameType | None) -> None:
            self.pressed = True
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGINT, on_sigint)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


def _line(e: Event) -> str:
    model = f"  [{e.model}]" if e.model and not e.target.startswith(e.model) else ""
    why = f"  ({e.reason})" if e.reason else ""
    return (
        f"{e.seq:>6}  {e.at[:19].replace('T', ' ')}  {e.actor:<12} {e.event:<28} "
        f"{e.target}{model}{why}"
    )


@click.command()
@click.option(
    "--after",
    type=click.IntRange(0, 2**62 - 1),
    default=None,
    metavar="SEQ",
    help="Start after this event (default: the start of the log; with --follow, now).",
)
@click.option("--model", metavar="GLOB", help="Only events of models matching this (fraud*).")
@click.option(
    "--follow", "-f", is_flag=True, help="Keep printing events as they are committed (Ctrl-C)."
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON document; with --follow, one JSON object per line.",
)
@click.pass_obj
def events(obj: Ctx, after: int | None, model: str | None, follow: bool, as_json: bool) -> None:
    """Show the registry's events (what the audit log records, as webhooks send them).

    Only events you may read are shown. With --follow each event is printed as soon as it is
    committed, by anyone, until Ctrl-C; resume later with --after SEQ.

    \b
    Example:
      modelreg events --model 'fraud*'
      modelreg events --follow --json | jq -c 'select(.event == "registry:version:stage")'
    """
    stream = obj.registry.events(
        after, model=model, wait=FOLLOW_WAIT if follow else 0.0, follow=follow
    )
    if as_json and not follow:
        emit({"items": list(stream)})
        return
    printed = 0
    stopped = _CtrlC()
    try:
        with stopped.watch(follow):
            for event in stream:
                text = json.dumps(event.to_dict()) if as_json else _line(event)
                click.echo(text)
                printed += 1
    except KeyboardInterrupt:
        return  # following ends with Ctrl-C: not a failure
    except Exception:
        # Ctrl-C inside a database call can surface later as the driver's error about the
        # interrupted transaction: still the user's stop, not a failure.
        if stopped.pressed:
            return
        raise
    if not printed and not as_json:
        click.echo("no events")
