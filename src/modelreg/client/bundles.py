"""Export versions to a bundle file, and import a bundle: moving versions between registries.

Export downloads each version's files (verified) and writes them with the version's whole
record — metrics, params, tags, lineage, environment, flavor, signature (I/O schema), scan
result and signing signatures when the registry has them — into one tar
(``_bundle_tar``). Import reads the bundle only if every byte checks out, then registers each
version through ``Registry``'s registration with ``imported_from`` naming the version it
copies (``BUNDLE_SOURCE#/models/NAME/versions/N``): the same machinery and summary as
``modelreg import mlflow`` (``services.imports`` numbers, ``_import_summary``).

- a version already copied here (same ``imported_from``, same files) is ``present``: importing
  twice changes nothing the second time;
- numbers are kept when free (above every number the model used here); otherwise the version
  takes the next number, and the tag ``modelreg.imported_version`` keeps the original, beside
  ``imported_from``; the summary lists the mapping;
- parents inside the bundle follow their mapping; parents neither in the bundle nor copied
  here are dropped, with a note (registration refuses parents it cannot read);
- the scan result is not carried over as this registry's verdict (this registry scans what
  it stores); signatures are carried in the bundle for the registry to check.
"""

from __future__ import annotations

import hashlib
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from modelreg.client import _bundle_tar as bundle_tar
from modelreg.client._files import collect_files
from modelreg.client._import_summary import ImportSummary, ModelResult, VersionResult
from modelreg.errors import Conflict, InvalidInput, NotFound, RegistryError
from modelreg.names import parse_ref

if TYPE_CHECKING:
    from modelreg.client import Registry

MAPPED_TAG = "modelreg.imported_version"


def export(registry: Registry, refs: list[str], target: Path) -> dict[str, Any]:
    """Write the versions ``refs`` name into the bundle ``target``; answers its manifest."""
    if not refs:
        raise InvalidInput("name at least one version to export", detail={})
    versions = []
    for ref in refs:
        parse_ref(ref, allow_model=False)
        versions.append(registry.get_version(ref))
    unique = {(v.name, v.version): v for v in versions}
    ordered = sorted(unique.values(), key=lambda v: (v.created_at, v.name, v.version))
    with tempfile.TemporaryDirectory(prefix="modelreg-export-") as tmp:
        folders = []
        entries = []
        for i, version in enumerate(ordered):
            folder = Path(tmp) / str(i)
            registry.download(f"{version.name}:{version.version}", folder)
            folders.append(folder)
            record = version.to_dict()
            if version.signatures:
                # The bundles themselves (a version's record lists signatures without them):
                # the importing registry checks each against its own trusted keys.
                stored = registry.signatures(f"{version.name}:{version.version}")
                record["signature_bundles"] = [s.bundle for s in stored if s.bundle]
            entries.append({"ref": f"{version.name}:{version.version}", "version": record})
        manifest = {
            "format": bundle_tar.FORMAT,
            "format_version": bundle_tar.FORMAT_VERSION,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "source": _identity(registry.uri),
            "versions": entries,
        }
        bundle_tar.write(target, manifest, folders)
    return manifest


def import_bundle(
    registry: Registry, path: Path, *, max_bytes: int = bundle_tar.DEFAULT_MAX_BYTES
) -> ImportSummary:
    """Verify the bundle at ``path`` whole, then register each of its versions here."""
    with tempfile.TemporaryDirectory(prefix="modelreg-bundle-") as tmp:
        manifest = bundle_tar.read(path, Path(tmp), max_bytes=max_bytes)
        summary = ImportSummary(str(manifest["source"]), registry.uri, False, "*")
        importer = _Importer(registry, str(manifest["source"]))
        for i, entry in enumerate(manifest["versions"]):
            result = importer.one(entry["version"], bundle_tar.version_folder(Path(tmp), i))
            model = next((m for m in summary.models if m.name == entry["version"]["name"]), None)
            if model is None:
                model = ModelResult(entry["version"]["name"])
                summary.models.append(model)
            model.versions.append(result)
    return summary


class _Importer:
    def __init__(self, registry: Registry, source: str) -> None:
        self.registry = registry
        self.source = source
        self.mapping: dict[str, int] = {}  # "name:n" in the bundle → number here

    def _sign(self, record: dict[str, Any], name: str, out: VersionResult) -> None:
        """Store the bundle's signatures that verify here (this registry's trusted keys)."""
        bundles = record.get("signature_bundles") or []
        if not isinstance(bundles, list) or (record.get("signatures") and not bundles):
            out.notes.append("the bundle lists signatures without their bundles: none stored")
            return
        for bundle in bundles:
            if not isinstance(bundle, str):
                out.notes.append("a signature that is not a bundle was skipped")
                continue
            try:
                self.registry.backend.add_signature(name, int(out.number_here or 0), bundle, None)
            except RegistryError as exc:
                out.notes.append(f"a signature not stored: {exc.message}")

    def origin(self, name: str, number: int) -> str:
        return f"{self.source}#/models/{quote(name, safe='')}/versions/{number}"

    def one(self, record: dict[str, Any], folder: Path) -> VersionResult:
        name, number = str(record["name"]), int(record["version"])
        files = {f["path"]: (int(f["size"]), str(f["sha256"])) for f in record["files"]}
        out = VersionResult(
            number, "failed", files=len(files), bytes=sum(s for s, _ in files.values())
        )
        origin = self.origin(name, number)
        try:
            copy = self._copy_here(name, number, origin)
            if copy is not None:
                here = {f.path: (f.size, f.sha256) for f in copy.files}
                if here != files:
                    raise Conflict(
                        f"{name}:{copy.version} stands for {origin} here, but its files "
                        f"differ from the bundle's"
                    )
                out.status, out.number_here = "present", copy.version
            else:
                out.number_here = self._register(record, folder, origin, out)
                out.status = "imported"
                self._sign(record, name, out)
            self.mapping[f"{name}:{number}"] = out.number_here
            if out.number_here != number:
                out.notes.append(f"numbered {out.number_here} here: {number} was taken")
        except Conflict as exc:
            out.conflict, out.reason = True, exc.message
        except RegistryError as exc:
            out.reason = exc.message
        return out

    def _copy_here(self, name: str, number: int, origin: str) -> Any:
        if self.source == _identity(self.registry.uri):
            # Back into the registry it came from: the original is the copy.
            try:
                return self.registry.get_version(f"{name}:{number}")
            except NotFound:
                return None
        token: str | None = None
        while True:
            try:
                page = self.registry.list_versions(name, page_size=500, page_token=token)
            except NotFound:
                return None
            for version in page.items:
                if version.lineage.get("imported_from") == origin:
                    return version
            token = page.next_page_token
            if not token:
                return None

    def _register(
        self, record: dict[str, Any], folder: Path, origin: str, out: VersionResult
    ) -> int:
        name, number = str(record["name"]), int(record["version"])
        lineage = dict(record.get("lineage") or {})
        lineage["imported_from"] = origin
        lineage["parents"] = self._parents(lineage.get("parents") or [], out)
        meta: dict[str, Any] = {
            "metrics": record.get("metrics") or {},
            "params": record.get("params") or {},
            "tags": dict(record.get("tags") or {}),
            "description": record.get("description") or "",
            "semver": record.get("semver"),
            "bump": None,
            "lineage": lineage,
            "environment": record.get("environment") or {},
            "framework": record.get("framework"),
            "flavor": record.get("flavor"),
            "signature": record.get("signature"),
            "idempotency_key": "bundle:" + hashlib.sha256(origin.encode()).hexdigest(),
            "number": number,
            "stage": None,
        }
        files = collect_files([folder])
        try:
            return self.registry.backend.register(name, files, meta, None).version
        except Conflict as exc:
            if "last_version" not in exc.detail:
                raise
        # The number is used here: the next one, the original kept in a tag.
        meta["number"] = None
        meta["tags"][MAPPED_TAG] = str(number)
        meta["idempotency_key"] += ":mapped"
        return self.registry.backend.register(name, files, meta, None).version

    def _parents(self, parents: list[str], out: VersionResult) -> list[str]:
        kept = []
        for parent in parents:
            if parent in self.mapping:
                model = parent.rsplit(":", 1)[0]
                kept.append(f"{model}:{self.mapping[parent]}")
                continue
            out.notes.append(f"parent {parent} is not in the bundle: dropped from lineage")
        return kept


def _identity(uri: str) -> str:
    """The source registry as ``imported_from`` names it.

    A URL without its credentials, or a folder's absolute path.
    """
    from urllib.parse import urlsplit, urlunsplit

    from modelreg.location import is_remote

    if not is_remote(uri):
        return str(Path(uri).expanduser().absolute())

    parts = urlsplit(uri)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit(parts._replace(netloc=netloc))
    return uri
