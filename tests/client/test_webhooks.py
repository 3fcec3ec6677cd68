"""Subscriptions (issue 22 §2): create with the secret once, list, rotate, test, deliveries,
redeliver, remove; through both backends and the CLI.

Every class of bad input gets its precise error (and exit code) and changes nothing: a URL that
is not http(s), one with a user name, an unknown event pattern, a bad address, a caller who is
no admin, a model admin outside their model, unknown and malformed ids. No secret ever appears
in a listing, the audit log or a log line.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

import modelreg
from modelreg import errors
from modelreg.cli.main import main
from modelreg.config import Settings
from modelreg.db.session import make_engine, transaction
from modelreg.db.tables import AuditEvent
from modelreg.db.tables.notify import Webhook, WebhookDelivery
from modelreg.services.secrets import Sealer
from registry_folders import LiveServer

HOOK = "https://ci.example.com/hook"


def counts(home: Path) -> tuple[int, int, int]:
    """(subscriptions, deliveries, audit events): "nothing changed" is these, unchanged."""
    engine = make_engine(Settings.for_home(home).db_url)
    try:
        with transaction(engine, write=False) as session:
            return (
                session.scalar(select(func.count()).select_from(Webhook)) or 0,
                session.scalar(select(func.count()).select_from(WebhookDelivery)) or 0,
                session.scalar(select(func.count()).select_from(AuditEvent)) or 0,
            )
    finally:
        engine.dispose()


def stored(home: Path) -> list[Webhook]:
    engine = make_engine(Settings.for_home(home).db_url)
    try:
        with transaction(engine, write=False) as session:
            return list(session.scalars(select(Webhook)))
    finally:
        engine.dispose()


def audit_text(home: Path) -> str:
    with modelreg.Registry(home) as folder:
        return json.dumps([e.to_dict() for e in folder.audit(limit=1000)])


# -- the round trip, both backends -------------------------------------------------------------


def test_a_subscription_from_creation_to_removal(reg: modelreg.Registry, home: Path) -> None:
    reg.create_model("fraud")
    hook = reg.create_webhook(
        HOOK + "?token=abc", events=["registry:version:*"], model="fraud", description="ci"
    )
    assert hook.secret is not None
    assert hook.secret.startswith("whsec_")
    assert hook.url == HOOK + "?…"  # the query may hold a credential: masked everywhere
    assert (hook.kind, hook.model, hook.model_only) == ("webhook", "fraud", True)
    assert "whsec_" not in repr(hook)

    (listed,) = reg.list_webhooks()
    assert listed.secret is None
    assert "secret" not in listed.to_dict()
    assert listed.to_dict() == {k: v for k, v in hook.to_dict().items() if k != "secret"}

    # Stored sealed under the server's key: the row alone does not reveal the secret.
    (row,) = stored(home)
    assert hook.secret not in row.secret_enc
    assert Sealer(Settings.for_home(home).sealing_key()).open(row.secret_enc) == hook.secret
    assert row.url == HOOK + "?token=abc"  # the worker needs the real one

    test = reg.test_webhook(hook.id)
    assert (test.event, test.event_seq, test.state, test.webhook) == (
        "modelreg:test",
        0,
        "pending",
        hook.id,
    )
    assert test.id.startswith("msg_")
    assert reg.test_webhook(hook.id).id == test.id  # one test message pending at a time
    assert [d.id for d in reg.deliveries()] == [test.id]
    assert [d.id for d in reg.deliveries(hook.id)] == [test.id]
    assert list(reg.deliveries(hook.id, failed=True)) == []

    rotated = reg.rotate_webhook_secret(hook.id, overlap_hours=48)
    assert rotated.secret is not None
    assert rotated.secret != hook.secret
    assert rotated.previous_secret_expires_at is not None
    (row,) = stored(home)
    sealer = Sealer(Settings.for_home(home).sealing_key())
    assert sealer.open(row.secret_enc) == rotated.secret
    assert row.previous_secret_enc is not None
    assert sealer.open(row.previous_secret_enc) == hook.secret
    now = reg.rotate_webhook_secret(hook.id, overlap_hours=0)
    assert now.previous_secret_expires_at is None
    assert stored(home)[0].previous_secret_enc is None

    again = reg.redeliver(test.id)
    assert (again.id, again.state, again.attempts) == (test.id, "pending", 0)

    removed = reg.remove_webhook(hook.id)
    assert removed.id == hook.id
    assert removed.secret is None
    assert reg.list_webhooks() == []
    assert list(reg.deliveries()) == []
    actions = [e.action for e in reg.audit(limit=100) if e.action.startswith("notify:")]
    assert actions == [
        "notify:webhook:create",
        "notify:webhook:rotate",
        "notify:webhook:rotate",
        "notify:delivery:redeliver",
        "notify:webhook:remove",
    ]
    # The model's own log holds its subscription's events too.
    assert {e.action for e in reg.audit("fraud")} >= {"notify:webhook:create"}
    text = audit_text(home)
    for secret in (hook.secret, rotated.secret, now.secret):
        assert secret not in text
    assert "token=abc" not in text


def test_slack_and_email_subscriptions(reg: modelreg.Registry) -> None:
    slack = reg.create_webhook(
        "https://hooks.slack.com/services/T000/B000/XXXXSECRET", kind="slack"
    )
    assert slack.secret is None  # Slack checks no signature: nothing to keep
    assert slack.url == "https://hooks.slack.com/services/T000/B000/…"
    mail = reg.create_webhook(to="ml-team@example.com", kind="email", events=["registry:*"])
    assert (mail.url, mail.to, mail.events) == (None, "ml-team@example.com", ["registry:*"])
    with pytest.raises(errors.InvalidInput, match="no signing secret"):
        reg.rotate_webhook_secret(slack.id)
    assert "XXXXSECRET" not in json.dumps([w.to_dict() for w in reg.list_webhooks()])


def test_deliveries_page_newest_first(reg: modelreg.Registry) -> None:
    # Subscribed to registrations only, so the server's delivery worker fans none of the
    # subscriptions' own audit events (notify:webhook:create) out to them meanwhile.
    quiet = ["registry:version:register"]
    ids = [reg.test_webhook(reg.create_webhook(HOOK, events=quiet).id).id for _ in range(3)]
    first = reg.deliveries(page_size=2)
    assert [d.id for d in first] == ids[::-1][:2]
    rest = reg.deliveries(page_size=2, page_token=first.next_page_token)
    assert [d.id for d in rest] == ids[:1]
    assert rest.next_page_token is None
    with pytest.raises(errors.InvalidInput):
        reg.deliveries(failed=True, page_token=first.next_page_token)  # another query's token


# -- bad input: a precise error, nothing changed -----------------------------------------------

BAD_CREATE: list[tuple[str, dict[str, Any], type[errors.RegistryError], str]] = [
    ("no_url", {}, errors.InvalidInput, "needs a URL"),
    ("ftp", {"url": "ftp://example.com/x"}, errors.InvalidInput, "http:// or https://"),
    ("file", {"url": "file:///etc/passwd"}, errors.InvalidInput, "http:// or https://"),
    ("javascript", {"url": "javascript:alert(1)"}, errors.InvalidInput, "http:// or https://"),
    ("no_scheme", {"url": "example.com/hook"}, errors.InvalidInput, "http:// or https://"),
    ("userinfo", {"url": "https://bob:pw@example.com/"}, errors.InvalidInput, "user name"),
    # Literal private and loopback addresses are refused at once (names: when sending).
    ("loopback_ip", {"url": "http://127.0.0.1:9/hook"}, errors.InvalidInput, "refused"),
    ("private_ip", {"url": "http://10.1.2.3/hook"}, errors.InvalidInput, "refused"),
    ("metadata_ip", {"url": "http://169.254.169.254/"}, errors.InvalidInput, "refused"),
    ("mapped_ip", {"url": "http://[::ffff:192.168.0.1]/"}, errors.InvalidInput, "refused"),
    ("user_only", {"url": "https://bob@example.com/"}, errors.InvalidInput, "user name"),
    ("no_host", {"url": "https:///path"}, errors.InvalidInput, "no host"),
    ("bad_port", {"url": "https://example.com:99999/"}, errors.InvalidInput, "port"),
    ("newline", {"url": "https://example.com/\r\nX: y"}, errors.InvalidInput, "control"),
    ("long", {"url": "https://e.com/" + "a" * 2100}, errors.InvalidInput, "at most"),
    (
        "unknown_event",
        {"url": HOOK, "events": ["registry:model:explode"]},
        errors.InvalidInput,
        "no event is called",
    ),
    ("event_glob", {"url": HOOK, "events": ["nothing:*"]}, errors.InvalidInput, "no event"),
    ("event_chars", {"url": HOOK, "events": ["Registry;drop"]}, errors.InvalidInput, "pattern"),
    ("bad_email", {"kind": "email", "to": "not-an-address"}, errors.InvalidInput, "e-mail"),
    (
        "email_header",
        {"kind": "email", "to": "a@example.com\r\nBcc: b@example.com"},
        errors.InvalidInput,
        "e-mail",
    ),
    ("email_url", {"kind": "email", "url": HOOK}, errors.InvalidInput, "not a URL"),
    ("webhook_to", {"url": HOOK, "to": "a@example.com"}, errors.InvalidInput, "not --to"),
    ("kind", {"url": HOOK, "kind": "pigeon"}, errors.InvalidInput, "unknown kind"),
    ("model_chars", {"url": HOOK, "model": "fraud;x"}, errors.InvalidInput, "model pattern"),
]


@pytest.mark.parametrize(
    ("case", "kwargs", "error", "text"), BAD_CREATE, ids=[c[0] for c in BAD_CREATE]
)
def test_bad_subscriptions_are_refused_and_change_nothing(
    reg: modelreg.Registry,
    home: Path,
    case: str,
    kwargs: dict[str, Any],
    error: type[errors.RegistryError],
    text: str,
) -> None:
    reg.create_webhook(HOOK)  # the database is open (and holds one) before the count
    before = counts(home)
    with pytest.raises(error, match=text) as raised:
        reg.create_webhook(**kwargs)
    assert raised.value.exit_code == error.exit_code
    assert counts(home) == before


BAD_IDS = [
    ("unknown", str(uuid.uuid4()), errors.NotFound),
    ("unknown_msg", "msg_" + uuid.uuid4().hex, errors.NotFound),
    ("malformed", "not-an-id", errors.InvalidInput),
    ("traversal", "../../principals", errors.InvalidInput),
]


@pytest.mark.parametrize(("case", "bad", "error"), BAD_IDS, ids=[c[0] for c in BAD_IDS])
def test_unknown_and_malformed_ids(
    reg: modelreg.Registry, home: Path, case: str, bad: str, error: type[errors.RegistryError]
) -> None:
    reg.test_webhook(reg.create_webhook(HOOK).id)
    before = counts(home)
    for call in (
        lambda: reg.remove_webhook(bad),
        lambda: reg.rotate_webhook_secret(bad),
        lambda: reg.test_webhook(bad),
        lambda: reg.redeliver(bad),
        lambda: reg.deliveries(bad),
    ):
        with pytest.raises(error):
            call()
    with pytest.raises(errors.InvalidInput):
        reg.rotate_webhook_secret(reg.list_webhooks()[0].id, overlap_hours=721)
    assert counts(home) == before


# -- who may: admins registry-wide, a model's admins that model only ----------------------------


@pytest.fixture
def team(home: Path, files: Path) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    """A server whose users are root (admin), mia (admin of fraud, viewer of other), vic
    (viewer) and ann (contributor); models fraud and other."""
    with modelreg.Registry(home) as folder:
        folder.register("fraud", files / "model.pkl", capture=False)
        folder.register("other", files / "model.pkl", capture=False)
        folder.create_user("root", role="admin")
        folder.create_user("mia", role="admin", model="fraud")
        folder.grant("mia", "viewer", model="other")
        folder.create_user("vic", role="viewer")
        folder.create_user("ann", role="contributor")
        tokens = {n: str(folder.create_token(n).token) for n in ("root", "mia", "vic", "ann")}
    with LiveServer(home) as server:
        yield server, tokens


def test_who_may_manage_subscriptions(team: tuple[LiveServer, dict[str, str]], home: Path) -> None:
    server, tokens = team
    as_ = {n: modelreg.Registry(server.url, token=t) for n, t in tokens.items()}
    try:
        wide = as_["root"].create_webhook(HOOK, events=["registry:*"])
        test = as_["root"].test_webhook(wide.id)
        mine = as_["mia"].create_webhook(HOOK, model="fraud")
        assert mine.model_only
        assert mine.model == "fraud"
        before = counts(home)
        refusals: list[tuple[Any, type[errors.RegistryError]]] = [
            # No admin role anywhere: 403 for every verb, listing included.
            (lambda: as_["vic"].create_webhook(HOOK, model="fraud"), errors.PermissionDenied),
            (as_["vic"].list_webhooks, errors.PermissionDenied),
            (as_["ann"].deliveries, errors.PermissionDenied),
            (lambda: as_["ann"].remove_webhook(wide.id), errors.PermissionDenied),
            (lambda: as_["vic"].redeliver(test.id), errors.PermissionDenied),
            # A model admin: not registry-wide, not a pattern, not a model it only reads...
            (lambda: as_["mia"].create_webhook(HOOK), errors.PermissionDenied),
            (lambda: as_["mia"].create_webhook(HOOK, model="fr*"), errors.PermissionDenied),
            (lambda: as_["mia"].create_webhook(HOOK, model="other"), errors.PermissionDenied),
            # ...nor one it cannot read (answered as missing), nor another's subscription.
            (lambda: as_["mia"].create_webhook(HOOK, model="nobody"), errors.ModelNotFound),
            (lambda: as_["mia"].remove_webhook(wide.id), errors.NotFound),
            (lambda: as_["mia"].rotate_webhook_secret(wide.id), errors.NotFound),
            (lambda: as_["mia"].test_webhook(wide.id), errors.NotFound),
            (lambda: as_["mia"].deliveries(wide.id), errors.NotFound),
            (lambda: as_["mia"].redeliver(test.id), errors.NotFound),
        ]
        for call, error in refusals:
            with pytest.raises(errors.RegistryError) as raised:
                call()
            assert type(raised.value) is error, raised.value
        assert counts(home) == before
        assert [w.id for w in as_["mia"].list_webhooks()] == [mine.id]
        assert list(as_["mia"].deliveries()) == []
        assert {w.id for w in as_["root"].list_webhooks()} == {wide.id, mine.id}
        assert as_["root"].remove_webhook(mine.id).id == mine.id  # an admin administers all
    finally:
        for client in as_.values():
            client.close()


# -- no secret in listings, the audit log or a log line ----------------------------------------


def test_no_secret_in_listings_audit_or_logs(
    team: tuple[LiveServer, dict[str, str]],
    home: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    server, tokens = team
    caplog.set_level(logging.DEBUG)
    with modelreg.Registry(server.url, token=tokens["root"]) as root:
        hook = root.create_webhook(HOOK + "?key=k3y")
        rotated = root.rotate_webhook_secret(hook.id)
        root.test_webhook(hook.id)
        listed = json.dumps([w.to_dict() for w in root.list_webhooks()])
        deliveries = json.dumps([d.to_dict() for d in root.deliveries()])
    secrets = [str(hook.secret), str(rotated.secret), "k3y"]
    out, err = capfd.readouterr()
    for text in (listed, deliveries, audit_text(home), caplog.text, out, err):
        for secret in secrets:
            assert secret not in text


# -- the CLI: --json, exit codes ---------------------------------------------------------------


def test_cli_webhooks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "cli-home"

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["--registry", str(home), "webhooks", *args])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, err = run("add", HOOK, "--event", "registry:version:stage", "--json")
    assert code == 0, err
    created = json.loads(out)
    assert created["secret"].startswith("whsec_")
    code, out, err = run("add", "--to", "ops@example.com")  # email, from --to alone
    assert code == 0
    assert "email to ops@example.com" in err
    assert "whsec_" not in out + err
    code, out, err = run("add", HOOK)
    assert code == 0
    assert out.startswith("whsec_")
    assert "not shown again" in err

    code, out, _ = run("list", "--json")
    assert code == 0
    assert len(json.loads(out)["items"]) == 3
    assert "whsec_" not in out
    code, out, _ = run("list")
    assert code == 0
    assert created["id"] in out
    assert "whsec_" not in out
    code, out, _ = run("rotate", created["id"], "--json")
    assert code == 0
    assert json.loads(out)["secret"].startswith("whsec_")
    code, out, _ = run("test", created["id"], "--json")
    delivery = json.loads(out)
    assert code == 0
    assert delivery["event"] == "modelreg:test"
    code, out, _ = run("deliveries", created["id"], "--json")
    assert code == 0
    assert [d["id"] for d in json.loads(out)["items"]] == [delivery["id"]]
    code, out, _ = run("deliveries", "--failed")
    assert code == 0
    assert "no deliveries" in out
    code, out, _ = run("redeliver", delivery["id"])
    assert code == 0
    assert delivery["id"] in out

    before = counts(home)
    for args, expected in [
        (("add", "ftp://example.com"), 1),
        (("add", "https://u:p@example.com"), 1),
        (("add", HOOK, "--event", "registry:nothing"), 1),
        (("add", "--to", "nobody"), 1),
        (("add", HOOK, "--kind", "pigeon"), 1),
        (("remove", str(uuid.uuid4())), 2),
        (("test", str(uuid.uuid4())), 2),
        (("redeliver", "msg_" + uuid.uuid4().hex), 2),
        (("rotate", "nonsense"), 1),
        (("rotate", created["id"], "--overlap-hours", "-1"), 1),
    ]:
        code, out, err = run(*args, "--json")
        assert code == expected, (args, err)
        assert json.loads(out)["error"]["code"], args
    assert counts(home) == before
    code, out, _ = run("remove", created["id"])
    assert code == 0
    assert "removed subscription" in out


def test_cli_refuses_a_non_admin_with_exit_5(
    team: tuple[LiveServer, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, tokens = team
    monkeypatch.setenv("MODELREG_TOKEN", tokens["vic"])
    assert main(["--registry", server.url, "webhooks", "add", HOOK]) == 5
    assert main(["--registry", server.url, "webhooks", "list"]) == 5
    monkeypatch.setenv("MODELREG_TOKEN", tokens["mia"])
    assert main(["--registry", server.url, "webhooks", "add", HOOK, "--model", "other"]) == 5
    assert main(["--registry", server.url, "webhooks", "add", HOOK, "--model", "nobody"]) == 2
    assert main(["--registry", server.url, "webhooks", "add", HOOK, "--model", "fraud"]) == 0
    capsys.readouterr()


# -- the REST answers: each refusal's status and code ------------------------------------------


def test_rest_statuses(team: tuple[LiveServer, dict[str, str]], home: Path) -> None:
    import httpx

    server, tokens = team

    def client(name: str | None) -> httpx.Client:
        headers = {"authorization": f"Bearer {tokens[name]}"} if name else {}
        return httpx.Client(base_url=f"{server.url}/api/v1", headers=headers)

    with client("root") as root, client("vic") as vic, client(None) as nobody:
        created = root.post("/webhooks", json={"url": HOOK, "events": ["registry:*"]})
        assert created.status_code == 201
        hook = created.json()
        assert hook["secret"].startswith("whsec_")
        listed = root.get("/webhooks")
        assert listed.status_code == 200
        assert "secret" not in listed.json()["items"][0]
        test = root.post(f"/webhooks/{hook['id']}/test", json={})
        assert test.status_code == 201
        before = counts(home)
        cases: list[tuple[httpx.Response, int, str]] = [
            (root.post("/webhooks", json={"url": "ftp://e.com"}), 400, "invalid_input"),
            (root.post("/webhooks", json={"url": HOOK, "colour": "red"}), 400, "invalid_input"),
            (root.post("/webhooks", json={"url": HOOK, "kind": "fax"}), 400, "invalid_input"),
            (
                root.post("/webhooks", content=b"url=x", headers={"content-type": "text/plain"}),
                415,
                "unsupported_media_type",
            ),
            (
                root.post(f"/webhooks/{hook['id']}/rotate", json={"overlap_hours": 721}),
                400,
                "invalid_input",
            ),
            (root.delete("/webhooks/not-a-uuid"), 400, "invalid_input"),
            (root.delete(f"/webhooks/{uuid.uuid4()}"), 404, "not_found"),
            (root.post(f"/deliveries/msg_{uuid.uuid4().hex}/redeliver", json={}), 404, "not_found"),
            (root.get("/deliveries", params={"page_token": "forged"}), 400, "invalid_input"),
            (vic.post("/webhooks", json={"url": HOOK}), 403, "permission_denied"),
            (vic.get("/deliveries"), 403, "permission_denied"),
            (vic.delete(f"/webhooks/{hook['id']}"), 403, "permission_denied"),
            (nobody.get("/webhooks"), 401, "unauthenticated"),
            (nobody.delete(f"/webhooks/{hook['id']}"), 401, "unauthenticated"),
        ]
        for answer, status, code in cases:
            assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), (
                answer.request.method,
                answer.request.url,
            )
        assert counts(home) == before


def test_nothing_is_queued_for_a_disabled_subscription(reg: modelreg.Registry, home: Path) -> None:
    hook = reg.create_webhook(HOOK)
    delivery = reg.test_webhook(hook.id)
    engine = make_engine(Settings.for_home(home).db_url)
    try:
        with transaction(engine, write=True) as session:
            row = session.get(Webhook, uuid.UUID(hook.id))
            assert row is not None
            row.disabled_at = row.created_at
            row.disabled_reason = "the target answered 410 Gone"
    finally:
        engine.dispose()
    before = counts(home)
    for call in (lambda: reg.test_webhook(hook.id), lambda: reg.redeliver(delivery.id)):
        with pytest.raises(errors.Conflict, match="410 Gone") as raised:
            call()
        assert raised.value.exit_code == 6
    assert counts(home) == before
    (listed,) = reg.list_webhooks()
    assert listed.disabled_reason == "the target answered 410 Gone"


def test_a_slack_url_is_stored_sealed(reg: modelreg.Registry, home: Path) -> None:
    """A Slack incoming-webhook URL is a credential: a database dump alone does not reveal it."""
    from sqlalchemy import create_engine, text

    from modelreg.config import Settings

    reg.create_webhook("https://hooks.slack.com/services/T000/B000/XXXXSECRET", kind="slack")
    url = Settings.for_home(home).db_url
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = [tuple(map(str, r)) for r in conn.execute(text("SELECT * FROM webhooks"))]
    engine.dispose()
    assert rows
    assert "XXXXSECRET" not in repr(rows)
