"""Scanning through the registry's doors: registration scans, the production default refuses
``unsafe``, ``scan`` is a search field and a gate, pending scans finish (in the server's worker,
or before a gate), rescans are audited, and ``modelreg show`` / ``modelreg scan`` print it.

No payload ever runs: each test that registers one checks its marker file is absent.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import safety_files
from sqlalchemy import create_engine, update

import modelreg
from modelreg import errors
from modelreg.cli.main import main
from modelreg.db.tables import Version
from modelreg.db.tables.safety import BlobScan
from registry_folders import LiveServer


def _home(tmp_path: Path, **settings: object) -> Path:
    home = tmp_path / "registry"
    home.mkdir()
    lines = [f"{k} = {str(v).lower() if isinstance(v, bool) else v}" for k, v in settings.items()]
    (home / "modelreg.toml").write_text("\n".join(lines) + "\n")
    return home


@pytest.mark.parametrize("case", sorted(safety_files.MALICIOUS))
def test_a_malicious_version_is_unsafe_and_kept_out_of_production(case: str, tmp_path: Path):
    if case.startswith("joblib"):
        pytest.importorskip("joblib")
    marker = tmp_path / "PAYLOAD-RAN"
    path = safety_files.write(tmp_path / "files", case, marker)
    with modelreg.Registry(_home(tmp_path)) as reg:
        version = reg.register("suspect", path, capture=False)
        assert version.scan is not None
        assert version.scan["status"] == "unsafe"
        assert version.scan["findings"][0]["file"] == path.name
        with pytest.raises(errors.PolicyViolation, match="registry default"):
            reg.promote("suspect", 1, "production")
        assert reg.get_version("suspect:1").stage == "none"
        # Other stages are the policy's business: staging has no rule here.
        assert reg.promote("suspect", 1, "staging").state == "applied"
    assert not marker.exists()


def test_benign_models_are_clean_and_reach_production(tmp_path: Path):
    pytest.importorskip("sklearn")
    models = safety_files.benign(tmp_path / "models")
    with modelreg.Registry(_home(tmp_path)) as reg:
        version = reg.register("good", list(models.values()), capture=False)
        assert version.scan is not None
        assert (version.scan["status"], version.scan["findings"]) == ("clean", [])
        assert reg.promote("good", 1, "production").state == "applied"


def test_scan_is_a_search_field_and_a_gate(tmp_path: Path, files: Path, home: Path):
    # Both databases: the field reads the status out of the version's JSON.
    marker = tmp_path / "PAYLOAD-RAN"
    bad = safety_files.write(tmp_path / "bad", "os.system", marker)
    pytest.importorskip("sklearn")
    good = safety_files.benign(tmp_path / "good")["sklearn forest (joblib)"]
    with modelreg.Registry(home) as reg:
        reg.register("m", bad, capture=False)
        reg.register("m", good, capture=False)
        reg.register("m", files / "model_dir" / "sub" / "config.json", capture=False)
        found = {
            status: [v.version for v in reg.search(f"name = 'm' AND scan = '{status}'")]
            for status in ("unsafe", "clean", "not_applicable")
        }
        assert found == {"unsafe": [1], "clean": [2], "not_applicable": [3]}
        assert [v.version for v in reg.search("name = 'm' AND scan != 'unsafe'")] == [3, 2]
        with pytest.raises(errors.InvalidQuery, match="scan is one of"):
            reg.search("scan = 'dirty'")
        reg.set_policy_rule("m", "staging", requires=["scan = 'clean'"])
        with pytest.raises(errors.PolicyViolation, match="scan = 'clean'") as refused:
            reg.promote("m", 1, "staging")
        assert "'unsafe'" in str(refused.value)
        assert reg.promote("m", 2, "staging").state == "applied"
    assert not marker.exists()


def test_an_operator_can_lift_the_production_default(tmp_path: Path):
    marker = tmp_path / "PAYLOAD-RAN"
    bad = safety_files.write(tmp_path / "bad", "os.system", marker)
    with modelreg.Registry(_home(tmp_path, allow_unsafe_production=True)) as reg:
        reg.register("m", bad, capture=False)
        assert reg.promote("m", 1, "production").state == "applied"
    assert not marker.exists()


def test_a_rescan_with_a_newer_scanner_records_the_change_in_the_audit_log(tmp_path: Path):
    marker = tmp_path / "PAYLOAD-RAN"
    bad = safety_files.write(tmp_path / "bad", "obfuscated STACK_GLOBAL", marker)
    home = _home(tmp_path)
    with modelreg.Registry(home) as reg:
        reg.register("m", bad, capture=False)
    # What an older scanner that missed the payload would have left behind.
    engine = create_engine(f"sqlite:///{home / 'registry.db'}")
    with engine.begin() as conn:
        conn.execute(update(BlobScan).values(status="clean", findings=[], scanner="old/0"))
        conn.execute(
            update(Version).values(
                scan={"status": "clean", "findings": [], "scanner": "old/0", "scanned_at": "x"}
            )
        )
    engine.dispose()
    with modelreg.Registry(home) as reg:
        assert reg.get_version("m:1").scan["status"] == "clean"
        result = reg.scan("m:1")
        assert result["changed"] is True
        assert (result["before"]["status"], result["after"]["status"]) == ("clean", "unsafe")
        events = [e for e in reg.audit("m") if e.action == "registry:version:scan"]
        assert len(events) == 1
        assert (events[0].before["status"], events[0].after["status"]) == ("clean", "unsafe")
        # Nothing changes the second time: no second event.
        assert reg.scan("m:1", force=True)["changed"] is False
        assert [e.action for e in reg.audit("m")].count("registry:version:scan") == 1
        assert reg.scan_all()[0]["status"] == "unsafe"
    assert not marker.exists()


def test_show_and_scan_print_the_scan_and_bad_arguments_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    marker = tmp_path / "PAYLOAD-RAN"
    bad = safety_files.write(tmp_path / "bad", "runpy", marker)
    home = _home(tmp_path)
    with modelreg.Registry(home) as reg:
        reg.register("m", bad, capture=False)
    monkeypatch.setenv("MODELREG_URI", str(home))
    assert main(["show", "m:1"]) == 0
    out = capsys.readouterr().out
    assert "scan: unsafe" in out
    assert "runpy.run_path" in out
    assert main(["scan", "m:1"]) == 0
    assert "critical import: model.pkl: runpy.run_path" in capsys.readouterr().out
    assert main(["scan"]) == 1  # a usage error
    assert "give REF or --all" in capsys.readouterr().err
    assert main(["scan", "m:1", "--all"]) == 1
    assert main(["scan", "m:9"]) == 2  # not found
    assert not marker.exists()


def _wait_for(check, seconds: float = 60.0):  # type: ignore[no-untyped-def]
    """Poll until ``check()`` is truthy (the worker runs in its own thread)."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_big_files_finish_after_the_registration_and_gates_wait_for_them(
    tmp_path: Path, home: Path
):
    marker = tmp_path / "PAYLOAD-RAN"
    bad = safety_files.write(tmp_path / "bad", "pickle in a PyTorch zip", marker)
    pytest.importorskip("sklearn")
    good = safety_files.benign(tmp_path / "good")["sklearn forest (joblib)"]
    with (home / "modelreg.toml").open("a") as toml:
        toml.write("scan_inline_bytes = 0\n")  # every code file is "big"
    with LiveServer(home) as server, modelreg.Registry(server.url) as reg:
        pending = reg.register("m", bad, capture=False)
        assert pending.scan is not None
        assert pending.scan["status"] == "pending"
        assert pending.scan["pending"] == ["model.pt"]
        # The gate waits for the scan instead of judging a pending one.
        with pytest.raises(errors.PolicyViolation, match="found code"):
            reg.promote("m", 1, "production")
        assert reg.get_version("m:1").scan["status"] == "unsafe"
        reg.register("m", good, capture=False)
        scanned = _wait_for(lambda: reg.get_version("m:2").scan["status"] != "pending")
        assert scanned
        assert reg.get_version("m:2").scan["status"] == "clean"
        events = [e for e in reg.audit("m") if e.action == "registry:version:scan"]
        assert {e.actor for e in events} >= {"modelreg-scanner"}
    assert not marker.exists()


def test_the_worker_finishes_what_was_left_pending_when_the_server_starts(tmp_path: Path):
    from modelreg.config import Settings
    from modelreg.db.session import make_engine, transaction
    from modelreg.services import registration, versions
    from modelreg.services.actor import Actor
    from modelreg.storage import open_blob_store

    pytest.importorskip("sklearn")
    good = safety_files.benign(tmp_path / "good")["sklearn pipeline (pickle)"]
    home = _home(tmp_path)
    with modelreg.Registry(home) as reg:
        reg.create_model("m")
    settings = Settings.for_home(home)
    store = open_blob_store(settings.artifacts_location)
    with good.open("rb") as fh:
        blob = store.put(fh)
    engine = make_engine(settings.db_url)
    # A registration whose process stopped before scanning: the version stays pending.
    with transaction(engine, write=True) as session:
        spec = registration.RegistrationSpec(
            name="m", files=[versions.FileSpec("pipeline.pkl", blob.sha256, blob.size)]
        )
        registration.register_version(
            session, store, spec, actor=Actor("owner"), files_readable=True, scan_inline_bytes=0
        )
    engine.dispose()
    with LiveServer(home) as server, modelreg.Registry(server.url) as reg:
        assert _wait_for(lambda: reg.get_version("m:1").scan["status"] == "clean")


@pytest.mark.anyio
async def test_the_version_page_shows_the_findings(tmp_path: Path):
    import httpx

    from modelreg.api.app import create_app
    from modelreg.config import Settings

    marker = tmp_path / "PAYLOAD-RAN"
    bad = safety_files.write(tmp_path / "bad", "subprocess", marker)
    home = _home(tmp_path)
    with modelreg.Registry(home) as reg:
        reg.register("m", bad, capture=False)
    app = create_app(Settings.for_home(home))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
        page = (await http.get("/models/m/versions/1")).text
    app.state.registry.engine.dispose()
    assert '<span class="scan-unsafe">unsafe</span>' in page
    assert "<code>subprocess.call</code>" in page
    assert "refuses this version for production" in page
    assert not marker.exists()


def test_an_import_straight_into_production_meets_the_default(tmp_path: Path):
    from modelreg.config import Settings
    from modelreg.db.session import make_engine, transaction
    from modelreg.services import registration, versions
    from modelreg.services.actor import Actor
    from modelreg.storage import open_blob_store

    marker = tmp_path / "PAYLOAD-RAN"
    bad = safety_files.write(tmp_path / "bad", "builtins.exec", marker)
    home = _home(tmp_path)
    with modelreg.Registry(home) as reg:
        reg.create_model("m")
    settings = Settings.for_home(home)
    store = open_blob_store(settings.artifacts_location)
    with bad.open("rb") as fh:
        blob = store.put(fh)
    engine = make_engine(settings.db_url)
    spec = registration.RegistrationSpec(
        name="m",
        files=[versions.FileSpec(bad.name, blob.sha256, blob.size)],
        stage="production",
        lineage=versions.Lineage(imported_from="mlflow://elsewhere/m/1"),
    )
    with (
        pytest.raises(errors.PolicyViolation, match="imported into production"),
        transaction(engine, write=True) as session,
    ):
        # An admin's import, with a big-file budget of 0: still judged before it lands.
        registration.register_version(
            session, store, spec, actor=Actor("owner"), files_readable=True, scan_inline_bytes=0
        )
    engine.dispose()
    with modelreg.Registry(home) as reg:
        assert reg.list_versions("m").items == []
    assert not marker.exists()


def test_rescans_need_write_rights_and_a_rescan_of_everything_needs_admin(tmp_path: Path):
    marker = tmp_path / "PAYLOAD-RAN"
    bad = safety_files.write(tmp_path / "bad", "os.system", marker)
    home = _home(tmp_path)
    with modelreg.Registry(home) as local:
        local.register("m", bad, capture=False)
        local.create_user("root", role="admin")
        local.create_user("cora", role="contributor")
        local.create_user("vic", role="viewer")
        tokens = {name: local.create_token(name)["token"] for name in ("root", "cora", "vic")}
    with LiveServer(home) as server:
        with modelreg.Registry(server.url, token=tokens["vic"]) as viewer:
            assert viewer.get_version("m:1").scan["status"] == "unsafe"
            with pytest.raises(errors.PermissionDenied):
                viewer.scan("m:1")
        with modelreg.Registry(server.url, token=tokens["cora"]) as contributor:
            assert contributor.scan("m/latest")["after"]["status"] == "unsafe"
            with pytest.raises(errors.PermissionDenied):
                contributor.scan_all()
        with modelreg.Registry(server.url, token=tokens["root"]) as admin:
            assert [(i["name"], i["status"]) for i in admin.scan_all()] == [("m", "unsafe")]
    assert not marker.exists()
