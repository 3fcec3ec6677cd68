"""``modelreg users``, ``tokens`` and ``grant``: who may use the registry, and how."""

from __future__ import annotations

import click

from modelreg.cli.output import Ctx, console, emit, json_option

ROLE = click.Choice(["viewer", "contributor", "approver", "admin"])


@click.group()
def users() -> None:
    """Create and list users and service accounts."""


@users.command("create")
@click.argument("name")
@click.option("--role", type=ROLE, help="A first role (registry-wide unless --model).")
@click.option("--model", help="Grant the role on this model only.")
@click.option(
    "--service", is_flag=True, help="A service account (CI, serving) rather than a person."
)
@json_option
@click.pass_obj
def users_create(
    obj: Ctx, name: str, role: str | None, model: str | None, service: bool, as_json: bool
) -> None:
    """Create a user; from then on the server requires a token for every request.

    \b
    Example:
      modelreg users create alice --role admin
      modelreg users create ci --service --role contributor --model fraud
    """
    user = obj.registry.create_user(name, role=role, model=model, service=service)
    if as_json:
        emit(user)
    else:
        roles = ", ".join(f"{r.role}{' on ' + r.model if r.model else ''}" for r in user.roles)
        click.echo(f"created {user.kind} {user.name}" + (f" ({roles})" if roles else ""))


@users.command("list")
@json_option
@click.pass_obj
def users_list(obj: Ctx, as_json: bool) -> None:
    """List users and service accounts with their roles.

    \b
    Example:
      modelreg users list --json
    """
    rows = obj.registry.list_users()
    if as_json:
        emit({"items": rows})
        return
    screen = console()
    for user in rows:
        roles = ", ".join(f"{r.role}{'@' + r.model if r.model else ''}" for r in user.roles)
        state = "  (disabled)" if user.disabled else ""
        screen.print(f"{user.name:<24} {user.kind:<8} {roles or '(no roles)'}{state}")
    if not rows:
        screen.print("no users: the registry is open to loopback clients only")


@users.command("disable")
@click.argument("name")
@json_option
@click.pass_obj
def users_disable(obj: Ctx, name: str, as_json: bool) -> None:
    """Disable user NAME: its tokens stop working at once; its history stays.

    An admin cannot disable itself or the last enabled admin (exit 6).

    \b
    Example:
      modelreg users disable bob
    """
    user = obj.registry.disable_user(name)
    if as_json:
        emit(user)
    else:
        click.echo(f"disabled {user['kind']} {user['name']}: its tokens no longer work")


@users.command("enable")
@click.argument("name")
@json_option
@click.pass_obj
def users_enable(obj: Ctx, name: str, as_json: bool) -> None:
    """Enable user NAME again; its tokens that are not revoked or expired work again.

    \b
    Example:
      modelreg users enable bob
    """
    user = obj.registry.enable_user(name)
    if as_json:
        emit(user)
    else:
        click.echo(f"enabled {user['kind']} {user['name']}")


@click.group()
def tokens() -> None:
    """Issue, list and revoke API tokens."""


@tokens.command("create")
@click.argument("name")
@click.option("--expires", type=click.IntRange(1, 3650), metavar="DAYS", help="Expire after DAYS.")
@click.option("--label", default="", help="What the token is for (e.g. 'github-actions').")
@json_option
@click.pass_obj
def tokens_create(obj: Ctx, name: str, expires: int | None, label: str, as_json: bool) -> None:
    """Issue a token for user NAME; the secret is printed once and never stored.

    \b
    Example:
      modelreg tokens create ci --expires 90 --label github-actions --json
    """
    token = obj.registry.create_token(name, label=label, expires_days=expires)
    if as_json:
        emit(token)
    else:
        click.echo(token.token)
        click.echo(
            f"token {token.id} for {token.principal}"
            + (f", expires {token.expires_at}" if token.expires_at else "")
            + ": store it now, it is not shown again",
            err=True,
        )


@tokens.command("list")
@click.argument("name", required=False)
@json_option
@click.pass_obj
def tokens_list(obj: Ctx, name: str | None, as_json: bool) -> None:
    """List tokens (never their secrets), optionally of one user.

    \b
    Example:
      modelreg tokens list ci
    """
    rows = obj.registry.list_tokens(name)
    if as_json:
        emit({"items": rows})
        return
    screen = console()
    for t in rows:
        state = "revoked" if t.revoked else f"expires {t.expires_at or 'never'}"
        screen.print(f"{t.id}  {t.principal:<16} {t.name:<20} {state}")
    if not rows:
        screen.print("no tokens")


@tokens.command("revoke")
@click.argument("token_id", metavar="ID")
@json_option
@click.pass_obj
def tokens_revoke(obj: Ctx, token_id: str, as_json: bool) -> None:
    """Revoke token ID; it stops working at once.

    \b
    Example:
      modelreg tokens revoke 3f0c…
    """
    token = obj.registry.revoke_token(token_id)
    if as_json:
        emit(token)
    else:
        click.echo(f"revoked token {token.id} of {token.principal}")


@click.command()
@click.argument("name")
@click.argument("role", type=ROLE)
@click.option("--model", help="Only on this model (default: registry-wide).")
@json_option
@click.pass_obj
def grant(obj: Ctx, name: str, role: str, model: str | None, as_json: bool) -> None:
    """Give user NAME a ROLE (viewer < contributor < approver < admin).

    \b
    Example:
      modelreg grant bob approver --model fraud
    """
    user = obj.registry.grant(name, role, model=model)
    if as_json:
        emit(user)
    else:
        click.echo(f"{name} is {role}" + (f" on {model}" if model else " registry-wide"))


@click.command()
@click.argument("name")
@click.argument("role", type=ROLE)
@click.option("--model", help="The grant on this model (default: the registry-wide one).")
@json_option
@click.pass_obj
def revoke(obj: Ctx, name: str, role: str, model: str | None, as_json: bool) -> None:
    """Take ROLE away from user NAME; its next request is checked without it.

    Exit 2 when NAME holds no such grant; exit 6 when it is the registry-wide admin role of
    the last enabled admin.

    \b
    Example:
      modelreg revoke bob approver --model fraud
    """
    user = obj.registry.revoke(name, role, model=model)
    if as_json:
        emit(user)
    else:
        click.echo(f"{name} is no longer {role}" + (f" on {model}" if model else " registry-wide"))
