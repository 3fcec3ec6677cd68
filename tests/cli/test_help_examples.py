"""Every example in every command's ``--help`` is copy-pasteable, and works (issue 19 #10).

The examples are read from the help text as a user sees it, at a narrow and a wide terminal
(they must not wrap: Click's ``\\b`` blocks), then run in an order that tells a story on a fresh
embedded registry seeded so that they make sense. Examples that need what a test cannot give
them (a running server, an MLflow server) are parsed instead, so a renamed option still fails
here; ids an example stands for (a request, a token, an audit head) are this registry's own.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

import modelreg
from modelreg.cli.main import cli, main

EXAMPLE_HEAD = re.compile(r"^\s*Examples?:\s*$")
# A command line in an example block, optionally after VAR=value assignments.
REDIRECT = re.compile(r"[0-9&]?>>?")
COMMAND = re.compile(r"^(?:[A-Z_]+=\S+\s+)*modelreg(?:\s|$)")

# The story the examples are run in: a command's examples run when its turn comes.
ORDER = [
    "",  # the top-level help's walkthrough: the first steps
    "register",
    "describe",
    "tag",
    "models",
    "versions",
    "search",
    "show",
    "scan",
    "compare",
    "lineage",
    "download",
    "keys add",
    "keys",
    "keys list",
    "sign",
    "verify",
    "keys revoke",
    "policy apply",
    "policy set",
    "policy show",
    "policy list",
    "policy delete",
    "promote",
    "promotions",
    "approve",
    "reject",
    "alias set",
    "alias delete",
    "history",
    "rollback",
    "delete",
    "users create",
    "users list",
    "users disable",
    "users enable",
    "grant",
    "revoke",
    "tokens create",
    "tokens list",
    "tokens revoke",
    "audit",
    "audit verify",
    "audit anchor",
    "gc",
    "webhooks",
    "webhooks add",
    "webhooks list",
    "webhooks test",
    "webhooks deliveries",
    "webhooks redeliver",
    "webhooks rotate",
    "webhooks remove",
    "db current",
    "db upgrade",
]
# Approvals and rejections are someone else's (nobody approves their own request).
APPROVER = "bob"
# What an example's documented outcome is when it is not 0, and why.
OUTCOME = {
    # The production rule the `policy set` example writes wants one approval: exit 4, and the
    # `approve` example approves it.
    "modelreg promote fraud 2 --to production": 4,
    # The registry of a test is younger than the moment the example asks about.
    "modelreg show fraud/production --at": 2,
}


def walk(cmd: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, click.Command]]:
    yield " ".join(path), cmd
    if isinstance(cmd, click.Group):
        for name in sorted(cmd.commands):
            yield from walk(cmd.commands[name], (*path, name))


def help_text(path: str, cmd: click.Command, width: int) -> str:
    ctx = click.Context(
        cmd, info_name=f"modelreg {path}".strip(), terminal_width=width, max_content_width=width
    )
    return cmd.get_help(ctx)


def examples(text: str) -> list[str]:
    """The command lines of the help's example blocks (``\\`` continuations joined)."""
    found: list[str] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not EXAMPLE_HEAD.match(line):
            continue
        joined = ""
        for body in lines[i + 1 :]:
            if not body.strip():
                break
            joined += body.strip()
            if joined.endswith("\\"):
                joined = joined[:-1]
                continue
            found.append(joined)
            joined = ""
    return found


ALL = [(path, cmd) for path, cmd in walk(cli)]


@pytest.mark.parametrize(("path", "cmd"), ALL, ids=[p or "modelreg" for p, _ in ALL])
def test_examples_do_not_wrap(path: str, cmd: click.Command) -> None:
    narrow, wide = help_text(path, cmd, 60), help_text(path, cmd, 300)
    # "Example:" followed by text on its line is an example Click rewrapped as prose.
    assert not re.search(r"Examples?:[ \t]*\S", narrow), narrow
    assert examples(narrow) == examples(wide)
    for line in examples(narrow):
        assert COMMAND.match(line), line
        shlex.split(line)  # quotes are balanced


def test_every_command_has_an_example() -> None:
    missing = [
        path
        for path, cmd in ALL
        if not isinstance(cmd, click.Group) and not examples(help_text(path, cmd, 100))
    ]
    assert missing == []


def parse(args: list[str]) -> click.Command:
    """Parse ``args`` as the CLI would, down to the command, without running it."""
    ctx = cli.make_context("modelreg", list(args), resilient_parsing=False)
    cmd: click.Command = cli
    while isinstance(cmd, click.Group):
        name, sub, rest = cmd.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
        assert sub is not None
        assert name is not None
        ctx = sub.make_context(name, rest, parent=ctx)
        cmd = sub
    return cmd


def argv_of(line: str) -> tuple[dict[str, str], list[str]]:
    """The environment assignments and the arguments (after ``modelreg``) of an example."""
    words = shlex.split(line)
    env = {}
    while "=" in words[0] and words[0] != "modelreg":
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    assert words.pop(0) == "modelreg"
    # Shell redirection (`> out.json`, `2>> server.log`) or a pipe (`| jq …`): the output
    # goes elsewhere.
    redirect = next((i for i, w in enumerate(words) if REDIRECT.fullmatch(w) or w == "|"), None)
    return env, words if redirect is None else words[:redirect]


def needs_outside(env: dict[str, str], args: list[str], line: str) -> bool:
    """Whether the example needs something a test does not have (a server, an MLflow server)."""
    return bool(
        env
        or args[:1] == ["server"]
        or args[:1] == ["serve"]  # serves until stopped
        or (args[:1] == ["deliver"] and "--once" not in args)  # runs until stopped
        or (args[:1] == ["events"] and "--follow" in args)  # so does this
        or args[:2] == ["import", "mlflow"]  # an MLflow server
        or (args[:1] == ["--registry"] and args[1].startswith("http"))
    )


def story() -> list[tuple[str, str]]:
    """Every example as ``(command path, line)``, in the story's order."""
    rank = {path: i for i, path in enumerate(ORDER)}
    out = []
    for path, cmd in ALL:
        for line in examples(help_text(path, cmd, 100)):
            out.append((path, line))
    return sorted(out, key=lambda item: rank.get(item[0], len(ORDER)))


@pytest.fixture
def seeded(tmp_path: Path, files: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A registry where the examples' names mean something: fraud:1 with @challenger, user bob,
    and carol's pending request for churn (the one the `reject` example rejects)."""
    home = tmp_path / "examples-registry"
    monkeypatch.setenv("MODELREG_URI", str(home))
    monkeypatch.chdir(files)
    _signing_key(files)
    (files / "policy.yaml").write_text("scopes:\n  churn:\n    production:\n      approvals: 1\n")
    with modelreg.Registry(home) as reg:
        reg.register("fraud", files / "model.pkl", metrics={"accuracy": 0.91}, capture=False)
        reg.set_alias("fraud", "challenger", 1)
        reg.register("churn", files / "model.pkl", capture=False)
        reg.apply_policies({"churn": {"production": {"approvals": 1}}})
        reg.create_user("bob", role="approver")
    monkeypatch.setenv("MODELREG_ACTOR", "carol")
    with modelreg.Registry(home) as reg:
        assert reg.promote("churn", 1, "production", reason="retrained").state == "pending"
    monkeypatch.delenv("MODELREG_ACTOR")
    return home


def _signing_key(folder: Path) -> None:
    """signer.pem and signer.pub, the key pair the signing examples name."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    (folder / "signer.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (folder / "signer.pub").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def stand_in(path: str, args: list[str], home: Path) -> list[str]:
    """``args`` with what the example stands for filled in: a request id, a token id or an
    audit head printed earlier (``7``, ``3f0c…``, ``1234:9f86…``) are this registry's own."""
    with modelreg.Registry(home) as reg:
        if path in ("approve", "reject"):
            args[1] = str(max(p.id for p in reg.promotions(state="pending")))
        elif path == "tokens revoke":
            args[-1] = str(reg.list_tokens()[-1]["id"])
        elif path.startswith("webhooks ") and "3f0c…" in args:
            args[args.index("3f0c…")] = reg.list_webhooks()[0].id
        elif path == "webhooks redeliver":
            args[-1] = reg.deliveries()[0].id
        elif path == "audit verify" and "--anchor" in args:
            args[args.index("--anchor") + 1] = str(reg.audit_anchor()["anchor"])
    return args


def test_every_example_runs_in_order(
    seeded: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ran, parsed, failed = 0, 0, []
    for path, line in story():
        env, args = argv_of(line)
        if needs_outside(env, args, line):
            parse(args)
            parsed += 1
            continue
        args = stand_in(path, args, seeded)
        if path in ("approve", "reject"):
            monkeypatch.setenv("MODELREG_ACTOR", APPROVER)
        code = main(args)
        monkeypatch.delenv("MODELREG_ACTOR", raising=False)
        out, err = capsys.readouterr()
        if "--json" in args:
            json.loads(out)  # one document
        ran += 1
        expected = next((c for start, c in OUTCOME.items() if line.startswith(start)), 0)
        if code != expected:
            failed.append((line, code, err.strip()))
    assert failed == [], "\n".join(map(str, failed))
    assert ran > 40
    assert parsed < 14  # servers (serve too), imports, and commands that run until stopped
