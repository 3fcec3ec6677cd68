"""``Registry.export`` / ``Registry.import_bundle`` and ``modelreg export`` / ``import bundle``
(issue 25): versions move with their files and records, verified; importing twice changes
nothing; taken numbers are mapped and recorded; each class of bad bundle is refused and
changes nothing."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

import modelreg
from modelreg.errors import InvalidInput
from server_process import run_cli
from signing_keys import make_key


def write_file(folder: Path, name: str, size: int = 3000) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(os.urandom(size) + name.encode())
    return path


@pytest.fixture
def source(reg: modelreg.Registry, tmp_path: Path) -> modelreg.Registry:
    """fraud:1 and fraud:2 (child of 1, two files in a folder), embedded and remote."""
    src = tmp_path / "src"
    reg.register(
        "fraud",
        write_file(src, "a.bin"),
        metrics={"auc": 0.91},
        params={"depth": 6},
        tags={"team": "risk"},
        description="first",
        semver="1.0.0",
        datasets=["train@v1"],
        capture=False,
    )
    write_file(src / "dir" / "sub", "w.bin")
    write_file(src / "dir", "c.txt")
    reg.register("fraud", src / "dir", parents=["fraud:1"], framework="sklearn", capture=False)
    return reg


@pytest.fixture
def target(tmp_path: Path) -> modelreg.Registry:
    registry = modelreg.Registry(tmp_path / "target")
    yield registry
    registry.close()


def test_versions_move_with_their_records(source, target, tmp_path):
    bundle = tmp_path / "b.tar"
    manifest = source.export(["fraud:1", "fraud:2"], bundle)
    assert [e["ref"] for e in manifest["versions"]] == ["fraud:1", "fraud:2"]
    summary = target.import_bundle(bundle)
    assert summary.totals()["versions_imported"] == 2
    one, two = target.get_version("fraud:1"), target.get_version("fraud:2")
    was = source.get_version("fraud:1")
    assert (one.metrics, one.params, one.tags) == (was.metrics, was.params, was.tags)
    assert (one.description, one.semver) == ("first", "1.0.0")
    assert one.lineage["datasets"] == was.lineage["datasets"]
    assert one.lineage["imported_from"].endswith("#/models/fraud/versions/1")
    assert two.lineage["parents"] == ["fraud:1"]
    assert two.framework == "sklearn"
    assert {(f.path, f.sha256) for f in two.files} == {
        (f.path, f.sha256) for f in source.get_version("fraud:2").files
    }
    out = tmp_path / "out"
    target.download("fraud:2", out)
    assert (out / "sub" / "w.bin").read_bytes()[-5:] == b"w.bin"


def test_importing_twice_changes_nothing(source, target, tmp_path):
    bundle = tmp_path / "b.tar"
    source.export("fraud:1", bundle)
    target.import_bundle(bundle)
    events = len(target.audit(limit=1000))
    again = target.import_bundle(bundle)
    assert again.totals()["versions_present"] == 1
    assert again.totals()["versions_imported"] == 0
    assert len(target.audit(limit=1000)) == events
    assert [v.version for v in target.list_versions("fraud")] == [1]


def test_a_taken_number_is_mapped_and_recorded(source, target, tmp_path):
    target.register("fraud", write_file(tmp_path / "t", "mine.bin"), capture=False)
    target.register("fraud", write_file(tmp_path / "t", "mine2.bin"), capture=False)
    bundle = tmp_path / "b.tar"
    source.export(["fraud:1", "fraud:2"], bundle)
    summary = target.import_bundle(bundle)
    (model,) = summary.models
    assert [(v.version, v.number_here) for v in model.versions] == [(1, 3), (2, 4)]
    four = target.get_version("fraud:4")
    assert four.tags["modelreg.imported_version"] == "2"
    assert four.lineage["parents"] == ["fraud:3"]  # the parent followed its mapping
    assert four.lineage["imported_from"].endswith("/versions/2")


def test_cli_export_and_import_print_the_mapping(tmp_path):
    home, other = tmp_path / "a", tmp_path / "b"
    with modelreg.Registry(home) as reg:
        reg.register("fraud", write_file(tmp_path / "s", "x.bin"), capture=False)
    with modelreg.Registry(other) as reg:
        reg.register("fraud", write_file(tmp_path / "s", "y.bin"), capture=False)
    bundle = tmp_path / "x.tar"
    done = run_cli("--registry", str(home), "export", "fraud:1", "-o", str(bundle))
    assert done.returncode == 0, done.stderr
    done = run_cli("--registry", str(other), "import", "bundle", str(bundle))
    assert done.returncode == 0, done.stderr
    assert "fraud:1 → fraud:2 imported" in done.stdout
    done = run_cli("--registry", str(other), "import", "bundle", str(bundle), "--json")
    assert json.loads(done.stdout)["totals"]["versions_present"] == 1


# -- bad bundles ---------------------------------------------------------------------------


@pytest.fixture
def good(tmp_path: Path) -> Path:
    with modelreg.Registry(tmp_path / "from") as reg:
        reg.register("fraud", write_file(tmp_path / "s", "m.bin", 20_000), capture=False)
        reg.export("fraud:1", tmp_path / "good.tar")
    return tmp_path / "good.tar"


def members(bundle: Path) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    with tarfile.open(bundle) as tar:
        return [
            (m, tar.extractfile(m).read() if m.isreg() else None)  # type: ignore[union-attr]
            for m in tar.getmembers()
        ]


def rewrite(bundle: Path, target: Path, change) -> Path:
    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in change(members(bundle)):
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return target


def extra(info: tarfile.TarInfo, data: bytes | None = None):
    def add(items):
        return [*items, (info, data)]

    return add


def flip_file(items):
    return [
        (i, d[:-1] + bytes([d[-1] ^ 1]) if i.name.startswith("files/") else d) for i, d in items
    ]


def flip_manifest(items):
    return [
        (i, d.replace(b'"fraud"', b'"fraux"') if i.name.endswith(".json") else d) for i, d in items
    ]


def symlink() -> tarfile.TarInfo:
    info = tarfile.TarInfo("files/0/evil")
    info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    return info


def hardlink() -> tarfile.TarInfo:
    info = tarfile.TarInfo("files/0/again")
    info.type, info.linkname = tarfile.LNKTYPE, "modelreg-bundle.json"
    return info


def malformed(items):
    import hashlib

    data = json.dumps({"format": "modelreg-bundle", "format_version": 1, "versions": [{}]})
    digest = hashlib.sha256(data.encode()).hexdigest().encode()
    replaced = {"modelreg-bundle.json": data.encode(), "modelreg-bundle.sha256": digest}
    return [(info, replaced.get(info.name, content)) for info, content in items]


def named(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (extra(named("../escape"), b"x"), "leaves the bundle"),
        (extra(named("/abs"), b"x"), "leaves the bundle"),
        (extra(symlink()), "is a symlink"),
        (extra(hardlink()), "is a hard link"),
        (extra(named("files/0/a/../../../x"), b"x"), "leaves the bundle"),
        (malformed, "does not list versions and files"),
        (extra(named("elsewhere.txt"), b"x"), "not part of a bundle"),
        (extra(named("files/0/unlisted.bin"), b"x"), "not in its manifest"),
        (flip_file, "not 20"),
        (flip_manifest, "its manifest hashes to"),
    ],
    ids=[
        "traversal",
        "absolute",
        "symlink",
        "hardlink",
        "inner-traversal",
        "malformed-manifest",
        "stray",
        "extra-file",
        "wrong-digest",
        "manifest",
    ],
)
def test_a_bad_bundle_is_refused_and_changes_nothing(good, tmp_path, change, message):
    bad = rewrite(good, tmp_path / "bad.tar", change)
    with modelreg.Registry(tmp_path / "into") as reg:
        with pytest.raises(InvalidInput, match=message):
            reg.import_bundle(bad)
        assert list(reg.list_models()) == []


def test_a_truncated_bundle_is_refused(good, tmp_path):
    bad = tmp_path / "cut.tar"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with modelreg.Registry(tmp_path / "into") as reg:
        with pytest.raises(InvalidInput, match=r"truncated|missing"):
            reg.import_bundle(bad)
        assert list(reg.list_models()) == []


def test_an_oversize_bundle_is_refused(good, tmp_path):
    with modelreg.Registry(tmp_path / "into") as reg:
        with pytest.raises(InvalidInput, match="more than the 1,000 allowed"):
            reg.import_bundle(good, max_bytes=1000)
        assert list(reg.list_models()) == []


def test_a_file_that_is_not_a_tar_is_refused(tmp_path):
    (tmp_path / "x.tar").write_text("hello")
    done = run_cli("--registry", str(tmp_path / "r"), "import", "bundle", str(tmp_path / "x.tar"))
    assert done.returncode == 1
    assert "cannot be read as a tar archive" in done.stderr


def test_back_into_its_own_registry_it_is_already_there(tmp_path):
    with modelreg.Registry(tmp_path / "r") as reg:
        reg.register("fraud", write_file(tmp_path / "s", "x.bin"), capture=False)
        reg.export("fraud:1", tmp_path / "x.tar")
        summary = reg.import_bundle(tmp_path / "x.tar")
        assert summary.totals()["versions_present"] == 1
        assert [v.version for v in reg.list_versions("fraud")] == [1]


def test_an_object_keeps_its_flavor_and_signature(tmp_path):
    pytest.importorskip("sklearn", reason="the sklearn flavor needs scikit-learn")
    pd = pytest.importorskip("pandas", reason="input examples are DataFrames")
    from sklearn.linear_model import LogisticRegression

    x = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    fitted = LogisticRegression().fit(x, [0, 0, 1, 1])
    with modelreg.Registry(tmp_path / "dev") as dev:
        was = dev.register("clf", model=fitted, input_example=x.head(2))
        dev.export("clf:1", tmp_path / "clf.tar")
    with modelreg.Registry(tmp_path / "prod") as prod:
        prod.import_bundle(tmp_path / "clf.tar")
        got = prod.get_version("clf:1")
        assert got.flavor == was.flavor
        assert got.signature == was.signature
        assert got.environment == was.environment
        assert list(prod.load("clf:1").predict(x)) == list(fitted.predict(x))


def test_import_through_a_server(tmp_path, sqlite_db_url):
    from registry_folders import LiveServer

    home = tmp_path / "served"
    home.mkdir()
    (home / "modelreg.toml").write_text(f'db = "{sqlite_db_url}"\n')
    with modelreg.Registry(tmp_path / "dev") as dev:
        dev.register("fraud", write_file(tmp_path / "s", "x.bin"), capture=False)
        dev.register("fraud", write_file(tmp_path / "s", "y.bin"), capture=False)
        dev.export(["fraud:2"], tmp_path / "x.tar")
    with LiveServer(home) as server, modelreg.Registry(server.url) as remote:
        first = remote.import_bundle(tmp_path / "x.tar")
        assert first.totals()["versions_imported"] == 1
        assert remote.get_version("fraud:2").lineage["imported_from"].endswith("/versions/2")
        again = remote.import_bundle(tmp_path / "x.tar")
        assert again.totals()["versions_present"] == 1
        assert [v.version for v in remote.list_versions("fraud")] == [2]


def test_signatures_travel_and_count_where_their_key_is_trusted(source, tmp_path):
    private, public = make_key(tmp_path, "ci")
    source.add_trusted_key("ci", public)
    source.sign("fraud:1", key=private)
    bundle = tmp_path / "signed.tar"
    source.export(["fraud:1"], bundle)

    trusting = modelreg.Registry(tmp_path / "trusting")
    trusting.add_trusted_key("ci", public)
    trusting.import_bundle(bundle)
    here = trusting.get_version("fraud:1")
    assert here.signed
    assert len(here.signatures) == 1
    assert trusting.verify("fraud:1").verified
    trusting.close()

    # A registry that does not trust the key keeps the version and says why it is unsigned.
    other = modelreg.Registry(tmp_path / "other")
    summary = other.import_bundle(bundle)
    (result,) = summary.models[0].versions
    assert result.status == "imported"
    assert any("signature not stored" in note for note in result.notes), result.notes
    assert not other.get_version("fraud:1").signed
    other.close()
