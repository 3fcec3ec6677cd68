"""Which stage each imported MLflow version maps to, and what the summary says about stages.

MLflow lets several versions be in Production; modelreg keeps one. Without ``--keep-stages``
no stage is applied and the summary lists the promotions that would apply them.
"""

from __future__ import annotations

from typing import Any

from modelreg.client._import_summary import VersionResult

STAGES = {"none": "none", "staging": "staging", "production": "production", "archived": "archived"}


class Production:
    """Which MLflow version becomes production here: one per model, the newest.

    MLflow lets several versions be in Production at once; modelreg keeps one. The newest
    becomes production, the older ones archived; if another version already holds production
    here, the MLflow one is archived too (promote it with ``modelreg promote`` to switch).
    """

    def __init__(self, numbers: list[int], holder: int | None) -> None:
        self.numbers = numbers
        self.newest = numbers[-1] if numbers else None
        self.holder = holder
        self.notes: list[str] = []
        if len(numbers) > 1:
            self.notes.append(
                f"MLflow has versions {', '.join(map(str, numbers))} in Production; modelreg "
                f"keeps one production version: {self.newest} is production, "
                f"{', '.join(map(str, numbers[:-1]))} archived"
            )
        if self.newest is not None and holder is not None and holder != self.newest:
            self.notes.append(
                f"version {holder} already holds production here, so MLflow's production "
                f"version {self.newest} is imported as archived (promote it to switch)"
            )

    def stage_for(self, entry: dict[str, Any], number: int) -> str:
        """The modelreg stage MLflow version ``entry`` maps to."""
        stage = STAGES.get(str(entry.get("current_stage") or "None").lower(), "none")
        if stage != "production":
            return stage
        if number != self.newest or (self.holder is not None and self.holder != number):
            return "archived"
        return stage


def production_choice(versions: list[dict[str, Any]], current: dict[str, Any] | None) -> Production:
    """The choice for a model's MLflow ``versions``, given the model here (``current``)."""
    numbers = sorted(
        int(v["version"])
        for v in versions
        if str(v.get("status") or "READY") == "READY"
        and str(v.get("current_stage")) == "Production"
    )
    return Production(numbers, ((current or {}).get("stages") or {}).get("production"))


def stages_not_applied(name: str, moved: list[VersionResult]) -> list[str]:
    """The note naming MLflow stages the import did not apply, and how to apply them."""
    waiting = [v for v in moved if v.mlflow_stage != "none"]
    if not waiting:
        return []
    commands = ", ".join(
        f"modelreg promote {name} {v.version} --to {v.mlflow_stage}" for v in waiting
    )
    return [
        "MLflow stages not applied (versions are imported with no stage; a promotion here goes "
        f"through this registry's policy): {commands}; or import with --keep-stages to apply "
        "them as they are, bypassing the policy"
    ]
