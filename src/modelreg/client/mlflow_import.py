"""``modelreg import mlflow``: copy the model registry of an MLflow server into a registry.

Copies registered models (description, tags), their versions with the same numbers (gaps from
deleted versions included), each version's description, tags, stage, run metrics and params
and every artifact file byte for byte, then the aliases. Each version records where it came
from as lineage: the MLflow run id, its ``source`` URI, and ``imported_from`` (the version's
page on the MLflow server).

Stages are a choice: by default versions are registered with no stage, and the summary names
the stage each had in MLflow and the ``modelreg promote`` that would move it through this
registry's policy. ``keep_stages=True`` applies MLflow's stages as they are, with the admin's
authority and without the policy's gates or approvals (each such move is audited as one).

An import only ever adds: a version whose number already holds a copy of the same MLflow
version is left alone, so a second run imports nothing twice and a run that was killed half
way is finished by running it again. "A copy" is checked, not believed: its files (paths,
sizes, SHA-256) must be MLflow's, or the version is a conflict that no alias is moved to.
What exists in the registry already is never overwritten: a model tag or alias with another
value is kept and reported.

Usage::

    import modelreg
    from modelreg.client.mlflow_import import import_mlflow

    summary = import_mlflow(modelreg.Registry(), "http://mlflow.internal:5000", models="fraud*")
    print(summary.totals())
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from modelreg.client._import_summary import (
    AliasResult,
    ImportProgress,
    ImportSummary,
    ModelResult,
    VersionResult,
)
from modelreg.client._mlflow_source import MlflowSource, SourceError, SourceFile, SourceLimits
from modelreg.client._mlflow_stages import Production, production_choice, stages_not_applied
from modelreg.errors import (
    AlreadyExists,
    ApprovalRequired,
    ConcurrentChange,
    Conflict,
    ImportStopped,
    InvalidInput,
    NotFound,
    PermissionDenied,
    PolicyViolation,
    RegistryError,
    SchemaOutdated,
    StorageFailure,
    Unavailable,
)
from modelreg.names import (
    MAX_DESCRIPTION,
    Stage,
    normalize_name,
    validate_alias,
    validate_key,
    validate_metric,
    validate_model_name,
    validate_text,
)

if TYPE_CHECKING:
    from modelreg.client import Registry

__all__ = [
    "AliasResult",
    "ImportProgress",
    "ImportSummary",
    "ModelResult",
    "SourceLimits",
    "VersionResult",
    "import_mlflow",
]

# Errors after which going on would only fail the same way for every remaining version.
FATAL = (PermissionDenied, Unavailable, StorageFailure, SchemaOutdated)
PARAM_LIMIT = 6000


@dataclass(slots=True)
class _Plan:
    result: ModelResult
    mlflow: dict[str, Any]
    versions: list[dict[str, Any]]


def import_mlflow(
    registry: Registry,
    source: MlflowSource | str,
    *,
    models: str = "*",
    dry_run: bool = False,
    keep_stages: bool = False,
    limits: SourceLimits | None = None,
    progress: ImportProgress | None = None,
) -> ImportSummary:
    """Copy the MLflow registry at ``source`` into ``registry``; see the module's docstring.

    Args:
        registry: where to import (a folder registry, or a server with an admin token: keeping
            MLflow's numbers and stages needs the admin role).
        source: the MLflow server's URL, or an ``MlflowSource``.
        models: a glob on model names (``fraud*``); ``*`` imports every model.
        dry_run: list what would be imported; write nothing.
        keep_stages: give each version the stage it has in MLflow, bypassing this registry's
            promotion policy (audited); by default versions get no stage and the summary says
            how to promote them.
        limits: how much to accept from the MLflow server (when ``source`` is a URL).
        progress: told about each version as it is dealt with.

    Returns:
        The summary; per-version failures are in it (``exit_code`` is non-zero), not raised.

    Raises:
        Unavailable: either side cannot be reached (``ImportStopped``: the source broke a
            bound or the run its time limit).
        InvalidInput: ``source`` is not an MLflow server.
        PermissionDenied: the registry refuses the import (admin role needed).
    """
    own = isinstance(source, str)
    mlflow = MlflowSource(source, limits=limits) if isinstance(source, str) else source
    try:
        return _Importer(
            registry, mlflow, dry_run=dry_run, keep_stages=keep_stages, progress=progress
        ).run(models)
    finally:
        if own:
            mlflow.close()


class _Importer:
    def __init__(
        self,
        registry: Registry,
        source: MlflowSource,
        *,
        dry_run: bool,
        keep_stages: bool,
        progress: ImportProgress | None,
    ) -> None:
        self.registry = registry
        self.source = source
        self.dry_run = dry_run
        self.keep_stages = keep_stages
        self.progress = progress
        self._runs: dict[str, dict[str, Any] | None] = {}

    def run(self, pattern: str) -> ImportSummary:
        self.source.check()
        summary = ImportSummary(self.source.url, str(self.registry.uri), self.dry_run, pattern)
        try:
            chosen = sorted(
                (
                    m
                    for m in self.source.registered_models()
                    if fnmatchcase(str(m.get("name")), pattern)
                ),
                key=lambda m: str(m.get("name")),
            )
        except SourceError as exc:
            raise ImportStopped(
                f"cannot list the models of the MLflow server at {self.source.url}: {exc}",
                detail={"from": self.source.url},
            ) from None
        seen: dict[str, str] = {}
        plans = [self._plan(m, seen) for m in chosen]
        summary.models = [p.result for p in plans]
        if self.progress is not None:
            self.progress.start(sum(len(p.versions) for p in plans))
        for plan in plans:
            if plan.result.status not in ("skipped", "failed"):
                self._import_model(plan)
        return summary

    # -- models --------------------------------------------------------------------------

    def _plan(self, model: dict[str, Any], seen: dict[str, str]) -> _Plan:
        name = str(model.get("name"))
        plan = _Plan(ModelResult(name), model, [])
        result = plan.result
        try:
            validate_model_name(name)
        except InvalidInput as exc:
            result.status, result.reason = "skipped", f"not a valid modelreg name: {exc.message}"
            return plan
        if _pairs(model.get("tags")).get("mlflow.prompt.is_prompt") == "true":
            result.status, result.reason = "skipped", "an MLflow prompt, not a model"
            return plan
        key = normalize_name(name)
        if key in seen:
            result.status = "skipped"
            result.reason = (
                f"modelreg treats it as the same model as {seen[key]!r} (names that differ only "
                "in case or in . _ - are one model)"
            )
            return plan
        seen[key] = name
        try:
            plan.versions = self.source.versions(name)
        except SourceError as exc:
            result.status, result.reason = "failed", f"cannot list its versions: {exc}"
        return plan

    def _import_model(self, plan: _Plan) -> None:
        result, name = plan.result, plan.result.name
        current = self._find_model(name)
        present = self._present_versions(name) if current is not None else {}
        if current is None:
            result.status = "planned" if self.dry_run else "created"
        # Without --keep-stages nothing is applied, so a production version here does not turn
        # MLflow's into a suggested archive: promoting it is the user's call.
        production = production_choice(plan.versions, current if self.keep_stages else None)
        for entry in plan.versions:
            outcome = self._import_version(name, entry, present, production)
            result.versions.append(outcome)
            if outcome.status in ("imported", "planned") and outcome.stage == "production":
                production.holder = outcome.version
            if self.progress is not None:
                self.progress.done(name, outcome)
        moved = [v for v in result.versions if v.status in ("imported", "planned")]
        # Said only on the run that copies them: a re-run that copies nothing stays quiet.
        if not self.keep_stages:
            result.notes.extend(stages_not_applied(name, moved))
        elif {v.version for v in moved} & set(production.numbers):
            result.notes.extend(production.notes)
        if not self.dry_run:
            # After the versions: the first registration creates the model in the transaction
            # of its version, so an import the registry refuses (no admin role) leaves nothing.
            current = self._copy_model_metadata(plan, self._find_model(name))
        self._import_aliases(plan, current)

    def _find_model(self, name: str) -> dict[str, Any] | None:
        try:
            return self.registry.get_model(name).to_dict()
        except NotFound:
            return None

    def _present_versions(self, name: str) -> dict[int, str | None]:
        """Each existing version number of ``name`` and where it was imported from."""
        found: dict[int, str | None] = {}
        token: str | None = None
        while True:
            page = self.registry.list_versions(name, page_size=1000, page_token=token)
            for v in page:
                found[v.version] = v.lineage.get("imported_from")
            token = page.next_page_token
            if not token:
                return found

    def _copy_model_metadata(self, plan: _Plan, current: dict[str, Any] | None) -> dict[str, Any]:
        """Create the model, or add what it lacks of MLflow's description and tags."""
        result, name = plan.result, plan.result.name
        description = str(plan.mlflow.get("description") or "")
        tags = _clean_tags(_pairs(plan.mlflow.get("tags")), result.notes, "model tag")
        if len(description) > MAX_DESCRIPTION:
            result.notes.append("description longer than modelreg keeps: not copied")
            description = ""
        if current is None:
            try:
                return self.registry.create_model(
                    name, description=description, tags=tags
                ).to_dict()
            except AlreadyExists:  # another import got there first
                current = self.registry.get_model(name).to_dict()
        missing = {k: v for k, v in tags.items() if k not in current["tags"]}
        for key, value in tags.items():
            if key in current["tags"] and current["tags"][key] != value:
                result.notes.append(
                    f"model tag {key!r} kept as {current['tags'][key]!r} (MLflow: {value!r})"
                )
        if missing:
            self.registry.set_tags(name, missing)
        if description and not current["description"]:
            self.registry.set_description(name, description)
        return self.registry.get_model(name).to_dict()

    # -- versions ------------------------------------------------------------------------

    def _import_version(
        self,
        name: str,
        entry: dict[str, Any],
        present: dict[int, str | None],
        production: Production,
    ) -> VersionResult:
        number = int(entry["version"])
        origin = f"{self.source.url}/#/models/{quote(name, safe='')}/versions/{number}"
        wanted = production.stage_for(entry, number)
        out = VersionResult(
            number, "failed", stage=wanted if self.keep_stages else "none", mlflow_stage=wanted
        )
        status = str(entry.get("status") or "READY")
        if status != "READY":
            out.status, out.reason = "skipped", f"its MLflow status is {status}, not READY"
            return out
        try:
            if number in present:
                self._check_present(name, number, present[number], origin, out)
                return out
            return self._transfer(name, entry, origin, out, present)
        except SourceError as exc:
            out.reason = str(exc)
        except Conflict as exc:
            out.conflict, out.reason = True, exc.message
        except FATAL:
            raise
        except RegistryError as exc:
            out.reason = exc.message
        return out

    def _check_present(
        self, name: str, number: int, imported_from: str | None, origin: str, out: VersionResult
    ) -> None:
        """A version here with this number: a verified copy of MLflow's (present), or a conflict.

        ``imported_from`` is a claim anyone who could register might have made, so the files
        of the version here are compared with MLflow's (paths, sizes, SHA-256 of the bytes MLflow
        serves) before it counts as imported and aliases or stages may point at it.
        """
        out.stage = "none"  # nothing is applied to a version that is already here
        if imported_from != origin:
            was = (
                f"imported from {imported_from}"
                if imported_from
                else "registered here, not imported"
            )
            raise Conflict(f"{name}:{number} already exists here ({was})")
        uri = self.source.download_uri(name, number)
        root = self.source.artifact_root(uri)
        if root is None and uri.startswith("s3://"):
            # The registry reads the objects again (its copy is by content, so nothing is
            # stored twice) and the digests are compared.
            try:
                copied = {f["path"]: f for f in self._copy(uri)}
            except InvalidInput as exc:
                raise Conflict(
                    f"{name}:{number} says it was imported from {origin}, but MLflow keeps its "
                    f"files at {uri}, which this registry may not read ({exc.message}): it "
                    "cannot be checked, so it is not counted as imported"
                ) from None
            version = self.registry.get_version(f"{name}:{number}")
            here = {f.path: (f.size, f.sha256) for f in version.files}
            sizes = {p: int(f["size"]) for p, f in copied.items()}
            why = _difference(here, sizes, lambda p: str(copied[p]["sha256"]))
            if why:
                raise Conflict(
                    f"{name}:{number} says it was imported from {origin}, but its files are "
                    f"not those at {uri} ({why}); it is not counted as imported"
                )
            out.status = "present"
            return
        if root is None:
            raise Conflict(
                f"{name}:{number} says it was imported from {origin}, but MLflow keeps its "
                f"files at {uri}, which an import does not read: it cannot be checked, so it is "
                "not counted as imported"
            )
        listed = {f.path: f for f in self.source.files(root)}
        version = self.registry.get_version(f"{name}:{number}")
        here = {f.path: (f.size, f.sha256) for f in version.files}
        why = _difference(
            here, {p: f.size for p, f in listed.items()}, lambda p: self.source.sha256(listed[p])
        )
        if why:
            raise Conflict(
                f"{name}:{number} says it was imported from {origin}, but its files are not "
                f"MLflow's ({why}); it is not counted as imported and no alias or stage is "
                f"moved to it (see `modelreg audit {name}` for who registered it)"
            )
        out.status = "present"

    def _transfer(
        self,
        name: str,
        entry: dict[str, Any],
        origin: str,
        out: VersionResult,
        present: dict[int, str | None],
    ) -> VersionResult:
        number = out.version
        uri = self.source.download_uri(name, number)
        root = self.source.artifact_root(uri)
        if root is None and uri.startswith("s3://"):
            return self._transfer_copied(name, entry, origin, out, present, uri)
        if root is None:
            out.status, out.reason = "skipped", _not_allowed(uri)
            return out
        files = self.source.files(root)
        out.files = len(files)
        out.bytes = sum(f.size for f in files)
        if not files:
            out.status, out.reason = "skipped", f"MLflow lists no files at {uri}"
            return out
        if present and number < max(present):
            # Checked before any byte moves; the registry would refuse it anyway.
            out.conflict = True
            out.reason = (
                f"{name} already has version {max(present)} here; numbers are only added above it"
            )
            return out
        if self.dry_run:
            out.status = "planned"
            return out
        run_id = str(entry.get("run_id") or "") or None
        metrics, params = self._run_data(run_id, out.notes)
        tags = _clean_tags(_pairs(entry.get("tags")), out.notes, "tag")
        description = str(entry.get("description") or "")
        with tempfile.TemporaryDirectory(prefix="modelreg-import-") as tmp:
            folder = Path(tmp) / "files"
            got = self._download(f"{name}:{number}", files, folder)
            out.bytes = sum(size for size, _ in got.values())
            try:
                self.registry.register(
                    name,
                    folder,
                    metrics=metrics,
                    params=params,
                    tags=tags,
                    description=description,
                    run_id=run_id,
                    source=_without_credentials(str(entry.get("source") or "")) or None,
                    imported_from=origin,
                    number=number,
                    stage=out.stage,
                    capture=False,
                )
            except Conflict:
                # Another import may have registered the same copy meanwhile: verified, it is
                # that copy; anything else is the conflict.
                if not self._is_copy(name, number, origin, got):
                    raise
                out.status, out.stage = "present", "none"
                return out
        out.status = "imported"
        return out

    def _copy(self, uri: str) -> list[dict[str, Any]]:
        """The registry's copy of the objects at ``uri`` (an allowed ``s3://`` source)."""
        files: list[dict[str, Any]] = self.registry.backend.copy_source(uri)["files"]
        return files

    def _transfer_copied(
        self,
        name: str,
        entry: dict[str, Any],
        origin: str,
        out: VersionResult,
        present: dict[int, str | None],
        uri: str,
    ) -> VersionResult:
        """A version whose files are in S3: the registry copies them with its own credentials.

        The objects never pass through this process. A version under no allowed source is
        skipped, as one anywhere else outside the MLflow server is.
        """
        number = out.version
        if present and number < max(present):
            out.conflict = True
            out.reason = (
                f"{name} already has version {max(present)} here; numbers are only added above it"
            )
            return out
        if self.dry_run:
            out.status = "planned"
            out.notes.append(f"the registry copies its files from {uri}")
            return out
        try:
            files = self._copy(uri)
        except InvalidInput as exc:
            if exc.detail.get("reason") != "source_not_allowed":
                raise
            out.status, out.reason = "skipped", _not_allowed(uri)
            return out
        out.files, out.bytes = len(files), sum(int(f["size"]) for f in files)
        run_id = str(entry.get("run_id") or "") or None
        metrics, params = self._run_data(run_id, out.notes)
        lineage = {
            "run_id": run_id,
            "source": _without_credentials(str(entry.get("source") or "")) or None,
            "imported_from": origin,
        }
        meta = {
            "metrics": metrics,
            "params": params,
            "tags": _clean_tags(_pairs(entry.get("tags")), out.notes, "tag"),
            "description": str(entry.get("description") or ""),
            "lineage": lineage,
            "number": number,
            "stage": Stage.parse(out.stage).value,
        }
        try:
            self.registry.backend.register_stored(name, files, meta)
        except Conflict:
            got = {f["path"]: (int(f["size"]), str(f["sha256"])) for f in files}
            if not self._is_copy(name, number, origin, got):
                raise
            out.status, out.stage = "present", "none"
            return out
        out.status = "imported"
        return out

    def _download(
        self, label: str, files: list[SourceFile], folder: Path
    ) -> dict[str, tuple[int, str]]:
        """Each file's size and SHA-256 as received into ``folder``."""
        total = sum(f.size for f in files)
        counter = self.progress.begin(label, total) if self.progress is not None else None
        return {item.path: self.source.fetch(item, folder / item.path, counter) for item in files}

    def _is_copy(
        self, name: str, number: int, origin: str, files: dict[str, tuple[int, str]]
    ) -> bool:
        try:
            version = self.registry.get_version(f"{name}:{number}")
        except NotFound:
            return False
        here = {f.path: (f.size, f.sha256) for f in version.files}
        return version.lineage.get("imported_from") == origin and here == files

    def _run_data(
        self, run_id: str | None, notes: list[str]
    ) -> tuple[dict[str, float], dict[str, str]]:
        """The run's latest metrics and its params, as far as modelreg can keep them."""
        if run_id is None:
            return {}, {}
        if run_id not in self._runs:
            try:
                self._runs[run_id] = self.source.run(run_id)
            except SourceError as exc:
                notes.append(f"run {run_id}: {exc}; no metrics or params copied")
                self._runs[run_id] = None
        data = self._runs[run_id] or {}
        metrics: dict[str, float] = {}
        for key, value in _pairs(data.get("metrics"), value="value").items():
            try:
                metrics[key] = validate_metric(key, value)
            except InvalidInput as exc:
                notes.append(f"metric {key!r} not copied: {exc.message}")
        params = _clean_tags(_pairs(data.get("params")), notes, "param", limit=PARAM_LIMIT)
        return metrics, params

    # -- aliases -------------------------------------------------------------------------

    def _import_aliases(self, plan: _Plan, current: dict[str, Any] | None) -> None:
        result, name = plan.result, plan.result.name
        here = {
            v.version for v in result.versions if v.status in ("imported", "present", "planned")
        }
        holders: dict[str, int] = dict((current or {}).get("aliases") or {})
        for alias, target in sorted(_pairs(plan.mlflow.get("aliases"), "alias", "version").items()):
            out = AliasResult(alias, int(target) if str(target).isdigit() else 0, "skipped")
            result.aliases.append(out)
            try:
                validate_alias(alias)
            except InvalidInput as exc:
                out.reason = f"not a valid modelreg alias: {exc.message}"
                continue
            if out.version not in here:
                out.reason = f"version {target} was not imported"
            elif holders.get(alias) == out.version:
                out.status = "present"
            elif alias in holders:
                out.status = "kept"
                out.reason = f"@{alias} points at version {holders[alias]} here; left as it is"
            elif self.dry_run:
                out.status = "planned"
            else:
                self._set_alias(name, out)

    def _set_alias(self, name: str, out: AliasResult) -> None:
        try:
            self.registry.set_alias(
                name,
                out.alias,
                out.version,
                reason=f"imported from {self.source.url}",
                expect_current=0,
            )
        except ApprovalRequired as exc:
            out.status = "pending"
            out.reason = (
                f"a policy protects @{out.alias}: request #{exc.detail.get('request_id')} waits "
                "for approval"
            )
        except PolicyViolation as exc:
            out.reason = f"refused by policy: {exc.message}"
        except ConcurrentChange as exc:
            out.status, out.reason = "kept", exc.message
        else:
            out.status = "set"


def _difference(
    here: dict[str, tuple[int, str]], there: dict[str, int], digest: Callable[[str], str]
) -> str:
    """How the files here differ from MLflow's ('' when they do not): paths, sizes, then bytes.

    ``digest`` reads one MLflow file; it is called only once paths and sizes agree.
    """
    missing, extra = sorted(there.keys() - here.keys()), sorted(here.keys() - there.keys())
    if missing:
        return f"{missing[0]!r} is missing here"
    if extra:
        return f"{extra[0]!r} is not in MLflow"
    for path in sorted(there):
        if here[path][0] != there[path]:
            return f"{path!r} is {here[path][0]:,} bytes here, {there[path]:,} in MLflow"
    for path in sorted(there):
        if here[path][1] != digest(path):
            return f"{path!r} has other bytes here (its SHA-256 differs)"
    return ""


def _not_allowed(uri: str) -> str:
    return (
        f"its files are at {uri}, outside the MLflow server's artifact store; only "
        "mlflow-artifacts:/ locations of --from are fetched, and s3:// locations under a "
        "source an admin allowed (modelreg sources allow)"
    )


def _without_credentials(uri: str) -> str:
    # A source such as https://user:token@host/model must not carry its secret into lineage.
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^@/]+@", r"\1", uri)


def _pairs(items: Any, key: str = "key", value: str = "value") -> dict[str, Any]:
    """MLflow's ``[{"key": …, "value": …}]`` lists as a dict."""
    out: dict[str, Any] = {}
    for item in items or []:
        if isinstance(item, dict) and isinstance(item.get(key), str):
            out[item[key]] = item.get(value)
    return out


def _clean_tags(
    pairs: dict[str, Any], notes: list[str], kind: str, limit: int = 5000
) -> dict[str, str]:
    """The pairs modelreg can keep; the others are named in ``notes``."""
    clean: dict[str, str] = {}
    for key, value in pairs.items():
        text = "" if value is None else str(value)
        try:
            clean[validate_key(key, kind=kind)] = validate_text(text, kind=kind, limit=limit)
        except InvalidInput as exc:
            notes.append(f"{kind} {key!r} not copied: {exc.message}")
    return clean
