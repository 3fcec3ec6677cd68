"""The deployment files in deploy/ stay true to the CLI and the settings (docs/deploy.md).

CI has no Docker, so ``deploy/compose.yaml`` is checked for shape, not run: every ``modelreg``
command and option it and the systemd units use must exist in the Click tree, every
``MODELREG_*`` variable must be read back by the settings loader as the value given, every
``AWS_*`` one must be read by boto3, and nginx must balance over the compose servers.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_examples import Shown, check, commands_in

from modelreg.config import Settings

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
UNITS = sorted(DEPLOY.glob("*.service"))
SUBSTITUTION = re.compile(r"\$\{(\w+)(?::[-?]([^}]*))?\}")
# Variables of the images' own (PostgreSQL, MinIO, mc), not modelreg's or boto3's.
IMAGE_VARIABLES = {
    "POSTGRES_USER",
    "POSTGRES_DB",
    "POSTGRES_PASSWORD",
    "MINIO_ROOT_USER",
    "MINIO_ROOT_PASSWORD",
    "MC_HOST_store",
}
# Containers listen on all their interfaces; nginx is the only way in from outside.
SERVER = ["server", "--host", "0.0.0.0", "--port", "8080", "--workers", "2"]  # noqa: S104


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def services() -> dict[str, dict[str, Any]]:
    found = compose()["services"]
    assert isinstance(found, dict)
    return found


def _is_modelreg(service: dict[str, Any]) -> bool:
    return service.get("build", {}).get("dockerfile") == "deploy/Dockerfile"


def compose_commands() -> list[Shown]:
    """The ``modelreg`` commands the compose services run (image entrypoint or ``sh -c``)."""
    found: list[Shown] = []
    for name, service in services().items():
        if not _is_modelreg(service) or "command" not in service:
            continue
        source = f"deploy/compose.yaml service {name}"
        command = service["command"]
        if service.get("entrypoint") == ["sh", "-c"]:
            found += commands_in(command[0], source)
        else:  # the image's entrypoint is `modelreg`
            found.append(Shown(source, tuple(str(word) for word in command)))
    return found


def unit_commands() -> list[Shown]:
    found: list[Shown] = []
    for unit in UNITS:
        for line in unit.read_text(encoding="utf-8").splitlines():
            if line.startswith("ExecStart="):
                words = shlex.split(line.removeprefix("ExecStart="))
                assert words[0] == "/opt/modelreg/bin/modelreg", line
                found.append(Shown(f"deploy/{unit.name}", tuple(words[1:])))
    return found


def _concrete(value: object) -> str:
    """A compose value with ``${VAR:-default}`` as its default, ``${VAR:?…}`` as a test value."""
    return SUBSTITUTION.sub(lambda m: "x" if "?" in m[0] else (m[2] or "x"), str(value))


def environments() -> list[Any]:
    """Each modelreg service's environment, and the systemd units' environment file."""
    found = [
        pytest.param(
            f"compose {name}",
            {k: _concrete(v) for k, v in service["environment"].items()},
            id=f"compose-{name}",
        )
        for name, service in services().items()
        if _is_modelreg(service)
    ]
    lines = (DEPLOY / "modelreg.env").read_text(encoding="utf-8").splitlines()
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith("#")]
    found.append(pytest.param("deploy/modelreg.env", dict(pairs), id="modelreg.env"))
    return found


COMMANDS = compose_commands() + unit_commands()


def test_the_commands_are_found():
    shown = {s.words[:1] for s in COMMANDS}
    assert {("server",), ("db",), ("users",), ("backup",), ("fsck",)} <= shown, shown


@pytest.mark.parametrize("shown", COMMANDS, ids=str)
def test_each_modelreg_command_exists(shown):
    check(shown)


@pytest.mark.parametrize(("where", "env"), environments())
def test_modelreg_variables_are_settings_read_as_given(where, env, tmp_path, monkeypatch):
    mine = {k: v for k, v in env.items() if k.startswith("MODELREG_")}
    assert "MODELREG_DB" in mine, where
    assert "MODELREG_ARTIFACTS" in mine, where
    for key, value in mine.items():
        monkeypatch.setenv(key, value)
    settings = Settings.for_home(tmp_path)  # also validates each value
    for key, value in mine.items():
        field = key.removeprefix("MODELREG_").lower()
        assert field in Settings.model_fields, f"{where}: {key} is no setting"
        if field == "home":
            continue  # for_home's argument; the server takes it from MODELREG_HOME
        got = getattr(settings, field)
        given = value.split(",") if field == "allowed_hosts" else value
        assert got == given, f"{where}: {key}={value!r} read as {got!r}"
    assert settings.artifacts.startswith("s3://")
    assert settings.db.startswith("postgresql+psycopg://")


@pytest.mark.parametrize(("where", "env"), environments())
def test_other_variables_are_boto3s_or_the_images(where, env, monkeypatch):
    import boto3  # the s3 extra

    aws = {k: v for k, v in env.items() if k.startswith("AWS_")}
    others = set(env) - set(aws) - {k for k in env if k.startswith("MODELREG_")}
    assert others <= IMAGE_VARIABLES, f"{where}: unknown variables {others - IMAGE_VARIABLES}"
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    for key, value in aws.items():
        monkeypatch.setenv(key, value)
    session = boto3.Session()
    read = {
        "AWS_ENDPOINT_URL": session.client("s3").meta.endpoint_url,
        "AWS_DEFAULT_REGION": session.region_name,
        "AWS_ACCESS_KEY_ID": session.get_credentials().access_key,
        "AWS_SECRET_ACCESS_KEY": session.get_credentials().secret_key,
    }
    for key, value in aws.items():
        assert key in read, f"{where}: {key} is not one of boto3's settings this test knows"
        assert read[key] == value, f"{where}: boto3 read {key} as {read[key]!r}"


def test_the_compose_file_has_its_parts():
    found = services()
    servers = [n for n, s in found.items() if _is_modelreg(s) and s.get("command") == SERVER]
    assert len(servers) >= 2, servers
    for name in servers:
        service = found[name]
        assert service["depends_on"]["init"]["condition"] == "service_completed_successfully"
        assert "/readyz" in " ".join(service["healthcheck"]["test"])
    assert {"postgres", "minio", "bucket", "init", "nginx", "ops"} <= set(found)
    assert (DEPLOY / found[servers[0]]["build"]["dockerfile"].removeprefix("deploy/")).is_file()
    bucket = found[servers[0]]["environment"]["MODELREG_ARTIFACTS"].split("/")[2]
    assert f"store/{bucket}" in found["bucket"]["command"][0], "the bucket the servers use is made"
    mount = next(v for v in found["nginx"]["volumes"] if "nginx.conf" in v)
    conf = (DEPLOY / mount.split(":")[0].removeprefix("./")).read_text(encoding="utf-8")
    upstreams = set(re.findall(r"^\s*server\s+([\w-]+):(\d+)", conf, re.MULTILINE))
    port = found[servers[0]]["command"][found[servers[0]]["command"].index("--port") + 1]
    assert upstreams == {(name, port) for name in servers}


def test_the_docs_link_the_page():
    assert "docs/deploy.md" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert "deploy.md" in (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
