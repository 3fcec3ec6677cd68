"""``modelreg import mlflow`` against a real MLflow server (issue 5, "The MLflow door").

One ``mlflow server`` (MLflow 3.17.2 from bench/.mlflow-venv, SQLite backend, served artifacts)
is started on loopback for the module and filled through MLflow's own client
(tests/e2e/mlflow_populate.py). The import runs through the real CLI into an embedded registry
folder and into a real ``modelreg server``; every file is compared by SHA-256 with the bytes
MLflow stored on disk. Without MLflow's venv these tests fail in CI and skip elsewhere
(tests/mlflow_env.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import io
import json
import os
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import modelreg
from mlflow_env import MlflowServer, run_mlflow_json
from modelreg.cli.main import main
from modelreg.client.mlflow_import import import_mlflow
from server_process import ServerProcess, free_port

POPULATE = Path(__file__).with_name("mlflow_populate.py")

# One MLflow server per module; with `--dist loadgroup` xdist keeps the module on one worker.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("mlflow-import")]


class Mlflow:
    """The running server and what the populate script says it created."""

    def __init__(self, server: MlflowServer, manifest: dict[str, Any]) -> None:
        self.url = server.url
        self.artifacts = server.folder / "artifacts"
        self.manifest = manifest

    def version(self, name: str, number: int) -> dict[str, Any]:
        info: dict[str, Any] = self.manifest[name]["versions"][str(number)]
        return info

    def files(self, name: str, number: int) -> dict[str, str]:
        """SHA-256 of each file of a version, read from MLflow's artifact folder on disk."""
        root = self.artifacts / self.version(name, number)["artifact"]
        return {
            p.relative_to(root).as_posix(): sha256(p.read_bytes())
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }

    def origin(self, name: str, number: int) -> str:
        return f"{self.url}/#/models/{name}/versions/{number}"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def mlflow(mlflow_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mlflow]:
    home = tmp_path_factory.mktemp("mlflow")
    with MlflowServer(mlflow_python, home / "server") as server:
        manifest = run_mlflow_json(
            mlflow_python,
            POPULATE.read_text(),
            tracking_uri=server.url,
            workdir=home / "client",
            name="populate.py",
        )
        yield Mlflow(server, manifest)


def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """``modelreg ARGS`` in this process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    saved = {k: os.environ.get(k) for k in env or {}}
    os.environ.update(env or {})
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return code, out.getvalue(), err.getvalue()


def import_json(registry: str, url: str, *extra: str, env: dict[str, str] | None = None) -> Any:
    code, out, err = cli(
        "--registry", registry, "import", "mlflow", "--from", url, "--json", *extra, env=env
    )
    return code, json.loads(out) if out.strip() else None, err


def downloaded(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): sha256(p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def by_name(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in summary["models"]}


def statuses(model: dict[str, Any]) -> dict[int, str]:
    return {v["version"]: v["status"] for v in model["versions"]}


# --------------------------------------------------------------------------------------------
# Into an embedded registry: fraud first (--models), then everything, then everything again.


@pytest.fixture(scope="module")
def embedded(mlflow: Mlflow, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = str(tmp_path_factory.mktemp("embedded") / "registry")
    runs = {
        "fraud only": import_json(home, mlflow.url, "--models", "fraud", "--keep-stages"),
        "first": import_json(home, mlflow.url, "--keep-stages"),
        "second": import_json(home, mlflow.url, "--keep-stages"),
    }
    return {"home": home, "runs": runs}


@pytest.fixture(scope="module")
def registry(embedded: dict[str, Any]) -> Iterator[modelreg.Registry]:
    reg = modelreg.Registry(embedded["home"])
    yield reg
    reg.close()


class TestEmbedded:
    def test_models_filters_by_glob(self, embedded):
        code, summary, _ = embedded["runs"]["fraud only"]
        assert code == 0
        assert [m["name"] for m in summary["models"]] == ["fraud"]
        assert statuses(summary["models"][0]) == {1: "imported", 2: "imported", 4: "imported"}

    def test_a_partial_import_is_completed_by_the_next_run(self, embedded):
        code, summary, _ = embedded["runs"]["first"]
        assert code == 0
        models = by_name(summary)
        assert models["fraud"]["status"] == "existing"
        assert statuses(models["fraud"]) == {1: "present", 2: "present", 4: "present"}
        assert statuses(models["churn"]) == {1: "imported", 2: "imported"}
        assert statuses(models["ranker.a"]) == {1: "imported"}

    def test_a_second_run_imports_nothing(self, embedded):
        code, summary, _ = embedded["runs"]["second"]
        assert code == 0
        totals = summary["totals"]
        assert totals["versions_imported"] == 0
        assert totals["bytes"] == 0
        assert totals["aliases_set"] == 0
        assert totals["versions_present"] == 6
        assert totals["aliases_present"] == 3

    def test_numbers_are_kept_with_their_gap(self, registry):
        assert [v.version for v in registry.list_versions("fraud")] == [4, 2, 1]
        assert [v.version for v in registry.list_versions("churn")] == [2, 1]

    def test_the_gap_is_never_filled(self, embedded, tmp_path):
        # On a copy: the module's registry stays exactly as the import left it.
        home = tmp_path / "copy"
        shutil.copytree(embedded["home"], home)
        (tmp_path / "next.bin").write_bytes(b"next")
        with modelreg.Registry(home) as reg:
            assert reg.register("fraud", tmp_path / "next.bin", capture=False).version == 5

    @pytest.mark.parametrize(
        ("name", "number"), [("fraud", 1), ("fraud", 2), ("fraud", 4), ("churn", 1), ("churn", 2)]
    )
    def test_files_are_byte_identical(self, registry, mlflow, tmp_path, name, number):
        expected = mlflow.files(name, number)
        version = registry.get_version(f"{name}:{number}")
        assert {f.path: f.sha256 for f in version.files} == expected
        registry.download(f"{name}:{number}", tmp_path / "out")
        assert downloaded(tmp_path / "out") == expected

    def test_the_sklearn_model_is_complete(self, registry):
        paths = {f.path for f in registry.get_version("fraud:1").files}
        assert {"MLmodel", "model.skops", "requirements.txt"} <= paths

    @pytest.mark.parametrize(
        ("name", "number"), [("fraud", 1), ("fraud", 2), ("fraud", 4), ("churn", 2)]
    )
    def test_lineage_names_the_mlflow_source(self, registry, mlflow, name, number):
        lineage = registry.get_version(f"{name}:{number}").lineage
        expected = mlflow.version(name, number)
        assert lineage["run_id"] == expected["run_id"]
        assert lineage["source"] == expected["source"]
        assert lineage["imported_from"] == mlflow.origin(name, number)

    def test_stages_one_production_and_the_older_archived(self, registry):
        stages = {v.version: v.stage for v in registry.list_versions("fraud")}
        assert stages == {1: "staging", 2: "archived", 4: "production"}
        assert registry.get_model("fraud").stages == {"production": 4, "staging": 1}

    def test_the_summary_says_why_version_2_is_archived(self, embedded):
        _, summary, _ = embedded["runs"]["fraud only"]
        notes = by_name(summary)["fraud"]["notes"]
        assert any("2, 4 in Production" in n and "2 archived" in n for n in notes)

    def test_history_records_the_imported_stages(self, registry, mlflow):
        moves = [
            (h["version"], h["from_stage"], h["to_stage"], h["reason"])
            for h in registry.history("fraud")
            if h["kind"] == "stage"
        ]
        bypass = "stage applied by an admin at registration, bypassing the promotion policy"
        assert moves == [
            (n, "none", stage, f"imported from {mlflow.origin('fraud', n)}; {bypass}")
            for n, stage in ((1, "staging"), (2, "archived"), (4, "production"))
        ]

    def test_descriptions_and_tags(self, registry):
        model = registry.get_model("fraud")
        assert (model.description, model.tags) == ("Fraud scorer", {"team": "risk"})
        assert registry.get_model("churn").description == "Churn model"
        second = registry.get_version("fraud:2")
        assert (second.description, second.tags) == ("second", {"reviewed": "yes"})
        fourth = registry.get_version("fraud:4")
        assert (fourth.description, fourth.tags) == ("fourth", {"k": "v"})

    def test_run_metrics_and_params_are_copied(self, registry):
        assert registry.get_version("fraud:1").metrics == {"accuracy": 0.91}
        assert registry.get_version("fraud:1").params == {"C": "1.0"}
        second = registry.get_version("fraud:2")
        assert (second.metrics, second.params) == ({"accuracy": 0.93}, {"lr": "0.01"})

    def test_what_modelreg_cannot_keep_is_reported(self, embedded, registry):
        _, summary, _ = embedded["runs"]["first"]
        churn_1 = by_name(summary)["churn"]["versions"][0]
        assert any("'bad key'" in n for n in churn_1["notes"])
        assert registry.get_version("churn:1").tags == {"ok": "1"}
        _, fraud_run, _ = embedded["runs"]["fraud only"]
        fraud_2 = by_name(fraud_run)["fraud"]["versions"][1]
        assert any("'bad metric'" in n for n in fraud_2["notes"])

    def test_aliases(self, registry):
        assert registry.get_model("fraud").aliases == {"challenger": 2, "champion": 4}
        assert registry.get_version("churn@prod").version == 2

    def test_files_outside_the_artifact_store_are_skipped_with_a_reason(self, embedded):
        _, summary, _ = embedded["runs"]["first"]
        remote = by_name(summary)["remote"]["versions"]
        assert [(v["version"], v["status"]) for v in remote] == [(1, "skipped")]
        assert "s3://bucket/model" in remote[0]["reason"]
        assert "mlflow-artifacts:/" in remote[0]["reason"]

    @pytest.mark.parametrize(
        ("name", "words"),
        [("bad name", "not a valid modelreg name"), ("ranker_a", "same model as 'ranker.a'")],
    )
    def test_names_modelreg_cannot_take_are_skipped(self, embedded, registry, name, words):
        _, summary, _ = embedded["runs"]["first"]
        model = by_name(summary)[name]
        assert model["status"] == "skipped"
        assert words in model["reason"]
        assert summary["totals"]["models_skipped"] == 2

    def test_imports_are_audited(self, registry):
        events = [e for e in registry.audit("fraud") if e.action == "registry:version:register"]
        assert [(e.target, e.after["number_given"]) for e in events] == [
            ("fraud:1", True),
            ("fraud:2", True),
            ("fraud:4", True),
        ]
        assert registry.verify_audit()["ok"]

    def test_kept_stages_are_audited_as_import_applied(self, registry, mlflow):
        stages = [e for e in registry.audit("fraud") if e.action == "registry:version:stage"]
        assert [(e.target, e.after["stage"], e.after["action"]) for e in stages] == [
            ("fraud:1", "staging", "import"),
            ("fraud:2", "archived", "import"),
            ("fraud:4", "production", "import"),
        ]
        assert stages[2].after["imported_from"] == mlflow.origin("fraud", 4)
        assert "bypassing the promotion policy" in stages[2].reason


def test_human_output_is_a_summary(mlflow, tmp_path):
    code, out, err = cli(
        "--registry",
        str(tmp_path / "r"),
        "import",
        "mlflow",
        "--from",
        mlflow.url,
        "--models",
        "churn",
    )
    assert code == 0, err
    assert "churn: created" in out
    assert "@prod → 2  set" in out
    assert "versions: 2 imported, 0 already here, 0 skipped, 0 failed" in out


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_progress_bar_on_stderr(mlflow, tmp_path, monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    home = str(tmp_path / "r")
    code = main(["--registry", home, "import", "mlflow", "--from", mlflow.url, "--models", "[cr]*"])
    assert code == 0
    err = terminal.getvalue()
    assert "4/4 versions" in err  # churn 1, 2; ranker.a 1; remote 1
    assert "remote:1 skipped: its files are at s3://bucket/model" in err


def test_dry_run_changes_nothing(mlflow, tmp_path):
    home = str(tmp_path / "r")
    code, summary, _ = import_json(home, mlflow.url, "--dry-run", "--keep-stages")
    assert code == 0
    assert summary["dry_run"] is True
    fraud = by_name(summary)["fraud"]
    assert fraud["status"] == "planned"
    assert statuses(fraud) == {1: "planned", 2: "planned", 4: "planned"}
    assert {v["version"]: v["stage"] for v in fraud["versions"]} == {
        1: "staging",
        2: "archived",
        4: "production",
    }
    assert summary["totals"]["bytes"] > 300_000
    assert list(modelreg.Registry(home).list_models()) == []


def test_without_keep_stages_no_stage_is_applied(mlflow, tmp_path):
    # Issue 18: MLflow's Production must not become production here behind the policy's back.
    home = str(tmp_path / "r")
    with modelreg.Registry(home) as reg:
        reg.set_policy_rule("*", "production", approvals=2)
    code, summary, _ = import_json(home, mlflow.url, "--models", "fraud")
    assert code == 0
    fraud = by_name(summary)["fraud"]
    assert {v["version"]: (v["stage"], v["mlflow_stage"]) for v in fraud["versions"]} == {
        1: ("none", "staging"),
        2: ("none", "archived"),
        4: ("none", "production"),
    }
    assert any("modelreg promote fraud 4 --to production" in n for n in fraud["notes"])
    with modelreg.Registry(home) as reg:
        assert reg.get_model("fraud").stages == {}
        assert not [e for e in reg.audit("fraud") if e.action == "registry:version:stage"]


# --------------------------------------------------------------------------------------------
# Interrupted imports finish on the next run.


class Interrupt:
    """A progress listener that stops the import like Ctrl-C, after some versions or bytes."""

    def __init__(self, *, after_versions: int | None = None, in_version: str | None = None):
        self.after_versions = after_versions
        self.in_version = in_version
        self.finished = 0

    def start(self, versions: int) -> None:
        pass

    def begin(self, label: str, size: int):
        if label != self.in_version:
            return None

        def count(n: int) -> None:
            raise KeyboardInterrupt

        return count

    def done(self, model: str, result: Any) -> None:
        self.finished += 1
        if self.after_versions is not None and self.finished >= self.after_versions:
            raise KeyboardInterrupt


@pytest.mark.parametrize(
    "interrupt",
    [Interrupt(after_versions=1), Interrupt(in_version="fraud:2")],
    ids=["between versions", "mid-file"],
)
def test_an_interrupted_import_finishes_on_the_next_run(mlflow, tmp_path, interrupt):
    home = tmp_path / "r"
    with modelreg.Registry(home) as reg, pytest.raises(KeyboardInterrupt):
        import_mlflow(reg, mlflow.url, models="fraud", progress=interrupt)
    with modelreg.Registry(home) as reg:
        assert [v.version for v in reg.list_versions("fraud")] == [1]
    code, summary, _ = import_json(str(home), mlflow.url, "--models", "fraud")
    assert code == 0
    assert statuses(summary["models"][0]) == {1: "present", 2: "imported", 4: "imported"}
    with modelreg.Registry(home) as reg:
        assert reg.get_model("fraud").aliases == {"challenger": 2, "champion": 4}
        assert {f.path: f.sha256 for f in reg.get_version("fraud:2").files} == mlflow.files(
            "fraud", 2
        )


# --------------------------------------------------------------------------------------------
# What is already in the registry is never overwritten.


def test_numbers_taken_by_other_versions_are_conflicts(mlflow, tmp_path):
    home = tmp_path / "r"
    (tmp_path / "mine.bin").write_bytes(b"not from mlflow")
    with modelreg.Registry(home) as reg:
        reg.register("churn", tmp_path / "mine.bin", capture=False)
    code, summary, _ = import_json(str(home), mlflow.url, "--models", "churn")
    assert code == 6  # conflicts only
    churn = summary["models"][0]
    assert statuses(churn) == {1: "failed", 2: "imported"}
    assert churn["versions"][0]["conflict"] is True
    assert churn["versions"][0]["reason"] == (
        "churn:1 already exists here (registered here, not imported)"
    )
    with modelreg.Registry(home) as reg:
        assert reg.get_version("churn:1").lineage["imported_from"] is None


def test_an_alias_pointing_elsewhere_is_kept(mlflow, tmp_path):
    home = str(tmp_path / "r")
    assert import_json(home, mlflow.url, "--models", "churn")[0] == 0
    with modelreg.Registry(home) as reg:
        reg.set_alias("churn", "prod", 1)
    code, summary, _ = import_json(home, mlflow.url, "--models", "churn")
    assert code == 0
    alias = summary["models"][0]["aliases"][0]
    assert (alias["status"], alias["version"]) == ("kept", 2)
    with modelreg.Registry(home) as reg:
        assert reg.get_model("churn").aliases == {"prod": 1}


def test_a_protected_alias_becomes_a_request(mlflow, tmp_path):
    home = str(tmp_path / "r")
    with modelreg.Registry(home) as reg:
        reg.set_policy_rule("*", "@prod", approvals=1)
    code, summary, _ = import_json(home, mlflow.url, "--models", "churn")
    assert code == 0
    alias = summary["models"][0]["aliases"][0]
    assert alias["status"] == "pending"
    assert "waits for approval" in alias["reason"]
    assert summary["totals"]["aliases_not_set"] == 1
    with modelreg.Registry(home) as reg:
        assert reg.get_model("churn").aliases == {}
        assert [p.version for p in reg.promotions("churn", state="pending")] == [2]


# --------------------------------------------------------------------------------------------
# Errors before anything is imported.


def test_an_unreachable_server_is_a_clear_error(tmp_path):
    code, out, err = cli(
        "--registry",
        str(tmp_path / "r"),
        "import",
        "mlflow",
        "--from",
        f"http://127.0.0.1:{free_port()}",
    )
    assert code == 7  # unreachable (docs/cli.md: exit codes)
    assert out == ""
    assert "cannot reach the MLflow server" in err


class _NotMlflow(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_a_server_that_is_not_mlflow_is_a_clear_error(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotMlflow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        code, out, _ = cli(
            "--registry", str(tmp_path / "r"), "import", "mlflow", "--from", url, "--json"
        )
    finally:
        server.shutdown()
        server.server_close()
    assert code == 1
    error = json.loads(out)["error"]
    assert error["code"] == "invalid_input"
    assert "does not answer as an MLflow server" in error["message"]


def test_help_explains_the_command():
    code, out, _ = cli("import", "mlflow", "--help")
    assert code == 0
    for words in (
        "--from",
        "--models",
        "--dry-run",
        "--keep-stages",
        "--max-time",
        "--max-pages",
        "MLFLOW_TRACKING_TOKEN",
        "Production",
    ):
        assert words in out


# --------------------------------------------------------------------------------------------
# Into a real modelreg server: the same import over HTTP, with an admin token.


@pytest.fixture(scope="module")
def server(mlflow: Mlflow, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A modelreg server with users; a contributor tries to import, then an admin, twice."""
    home = tmp_path_factory.mktemp("server") / "registry"
    tokens = {}
    for name, role in (("root", "admin"), ("alice", "contributor")):
        assert cli("--registry", str(home), "users", "create", name, "--role", role)[0] == 0
        code, out, _ = cli("--registry", str(home), "tokens", "create", name, "--json")
        assert code == 0
        tokens[name] = json.loads(out)["token"]
    with ServerProcess(home) as proc:
        runs = {
            who: import_json(
                proc.url, mlflow.url, "--keep-stages", env={"MODELREG_TOKEN": tokens[user]}
            )
            for who, user in (("contributor", "alice"), ("first", "root"), ("second", "root"))
        }
        yield {"url": proc.url, "token": tokens["root"], "runs": runs}


class TestServer:
    def test_a_contributor_may_not_import(self, server):
        code, out, _ = server["runs"]["contributor"]
        assert code == 5
        assert out["error"]["code"] == "permission_denied"
        assert "registry:admin" in out["error"]["message"]

    def test_a_refused_import_leaves_nothing_behind(self, server):
        _, first, _ = server["runs"]["first"]
        assert {m["name"]: m["status"] for m in first["models"]}["churn"] == "created"

    def test_an_admin_imports_everything_then_nothing(self, server):
        code, first, _ = server["runs"]["first"]
        assert code == 0
        assert first["totals"]["versions_imported"] == 6
        code, second, _ = server["runs"]["second"]
        assert code == 0
        assert second["totals"]["versions_imported"] == 0
        assert second["totals"]["versions_present"] == 6

    @pytest.mark.parametrize(
        ("name", "number"), [("fraud", 1), ("fraud", 2), ("fraud", 4), ("churn", 2)]
    )
    def test_same_result_as_embedded(self, mlflow, server, tmp_path, name, number):
        with modelreg.Registry(server["url"], token=server["token"]) as reg:
            version = reg.get_version(f"{name}:{number}")
            assert {f.path: f.sha256 for f in version.files} == mlflow.files(name, number)
            assert version.lineage["imported_from"] == mlflow.origin(name, number)
            assert version.lineage["run_id"] == mlflow.version(name, number)["run_id"]
            reg.download(f"{name}:{number}", tmp_path / "out")
        assert downloaded(tmp_path / "out") == mlflow.files(name, number)

    def test_stages_and_aliases(self, server):
        with modelreg.Registry(server["url"], token=server["token"]) as reg:
            model = reg.get_model("fraud")
            assert model.stages == {"production": 4, "staging": 1}
            assert model.aliases == {"challenger": 2, "champion": 4}
            assert [v.version for v in reg.list_versions("fraud")] == [4, 2, 1]
