"""``modelreg webhooks``: subscribe URLs, Slack and e-mail to registry events; their deliveries."""

from __future__ import annotations

from typing import Any

import click

from modelreg.cli.output import Ctx, console, emit, json_option, page_options

KIND = click.Choice(["webhook", "slack", "email"])


@click.group()
def webhooks() -> None:
    """Send registry events to webhooks, Slack or e-mail, and follow their deliveries.

    Subscriptions are an admin's (registry-wide) or a model admin's (that model only).

    \b
    Example:
      modelreg webhooks add https://ci.example.com/hook --event 'registry:version:stage'
      modelreg webhooks deliveries --failed
    """


def _where(hook: Any) -> str:
    return str(hook.to if hook.kind == "email" else hook.url)


@webhooks.command("add")
@click.argument("url", required=False)
@click.option("--kind", type=KIND, help="How to deliver (default: webhook; email with --to).")
@click.option(
    "--event",
    "events",
    multiple=True,
    metavar="PATTERN",
    help="An event name or pattern (registry:version:*); repeat it; default: every event.",
)
@click.option("--model", default="*", show_default=True, help="A model, or a glob (admins).")
@click.option("--to", metavar="ADDRESS", help="The e-mail address (kind email).")
@click.option("--description", default="", help="What the subscription is for.")
@json_option
@click.pass_obj
def webhooks_add(
    obj: Ctx,
    url: str | None,
    kind: str | None,
    events: tuple[str, ...],
    model: str,
    to: str | None,
    description: str,
    as_json: bool,
) -> None:
    """Subscribe URL (or, with --to, an e-mail address) to registry events.

    A webhook's signing secret (whsec_…) is printed once; store it where the receiver
    verifies signatures.

    \b
    Example:
      modelreg webhooks add https://ci.example.com/hook --event 'registry:version:stage'
      modelreg webhooks add https://hooks.slack.com/services/… --kind slack --model fraud
      modelreg webhooks add --to ml-team@example.com --event 'registry:promotion:*'
    """
    chosen = kind or ("email" if to and not url else "webhook")
    hook = obj.registry.create_webhook(
        url, kind=chosen, events=events, model=model, to=to, description=description
    )
    if as_json:
        emit(hook)
        return
    if hook.secret:
        click.echo(hook.secret)
    click.echo(
        f"subscription {hook.id}: {hook.kind} to {_where(hook)} for "
        f"{', '.join(hook.events)} on {hook.model}"
        + (": store the secret now, it is not shown again" if hook.secret else ""),
        err=True,
    )


@webhooks.command("list")
@json_option
@click.pass_obj
def webhooks_list(obj: Ctx, as_json: bool) -> None:
    """List the subscriptions you administer (never their secrets).

    \b
    Example:
      modelreg webhooks list --json
    """
    rows = obj.registry.list_webhooks()
    if as_json:
        emit({"items": rows})
        return
    from rich.markup import escape

    screen = console()
    for hook in rows:
        state = f"  disabled: {hook.disabled_reason}" if hook.disabled_at else ""
        line = (
            f"{hook.id}  {hook.kind:<7} {_where(hook)}  {','.join(hook.events)}  "
            f"model {hook.model}  by {hook.created_by}{state}"
        )
        screen.print(escape(line))
    if not rows:
        screen.print("no subscriptions")


@webhooks.command("remove")
@click.argument("webhook_id", metavar="ID")
@json_option
@click.pass_obj
def webhooks_remove(obj: Ctx, webhook_id: str, as_json: bool) -> None:
    """Remove subscription ID and its deliveries.

    \b
    Example:
      modelreg webhooks remove 3f0c…
    """
    hook = obj.registry.remove_webhook(webhook_id)
    if as_json:
        emit(hook)
    else:
        click.echo(f"removed subscription {hook.id} ({hook.kind} to {_where(hook)})")


@webhooks.command("rotate")
@click.argument("webhook_id", metavar="ID")
@click.option(
    "--overlap-hours",
    default=24,
    show_default=True,
    type=click.IntRange(0, 720),
    help="How long the previous secret keeps signing too.",
)
@json_option
@click.pass_obj
def webhooks_rotate(obj: Ctx, webhook_id: str, overlap_hours: int, as_json: bool) -> None:
    """Give subscription ID a new signing secret, printed once.

    Until the overlap ends, messages carry two signatures (new and previous secret), so the
    receiver can switch at its own pace.

    \b
    Example:
      modelreg webhooks rotate 3f0c… --overlap-hours 48
    """
    hook = obj.registry.rotate_webhook_secret(webhook_id, overlap_hours=overlap_hours)
    if as_json:
        emit(hook)
        return
    click.echo(hook.secret)
    until = hook.previous_secret_expires_at
    click.echo(
        f"new secret for {hook.id}: store it now, it is not shown again; "
        + (f"the previous one signs too until {until}" if until else "the previous one is gone"),
        err=True,
    )


@webhooks.command("test")
@click.argument("webhook_id", metavar="ID")
@json_option
@click.pass_obj
def webhooks_test(obj: Ctx, webhook_id: str, as_json: bool) -> None:
    """Queue a test message (event modelreg:test) to subscription ID.

    \b
    Example:
      modelreg webhooks test 3f0c…
    """
    delivery = obj.registry.test_webhook(webhook_id)
    if as_json:
        emit(delivery)
    else:
        click.echo(f"queued test message {delivery.id}")


@webhooks.command("deliveries")
@click.argument("webhook_id", metavar="[ID]", required=False)
@click.option("--failed", is_flag=True, help="Only deliveries that gave up.")
@page_options
@json_option
@click.pass_obj
def webhooks_deliveries(
    obj: Ctx,
    webhook_id: str | None,
    failed: bool,
    limit: int,
    page_token: str | None,
    as_json: bool,
) -> None:
    """List deliveries newest first: of subscription ID, or of all you administer.

    \b
    Example:
      modelreg webhooks deliveries 3f0c… --json
    """
    items = obj.registry.deliveries(
        webhook_id, failed=failed, page_size=limit, page_token=page_token
    )
    if as_json:
        emit({"items": [d.to_dict() for d in items], "next_page_token": items.next_page_token})
        return
    from rich.markup import escape

    screen = console()
    for d in items:
        status = f" HTTP {d.last_status}" if d.last_status else ""
        error = f"  {d.last_error}" if d.last_error else ""
        line = (
            f"{d.id}  {d.state:<9} {d.event} {d.target}  {d.attempts} attempts{status}  "
            f"{(d.created_at or '')[:16].replace('T', ' ')}{error}"
        )
        screen.print(escape(line))
    if not items:
        screen.print("no deliveries")
    if items.next_page_token:
        screen.print(f"more: --page-token {items.next_page_token}", style="dim")


@webhooks.command("redeliver")
@click.argument("delivery_id", metavar="DELIVERY_ID")
@json_option
@click.pass_obj
def webhooks_redeliver(obj: Ctx, delivery_id: str, as_json: bool) -> None:
    """Send delivery DELIVERY_ID again (same webhook-id; its retries start over).

    \b
    Example:
      modelreg webhooks redeliver msg_2b9d…
    """
    delivery = obj.registry.redeliver(delivery_id)
    if as_json:
        emit(delivery)
    else:
        click.echo(f"queued {delivery.id} again ({delivery.event} {delivery.target})")
