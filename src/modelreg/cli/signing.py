"""``modelreg sign`` / ``verify`` / ``keys``: sign versions, check them, trust signing keys."""

from __future__ import annotations

from pathlib import Path

import click

from modelreg.cli.output import Ctx, console, emit, json_option

KEY_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command()
@click.argument("ref")
@click.option(
    "--key", required=True, type=KEY_FILE, help="PEM elliptic-curve private key to sign with."
)
@click.option(
    "--password-env",
    metavar="VAR",
    help="Environment variable holding the private key's password, if it is encrypted.",
)
@click.option(
    "--files",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Sign only if the files in this folder are exactly the version's (hashed here).",
)
@json_option
@click.pass_obj
def sign(
    obj: Ctx, ref: str, key: Path, password_env: str | None, files: Path | None, as_json: bool
) -> None:
    """Sign version REF's manifest (every path and SHA-256) with a private key.

    The manifest comes from the registry: no file is downloaded. The server checks the
    signature before storing it (immutable, audited); the version shows `signed` once an
    admin trusts the key (modelreg keys add). Signing proves who vouched for these bytes,
    not that they are safe.

    \b
    Example:
      modelreg sign fraud:1 --key signer.pem
    """
    import os

    password = os.environ.get(password_env) if password_env else None
    signature = obj.registry.sign(ref, key=key, password=password, files=files)
    if as_json:
        emit(signature)
        return
    who = signature.key_name or f"untrusted key {signature.key_fingerprint[:16]}…"
    click.echo(f"signed {ref} with {who} (manifest {signature.manifest_sha256[:16]}…)")


@click.command()
@click.argument("ref")
@click.option(
    "--key",
    type=KEY_FILE,
    help="PEM public key whose signature must verify (default: the registry's trusted keys).",
)
@click.option(
    "--files",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Check the files in this folder instead of downloading them.",
)
@json_option
@click.pass_obj
def verify(obj: Ctx, ref: str, key: Path | None, files: Path | None, as_json: bool) -> None:
    """Check version REF's signature against its files, re-hashed here.

    The files are downloaded to a temporary folder (or read from --files) and hashed again; a
    signature counts when it is by --key (or by a trusted, unrevoked key) and signs exactly
    those paths and digests. Exit 0 when one does; 1 with the reason for each otherwise.

    \b
    Example:
      modelreg verify fraud:1
      modelreg verify fraud:1 --key signer.pub --json
    """
    check = obj.registry.verify(ref, key=key, files=files)
    if as_json:
        emit(check)
        return
    for verdict in check.signatures:
        who = verdict["key_name"] or verdict["key_fingerprint"][:16] + "…"
        state = "verified" if verdict["ok"] else f"not counted: {verdict['problem']}"
        click.echo(f"{who}: {state}")
    click.echo(f"{check.name}:{check.version}: {check.files} files match the signed manifest")


@click.group()
def keys() -> None:
    """Trusted signing keys: signatures by them make a version `signed` (admin).

    \b
    Example:
      modelreg keys list
    """


@keys.command("add")
@click.argument("name")
@click.argument("public_key", metavar="PUBLIC_KEY_FILE", type=KEY_FILE)
@json_option
@click.pass_obj
def keys_add(obj: Ctx, name: str, public_key: Path, as_json: bool) -> None:
    """Trust the PEM public key in PUBLIC_KEY_FILE as NAME (admin; audited).

    \b
    Example:
      modelreg keys add ci-signer signer.pub
    """
    key = obj.registry.add_trusted_key(name, public_key)
    if as_json:
        emit(key)
    else:
        click.echo(f"trusted key {key.name}: {key.fingerprint}")


@keys.command("list")
@json_option
@click.pass_obj
def keys_list(obj: Ctx, as_json: bool) -> None:
    """List the trusted keys, revoked ones with who revoked them and why.

    \b
    Example:
      modelreg keys list --json
    """
    rows = obj.registry.trusted_keys()
    if as_json:
        emit({"items": rows})
        return
    from rich.markup import escape

    screen = console()
    for key in rows:
        state = (
            f"revoked {key.revoked_at} by {key.revoked_by}: {key.revoke_reason}"
            if key.revoked
            else f"added {key.added_at} by {key.added_by}"
        )
        screen.print(escape(f"{key.name}  {key.fingerprint}  {state}"))
    if not rows:
        screen.print("no trusted keys")


@keys.command("revoke")
@click.argument("name")
@click.option("--reason", required=True, help="Why (kept in the audit log and on the key).")
@json_option
@click.pass_obj
def keys_revoke(obj: Ctx, name: str, reason: str, as_json: bool) -> None:
    """Revoke trusted key NAME (admin; audited): its signatures stop counting, for good.

    \b
    Example:
      modelreg keys revoke ci-signer --reason "rotated after the CI migration"
    """
    key = obj.registry.revoke_trusted_key(name, reason=reason)
    if as_json:
        emit(key)
    else:
        click.echo(f"revoked key {key.name} ({key.fingerprint[:16]}…)")
