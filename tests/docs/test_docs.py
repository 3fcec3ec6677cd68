"""Docs stay honest: every setting, audit action and CLI command is documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelreg.config import Settings
from modelreg.services.audit import EventTag

DOCS = Path(__file__).parents[2] / "docs"


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_every_setting_is_documented(field):
    assert f"| `{field}` |" in (DOCS / "configuration.md").read_text()


@pytest.mark.parametrize("tag", list(EventTag))
def test_every_audit_action_is_documented(tag):
    assert f"`{tag.value}`" in (DOCS / "storage.md").read_text()


def test_every_cli_command_is_documented():
    from modelreg.cli.main import cli

    text = (DOCS / "cli.md").read_text()
    for name, command in cli.commands.items():
        names = [f"{name} {sub}" for sub in getattr(command, "commands", {})] or [name]
        for full in names:
            assert f"`modelreg {full}" in text, full
