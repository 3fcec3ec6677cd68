"""One name per use-case: the table in docs/cli.md is what the CLI, SDK, REST API and audit log do.

Each row names a use-case's CLI command, ``Registry`` method, REST route, operation id, OpenAPI
tag and audit action(s). The test reads the real things (the Click tree, the ``Registry``
class, the app's routes and OpenAPI document, and the ``EventTag`` values the source writes)
and checks both ways: every cell exists, and every command, method, operation and action has a
row. It also holds the naming scheme: operation id ``tag-verb``, audit action
``source:noun:verb`` with the tag's noun.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest

from modelreg.cli.main import cli
from modelreg.client import Registry
from modelreg.services.audit import RENAMED, EventTag, current_action

ROOT = Path(__file__).parents[2]
TABLE_HEADING = "## One name per use-case"
METHODS = {"get", "put", "post", "delete", "patch", "head"}
# Registry members that are plumbing, not use-cases.
NOT_USE_CASES = {"backend", "close", "process_label"}
# The noun of each tag, as audit actions spell it.
NOUNS = {
    "models": "model",
    "versions": "version",
    "aliases": "alias",
    "promotions": "promotion",
    "policies": "policy",
    "blobs": "blob",
    "users": "user",
    "tokens": "token",
    "roles": "role",
    "webhooks": "webhook",
    "deliveries": "delivery",
    "signatures": "signature",
    "keys": "key",
    "sources": "source",
    "deployments": "deployment",
}
# One REST operation serving several verbs, each writing its own action.
SHARED_OPERATIONS = {"users-update", "policies-apply"}


@dataclass(frozen=True)
class Row:
    use_case: str
    cli: str | None
    sdk: str | None
    rest: tuple[str, str] | None
    operation_id: str | None
    tag: str | None
    actions: tuple[str, ...]


def _code(cell: str) -> str | None:
    cell = cell.strip()
    if cell == "—":
        return None
    assert cell.startswith("`"), cell
    assert cell.endswith("`"), cell
    return cell.strip("`")


def _rows() -> list[Row]:
    text = (ROOT / "docs" / "cli.md").read_text()
    section = text.split(TABLE_HEADING, 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("| ")][1:]
    rows = []
    for line in lines:
        if line.startswith("|---"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        assert len(cells) == 7, line
        use_case, cli_cell, sdk, rest, op, tag, audit = cells
        route = _code(rest)
        method, path = route.split(" ", 1) if route else (None, None)
        actions = tuple(
            a.strip().strip("`") for a in audit.split(" · ") if a.strip() not in ("", "—")
        )
        rows.append(
            Row(
                use_case=use_case,
                cli=_code(cli_cell),
                sdk=_code(sdk),
                rest=(method.lower(), path) if method and path else None,
                operation_id=_code(op),
                tag=_code(tag),
                actions=actions,
            )
        )
    assert len(rows) > 40, "the use-case table was not found in docs/cli.md"
    return rows


ROWS = _rows()


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[str]:
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            if command.invoke_without_command:  # `modelreg audit` lists, `audit verify` checks
                yield " ".join(("modelreg", *prefix, name))
            yield from _commands(command, (*prefix, name))
        else:
            yield " ".join(("modelreg", *prefix, name))


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from modelreg.api.app import create_app
    from modelreg.config import Settings

    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("MODELREG_")}
    try:
        application = create_app(Settings.for_home(tmp_path_factory.mktemp("use-cases")))
        yield application
        application.state.registry.engine.dispose()
    finally:
        os.environ.update(saved)


@pytest.fixture(scope="module")
def operations(app: Any) -> dict[tuple[str, str], dict[str, Any]]:
    from modelreg.api.app import openapi_document

    document = openapi_document(app)
    return {
        (method, path): op
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in METHODS
    }


def _mlflow_routes() -> set[tuple[str, str]]:
    """The MLflow door's routes (outside the OpenAPI document, which covers /api/v1)."""
    from modelreg.api.mlflow import artifacts, registry, tracking

    return {
        (method.lower(), route.path)
        for router in (artifacts.router, registry.router, tracking.router, tracking.info_router)
        for route in router.routes
        for method in getattr(route, "methods", None) or ()
    }


def test_every_cli_command_has_a_row_and_every_row_a_command() -> None:
    commands = set(_commands(cli))
    named = {row.cli for row in ROWS if row.cli}
    assert named - commands == set(), "rows name commands the CLI does not have"
    assert commands - named == set(), "commands without a row in docs/cli.md"


def test_every_registry_method_has_a_row_and_every_row_a_method() -> None:
    # Registry's own methods and its mixins' (client._notify).
    own = {n for cls in Registry.__mro__ if cls is not object for n in vars(cls)}
    methods = {n for n in own if not n.startswith("_")} - NOT_USE_CASES
    named = {row.sdk for row in ROWS if row.sdk}
    assert named - methods == set(), "rows name methods Registry does not have"
    assert methods - named == set(), "Registry methods without a row in docs/cli.md"


def test_every_operation_has_a_row_with_its_id_and_tag(
    operations: dict[tuple[str, str], dict[str, Any]],
) -> None:
    documented = {}
    for row in ROWS:
        if row.operation_id is None:
            continue
        assert row.rest is not None, row
        assert row.rest in operations, f"{row.use_case}: no operation {row.rest}"
        op = operations[row.rest]
        assert op["operationId"] == row.operation_id, row.use_case
        assert op.get("tags") == [row.tag], row.use_case
        documented[row.rest] = row
    assert set(operations) - set(documented) == set(), "operations without a row"


def test_routes_without_an_operation_are_the_mlflow_doors() -> None:
    routes = _mlflow_routes()
    for row in ROWS:
        if row.rest is not None and row.operation_id is None:
            assert row.rest in routes, row


def test_operation_ids_are_tag_dash_verb() -> None:
    for row in ROWS:
        if row.operation_id is not None:
            assert row.operation_id.startswith(f"{row.tag}-"), row


def _written_tags() -> set[EventTag]:
    """Every ``EventTag.X`` the source passes to ``record`` (so every action it can write)."""
    written: set[EventTag] = set()
    for path in (ROOT / "src" / "modelreg").rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name != "record" or len(node.args) < 2:
                continue
            arg = node.args[1]
            found = [
                EventTag[n.attr]
                for n in ast.walk(arg)
                if isinstance(n, ast.Attribute)
                and isinstance(n.value, ast.Name)
                and n.value.id == "EventTag"
            ]
            assert found, f"{path}:{node.lineno}: record() with an action that is no EventTag"
            written.update(found)
    return written


def test_every_audit_action_is_written_and_has_a_row() -> None:
    written = {tag.value for tag in _written_tags()}
    assert written == {tag.value for tag in EventTag}, "EventTag values no code writes"
    named = {action for row in ROWS for action in row.actions}
    assert named - written == set(), "rows name actions the code never writes"
    assert written - named == set(), "actions without a row in docs/cli.md"


def test_audit_actions_use_the_tags_noun_and_the_operations_verb() -> None:
    for row in ROWS:
        for action in row.actions:
            source, noun, verb = action.split(":")
            assert source in ("registry", "auth", "notify"), action
            if row.tag is None or row.operation_id is None:
                continue
            assert noun == NOUNS[row.tag], row
            if row.operation_id not in SHARED_OPERATIONS:
                # policies-set and policies-set-default write the same action.
                assert re.fullmatch(rf"{row.tag}-{verb}(-default|-all)?", row.operation_id), row


def test_renamed_actions_read_as_their_new_names() -> None:
    for old, new in RENAMED.items():
        assert old not in {tag.value for tag in EventTag}
        if old != "registry:model:update":
            assert current_action(old) == new.value
    assert current_action("registry:model:update", {"name": "a"}) == "registry:model:rename"
    assert current_action("registry:model:update", {"description": ""}) == (
        "registry:model:describe"
    )
    assert current_action("registry:model:create") == "registry:model:create"
