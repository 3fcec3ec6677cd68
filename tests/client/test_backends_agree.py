"""Both backends answer every use-case alike: ``LocalBackend`` and ``HttpBackend``.

One scenario (registering, reading, aliases, promotions with every outcome, rollback, policies,
insight, audit, gc, users and tokens) runs step by step against two fresh SQLite registries: one
embedded, one behind a real server on loopback. Each step's typed result (or the error it
raised) must be the same object on both sides, up to what cannot match (clock times, hashes
over them, token ids and secrets, the door an audit event came through).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import modelreg
from modelreg.errors import RegistryError
from modelreg.types import Page
from registry_folders import LiveServer

Step = Callable[["Side"], Any]

# Values that differ between two runs of the same scenario, whatever the door.
VOLATILE = frozenset(
    {
        "at",
        "created_at",
        "updated_at",
        "decided_at",
        "requested_at",
        "expires_at",
        "hash",
        "prev_hash",
        "last_hash",
        "anchor",
        "token",
        "secret",
        "webhook",
        "previous_secret_expires_at",
        "next_attempt_at",
        "scanned_at",
    }
)


@dataclass
class Side:
    """One registry the scenario runs against, and what the steps remember on it."""

    reg: modelreg.Registry
    home: Path
    inputs: Path
    out: Path
    remembered: dict[str, Any] = field(default_factory=dict)


def shape(value: Any) -> Any:
    """A result as comparable data: its type and JSON shape, volatile values blanked."""
    if isinstance(value, RegistryError):
        return ("raised", type(value).__name__, value.code, value.exit_code, _plain(value.detail))
    if isinstance(value, Page):
        return ("Page", [shape(item) for item in value], value.next_page_token)
    if isinstance(value, list):
        return [shape(item) for item in value]
    if isinstance(value, Path):
        return ("Path", value.name)
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return (type(value).__name__, _plain(to_dict()))
    return value


def _plain(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: "<volatile>" if _volatile(k, v) else _plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_plain(v) for v in data]
    return data


def _volatile(key: str, value: Any) -> bool:
    # Token ids are random; promotion request ids count up alike on both sides. A
    # subscription's id is random too, and names the target of its test message.
    return (
        key in VOLATILE
        or (key == "id" and isinstance(value, str))
        or (key == "target" and isinstance(value, str) and value.startswith("webhook:"))
    )


def _register(side: Side, name: str, payload: bytes, **kwargs: Any) -> Any:
    path = side.inputs / f"{name}-{payload.hex()}.bin"
    path.write_bytes(payload)
    return side.reg.register(name, path, capture=False, **kwargs)


def _rule(side: Side, target: str, **rule: Any) -> Any:
    return side.reg.set_policy_rule("fraud", target, **rule)


def _pending(side: Side) -> Any:
    page = side.reg.promotions("fraud", state="pending")
    side.remembered["pending"] = page[0].id if page else 0
    return page


def _with_admin_token(side: Side) -> Any:
    """Create the first user (the server then asks for tokens) and act as it from now on."""
    user = side.reg.create_user("root", role="admin")
    # Both sides issue the token the same way (through the folder), so their states match.
    with modelreg.Registry(side.home) as folder:
        token = folder.create_token("root", label="scenario")
    if side.reg.uri.startswith("http"):
        side.reg.close()
        side.reg = modelreg.Registry(side.reg.uri, token=token.token)
    return user


def _token_round(side: Side) -> Any:
    token = side.reg.create_token("svc", label="ci", expires_days=30)
    side.remembered["token"] = token.id
    return token


def _webhook_round(side: Side) -> Any:
    hook = side.reg.create_webhook(
        "https://ci.example.com/hook?k=v", events=["registry:version:*"], model="fraud"
    )
    side.remembered["webhook"] = hook.id
    return hook


def _test_message(side: Side) -> Any:
    delivery = side.reg.test_webhook(side.remembered["webhook"])
    side.remembered["delivery"] = delivery.id
    return delivery


# The scenario, in order; a step's name is its test id.
SCENARIO: list[tuple[str, Step]] = [
    ("create_model", lambda s: s.reg.create_model("fraud", description="d", tags={"team": "r"})),
    ("create_model_taken", lambda s: s.reg.create_model("fraud")),
    (
        "register_1",
        lambda s: _register(
            s, "fraud", b"one!", metrics={"accuracy": 0.9}, tags={"validated": "true"}
        ),
    ),
    (
        "register_2",
        lambda s: _register(
            s, "fraud", b"two!", metrics={"accuracy": 0.93}, parents=["fraud:1"], semver="2.0.0"
        ),
    ),
    ("register_other", lambda s: _register(s, "other", b"thr!")),
    ("get_model", lambda s: s.reg.get_model("fraud")),
    ("get_model_missing", lambda s: s.reg.get_model("nobody")),
    ("get_version", lambda s: s.reg.get_version("fraud:1")),
    ("get_version_latest", lambda s: s.reg.get_version("fraud:latest")),
    ("list_models", lambda s: s.reg.list_models()),
    ("list_versions", lambda s: s.reg.list_versions("fraud", page_size=1)),
    ("search", lambda s: s.reg.search("metrics.accuracy > 0.91")),
    ("download", lambda s: s.reg.download("fraud:2", s.out)),
    ("set_alias", lambda s: s.reg.set_alias("fraud", "champion", 1, reason="first")),
    ("set_alias_stale", lambda s: s.reg.set_alias("fraud", "champion", 2, expect_current=2)),
    ("delete_alias", lambda s: s.reg.delete_alias("fraud", "champion")),
    ("set_tags_version", lambda s: s.reg.set_tags("fraud:1", {"k": "v"})),
    ("set_tags_model", lambda s: s.reg.set_tags("fraud", {"k": "v"}, delete=["team"])),
    ("describe_version", lambda s: s.reg.set_description("fraud:2", "second")),
    ("describe_model", lambda s: s.reg.set_description("fraud", "the model")),
    (
        "set_policy_rule",
        lambda s: _rule(s, "production", requires=["metrics.accuracy >= 0.95"]),
    ),
    ("promote_applied", lambda s: s.reg.promote("fraud", 1, "staging", reason="eval")),
    ("promote_dry_run", lambda s: s.reg.promote("fraud", 1, "production", dry_run=True)),
    ("promote_refused", lambda s: s.reg.promote("fraud", 2, "production", reason="ship")),
    ("protect_with_approvals", lambda s: _rule(s, "@prod", approvals=1)),
    # A waiting move of a protected alias: ApprovalRequired from both (test_the_divergence_…).
    ("set_protected_alias_pending", lambda s: s.reg.set_alias("fraud", "prod", 2)),
    ("promote_pending", lambda s: s.reg.promote("fraud", 2, "@prod", reason="ship")),
    ("list_pending", _pending),
    ("get_promotion", lambda s: s.reg.get_promotion(s.remembered["pending"])),
    ("approve_own", lambda s: s.reg.approve(s.remembered["pending"])),
    ("reject", lambda s: s.reg.reject(s.remembered["pending"], reason="withdrawn")),
    ("protect_with_gate", lambda s: _rule(s, "@gated", requires=["metrics.accuracy >= 0.99"])),
    ("set_protected_alias_refused", lambda s: s.reg.set_alias("fraud", "gated", 1)),
    ("protect_open", lambda s: _rule(s, "@open", requires=["metrics.accuracy >= 0.5"])),
    ("set_protected_alias_applied", lambda s: s.reg.set_alias("fraud", "open", 2)),
    ("promote_again", lambda s: s.reg.promote("fraud", 2, "staging")),
    ("rollback", lambda s: s.reg.rollback("fraud", stage="staging", reason="bad")),
    ("move_protected_alias", lambda s: s.reg.set_alias("fraud", "open", 1, expect_current=2)),
    ("rollback_alias", lambda s: s.reg.rollback("fraud", stage="@open", reason="x")),
    ("list_promotions", lambda s: s.reg.promotions("fraud")),
    ("version_at", lambda s: s.reg.get_version("fraud/staging", at=datetime.now(UTC))),
    ("get_policy", lambda s: s.reg.get_policy("fraud")),
    ("get_default_policy", lambda s: s.reg.get_policy()),
    ("list_policies", lambda s: s.reg.list_policies()),
    (
        "apply_policies",
        lambda s: s.reg.apply_policies({"*": {"production": {"approvals": 1}}}),
    ),
    ("delete_policy_rule", lambda s: s.reg.delete_policy_rule("fraud", "@gated")),
    ("compare", lambda s: s.reg.compare("fraud", 1, 2)),
    ("lineage", lambda s: s.reg.lineage("fraud:2")),
    ("history", lambda s: s.reg.history("fraud")),
    ("delete_version", lambda s: s.reg.delete("other:1", reason="typo")),
    ("delete_model", lambda s: s.reg.delete("other", reason="gone")),
    ("gc_dry_run", lambda s: s.reg.gc(grace_seconds=0, dry_run=True)),
    ("gc", lambda s: s.reg.gc(grace_seconds=0)),
    ("audit", lambda s: s.reg.audit()),
    ("audit_of_model", lambda s: s.reg.audit("fraud", limit=5, after=2)),
    ("verify_audit", lambda s: s.reg.verify_audit()),
    ("audit_anchor", lambda s: s.reg.audit_anchor()),
    ("create_first_user", _with_admin_token),
    ("create_service_account", lambda s: s.reg.create_user("svc", service=True)),
    ("grant", lambda s: s.reg.grant("svc", "approver", model="fraud")),
    ("grant_registry_wide", lambda s: s.reg.grant("svc", "viewer")),
    ("revoke", lambda s: s.reg.revoke("svc", "viewer")),
    ("revoke_missing", lambda s: s.reg.revoke("svc", "admin")),
    ("disable_user", lambda s: s.reg.disable_user("svc")),
    ("enable_user", lambda s: s.reg.enable_user("svc")),
    ("list_users", lambda s: s.reg.list_users()),
    ("create_token", _token_round),
    ("list_tokens", lambda s: s.reg.list_tokens("svc")),
    ("revoke_token", lambda s: s.reg.revoke_token(s.remembered["token"])),
    ("create_webhook", _webhook_round),
    ("create_webhook_bad_url", lambda s: s.reg.create_webhook("ftp://example.com/")),
    ("create_webhook_bad_event", lambda s: s.reg.create_webhook("https://e.com/", events=["x"])),
    ("create_email", lambda s: s.reg.create_webhook(to="ops@example.com", kind="email")),
    ("list_webhooks", lambda s: s.reg.list_webhooks()),
    ("test_webhook", _test_message),
    ("deliveries", lambda s: s.reg.deliveries(s.remembered["webhook"])),
    ("redeliver", lambda s: s.reg.redeliver(s.remembered["delivery"])),
    ("rotate_webhook_secret", lambda s: s.reg.rotate_webhook_secret(s.remembered["webhook"])),
    ("remove_webhook", lambda s: s.reg.remove_webhook(s.remembered["webhook"])),
    ("remove_webhook_again", lambda s: s.reg.remove_webhook(s.remembered["webhook"])),
    ("redeliver_missing", lambda s: s.reg.redeliver(s.remembered["delivery"])),
]


SCENARIO_NAMES = [name for name, _ in SCENARIO]


def _run(side: Side) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for name, step in SCENARIO:
        try:
            answers[name] = shape(step(side))
        except RegistryError as exc:
            answers[name] = shape(exc)
    return answers


def _side(root: Path, reg_for: Callable[[Path], modelreg.Registry]) -> Side:
    home = root / "registry"
    home.mkdir(parents=True)
    (home / "modelreg.toml").write_text(f'db = "sqlite:///{home / "registry.db"}"\n')
    (root / "inputs").mkdir()
    return Side(reg_for(home), home, root / "inputs", root / "out")


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Each step's shaped answer, as ``{"local": …, "http": …}`` per step name."""
    embedded = _side(tmp_path_factory.mktemp("embedded"), modelreg.Registry)
    remote_root = tmp_path_factory.mktemp("remote")
    home = remote_root / "registry"
    _side(remote_root, modelreg.Registry)  # lays the folder out (a Registry does no I/O yet)
    with LiveServer(home) as server:
        remote = Side(
            modelreg.Registry(server.url), home, remote_root / "inputs", remote_root / "out"
        )
        try:
            local_answers, http_answers = _run(embedded), _run(remote)
        finally:
            embedded.reg.close()
            remote.reg.close()
    return {
        name: {"local": local_answers[name], "http": http_answers[name]} for name in SCENARIO_NAMES
    }


@pytest.mark.parametrize("step", SCENARIO_NAMES)
def test_both_backends_answer_alike(answers: dict[str, Any], step: str) -> None:
    assert answers[step]["http"] == answers[step]["local"]


def test_the_divergence_is_gone(answers: dict[str, Any]) -> None:
    """A protected alias's move answers as any move: the version, or the outcome's error.

    The route answered a waiting move with the request (202) where the embedded backend
    answered the promotion, and the client guessed which from the keys.
    """
    for door in ("local", "http"):
        assert answers["set_protected_alias_pending"][door][:2] == ("raised", "ApprovalRequired")
        assert answers["set_protected_alias_refused"][door][:2] == ("raised", "PolicyViolation")
        assert answers["set_protected_alias_applied"][door][0] == "Version"
